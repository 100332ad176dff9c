//! A generated network with the size and degree statistics of the adult *Drosophila* brain (FlyWire FAFB
//! v783), for whole-brain-scale benchmarks without the real data (the real dump goes through the CSV
//! importer, `import/csv.rs`, FlyWire layout).
//!
//! **Targets** (defaults of [`FlyBrainConfig`]):
//!
//! * 139,255 neurons: Dorkenwald et al. (2024) Neuronal wiring diagram of an adult brain. Nature
//!   634:124–138 (abstract and Codex; also quoted by many public re-analyses).
//! * 15,091,983 connections (ordered neuron pairs with ≥ 1 synapse) carrying 54,492,922 synapses, i.e.
//!   108.4 connections per neuron and 3.61 synapses per connection. These are the row count and
//!   `syn_count` sum of the *unthresholded* v783 connectivity table (`2025_Connectivity_783.parquet` of
//!   the Shiu et al. model repository), as quoted by public re-analyses found with the project's search
//!   tool; not checked against the files themselves. The paper's "54.5 million synapses" agrees.
//! * With the authors' recommended ≥ 5-synapse threshold (Codex `connections.csv.gz`) the same brain has
//!   only 2,700,513 connections with 34,153,566 synapses (12.6 per connection): see
//!   [`FlyBrainConfig::thresholded_v783`]. The "≈ 15M connections, ≈ 50M synapses" is therefore
//!   the unthresholded graph; a ≥ 5 minimum per connection and ≈ 15M connections cannot both hold with
//!   ≈ 50M synapses (that would need ≥ 75M).
//! * Synapses per connection: `min + ⌊Y⌋`, `Y` lognormal with σ = 1.47 and the log-mean solved so the
//!   mean is exact. σ = 1.47 reproduces the two other numbers above — 17.9 % of the unthresholded
//!   connections have ≥ 5 synapses (2.70M / 15.09M) and those carry 12.6 synapses on average — to ±1 %
//!   (fitted here, not published).
//! * Transmitters per neuron (Eckstein et al. 2024, Cell 187:2574, predictions used by FlyWire): ACh 0.58,
//!   GABA 0.20, Glu 0.17, modulatory (DA, 5-HT, OA) 0.05. **Approximate, from memory of the FlyWire
//!   annotation tables, not verified here**; change them in the config.
//! * Signs as in the fly (and Shiu et al. 2024, Nature 634:210): ACh excitatory (nicotinic); GABA
//!   inhibitory (GABA_A / Rdl); Glu inhibitory through the glutamate-gated chloride channel GluClα (Liu &
//!   Wilson 2013, PNAS 110:10294); modulatory transmitters excitatory, as Shiu et al.'s convention
//!   (a simplification: they act through metabotropic receptors).
//!
//! **Structure** (modelling choices, not fitted to data; flagged as such in the field docs): neurons are
//! spread over 78 neuropil-like regions (the 78 neuropils of the FlyWire brain, Dorkenwald et al. 2024,
//! after Ito et al. 2014 Neuron 81:755) with Zipf-distributed sizes; each neuron has a lognormal
//! out-degree and a lognormal in-degree propensity (hubs); each connection goes to the neuron's own region
//! (probability `local_fraction`), to one of its region's `partner_regions` (`partner_fraction`) or
//! anywhere, the target drawn in proportion to its propensity, without duplicates or autapses.
//!
//! **Neurons**: `lif_exp` with the parameters of Shiu et al. (2024) (their Brian2 `model.py`, after
//! Kakaria & de Bivort 2017 Front Behav Neurosci 11:8): V_rest = V_reset = −52 mV, V_th = −45 mV,
//! τ_m = 20 ms (C_m = 2 nF, R = 10 MΩ), τ_syn = 5 ms, t_ref = 2.2 ms, delay 1.8 ms, 0.275 mV per synapse
//! in their `x` variable, which is 0.275 mV × C_m / τ_m = 27.5 pA of current jump in `iaf_psc_exp` form.
//!
//! **Matrix**: one row per presynaptic neuron, one segment (its transmitter's receptor, one delay), targets
//! sorted; weights are `count × weight_per_synapse_pa` with sign, so there are at most
//! `2 × max_synapses_per_connection` distinct values and the exact u16 table encoding applies (6 bytes per
//! connection plus row overhead). The matrix is built straight into CSR — no `Vec<Synapse>`, rows drawn in
//! batches of 4,096 and appended — and equals what [`SynapseMatrix::from_synapses`] would build from the same
//! connections (tested).
//!
//! **Determinism**: region membership (sub-stream 0, keyed by chunks of [`CHUNK`] neurons), propensities
//! (1), out-degrees (2), targets (3), synapse counts (4) and partner regions (5) each read their own
//! [`Draws`] sequence keyed by neuron or region, so the network is a pure function of the configuration and
//! the seed, whatever the number of threads.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::ops::Range;

use neurotwin_models::lif_exp::LifExpParams;
use neurotwin_models::{CounterRng, NeuronParams};
use rayon::prelude::*;

use super::sampling::{self, Draws};
use super::{BackgroundInput, EXC, GeneratedNetwork, INH, Population, VInit};
use crate::compile::CompiledNetwork;
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::{MAX_TABLE_WEIGHTS, SegmentIndex, SynapseMatrix, Weights};
use crate::network::Neuron;
use crate::share::Share;

/// Neurons per region-assignment `Draws` sequence.
const CHUNK: u32 = 4096;

/// Memory per connection while the fly brain is built (bytes): the rows' targets (4 B) and synapse counts
/// (2 B), then the CSR matrix (6 B). Measured: 224 MB peak for the whole brain's 15.1 M connections and
/// 139,255 neurons (BENCHMARKS.md).
const BYTES_PER_BUILT_CONNECTION: f64 = 12.0;

/// Parameters of the generated fly brain (defaults: FlyWire v783 whole brain, unthresholded graph; see the
/// module documentation for sources).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlyBrainConfig {
    /// Fraction of `neurons` to build (0 < scale; degrees and synapses per connection are kept, so
    /// connections and synapses scale with it). 1 = whole brain.
    pub scale: f64,
    /// Neurons of the whole brain: 139,255 (Dorkenwald et al. 2024).
    pub neurons: u32,
    /// Connections (ordered pairs with ≥ `min_synapses_per_connection` synapses) of the whole brain:
    /// 15,091,983 (v783, no threshold).
    pub connections: u64,
    /// Synapses in those connections: 54,492,922 (v783, no threshold).
    pub synapses: u64,
    /// Fewest synapses of a connection: 1 (no threshold; 5 for the Codex-thresholded graph).
    pub min_synapses_per_connection: u32,
    /// Most synapses of a connection (caps the lognormal tail and the weight table): 5000. A bound chosen
    /// here, not a measured maximum.
    pub max_synapses_per_connection: u32,
    /// σ of the lognormal part of the synapse count: 1.47 (fitted, see the module documentation).
    pub synapse_count_sigma: f64,
    /// σ of the lognormal out-degree: 1.0 (modelling choice; gives a max/mean out-degree of ≈ 50–100 at
    /// full scale).
    pub out_degree_sigma: f64,
    /// σ of the lognormal in-degree propensity: 1.0 (modelling choice, hubs).
    pub in_degree_sigma: f64,
    /// Neuropil-like regions: 78 (FlyWire brain neuropils).
    pub regions: u32,
    /// Region sizes ∝ rank^(−exponent): 1.0 (Zipf; largest region ≈ 20 % of the brain, as the optic
    /// medulla is the largest neuropil. Modelling choice).
    pub region_size_exponent: f64,
    /// Fraction of connections inside the presynaptic neuron's region: 0.6 (modelling choice).
    pub local_fraction: f64,
    /// Fraction to the region's partner regions: 0.3 (modelling choice); the rest go anywhere.
    pub partner_fraction: f64,
    /// Partner regions per region (drawn in proportion to region size): 4 (modelling choice).
    pub partner_regions: u32,
    /// Fractions of neurons by transmitter (Eckstein et al. 2024, approximate): ACh 0.58, GABA 0.20,
    /// Glu 0.17, modulatory 0.05. Must sum to 1.
    pub frac_ach: f64,
    pub frac_gaba: f64,
    pub frac_glu: f64,
    pub frac_modulatory: f64,
    /// Current jump per synapse (pA): 27.5 (Shiu et al. 2024: 0.275 mV × C_m / τ_m).
    pub weight_per_synapse_pa: f64,
    /// Synaptic delay (ms): 1.8 (Shiu et al. 2024, after Paul et al. 2015).
    pub delay_ms: f64,
    /// Independent Poisson input into every neuron, on the excitatory channel: rate (Hz) and current jump
    /// (pA). Not from data: the fly brain model of Shiu et al. has no background (it is silent without
    /// stimulation); these defaults were tuned so that 1 s of the full-scale network runs at a few Hz
    /// (BENCHMARKS.md, "Whole-fly-brain scale").
    pub background_rate_hz: f64,
    pub background_weight_pa: f64,
}

impl Default for FlyBrainConfig {
    fn default() -> Self {
        Self {
            scale: 1.0,
            neurons: 139_255,
            connections: 15_091_983,
            synapses: 54_492_922,
            min_synapses_per_connection: 1,
            max_synapses_per_connection: 5000,
            synapse_count_sigma: 1.47,
            out_degree_sigma: 1.0,
            in_degree_sigma: 1.0,
            regions: 78,
            region_size_exponent: 1.0,
            local_fraction: 0.6,
            partner_fraction: 0.3,
            partner_regions: 4,
            frac_ach: 0.58,
            frac_gaba: 0.20,
            frac_glu: 0.17,
            frac_modulatory: 0.05,
            weight_per_synapse_pa: 27.5,
            delay_ms: 1.8,
            background_rate_hz: 310.0,
            background_weight_pa: 275.0,
        }
    }
}

/// Population names in neuron order, with their receptor channel.
pub const FLY_POPULATIONS: [(&str, u8); 4] = [("ACh", EXC), ("GABA", INH), ("Glu", INH), ("Mod", EXC)];

impl FlyBrainConfig {
    /// The v783 graph at the Codex ≥ 5-synapse threshold: 2,700,513 connections, 34,153,566 synapses
    /// (public re-analyses of Codex `connections.csv.gz`, see the module documentation).
    pub fn thresholded_v783() -> Self {
        Self { connections: 2_700_513, synapses: 34_153_566, min_synapses_per_connection: 5, ..Self::default() }
    }

    /// Neurons built: `round(neurons × scale)`.
    pub fn n_neurons(&self) -> u32 {
        (self.neurons as f64 * self.scale).round() as u32
    }

    /// Target mean out-degree (connections per neuron).
    pub fn mean_out_degree(&self) -> f64 {
        self.connections as f64 / self.neurons as f64
    }

    /// Target mean synapses per connection.
    pub fn mean_synapses_per_connection(&self) -> f64 {
        self.synapses as f64 / self.connections as f64
    }

    /// Population sizes in [`FLY_POPULATIONS`] order (rounded; the last takes the remainder).
    pub fn population_sizes(&self) -> [u32; 4] {
        let n = self.n_neurons();
        let f = [self.frac_ach, self.frac_gaba, self.frac_glu];
        let mut s = [0u32; 4];
        let mut used = 0u32;
        for (k, &x) in f.iter().enumerate() {
            s[k] = ((x * n as f64).round() as u32).min(n - used);
            used += s[k];
        }
        s[3] = n - used;
        s
    }

    /// The neuron parameters (Shiu et al. 2024 as NEST `iaf_psc_exp`).
    pub fn neuron_params(&self) -> LifExpParams {
        LifExpParams {
            c_m: 2000.0,
            tau_m: 20.0,
            e_l: -52.0,
            v_th: -45.0,
            v_reset: -52.0,
            t_ref: 2.2,
            i_e: 0.0,
            tau_syn_ex: 5.0,
            tau_syn_in: 5.0,
            ..Default::default()
        }
    }

    /// Checks every field; the error names the field.
    pub fn validate(&self) -> Result<(), ConnectomeError> {
        let bad = |field: &str, v: String, want: &str| {
            Err(ConnectomeError::Compile(format!("flybrain: {field} = {v}: {want}")))
        };
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return bad("scale", self.scale.to_string(), "must be finite and > 0");
        }
        let n = self.neurons as f64 * self.scale;
        if !(n.round() >= 2.0 && n.round() <= u32::MAX as f64 / 2.0) {
            return bad("scale", self.scale.to_string(), "neurons × scale must round to 2 ..= 2^31");
        }
        if self.neurons == 0 {
            return bad("neurons", "0".into(), "must be > 0");
        }
        if self.connections == 0 {
            return bad("connections", "0".into(), "must be > 0");
        }
        if self.min_synapses_per_connection == 0 {
            return bad("min_synapses_per_connection", "0".into(), "must be >= 1");
        }
        let max_table = (MAX_TABLE_WEIGHTS / 2) as u32;
        if self.max_synapses_per_connection < self.min_synapses_per_connection
            || self.max_synapses_per_connection > max_table
        {
            return bad(
                "max_synapses_per_connection",
                self.max_synapses_per_connection.to_string(),
                &format!("must lie in min_synapses_per_connection ..= {max_table}"),
            );
        }
        let mean = self.mean_synapses_per_connection();
        if !(mean > self.min_synapses_per_connection as f64 && mean < self.max_synapses_per_connection as f64) {
            return bad(
                "synapses",
                self.synapses.to_string(),
                &format!(
                    "synapses / connections = {mean:.3} must lie strictly between min_synapses_per_connection \
                     and max_synapses_per_connection"
                ),
            );
        }
        if self.mean_out_degree() >= n.round() - 1.0 {
            return bad(
                "connections",
                self.connections.to_string(),
                "mean out-degree (connections / neurons) must be below the number of neurons built − 1",
            );
        }
        for (field, v) in [
            ("synapse_count_sigma", self.synapse_count_sigma),
            ("out_degree_sigma", self.out_degree_sigma),
            ("in_degree_sigma", self.in_degree_sigma),
            ("region_size_exponent", self.region_size_exponent),
            ("background_rate_hz", self.background_rate_hz),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, v.to_string(), "must be finite and >= 0");
            }
        }
        if self.synapse_count_sigma == 0.0 {
            return bad("synapse_count_sigma", "0".into(), "must be > 0");
        }
        if self.regions == 0 || self.regions > u16::MAX as u32 {
            return bad("regions", self.regions.to_string(), "must lie in 1..=65535");
        }
        for (field, v) in [("local_fraction", self.local_fraction), ("partner_fraction", self.partner_fraction)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, v.to_string(), "must lie in [0, 1]");
            }
        }
        if self.local_fraction + self.partner_fraction > 1.0 + 1e-12 {
            return bad("partner_fraction", self.partner_fraction.to_string(), "local + partner fraction must be <= 1");
        }
        if self.partner_fraction > 0.0 && (self.partner_regions == 0 || self.partner_regions >= self.regions) {
            return bad(
                "partner_regions",
                self.partner_regions.to_string(),
                "must lie in 1..regions when partner_fraction > 0",
            );
        }
        let fr = [
            ("frac_ach", self.frac_ach),
            ("frac_gaba", self.frac_gaba),
            ("frac_glu", self.frac_glu),
            ("frac_modulatory", self.frac_modulatory),
        ];
        for (field, v) in fr {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return bad(field, v.to_string(), "must lie in [0, 1]");
            }
        }
        let sum: f64 = fr.iter().map(|f| f.1).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return bad("frac_modulatory", self.frac_modulatory.to_string(), "transmitter fractions must sum to 1");
        }
        for (field, v) in
            [("weight_per_synapse_pa", self.weight_per_synapse_pa), ("background_weight_pa", self.background_weight_pa)]
        {
            if !v.is_finite() {
                return bad(field, v.to_string(), "must be finite");
            }
        }
        let w = self.weight_per_synapse_pa * self.max_synapses_per_connection as f64;
        if w.abs() > f32::MAX as f64 / 2.0 {
            return bad("weight_per_synapse_pa", self.weight_per_synapse_pa.to_string(), "too large for f32");
        }
        Ok(())
    }
}

/// Complementary error function (Numerical Recipes `erfcc`, Chebyshev fit, fractional error < 1.2e-7);
/// used only to calibrate the synapse-count distribution.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// Mean of `min + ⌊Y⌋` capped at `max`, `Y` lognormal(`mu`, `sigma`): `min + Σ_{k=1}^{max−min} P(Y ≥ k)`.
fn count_mean(mu: f64, sigma: f64, min: u32, max: u32) -> f64 {
    let tail = |k: u32| 0.5 * erfc(((k as f64).ln() - mu) / (sigma * std::f64::consts::SQRT_2));
    min as f64 + (1..=max - min).map(tail).sum::<f64>()
}

/// The log-mean `mu` giving mean synapse count `target` (bisection; the mean increases with `mu`).
fn solve_count_mu(target: f64, sigma: f64, min: u32, max: u32) -> f64 {
    let (mut lo, mut hi) = (-30.0, (max as f64).ln() + 10.0 * sigma);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if count_mean(mid, sigma, min, max) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// One region: its member neurons (ascending) and their cumulative propensities.
struct Region {
    members: Vec<u32>,
    cum: Vec<f64>,
}

impl Region {
    /// A member drawn in proportion to its propensity (`None` for an empty region).
    fn pick(&self, d: &mut Draws) -> Option<u32> {
        let total = *self.cum.last()?;
        let x = d.uniform() * total;
        let i = self.cum.partition_point(|&c| c <= x).min(self.members.len() - 1);
        Some(self.members[i])
    }
}

/// Builds the generated fly brain for time step `dt_ms`.
pub fn flybrain(cfg: &FlyBrainConfig, seed: u64, dt_ms: f64) -> Result<GeneratedNetwork, ConnectomeError> {
    flybrain_part(cfg, seed, dt_ms, &Share::WHOLE)
}

/// [`flybrain`] for one process of a split run: only the connections onto `share`'s targets. Every row is
/// still drawn in full (its targets come from one sequence), so each process spends the whole network's
/// generation time but holds only its share.
pub fn flybrain_part(
    cfg: &FlyBrainConfig,
    seed: u64,
    dt_ms: f64,
    share: &Share,
) -> Result<GeneratedNetwork, ConnectomeError> {
    super::check_dt(dt_ms)?;
    cfg.validate()?;
    let delay = super::delay_steps(cfg.delay_ms, dt_ms)?;
    let n = cfg.n_neurons();
    super::check_memory(
        &format!("the generated fly brain with scale = {} and neurons = {}", cfg.scale, cfg.neurons),
        n as f64,
        n as f64 * cfg.mean_out_degree() / share.size() as f64,
        BYTES_PER_BUILT_CONNECTION,
        "lower the generator's `scale` (1 = the whole brain) or `connections`",
    )?;
    let sizes = cfg.population_sizes();
    let ranges = super::ranges(&sizes)?;
    let root = sampling::root(seed);
    let layout = Layout::draw(cfg, n, root);
    let keep = share.targets(n);
    let receptor_of: Vec<u8> = (0..n).map(|i| FLY_POPULATIONS[pop_of(&ranges, i)].1).collect();
    let chemical = build_matrix(cfg, &layout, root, keep.clone(), &receptor_of, delay);
    debug_assert_eq!(chemical.check(), Ok(()));
    let neurons = fly_neurons(sizes, &ranges, &layout.region_of);
    let mut network = compile(cfg, seed, dt_ms, neurons, chemical);
    network.held_targets = (!share.is_whole()).then_some(keep);
    let (populations, background) = populations(cfg, ranges);
    Ok(GeneratedNetwork { network, populations, background, expected_rate_hz: None })
}

/// Index in [`FLY_POPULATIONS`] of neuron `i`.
fn pop_of(ranges: &[Range<u32>], i: u32) -> usize {
    ranges.iter().position(|r| r.contains(&i)).expect("ranges tile 0..n")
}

/// The index drawn from cumulative weights `cum` by the uniform deviate `u`.
fn pick_cum(cum: &[f64], u: f64) -> usize {
    cum.partition_point(|&c| c <= u * cum[cum.len() - 1]).min(cum.len() - 1)
}

/// The regions every row draws its targets from (module documentation, **Structure**).
struct Layout {
    /// Region of each neuron.
    region_of: Vec<u16>,
    /// Each region's members with their cumulative in-degree propensities.
    regions: Vec<Region>,
    /// All neurons as one region (targets "anywhere").
    everyone: Region,
    /// Each region's partner regions, `n_part` of them.
    partners: Vec<Vec<u16>>,
    /// Partner regions per region: `partner_regions`, or 0 when `partner_fraction` is 0.
    n_part: usize,
}

impl Layout {
    /// Draws the regions of `n` neurons.
    fn draw(cfg: &FlyBrainConfig, n: u32, root: CounterRng) -> Self {
        let reg_cum = region_cum(cfg);
        let region_of = assign_regions(&reg_cum, n, root);
        let (regions, everyone) = propensity_regions(cfg, &region_of, root);
        let n_part = if cfg.partner_fraction > 0.0 { cfg.partner_regions as usize } else { 0 };
        let partners = partner_regions(&reg_cum, n_part, root);
        Self { region_of, regions, everyone, partners, n_part }
    }
}

/// Cumulative region weights: region sizes ∝ rank^-a.
fn region_cum(cfg: &FlyBrainConfig) -> Vec<f64> {
    let reg_w: Vec<f64> = (0..cfg.regions as usize).map(|r| ((r + 1) as f64).powf(-cfg.region_size_exponent)).collect();
    reg_w
        .iter()
        .scan(0.0, |s, &w| {
            *s += w;
            Some(*s)
        })
        .collect()
}

/// Region membership, drawn per neuron (chunks of [`CHUNK`] neurons per sequence).
fn assign_regions(reg_cum: &[f64], n: u32, root: CounterRng) -> Vec<u16> {
    (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .flat_map_iter(|c| {
            let mut d = Draws::new(root, 0, c);
            let len = (n - c * CHUNK).min(CHUNK);
            (0..len).map(|_| pick_cum(reg_cum, d.uniform()) as u16).collect::<Vec<_>>()
        })
        .collect()
}

/// In-degree propensities: lognormal with mean 1. Returns each region and the whole network as a region.
fn propensity_regions(cfg: &FlyBrainConfig, region_of: &[u16], root: CounterRng) -> (Vec<Region>, Region) {
    let n = region_of.len() as u32;
    let sig_in = cfg.in_degree_sigma;
    let propensity: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| (sig_in * Draws::new(root, 1, i).normal() - 0.5 * sig_in * sig_in).exp())
        .collect();
    let mut regions: Vec<Region> =
        (0..cfg.regions as usize).map(|_| Region { members: Vec::new(), cum: Vec::new() }).collect();
    for i in 0..n {
        let r = &mut regions[region_of[i as usize] as usize];
        let prev = r.cum.last().copied().unwrap_or(0.0);
        r.members.push(i);
        r.cum.push(prev + propensity[i as usize]);
    }
    let everyone = Region {
        members: (0..n).collect(),
        cum: propensity
            .iter()
            .scan(0.0, |s, &p| {
                *s += p;
                Some(*s)
            })
            .collect(),
    };
    (regions, everyone)
}

/// Partner regions, drawn in proportion to region size, distinct and != the region itself.
fn partner_regions(reg_cum: &[f64], n_part: usize, root: CounterRng) -> Vec<Vec<u16>> {
    (0..reg_cum.len())
        .map(|r| {
            let mut d = Draws::new(root, 5, r as u32);
            let mut p: Vec<u16> = Vec::with_capacity(n_part);
            while p.len() < n_part {
                let q = pick_cum(reg_cum, d.uniform()) as u16;
                if q as usize != r && !p.contains(&q) {
                    p.push(q);
                }
            }
            p
        })
        .collect()
}

/// One presynaptic neuron's targets (ascending) and their synapse counts.
type Row = (Vec<u32>, Vec<u16>);

/// The distributions the rows are drawn from.
struct RowLaw {
    /// Log-mean and σ of the lognormal out-degree.
    mu_out: f64,
    sig_out: f64,
    /// Log-mean and σ of the lognormal part of the synapse count.
    mu_cnt: f64,
    sig_cnt: f64,
    /// Fewest and most synapses of a connection.
    cmin: u32,
    cmax: u32,
    /// Probabilities of a target in the neuron's own region and in a partner region.
    p_local: f64,
    p_partner: f64,
}

impl RowLaw {
    fn new(cfg: &FlyBrainConfig) -> Self {
        let sig_out = cfg.out_degree_sigma;
        let (cmin, cmax) = (cfg.min_synapses_per_connection, cfg.max_synapses_per_connection);
        Self {
            mu_out: cfg.mean_out_degree().ln() - 0.5 * sig_out * sig_out,
            sig_out,
            mu_cnt: solve_count_mu(cfg.mean_synapses_per_connection(), cfg.synapse_count_sigma, cmin, cmax),
            sig_cnt: cfg.synapse_count_sigma,
            cmin,
            cmax,
            p_local: cfg.local_fraction,
            p_partner: cfg.partner_fraction,
        }
    }
}

/// Rows `rows` (out-degree, targets, synapse counts), drawn in parallel; only the connections onto targets in
/// `keep`.
fn draw_rows(law: &RowLaw, layout: &Layout, rows: Range<u32>, root: CounterRng, keep: &Range<u32>) -> Vec<Row> {
    let n = layout.region_of.len() as u32;
    rows.into_par_iter()
        .map_init(
            || (HashSet::new(), Vec::new()),
            |(chosen, targets): &mut (HashSet<u32>, Vec<u32>), pre| {
                draw_targets(law, layout, n, root, pre, chosen, targets);
                // Targets ascend: the kept ones are one run; their counts are drawn in the row's sequence.
                let (a, b) = (targets.partition_point(|&t| t < keep.start), targets.partition_point(|&t| t < keep.end));
                (targets[a..b].to_vec(), draw_counts(law, root, pre, a..b))
            },
        )
        .collect()
}

/// The targets of `pre` (ascending): a lognormal out-degree, each target in the own region, a partner
/// region or anywhere, in proportion to its propensity, without duplicates or autapses.
/// Written into `targets`; `chosen` is scratch (both reused across rows: no allocation per row).
fn draw_targets(
    law: &RowLaw,
    layout: &Layout,
    n: u32,
    root: CounterRng,
    pre: u32,
    chosen: &mut HashSet<u32>,
    targets: &mut Vec<u32>,
) {
    let k = ((law.mu_out + law.sig_out * Draws::new(root, 2, pre).normal()).exp().round() as u64).clamp(1, n as u64 - 1)
        as usize;
    let mut d = Draws::new(root, 3, pre);
    let home = layout.region_of[pre as usize] as usize;
    chosen.clear();
    chosen.reserve(2 * k);
    let mut attempts = 0usize;
    let limit = 64 * k + 1024;
    while chosen.len() < k && attempts < limit {
        attempts += 1;
        let u = d.uniform();
        let region = if u < law.p_local {
            &layout.regions[home]
        } else if u < law.p_local + law.p_partner {
            &layout.regions[layout.partners[home][d.below(layout.n_part as u32) as usize] as usize]
        } else {
            &layout.everyone
        };
        if let Some(t) = region.pick(&mut d)
            && t != pre
        {
            chosen.insert(t);
        }
    }
    // Saturated (tiny networks only): fill from a random offset, skipping chosen neurons and `pre`.
    let mut t = d.below(n);
    while chosen.len() < k {
        if t != pre {
            chosen.insert(t);
        }
        t = if t + 1 == n { 0 } else { t + 1 };
    }
    targets.clear();
    targets.extend(chosen.iter().copied());
    targets.sort_unstable();
}

/// The synapse counts of `pre`'s connections `kept` (of its ascending targets): `cmin + ⌊Y⌋` capped at `cmax`, `Y`
/// lognormal, drawn in the row's sequence.
fn draw_counts(law: &RowLaw, root: CounterRng, pre: u32, kept: Range<usize>) -> Vec<u16> {
    let mut dc = Draws::new(root, 4, pre);
    let mut count = || {
        let y = (law.mu_cnt + law.sig_cnt * dc.normal()).exp().floor();
        (law.cmin as f64 + y).min(law.cmax as f64) as u16
    };
    // The connections before the kept ones still advance the row's sequence.
    (0..kept.start).for_each(|_| {
        count();
    });
    kept.map(|_| count()).collect()
}

/// The signed weight (pA) of a connection of `count` synapses on `receptor`.
fn weight_of(cfg: &FlyBrainConfig, receptor: u8, count: u16) -> f32 {
    let w = count as f64 * cfg.weight_per_synapse_pa;
    (if receptor == INH { -w } else { w }) as f32
}

/// Rows drawn at once while the matrix is built (module documentation, **Matrix**): peak memory is the matrix
/// (4-byte target and 2-byte synapse count per connection, then the weight index) plus one batch of rows.
const ROW_BATCH: u32 = 4096;

/// The CSR matrix of every row's connections onto `keep`, `receptor_of` each presynaptic neuron, all with `delay`
/// steps (module documentation, **Matrix**): rows are drawn in batches and appended, one segment per non-empty
/// row; weights are a table over the distinct (count, receptor) weights when it fits, else dense.
fn build_matrix(
    cfg: &FlyBrainConfig,
    layout: &Layout,
    root: CounterRng,
    keep: Range<u32>,
    receptor_of: &[u8],
    delay: u16,
) -> SynapseMatrix {
    let n = receptor_of.len() as u32;
    let law = RowLaw::new(cfg);
    let (mut targets, mut counts): (Vec<u32>, Vec<u16>) = (Vec::new(), Vec::new());
    let mut index = SegmentIndex::new(n);
    for first in (0..n).step_by(ROW_BATCH as usize) {
        let rows = draw_rows(&law, layout, first..n.min(first + ROW_BATCH), root, &keep);
        for (k, (t, c)) in rows.into_iter().enumerate() {
            if !t.is_empty() {
                targets.extend_from_slice(&t);
                counts.extend_from_slice(&c);
                index.push_segment(receptor_of[first as usize + k], delay, t.len() as u64);
            }
            // At most one segment per row: never more than 2^32.
            index.end_row().expect("at most one segment per row");
        }
    }
    targets.shrink_to_fit();
    let weights = encode_weights(cfg, index.starts(), index.receptors(), counts);
    index.into_matrix(n, n, targets, weights)
}

/// The weights of connections with synapse `counts` (in matrix order, segment `s` on `segment_receptor[s]`): a
/// table over the distinct weights in `SynapseMatrix::from_synapses` order (sorted by bit pattern) when it fits,
/// else dense.
fn encode_weights(cfg: &FlyBrainConfig, segment_start: &[u64], segment_receptor: &[u8], counts: Vec<u16>) -> Weights {
    let segments = || {
        segment_receptor.iter().enumerate().map(|(s, &r)| (r, segment_start[s] as usize..segment_start[s + 1] as usize))
    };
    let mut seen = vec![[false; 2]; cfg.max_synapses_per_connection as usize + 1];
    for (r, range) in segments() {
        for &x in &counts[range] {
            seen[x as usize][(r == INH) as usize] = true;
        }
    }
    let mut distinct: Vec<u32> = Vec::new();
    for (count, s) in seen.iter().enumerate() {
        for (rc, &on) in s.iter().enumerate() {
            if on {
                distinct.push(weight_of(cfg, if rc == 1 { INH } else { EXC }, count as u16).to_bits());
            }
        }
    }
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= MAX_TABLE_WEIGHTS {
        let mut index = vec![0u16; counts.len()];
        for (r, range) in segments() {
            for (i, &x) in index[range.clone()].iter_mut().zip(&counts[range]) {
                *i = distinct.binary_search(&weight_of(cfg, r, x).to_bits()).expect("weight in the table") as u16;
            }
        }
        Weights::Table { values: distinct.into_iter().map(f32::from_bits).collect(), index }
    } else {
        let mut w = vec![0f32; counts.len()];
        for (r, range) in segments() {
            for (y, &x) in w[range.clone()].iter_mut().zip(&counts[range]) {
                *y = weight_of(cfg, r, x);
            }
        }
        Weights::Dense(w)
    }
}

/// The neurons (populations of `sizes`, neuron order) with their transmitter and region `R00`, `R01`, ….
fn fly_neurons(sizes: [u32; 4], ranges: &[Range<u32>], region_of: &[u16]) -> Vec<Neuron> {
    let names: Vec<(&str, u32)> = FLY_POPULATIONS.iter().zip(sizes).map(|((name, _), s)| (*name, s)).collect();
    let mut neurons = super::make_neurons(&names);
    let transmitter = ["ACh", "GABA", "Glu", "modulatory"];
    for (i, neuron) in neurons.iter_mut().enumerate() {
        neuron.transmitter = Some(transmitter[pop_of(ranges, i as u32)].into());
        neuron.region = Some(format!("R{:02}", region_of[i]));
    }
    neurons
}

/// The compiled network, with its provenance (sources, generator, scale and `seed`), for time step `dt_ms`.
fn compile(
    cfg: &FlyBrainConfig,
    seed: u64,
    dt_ms: f64,
    neurons: Vec<Neuron>,
    chemical: SynapseMatrix,
) -> CompiledNetwork {
    let n = chemical.n_pre;
    CompiledNetwork::from_parts(
        format!("flybrain-scale{}", cfg.scale),
        vec![
            "Dorkenwald et al. 2024 Nature 634:124 (FlyWire v783: 139,255 neurons, 15.09M connections, 54.49M \
             synapses unthresholded); Eckstein et al. 2024 Cell 187:2574 (transmitters); Shiu et al. 2024 Nature \
             634:210 (neuron model)"
                .into(),
            format!(
                "neurotwin generator (connectome/src/generators/flybrain.rs): synthetic graph with these statistics, \
                 scale {}, seed {seed}",
                cfg.scale
            ),
        ],
        neurons,
        super::exc_inh_receptors(),
        chemical,
        GapMatrix::empty(n),
        dt_ms,
    )
}

/// The populations (Shiu et al. neuron parameters, V uniform in the −52 … −45 mV range) and their
/// background Poisson input, none when its rate or weight is 0.
fn populations(cfg: &FlyBrainConfig, ranges: Vec<Range<u32>>) -> (Vec<Population>, Vec<BackgroundInput>) {
    let params = NeuronParams::LifExp(cfg.neuron_params());
    let v_init = VInit::Uniform { lo: -52.0, hi: -45.0 };
    let populations: Vec<Population> = FLY_POPULATIONS
        .iter()
        .zip(ranges)
        .map(|((name, _), range)| Population {
            name: name.to_string(),
            range,
            params: params.clone(),
            v_init: v_init.clone(),
        })
        .collect();
    let background = if cfg.background_rate_hz > 0.0 && cfg.background_weight_pa != 0.0 {
        (0..populations.len())
            .filter(|&p| !populations[p].is_empty())
            .map(|population| BackgroundInput::Poisson {
                population,
                rate_hz: cfg.background_rate_hz,
                weight: cfg.background_weight_pa,
                receptor: "exc".into(),
            })
            .collect()
    } else {
        Vec::new()
    };
    (populations, background)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_calibration_hits_the_mean_and_the_v783_threshold_statistics() {
        let c = FlyBrainConfig::default();
        let mu = solve_count_mu(c.mean_synapses_per_connection(), 1.47, 1, 5000);
        assert!((count_mean(mu, 1.47, 1, 5000) - 3.6107).abs() < 1e-3);
        // P(count >= 5) = P(Y >= 4): 2,700,513 / 15,091,983 = 0.179 in v783.
        let p5 = 0.5 * erfc((4f64.ln() - mu) / (1.47 * std::f64::consts::SQRT_2));
        assert!((p5 - 0.179).abs() < 0.005, "{p5}");
        assert!((erfc(0.5) - 0.479_500_122).abs() < 1e-7 && (erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
    }
}
