//! A NeuroML 2 network (`neurotwin_connectome::import::neuroml`) as a scenario: the cells as a neuron table, the
//! projections as a connections CSV (explicit weight, receptor = the synapse component, delay), and a scenario
//! whose `[model]` writes the NeuroML components' LEMS dynamics as an equation-defined neuron (`model =
//! "equations"`, forward Euler as jNeuroML integrates), one receptor channel per synapse component, the pulse
//! generators as current stimuli and the LEMS simulation's length and step as `[run]`. What `neurotwin import
//! --to scenario` writes; everything after it is an ordinary scenario run.
//!
//! Mapping (NeuroML 2 core types, `NeuroMLCoreDefs` Cells.xml / Synapses.xml / Inputs.xml):
//! - `iafCell` / `iafRefCell`: C dv/dt = g_L (E_L − v) + Σ i_syn + I_stim; spike when v > thresh, v = reset (and held
//!   for `refract`).
//! - `izhikevich2007Cell`: C dv/dt = k (v − v_r)(v − v_t) − u + Σ i_syn + I_stim, du/dt = a (b (v − v_r) − u); spike
//!   when v > v_peak, v = c, u += d. A network uses one of the two families.
//! - `expTwoSynapse`: g = gbase·(B − A), A' = −A/τ_rise, B' = −B/τ_decay, an event of weight w adds w·f to A and B
//!   (f normalises the peak to 1). Written with D = B − A, which an event leaves unchanged:
//!   D' = B (1/τ_rise − 1/τ_decay) − D/τ_rise, so one input statement (`B += w·f`) suffices. `expOneSynapse`:
//!   g = gbase·D, D' = −D/τ_decay, an event adds w. i_syn = g·(erev − v).
//! - `gapJunction`: the gap-junction matrix (conductance × weight), currents through `I_stim`.
//! - `pulseGenerator` on a cell: a current stimulus of amplitude × weight over the steps that end in
//!   [delay, delay + duration) (jNeuroML evaluates inputs at the end of a step).
//!
//! Timing as jNeuroML's: inputs are added before a step's integration (`input_timing = "before"`), so a spike's
//! synaptic effect begins in the next step, as jNeuroML's does for a delay of 0 or one step; a NeuroML delay shorter
//! than one step becomes one step (neurotwin's shortest), which jNeuroML treats alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use neurotwin_connectome::import::neuroml::{LemsSimulation, NeuroMlNetwork};

/// The cells of a network: integrate-and-fire or Izhikevich 2007 (one equation set per scenario).
#[derive(Clone, Copy, Debug, PartialEq)]
enum CellFamily {
    Iaf,
    Izhikevich,
}

impl CellFamily {
    /// The family of the cell components the populations use; a network mixing families is refused.
    fn of(net: &NeuroMlNetwork) -> Result<Self, String> {
        let uses = |id: &str| net.populations.iter().any(|p| p.component == id);
        let (iaf, izh) = (net.cells.iter().any(|c| uses(&c.id)), net.izh_cells.iter().any(|c| uses(&c.id)));
        match (iaf, izh) {
            (true, true) => {
                Err("the populations mix iafCell and izhikevich2007Cell components; a scenario has one neuron \
                                 model (import them as two networks)"
                    .into())
            }
            (false, true) => Ok(CellFamily::Izhikevich),
            _ => Ok(CellFamily::Iaf),
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellFamily::Iaf => "iafCell",
            CellFamily::Izhikevich => "izhikevich2007Cell",
        }
    }

    /// The membrane equation(s) with the synaptic currents `syn_terms` (` + g*D*(E - v)` …).
    fn equations(self, syn_terms: &str) -> String {
        match self {
            CellFamily::Iaf => format!("dv/dt = (g_L*(E_L - v){syn_terms} + I_stim)/C : mV\n"),
            CellFamily::Izhikevich => format!(
                "dv/dt = (izh_k*(v - V_r)*(v - V_t) - u{syn_terms} + I_stim)/C : mV\ndu/dt = izh_a*(izh_b*(v - V_r) - u) : pA\n"
            ),
        }
    }

    /// Threshold, reset, refractoriness and initial values.
    fn spike_lines(self) -> &'static str {
        match self {
            CellFamily::Iaf => {
                "threshold = \"v > V_th\"\nreset = \"v = V_reset\"\nrefractory = \"t_ref\"\nclamp = [\"v\"]\ninit = { v = \"E_L\" }\n"
            }
            CellFamily::Izhikevich => {
                "threshold = \"v > V_peak\"\nreset = \"v = V_reset; u += izh_d\"\ninit = { v = \"V_0\", u = \"0 * pA\" }\n"
            }
        }
    }

    /// `(component id, its parameters as TOML lines)` of every cell component a population uses, in file order.
    fn used_types(self, net: &NeuroMlNetwork) -> Vec<(String, String)> {
        let uses = |id: &str| net.populations.iter().any(|p| p.component == id);
        match self {
            CellFamily::Iaf => net
                .cells
                .iter()
                .filter(|c| uses(&c.id))
                .map(|c| {
                    let p = format!(
                        "C = \"{} pF\"\ng_L = \"{} nS\"\nE_L = \"{} mV\"\nV_th = \"{} mV\"\nV_reset = \"{} mV\"\nt_ref = \"{} ms\"\n",
                        c.c_pf, c.leak_conductance_ns, c.leak_reversal_mv, c.thresh_mv, c.reset_mv, c.refract_ms
                    );
                    (c.id.clone(), p)
                })
                .collect(),
            CellFamily::Izhikevich => net
                .izh_cells
                .iter()
                .filter(|c| uses(&c.id))
                .map(|c| {
                    let p = format!(
                        "C = \"{} pF\"\nV_0 = \"{} mV\"\nizh_k = \"{} nS/mV\"\nV_r = \"{} mV\"\nV_t = \"{} mV\"\n\
                         V_peak = \"{} mV\"\nizh_a = \"{} 1/ms\"\nizh_b = \"{} nS\"\nV_reset = \"{} mV\"\nizh_d = \"{} pA\"\n",
                        c.c_pf, c.v0_mv, c.k_ns_per_mv, c.vr_mv, c.vt_mv, c.vpeak_mv, c.a_per_ms, c.b_ns, c.reset_mv, c.d_pa
                    );
                    (c.id.clone(), p)
                })
                .collect(),
        }
    }
}

/// The files of an imported scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedScenario {
    pub neurons_csv: String,
    pub connections_csv: String,
    pub scenario_toml: String,
    /// Connections whose delay was raised to one step.
    pub delays_raised: usize,
}

/// A TOML string literal.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The waveform factor of `expTwoSynapse` (NeuroML's `waveformFactor`): 1 / (e^{−t_p/τ_decay} − e^{−t_p/τ_rise})
/// with the peak time t_p = ln(τ_decay/τ_rise)·τ_rise·τ_decay/(τ_decay − τ_rise).
fn waveform_factor(tau_rise: f64, tau_decay: f64) -> f64 {
    let peak = (tau_decay / tau_rise).ln() * tau_rise * tau_decay / (tau_decay - tau_rise);
    1.0 / (-(-peak / tau_rise).exp() + (-peak / tau_decay).exp())
}

/// The scenario of `net`, named `name`, run for `sim` (default: 1000 ms at 0.05 ms); `source` is the file it came
/// from (for the header comment). Errors say what the importer cannot map.
pub fn scenario_from_neuroml(
    net: &NeuroMlNetwork,
    sim: Option<LemsSimulation>,
    name: &str,
    source: &str,
) -> Result<ImportedScenario, String> {
    if (net.cells.is_empty() && net.izh_cells.is_empty()) || net.populations.is_empty() {
        return Err(
            "the network has no cells (supported cell components: iafCell, iafRefCell, izhikevich2007Cell)".into()
        );
    }
    let sim = sim.unwrap_or(LemsSimulation { length_ms: 1000.0, step_ms: 0.05 });
    let cells = net.cells_in_order();
    let index: BTreeMap<(usize, u32), usize> = cells.iter().enumerate().map(|(k, &c)| (c, k)).collect();
    // Neurons.
    let mut neurons_csv = String::from("id,name,cell_type\n");
    for (k, &c) in cells.iter().enumerate() {
        let _ = writeln!(neurons_csv, "{},{},{}", k + 1, net.cell_name(c), net.populations[c.0].component);
    }
    // Chemical synapse components used, in file order, and gap junctions.
    let chemical: Vec<_> = net
        .synapses
        .iter()
        .filter(|s| s.tau_decay_ms > 0.0 && net.connections.iter().any(|c| c.synapse == s.id))
        .collect();
    for s in &chemical {
        if let Some(r) = s.tau_rise_ms
            && !(r > 0.0 && r < s.tau_decay_ms)
        {
            return Err(format!(
                "expTwoSynapse `{}`: needs 0 < tauRise < tauDecay (got {r} and {} ms)",
                s.id, s.tau_decay_ms
            ));
        }
    }
    let mut connections_csv = String::from("pre,post,count,weight,receptor,delay_ms,kind\n");
    let mut delays_raised = 0;
    for c in &net.connections {
        let delay = if c.delay_ms < sim.step_ms {
            delays_raised += 1;
            sim.step_ms
        } else {
            c.delay_ms
        };
        let _ = writeln!(
            connections_csv,
            "{},{},1,{},{},{},chemical",
            index[&c.pre] + 1,
            index[&c.post] + 1,
            c.weight,
            c.synapse,
            delay
        );
    }
    for g in &net.gaps {
        let _ = writeln!(
            connections_csv,
            "{},{},{},,,,electrical",
            index[&g.pre] + 1,
            index[&g.post] + 1,
            g.conductance_ns
        );
    }
    // The neuron: one equation set (one cell family), the cell components as cell types.
    let family = CellFamily::of(net)?;
    let mut syn_terms = String::new();
    for (k, _) in chemical.iter().enumerate() {
        let _ = write!(syn_terms, " + g_S{k}*D_S{k}*(E_S{k} - v)");
    }
    let mut eq = family.equations(&syn_terms);
    let mut params = String::new();
    let mut inputs = Vec::new();
    for (k, s) in chemical.iter().enumerate() {
        let _ = writeln!(params, "g_S{k} = \"{} nS\"     # {} gbase\nE_S{k} = \"{} mV\"", s.gbase_ns, s.id, s.erev_mv);
        match s.tau_rise_ms {
            Some(rise) => {
                let _ = writeln!(eq, "dB_S{k}/dt = -B_S{k}/tau_d_S{k} : 1");
                let _ = writeln!(eq, "dD_S{k}/dt = B_S{k}*(1/tau_r_S{k} - 1/tau_d_S{k}) - D_S{k}/tau_r_S{k} : 1");
                let _ = writeln!(
                    params,
                    "tau_r_S{k} = \"{rise} ms\"\ntau_d_S{k} = \"{} ms\"\nf_S{k} = \"{:e}\"     # waveform factor",
                    s.tau_decay_ms,
                    waveform_factor(rise, s.tau_decay_ms)
                );
                inputs.push(format!("{} = \"B_S{k} += w*f_S{k}\"", quoted(&s.id)));
            }
            None => {
                let _ = writeln!(eq, "dD_S{k}/dt = -D_S{k}/tau_d_S{k} : 1");
                let _ = writeln!(params, "tau_d_S{k} = \"{} ms\"", s.tau_decay_ms);
                inputs.push(format!("{} = \"D_S{k} += w\"", quoted(&s.id)));
            }
        }
    }
    let used = family.used_types(net);
    let (first, rest) = used.split_first().ok_or("no population uses a supported cell component")?;
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Imported from {source} (NeuroML 2) by `neurotwin import --to scenario`: {} cells, {} chemical connections, {} gap \
         junctions, {} inputs.\n# The cells' dynamics ({}) and the synapses' (expOneSynapse / expTwoSynapse) are written \
         as equations below (forward Euler, as jNeuroML).",
        cells.len(),
        net.connections.len(),
        net.gaps.len(),
        net.inputs.len(),
        family.name()
    );
    if delays_raised > 0 {
        let _ = writeln!(
            toml,
            "# {delays_raised} connection delays shorter than one step ({} ms) were raised to one step.",
            sim.step_ms
        );
    }
    let _ = writeln!(toml, "name = {}", quoted(name));
    let _ =
        writeln!(toml, "description = {}\n", quoted(&format!("NeuroML network `{}` imported from {source}", net.id)));
    let receptors: Vec<String> = chemical
        .iter()
        .map(|s| format!("{{ name = {}, excitatory = {} }}", quoted(&s.id), s.erev_mv > -40.0))
        .collect();
    let _ = writeln!(
        toml,
        "[network]\nconnections = \"connections.csv\"\nneurons = \"neurons.csv\"\nweight_per_synapse = 1.0\n\
         gap_per_junction_ns = 1.0\ntransmitters = {{ receptors = [{}], rules = [], fallback = {}, source = \"NeuroML synapse \
         components\" }}\n",
        receptors.join(", "),
        chemical.first().map_or("\"none\"".to_string(), |s| quoted(&s.id))
    );
    let _ = writeln!(
        toml,
        "[model]\nmodel = \"equations\"\nmethod = \"euler\"\ninput_timing = \"before\"   # events act from the next step on, as in \
         jNeuroML\nequations = \"\"\"\n{eq}\"\"\""
    );
    toml.push_str(family.spike_lines());
    let _ = writeln!(toml, "inputs = {{ {} }}", inputs.join(", "));
    let _ = writeln!(toml, "[model.parameters]\n{}{params}", first.1);
    // A cell type's `parameters` override those of [model.parameters] by name (the synapses' are shared).
    for (id, cell) in rest {
        let _ = writeln!(toml, "[model.cell_types.{}.parameters]\n{cell}", quoted(id));
    }
    let _ = writeln!(toml, "[run]\nduration_ms = {:?}\ndt_ms = {:?}\nseed = 1\n", sim.length_ms, sim.step_ms);
    // Inputs: one stimulus per (pulse, weight), inside the run.
    let mut groups: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    for i in &net.inputs {
        groups.entry((i.pulse.clone(), i.weight.to_bits())).or_default().push(net.cell_name(i.target));
    }
    for ((pulse, w), names) in groups {
        let p = net.pulses.iter().find(|p| p.id == pulse).ok_or_else(|| format!("input of unknown pulse `{pulse}`"))?;
        let amplitude = p.amplitude_pa * f64::from_bits(w);
        // jNeuroML evaluates a pulse at the end of each step (t + dt ≥ delay), so it acts one step before neurotwin's
        // window [delay, delay + duration) of steps that start in it would.
        let start = (p.delay_ms - sim.step_ms).max(0.0);
        let stop = (p.delay_ms + p.duration_ms - sim.step_ms).min(sim.length_ms);
        if amplitude == 0.0 || start >= sim.length_ms || stop <= start {
            continue;
        }
        let names: Vec<String> = names.iter().map(|n| quoted(n)).collect();
        let _ = writeln!(
            toml,
            "[[stimulus]]\nname = {}\nkind = \"current\"\namplitude_pa = {amplitude:?}\nstart_ms = {start:?}\nstop_ms = {stop:?}\n\
             targets = {{ names = [{}] }}\n",
            quoted(&pulse),
            names.join(", ")
        );
    }
    let every = if cells.len() <= 200 { sim.step_ms } else { 1.0 };
    let _ = writeln!(toml, "[record]\nstate = [{{ var = \"v\", targets = {{ all = true }}, every_ms = {every:?} }}]");
    Ok(ImportedScenario { neurons_csv, connections_csv, scenario_toml: toml, delays_raised })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waveform factor makes the peak of g = gbase·(B − A) after one event of weight 1 equal to 1.
    #[test]
    fn waveform_factor_normalises_the_peak() {
        let (r, d) = (3.0, 10.0);
        let f = waveform_factor(r, d);
        let peak =
            (0..100_000).map(|k| k as f64 * 1e-3).map(|t| f * ((-t / d).exp() - (-t / r).exp())).fold(0.0, f64::max);
        assert!((peak - 1.0).abs() < 1e-6, "{peak}");
    }
}
