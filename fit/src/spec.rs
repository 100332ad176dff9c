//! The parameters a fit learns, as written in a scenario's `[fit.params.<name>]` tables, and the
//! [`ParamSet`] they build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FitError;
use crate::network::{FitNetwork, StrengthGrouping};
use crate::params::{
    ElementKind, GapGrouping, NeuronGrouping, ParamSet, Transform, gap_groups, is_learned_sign_label, neuron_groups,
    strength_groups,
};

/// One parameter: how it is shared, where it starts, its bounds, and whether it is fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// Neuron parameters: `global`, `cell_type`, `neuron`; `strength`: `global`, `type_pair`, `receptor`,
    /// `pre_type`, `connection`; `gap`: `global`, `type_pair`; `weight_scale` is always per connection.
    #[serde(default)]
    pub grouping: Option<String>,
    /// Initial value of every group.
    pub init: f64,
    /// Initial values of named groups (cell types, type pairs such as `sensory→interneuron (+)`, …).
    #[serde(default)]
    pub init_groups: BTreeMap<String, f64>,
    /// Lower bound (value = lo + e^raw), or with `hi` both bounds (value = lo + (hi − lo) σ(raw)).
    #[serde(default)]
    pub lo: Option<f64>,
    #[serde(default)]
    pub hi: Option<f64>,
    /// Fitted (default) or held at its initial value.
    #[serde(default = "yes")]
    pub fit: bool,
}

fn yes() -> bool {
    true
}

impl ParamSpec {
    pub fn fixed(init: f64) -> Self {
        Self { grouping: None, init, init_groups: BTreeMap::new(), lo: None, hi: None, fit: false }
    }

    pub fn fitted(grouping: &str, init: f64, lo: Option<f64>, hi: Option<f64>) -> Self {
        Self { grouping: Some(grouping.into()), init, init_groups: BTreeMap::new(), lo, hi, fit: true }
    }

    fn transform(&self, name: &str) -> Result<Transform, FitError> {
        let bad = |m: String| FitError::Param { param: name.into(), message: m };
        match (self.lo, self.hi) {
            (None, None) => Ok(Transform::Identity),
            (Some(lo), None) if lo.is_finite() => Ok(Transform::Positive { lo }),
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok(Transform::Bounded { lo, hi }),
            (None, Some(_)) => Err(bad("`hi` needs `lo` too (bounds are two-sided or lower only)".into())),
            (lo, hi) => Err(bad(format!("bounds lo = {lo:?}, hi = {hi:?} must be finite with lo < hi"))),
        }
    }
}

/// The parameters of each model, with their defaults where a scenario leaves them out.
pub fn known_params(model: &str) -> &'static [&'static str] {
    match model {
        "lif" => &["tau", "bias", "gain", "theta", "strength", "gap", "weight_scale"],
        "graded" => &["g_l", "e_l", "theta", "slope", "bias", "gain", "e_exc", "e_inh", "strength", "gap"],
        _ => &["tau", "bias", "gain", "theta", "slope", "strength", "gap", "weight_scale"],
    }
}

/// Default of a parameter the scenario does not name (held fixed).
fn default_spec(model: &str, name: &str) -> Option<ParamSpec> {
    let v = match (model, name) {
        // Graded conductance model (Kunert, Shlizerman & Kutz 2014 as `GradedParams`; mV, nS, pA):
        // g_L 10 pS, E_cell −35 mV, V_th = E_cell, β 0.125 /mV, E_exc 0 mV, E_inh −48 mV, 100 pS per
        // synapse and per gap junction.
        ("graded", "g_l") => 0.01,
        ("graded", "e_l") => -35.0,
        ("graded", "theta") => -35.0,
        ("graded", "slope") => 0.125,
        ("graded", "e_exc") => 0.0,
        ("graded", "e_inh") => -48.0,
        ("graded", "strength") => 0.1,
        ("graded", "gap") => 0.1,
        (_, "tau") => 100.0,
        (_, "bias") => 0.0,
        (_, "gain") => 1.0,
        ("lif", "theta") => 1.0,
        (_, "theta") => 0.0,
        (_, "slope") => 1.0,
        (_, "strength") => 0.01,
        (_, "gap") => 0.0,
        _ => return None,
    };
    Some(ParamSpec::fixed(v))
}

/// Builds the parameter set of `model` (`rate` or `lif`) on `net` from the scenario's specs; parameters
/// not named are held at their defaults. `weight_scale` (per connection, anatomy prior 1) exists only
/// when named.
pub fn build_params(net: &FitNetwork, model: &str, specs: &BTreeMap<String, ParamSpec>) -> Result<ParamSet, FitError> {
    let known = known_params(model);
    for name in specs.keys() {
        if !known.contains(&name.as_str()) {
            return Err(FitError::Param {
                param: name.clone(),
                message: format!("unknown parameter of the `{model}` model (known: {})", known.join(", ")),
            });
        }
    }
    let mut set = ParamSet::new();
    for &name in known {
        let spec = match specs.get(name) {
            Some(s) => s.clone(),
            None => match default_spec(model, name) {
                Some(s) => s,
                None => continue,
            },
        };
        let transform = spec.transform(name)?;
        let grouping = spec.grouping.as_deref();
        let bad_grouping = |g: &str, valid: &str| FitError::Param {
            param: name.into(),
            message: format!("grouping `{g}` is not valid here (valid: {valid})"),
        };
        let (element, (labels, groups)) = match name {
            "strength" => {
                let g = match grouping.unwrap_or("type_pair") {
                    "global" => StrengthGrouping::Global,
                    "type_pair" => StrengthGrouping::TypePair,
                    "receptor" => StrengthGrouping::Receptor,
                    "pre_type" => StrengthGrouping::PreType,
                    "connection" => StrengthGrouping::Connection,
                    g => return Err(bad_grouping(g, "global, type_pair, receptor, pre_type, connection")),
                };
                (ElementKind::Connection, strength_groups(net, g))
            }
            "gap" => {
                let g = match grouping.unwrap_or("global") {
                    "global" => GapGrouping::Global,
                    "type_pair" => GapGrouping::TypePair,
                    g => return Err(bad_grouping(g, "global, type_pair")),
                };
                (ElementKind::GapEntry, gap_groups(net, g))
            }
            "weight_scale" => {
                if let Some(g) = grouping.filter(|g| *g != "connection") {
                    return Err(bad_grouping(g, "connection"));
                }
                let labels = vec!["connection".to_string()];
                (ElementKind::Connection, (labels, vec![0; net.n_connections()]))
            }
            _ => {
                let g = match grouping.unwrap_or("global") {
                    "global" => NeuronGrouping::Global,
                    "cell_type" => NeuronGrouping::CellType,
                    "neuron" => NeuronGrouping::Neuron,
                    g => return Err(bad_grouping(g, "global, cell_type, neuron")),
                };
                (ElementKind::Neuron, neuron_groups(net, g))
            }
        };
        let (labels, groups) = if name == "weight_scale" {
            // One group per connection, labelled by index.
            let n = net.n_connections();
            ((0..n).map(|c| c.to_string()).collect(), (0..n as u32).collect())
        } else {
            (labels, groups)
        };
        let is_strength = name == "strength";
        set.push(
            name,
            element,
            labels,
            groups,
            |label| {
                // A learned sign needs a signed strength: no positivity transform.
                if is_strength && is_learned_sign_label(label) { Transform::Identity } else { transform }
            },
            spec.init,
            &spec.init_groups,
            spec.fit,
        )?;
    }
    Ok(set)
}
