//! Fitted parameters: named blocks of grouped values with a reparametrisation each.
//!
//! A block maps every *element* (a neuron, a chemical connection or a gap-junction entry) to one *group*;
//! every group has one raw (unconstrained) number in the optimiser's vector and a [`Transform`] from raw
//! to value, which keeps bounded or positive parameters inside their range (no projection steps). A
//! block that is not fitted keeps its values and receives no gradient. Element gradients are reduced to
//! groups in element order, so the result does not depend on threads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FitError;
use crate::network::{FitNetwork, StrengthGrouping};

/// Raw number → parameter value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    /// value = raw.
    Identity,
    /// value = lo + e^raw (positive above `lo`).
    Positive { lo: f64 },
    /// value = lo + (hi − lo) σ(raw).
    Bounded { lo: f64, hi: f64 },
}

impl Transform {
    pub fn value(&self, raw: f64) -> f64 {
        match *self {
            Transform::Identity => raw,
            Transform::Positive { lo } => lo + raw.exp(),
            Transform::Bounded { lo, hi } => lo + (hi - lo) * sigmoid(raw),
        }
    }

    /// d value / d raw.
    pub fn derivative(&self, raw: f64) -> f64 {
        match *self {
            Transform::Identity => 1.0,
            Transform::Positive { .. } => raw.exp(),
            Transform::Bounded { lo, hi } => {
                let s = sigmoid(raw);
                (hi - lo) * s * (1.0 - s)
            }
        }
    }

    /// The raw number of a value; the value must lie strictly inside the range.
    pub fn raw(&self, value: f64) -> Result<f64, String> {
        if !value.is_finite() {
            return Err(format!("value {value} is not finite"));
        }
        match *self {
            Transform::Identity => Ok(value),
            Transform::Positive { lo } if value > lo => Ok((value - lo).ln()),
            Transform::Positive { lo } => Err(format!("value {value} must be above the lower bound {lo}")),
            Transform::Bounded { lo, hi } if value > lo && value < hi => {
                let s = (value - lo) / (hi - lo);
                Ok((s / (1.0 - s)).ln())
            }
            Transform::Bounded { lo, hi } => Err(format!("value {value} must lie strictly inside ({lo}, {hi})")),
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    neurotwin_models::detmath::sigmoid(x)
}

/// What a block's elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    Neuron,
    Connection,
    GapEntry,
}

/// How neurons share a per-neuron parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeuronGrouping {
    Global,
    CellType,
    Neuron,
}

/// How gap-junction entries share a strength (always symmetric).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapGrouping {
    Global,
    /// One per unordered pair of cell types.
    TypePair,
}

/// One named parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamBlock {
    pub name: String,
    pub element: ElementKind,
    /// Group labels (cell type, type pair, …), one per group.
    pub labels: Vec<String>,
    /// Transform of each group.
    pub transforms: Vec<Transform>,
    /// Group of each element.
    #[serde(skip)]
    pub element_group: Vec<u32>,
    /// First raw number of this block in [`ParamSet::raw`].
    pub offset: usize,
    pub fitted: bool,
}

impl ParamBlock {
    pub fn n_groups(&self) -> usize {
        self.labels.len()
    }
}

/// All parameters of a model: blocks and their raw numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSet {
    pub blocks: Vec<ParamBlock>,
    pub raw: Vec<f64>,
}

impl ParamSet {
    pub fn new() -> Self {
        Self { blocks: Vec::new(), raw: Vec::new() }
    }

    /// Adds a block. `init` is the value of every group, or per group label (labels missing from the map
    /// take `default`); `transform(label)` gives each group's reparametrisation.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        name: &str,
        element: ElementKind,
        labels: Vec<String>,
        element_group: Vec<u32>,
        transform: impl Fn(&str) -> Transform,
        default: f64,
        init: &BTreeMap<String, f64>,
        fitted: bool,
    ) -> Result<(), FitError> {
        if self.blocks.iter().any(|b| b.name == name) {
            return Err(FitError::Param { param: name.into(), message: "defined twice".into() });
        }
        for key in init.keys() {
            if !labels.contains(key) {
                return Err(FitError::Param {
                    param: name.into(),
                    message: format!("initial value for unknown group `{key}` (groups: {})", preview(&labels)),
                });
            }
        }
        let offset = self.raw.len();
        let mut transforms = Vec::with_capacity(labels.len());
        for l in &labels {
            let t = transform(l);
            let v = init.get(l).copied().unwrap_or(default);
            let r = t.raw(v).map_err(|m| FitError::Param { param: format!("{name}[{l}]"), message: m })?;
            self.raw.push(r);
            transforms.push(t);
        }
        self.blocks.push(ParamBlock { name: name.into(), element, labels, transforms, element_group, offset, fitted });
        Ok(())
    }

    pub fn block(&self, name: &str) -> Option<&ParamBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    pub fn block_index(&self, name: &str) -> Option<usize> {
        self.blocks.iter().position(|b| b.name == name)
    }

    /// Value of every group of a block.
    pub fn group_values(&self, b: &ParamBlock) -> Vec<f64> {
        (0..b.n_groups()).map(|g| b.transforms[g].value(self.raw[b.offset + g])).collect()
    }

    /// Value of every element of the block called `name`.
    pub fn element_values(&self, name: &str) -> Vec<f64> {
        let b = self.block(name).unwrap_or_else(|| panic!("model parameter block `{name}` missing"));
        let g = self.group_values(b);
        b.element_group.iter().map(|&k| g[k as usize]).collect()
    }

    /// Adds `d loss / d element` of block `name` into the raw gradient `grad` (same layout as `raw`),
    /// summed per group in element order and multiplied by the transform's derivative. Blocks not
    /// fitted, or absent (optional blocks such as `weight_scale`), get nothing.
    pub fn reduce(&self, name: &str, element_grad: &[f64], grad: &mut [f64]) {
        let Some(b) = self.block(name) else { return };
        if !b.fitted {
            return;
        }
        let mut sum = vec![0.0; b.n_groups()];
        for (&k, &g) in b.element_group.iter().zip(element_grad) {
            sum[k as usize] += g;
        }
        for (k, s) in sum.into_iter().enumerate() {
            grad[b.offset + k] += s * b.transforms[k].derivative(self.raw[b.offset + k]);
        }
    }

    /// Indices into `raw` of the fitted numbers.
    pub fn fitted_mask(&self) -> Vec<bool> {
        let mut m = vec![false; self.raw.len()];
        for b in &self.blocks {
            m[b.offset..b.offset + b.n_groups()].fill(b.fitted);
        }
        m
    }

    /// (block, group label) of raw number `k`, for messages.
    pub fn describe(&self, k: usize) -> String {
        for b in &self.blocks {
            if k >= b.offset && k < b.offset + b.n_groups() {
                return format!("{}[{}]", b.name, b.labels[k - b.offset]);
            }
        }
        format!("#{k}")
    }

    /// `{block: {group: value}}` of every block, for outputs.
    pub fn to_values(&self) -> BTreeMap<String, BTreeMap<String, f64>> {
        self.blocks
            .iter()
            .map(|b| {
                let v = self.group_values(b);
                (b.name.clone(), b.labels.iter().cloned().zip(v).collect())
            })
            .collect()
    }
}

impl Default for ParamSet {
    fn default() -> Self {
        Self::new()
    }
}

fn preview(labels: &[String]) -> String {
    if labels.len() <= 12 {
        labels.join(", ")
    } else {
        format!("{}, … ({} in all)", labels[..12].join(", "), labels.len())
    }
}

/// Groups of a per-neuron parameter: labels and each neuron's group.
pub fn neuron_groups(net: &FitNetwork, grouping: NeuronGrouping) -> (Vec<String>, Vec<u32>) {
    match grouping {
        NeuronGrouping::Global => (vec!["all".into()], vec![0; net.n]),
        NeuronGrouping::Neuron => (net.names.clone(), (0..net.n as u32).collect()),
        NeuronGrouping::CellType => intern(net.cell_types.iter().map(|t| type_label(t))),
    }
}

fn type_label(t: &str) -> String {
    if t.is_empty() { "(untyped)".into() } else { t.to_string() }
}

fn sign_label(s: i8, learned: bool) -> &'static str {
    if learned {
        "±"
    } else if s > 0 {
        "+"
    } else {
        "−"
    }
}

/// Groups of the chemical strengths: labels and each connection's group. Connections of opposite sign
/// never share a group; receptor classes with a learned sign get their own groups (marked `±`).
pub fn strength_groups(net: &FitNetwork, grouping: StrengthGrouping) -> (Vec<String>, Vec<u32>) {
    let post = net.post_of_connections();
    let keys = (0..net.n_connections()).map(|c| {
        let r = net.receptor[c] as usize;
        let learned = net.learned_sign[r];
        let s = sign_label(net.sign[c], learned);
        let pre_t = type_label(&net.cell_types[net.pre[c] as usize]);
        let post_t = type_label(&net.cell_types[post[c] as usize]);
        let rname = &net.receptors[r].name;
        let learned_tag = if learned { format!(" {rname}") } else { String::new() };
        match grouping {
            StrengthGrouping::Global => format!("all ({s}){learned_tag}"),
            StrengthGrouping::TypePair => format!("{pre_t}→{post_t} ({s}){learned_tag}"),
            StrengthGrouping::Receptor => format!("{rname} ({s})"),
            StrengthGrouping::PreType => format!("{pre_t} ({s}){learned_tag}"),
            StrengthGrouping::Connection => {
                format!("{}→{} {rname}", net.names[net.pre[c] as usize], net.names[post[c] as usize])
            }
        }
    });
    intern(keys)
}

/// Whether a strength group carries a learned sign (label marked `±`).
pub fn is_learned_sign_label(label: &str) -> bool {
    label.contains("(±)")
}

/// Groups of the gap-junction strengths (symmetric: an entry and its mirror share a group).
pub fn gap_groups(net: &FitNetwork, grouping: GapGrouping) -> (Vec<String>, Vec<u32>) {
    let keys = (0..net.n).flat_map(|i| {
        (net.gap_ptr[i]..net.gap_ptr[i + 1]).map(move |e| {
            let j = net.gap_nbr[e] as usize;
            match grouping {
                GapGrouping::Global => "all".to_string(),
                GapGrouping::TypePair => {
                    let (a, b) = (type_label(&net.cell_types[i]), type_label(&net.cell_types[j]));
                    if a <= b { format!("{a}↔{b}") } else { format!("{b}↔{a}") }
                }
            }
        })
    });
    intern(keys)
}

/// Labels in order of first appearance and each item's index.
fn intern(items: impl Iterator<Item = String>) -> (Vec<String>, Vec<u32>) {
    let mut index: BTreeMap<String, u32> = BTreeMap::new();
    let mut labels = Vec::new();
    let mut of = Vec::new();
    for s in items {
        let k = *index.entry(s.clone()).or_insert_with(|| {
            labels.push(s);
            (labels.len() - 1) as u32
        });
        of.push(k);
    }
    (labels, of)
}
