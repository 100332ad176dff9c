//! Conformance of the host-compiled Izhikevich, AdEx, graded and lif_cond_exp kernels (`cuda/izhikevich.cu`,
//! `cuda/adex.cu`, `cuda/graded.cu`, `cuda/lif_cond_exp.cu`) with `CompiledModel::update_block` of `neurotwin-models`: every state
//! value, spike flag and activity output is compared bit for bit after every step.

use neurotwin_kernels::host::{self, AdexTable, GradedTable, IzhikevichTable, LANES, LifCondExpTable, LifExpStepInput};
use neurotwin_models::adex::{self, AdexParams};
use neurotwin_models::graded::{self, GradedParams};
use neurotwin_models::izhikevich::{self, IzhikevichParams};
use neurotwin_models::lif_cond_exp::{self, LifCondExpParams};
use neurotwin_models::{BlockInput, BlockOutput, CompiledModel, CounterRng, GapInput, ReceptorChannel, Stream};

const N_NEURONS: usize = 500; // 7 full blocks and one of 52 lanes
const STEPS: u64 = 2000;
const DT_MS: f64 = 0.1;

fn channels() -> Vec<ReceptorChannel> {
    neurotwin_models::testing::exc_inh_channels()
}

/// Scales of the random per-step drive of one model.
struct DriveScale {
    /// External current is uniform in [ext_lo, ext_lo + ext_span).
    ext_lo: f64,
    ext_span: f64,
    /// Largest synaptic event per channel (excitatory positive, inhibitory negative).
    exc: f64,
    inh: f64,
    /// Gap coupling (graded models): Σ g per neuron uniform in [0, gap_g_max) nS (0 on ~30 % of the neurons),
    /// Σ g V = Σ g times a partner potential uniform in [-70, -20) mV; `None`: no gap junctions.
    gap_g_max: Option<f64>,
}

/// Random gap coupling of one step (`scale.gap_g_max`), a pure function of (neuron, step).
fn fill_gap(rng: &CounterRng, g_max: f64, step: u64, gap_g: &mut [f64], gap_gv: &mut [f64]) {
    for (i, (g, gv)) in gap_g.iter_mut().zip(gap_gv.iter_mut()).enumerate() {
        let [u0, u1] = rng.uniform2(i as u32, step, 2);
        *g = if u0 < 0.3 { 0.0 } else { g_max * u0 };
        *gv = *g * (-70.0 + 50.0 * u1);
    }
}

/// Random per-step drive, a pure function of (neuron, step) through the counter RNG: sparse synaptic events
/// on both channels, an external current and ~0.2 % forced spikes.
fn fill(
    rng: &CounterRng,
    s: &DriveScale,
    n_ch: usize,
    step: u64,
    syn: &mut [f64],
    i_ext: &mut [f64],
    forced: &mut [u64],
) {
    forced.fill(0);
    for (i, ext) in i_ext.iter_mut().enumerate() {
        let (b, l) = (i / LANES, i % LANES);
        let [u0, u1] = rng.uniform2(i as u32, step, 0);
        let [u2, u3] = rng.uniform2(i as u32, step, 1);
        *ext = s.ext_lo + s.ext_span * u0;
        if u1 < 0.002 {
            forced[b] |= 1 << l;
        }
        let exc = if u2 < 0.3 { s.exc * u2 / 0.3 } else { 0.0 };
        let inh = if u3 < 0.2 { -s.inh * u3 / 0.2 } else { 0.0 };
        for (c, v) in [exc, inh].into_iter().enumerate().take(n_ch) {
            syn[(b * n_ch + c) * LANES + l] = v;
        }
    }
}

/// Outcome of running a kernel and the Rust reference side by side.
#[derive(Debug, Default)]
struct Comparison {
    /// (step, neuron, what) of the first difference, if any.
    first_mismatch: Option<(u64, usize, String)>,
    mismatched_steps: u64,
    reference_spikes: u64,
    forced_spikes: u64,
    /// Activity outputs in (0.01, 0.99) (graded).
    graded_activity: u64,
}

/// Kernel under test: advances all neurons one step (with the gap coupling `(Σ g, Σ g V)` per neuron, if any),
/// writes spike flags and activity (1.0 per spike for the spiking models).
type Kernel<'a> = dyn FnMut(&mut [f64], &LifExpStepInput, Gap, &mut [u8], &mut [f64]) + 'a;

/// The gap coupling of a step, `(Σ g, Σ g V)` per neuron, as [`host::graded_update`] takes it.
type Gap<'a> = Option<(&'a [f64], &'a [f64])>;

/// Runs `kernel` and `model.update_block` from the same initial state (`init(neuron, set, rng)` returns one
/// value per state variable) with the same inputs for STEPS steps, comparing everything after every step.
fn compare(
    model: &CompiledModel,
    init: &dyn Fn(u32, usize, &CounterRng) -> Vec<f64>,
    scale: &DriveScale,
    kernel: &mut Kernel,
) -> Comparison {
    let n_ch = channels().len();
    let n_state = model.n_state();
    let n_blocks = N_NEURONS.div_ceil(LANES);
    let init_rng = CounterRng::new(11, Stream::InitialState);
    // Every third block has one parameter set (the models' whole-block paths), the others a random mix.
    let param_set: Vec<u16> = (0..N_NEURONS as u32)
        .map(|i| match (i as usize / LANES) % 3 {
            0 => ((i as usize / LANES / 3) % 2) as u16,
            _ => (init_rng.uniform(i, 0, 0) < 0.4) as u16,
        })
        .collect();
    let mut state = vec![0.0; n_blocks * n_state * LANES];
    for (i, &set) in param_set.iter().enumerate() {
        let (b, l) = (i / LANES, i % LANES);
        let values = init(i as u32, usize::from(set), &init_rng);
        assert_eq!(values.len(), n_state);
        for (v, x) in values.into_iter().enumerate() {
            state[(b * n_state + v) * LANES + l] = x;
        }
    }
    let mut gpu_state = state.clone();
    let mut cpu_state = state;
    let rng = CounterRng::new(5, Stream::PoissonInput);
    let mut syn = vec![0.0; n_blocks * n_ch * LANES];
    let mut i_ext = vec![0.0; N_NEURONS];
    let mut forced = vec![0u64; n_blocks];
    let mut spiked = vec![0u8; N_NEURONS];
    let mut activity = vec![0.0; N_NEURONS];
    let mut lane_ext = [0.0; LANES];
    let (mut gap_g, mut gap_gv) = (vec![0.0; N_NEURONS], vec![0.0; N_NEURONS]);
    let (mut lane_g, mut lane_gv) = ([0.0; LANES], [0.0; LANES]);
    let names = model.state_names();
    let spiking = model.is_spiking();
    let mut result = Comparison::default();
    for step in 0..STEPS {
        fill(&rng, scale, n_ch, step, &mut syn, &mut i_ext, &mut forced);
        if let Some(g_max) = scale.gap_g_max {
            fill_gap(&rng, g_max, step, &mut gap_g, &mut gap_gv);
        }
        let input = LifExpStepInput { param_set: &param_set, syn: &syn, i_ext: &i_ext, forced: &forced };
        let gap = scale.gap_g_max.map(|_| (&gap_g[..], &gap_gv[..]));
        kernel(&mut gpu_state, &input, gap, &mut spiked, &mut activity);
        let mut step_differs = false;
        for b in 0..n_blocks {
            let n = (N_NEURONS - b * LANES).min(LANES);
            lane_ext.fill(0.0);
            lane_ext[..n].copy_from_slice(&i_ext[b * LANES..b * LANES + n]);
            lane_g.fill(0.0);
            lane_gv.fill(0.0);
            lane_g[..n].copy_from_slice(&gap_g[b * LANES..b * LANES + n]);
            lane_gv[..n].copy_from_slice(&gap_gv[b * LANES..b * LANES + n]);
            let block_input = BlockInput {
                n,
                param_set: &param_set[b * LANES..b * LANES + n],
                syn: &syn[b * n_ch * LANES..(b + 1) * n_ch * LANES],
                i_ext: &lane_ext,
                forced: forced[b],
                gap: scale.gap_g_max.map(|_| GapInput { g: &lane_g, gv: &lane_gv }),
            };
            let mut out = BlockOutput::default();
            let block = b * n_state * LANES..(b + 1) * n_state * LANES;
            model.update_block(&mut cpu_state[block.clone()], &block_input, &mut out);
            result.reference_spikes += u64::from(out.spikes.count_ones());
            if spiking {
                result.forced_spikes += u64::from(forced[b].count_ones());
            }
            for l in 0..n {
                let i = b * LANES + l;
                let mut differs = None;
                if spiking && u64::from(spiked[i]) != (out.spikes >> l) & 1 {
                    differs = Some(format!("spike: {} (kernel) vs {} (rust)", spiked[i], (out.spikes >> l) & 1));
                }
                if !spiking {
                    if activity[i].to_bits() != out.activity[l].to_bits() {
                        differs = Some(format!("activity: {} (kernel) vs {} (rust)", activity[i], out.activity[l]));
                    }
                    if out.activity[l] > 0.01 && out.activity[l] < 0.99 {
                        result.graded_activity += 1;
                    }
                }
                for (v, name) in names.iter().enumerate() {
                    let k = block.start + v * LANES + l;
                    if gpu_state[k].to_bits() != cpu_state[k].to_bits() && differs.is_none() {
                        differs = Some(format!("{name}: {} (kernel) vs {} (rust)", gpu_state[k], cpu_state[k]));
                    }
                }
                if let Some(what) = differs {
                    step_differs = true;
                    result.first_mismatch.get_or_insert((step, i, what));
                }
            }
            // Lanes past the end of the last block must be untouched by both.
            for v in 0..n_state {
                for l in n..LANES {
                    let k = block.start + v * LANES + l;
                    assert_eq!(gpu_state[k].to_bits(), cpu_state[k].to_bits(), "padding lane {l} var {v}");
                }
            }
        }
        result.mismatched_steps += u64::from(step_differs);
    }
    result
}

fn assert_identical(name: &str, r: &Comparison) {
    eprintln!(
        "{name}: {} spikes ({} forced), {} graded activity values, {} mismatched steps",
        r.reference_spikes, r.forced_spikes, r.graded_activity, r.mismatched_steps
    );
    assert_eq!(
        r.first_mismatch, None,
        "{name}: first mismatch (step, neuron, what); {} steps differ",
        r.mismatched_steps
    );
}

/// Izhikevich: RS defaults (one Euler substep per step) and a second set differing in every constant (three
/// substeps per step), random voltage jumps, external current and forced spikes.
#[test]
fn izhikevich_kernel_matches_cpu_bit_for_bit() {
    let a = IzhikevichParams::default();
    let b = IzhikevichParams { a: 0.1, b: 0.25, c: -55.0, d: 2.0, v_peak: 25.0, i_e: 3.0, max_substep: 0.04 };
    let sets: Vec<izhikevich::Compiled> =
        [a, b].iter().map(|p| izhikevich::compile(p, &channels(), DT_MS).unwrap()).collect();
    assert_eq!((sets[0].n_sub, sets[1].n_sub), (1, 3));
    let t = IzhikevichTable::from_compiled(channels().len(), &sets);
    let model = CompiledModel::Izhikevich(sets.clone());
    let init = |i: u32, set: usize, rng: &CounterRng| {
        let c = &sets[set];
        let v = -75.0 + 30.0 * rng.uniform(i, 1, 0);
        vec![v, c.b * v + 4.0 * (rng.uniform(i, 2, 0) - 0.5)]
    };
    let scale = DriveScale { ext_lo: -5.0, ext_span: 30.0, exc: 8.0, inh: 8.0, gap_g_max: None };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
        host::izhikevich_update(&t, st, input, spiked)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical("izhikevich", &r);
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// AdEx: Brette & Gerstner defaults (four Heun substeps, no refractory period) and a second set differing in
/// every constant (two substeps, refractory), random synaptic currents, external current and forced spikes.
#[test]
fn adex_kernel_matches_cpu_bit_for_bit() {
    let a = AdexParams::default();
    let b = AdexParams {
        c_m: 200.0,
        g_l: 10.0,
        e_l: -65.0,
        v_th: -52.0,
        delta_t: 1.5,
        tau_w: 100.0,
        a: 2.0,
        b: 40.0,
        v_reset: -60.0,
        v_peak: 10.0,
        t_ref: 0.5,
        i_e: 150.0,
        tau_syn_ex: 1.0,
        tau_syn_in: 4.0,
        max_substep: 0.05,
        ..Default::default()
    };
    let sets: Vec<adex::Compiled> = [a, b].iter().map(|p| adex::compile(p, &channels(), DT_MS).unwrap()).collect();
    assert_eq!((sets[0].n_sub, sets[1].n_sub), (4, 2));
    let t = AdexTable::from_compiled(channels().len(), &sets);
    let model = CompiledModel::Adex(sets.clone());
    let init = |i: u32, set: usize, rng: &CounterRng| {
        let c = &sets[set];
        let mut v = vec![
            c.e_l - 5.0 + (c.v_th + 5.0 - c.e_l) * rng.uniform(i, 1, 0),
            100.0 * rng.uniform(i, 2, 0),
            (rng.uniform(i, 3, 0) * 3.0).floor(),
        ];
        v.extend((0..c.decay_sub.len() as u32).map(|ch| 100.0 * (rng.uniform(i, 4, ch) - 0.5)));
        v
    };
    let scale = DriveScale { ext_lo: 300.0, ext_span: 1700.0, exc: 600.0, inh: 300.0, gap_g_max: None };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
        host::adex_update(&t, st, input, spiked)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical("adex", &r);
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// AdEx with conductance synapses (NEST `aeif_cond_exp`): two conductance sets differing in every constant
/// (one with a reversal override), random conductance events (signed: the magnitude counts), external current
/// and forced spikes.
#[test]
fn adex_conductance_kernel_matches_cpu_bit_for_bit() {
    use neurotwin_models::adex::SynapseType;
    let a = AdexParams { synapses: SynapseType::Conductance, ..Default::default() };
    let b = AdexParams {
        c_m: 200.0,
        g_l: 10.0,
        e_l: -65.0,
        v_th: -52.0,
        delta_t: 1.5,
        tau_w: 100.0,
        a: 2.0,
        b: 40.0,
        v_reset: -60.0,
        t_ref: 0.5,
        i_e: 150.0,
        tau_syn_ex: 3.0,
        tau_syn_in: 6.0,
        max_substep: 0.05,
        synapses: SynapseType::Conductance,
        e_ex: 5.0,
        e_rev: [("inh".to_string(), -75.0)].into(),
        ..Default::default()
    };
    let sets: Vec<adex::Compiled> = [a, b].iter().map(|p| adex::compile(p, &channels(), DT_MS).unwrap()).collect();
    assert!(sets.iter().all(|c| c.e_rev.is_some()));
    let t = AdexTable::from_compiled(channels().len(), &sets);
    assert_eq!(t.conductance, vec![1, 1]);
    let model = CompiledModel::Adex(sets.clone());
    let init = |i: u32, set: usize, rng: &CounterRng| {
        let c = &sets[set];
        let mut v = vec![
            c.e_l - 5.0 + (c.v_th + 5.0 - c.e_l) * rng.uniform(i, 1, 0),
            100.0 * rng.uniform(i, 2, 0),
            (rng.uniform(i, 3, 0) * 3.0).floor(),
        ];
        v.extend((0..c.decay_sub.len() as u32).map(|ch| 10.0 * rng.uniform(i, 4, ch)));
        v
    };
    let scale = DriveScale { ext_lo: 300.0, ext_span: 1200.0, exc: 6.0, inh: 3.0, gap_g_max: None };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
        host::adex_update(&t, st, input, spiked)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical("adex (conductance)", &r);
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// lif_cond_exp: NEST `iaf_cond_exp` defaults and a second set differing in every constant (with a per-receptor
/// reversal override), random conductance events (signed: the magnitude opens the conductance), external
/// current and forced spikes.
#[test]
fn lif_cond_exp_kernel_matches_cpu_bit_for_bit() {
    let a = LifCondExpParams::default();
    let b = LifCondExpParams {
        c_m: 200.0,
        g_l: 10.0,
        e_l: -60.0,
        v_th: -50.0,
        v_reset: -62.0,
        t_ref: 5.0,
        i_e: 120.0,
        e_ex: 5.0,
        e_in: -80.0,
        tau_syn_ex: 5.0,
        tau_syn_in: 10.0,
        e_rev: [("inh".to_string(), -75.0)].into(),
        ..Default::default()
    };
    let sets: Vec<lif_cond_exp::Compiled> =
        [a, b].iter().map(|p| lif_cond_exp::compile(p, &channels(), DT_MS).unwrap()).collect();
    let t = LifCondExpTable::from_compiled(channels().len(), &sets);
    let model = CompiledModel::LifCondExp(sets.clone());
    let init = |i: u32, set: usize, rng: &CounterRng| {
        let c = &sets[set];
        let mut v =
            vec![c.v_reset + (c.v_th + 2.0 - c.v_reset) * rng.uniform(i, 1, 0), (rng.uniform(i, 3, 0) * 3.0).floor()];
        v.extend((0..c.p11.len() as u32).map(|ch| 20.0 * rng.uniform(i, 4, ch)));
        v
    };
    let scale = DriveScale { ext_lo: 200.0, ext_span: 600.0, exc: 8.0, inh: 3.0, gap_g_max: None };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
        host::lif_cond_exp_update(&t, st, input, spiked)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical("lif_cond_exp", &r);
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// lif_cond_alpha (NEST `iaf_cond_alpha`): alpha-shaped conductances (state `g` then `ġ` per channel), two sets
/// differing in every constant, random conductance events, external current and forced spikes.
#[test]
fn lif_cond_alpha_kernel_matches_cpu_bit_for_bit() {
    use neurotwin_models::lif_cond_exp::Shape;
    let a = LifCondExpParams::default();
    let b = LifCondExpParams {
        c_m: 200.0,
        g_l: 10.0,
        e_l: -60.0,
        v_th: -50.0,
        v_reset: -62.0,
        t_ref: 5.0,
        i_e: 120.0,
        e_in: -80.0,
        tau_syn_ex: 5.0,
        tau_syn_in: 10.0,
        ..Default::default()
    };
    let sets: Vec<lif_cond_exp::Compiled> =
        [a, b].iter().map(|p| lif_cond_exp::compile_shape(p, &channels(), DT_MS, Shape::Alpha).unwrap()).collect();
    let t = LifCondExpTable::from_compiled(channels().len(), &sets);
    assert_eq!(t.alpha, vec![1, 1]);
    let model = CompiledModel::LifCondExp(sets.clone());
    let init = |i: u32, set: usize, rng: &CounterRng| {
        let c = &sets[set];
        let mut v =
            vec![c.v_reset + (c.v_th + 2.0 - c.v_reset) * rng.uniform(i, 1, 0), (rng.uniform(i, 3, 0) * 3.0).floor()];
        v.extend((0..2 * c.p11.len() as u32).map(|k| 10.0 * rng.uniform(i, 4, k)));
        v
    };
    let scale = DriveScale { ext_lo: 200.0, ext_span: 600.0, exc: 4.0, inh: 1.5, gap_g_max: None };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
        host::lif_cond_exp_update(&t, st, input, spiked)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical("lif_cond_alpha", &r);
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// Graded: Kunert et al. defaults and a second set differing in every constant, random conductances (signed:
/// the magnitude counts) and external current, and the gap coupling `gap_g_max` (see [`DriveScale`]); the
/// activity outputs are compared instead of spikes.
fn graded_case(name: &str, gap_g_max: Option<f64>) {
    let a = GradedParams::default();
    let b = GradedParams {
        c_m: 2.0,
        g_l: 0.02,
        e_l: -40.0,
        e_exc: 5.0,
        e_inh: -60.0,
        beta: 0.2,
        v_th: Some(-30.0),
        i_e: 0.1,
        ..Default::default()
    };
    let sets: Vec<graded::Compiled> = [a, b].iter().map(|p| graded::compile(p, &channels(), DT_MS).unwrap()).collect();
    let t = GradedTable::from_compiled(channels().len(), &sets);
    let model = CompiledModel::Graded(sets.clone());
    let init = |i: u32, _set: usize, rng: &CounterRng| vec![-60.0 + 50.0 * rng.uniform(i, 1, 0)];
    let scale = DriveScale { ext_lo: -0.5, ext_span: 1.0, exc: 0.1, inh: 0.1, gap_g_max };
    let mut kernel = |st: &mut [f64], input: &LifExpStepInput, gap: Gap, spiked: &mut [u8], act: &mut [f64]| {
        spiked.fill(0);
        host::graded_update(&t, st, input, gap, act)
    };
    let r = compare(&model, &init, &scale, &mut kernel);
    assert_identical(name, &r);
    assert_eq!(r.reference_spikes, 0);
    // Most activity values must lie on the sigmoid's graded part, not saturated at 0 or 1.
    assert!(r.graded_activity > (N_NEURONS as u64 * STEPS) / 2, "{} graded activity values", r.graded_activity);
}

/// Graded without gap junctions (null gap pointers).
#[test]
fn graded_kernel_matches_cpu_bit_for_bit() {
    graded_case("graded", None);
}

/// Graded with gap coupling of the order of the leak and synaptic conductances (up to 0.05 nS): the kernel takes
/// `Σ g` and `Σ g V` implicitly exactly as the model does (a swap of the two would change every value).
#[test]
fn graded_kernel_with_gap_coupling_matches_cpu_bit_for_bit() {
    graded_case("graded with gaps", Some(0.05));
}

/// Equation-defined models (`model = "equations"`): the CUDA C generated by
/// `neurotwin_models::equations::cuda_source`, compiled for the host by the system C++ compiler through the shim
/// (`neurotwin_kernels::generated::host_build`), equals the CPU interpreter bit for bit — state and spikes after
/// every step, two parameter sets each — for an exact linear model (`iaf_psc_exp`), an RK4 nonlinear one (AdEx
/// with `exp` and `min`, refractory clamp, a two-variable reset) and an RK2 one exercising `tanh`, `sqrt`,
/// `abs`, `max`, `log`, integer powers and comparison operators. So does the native CPU block function of each model
/// (`equations::native_source`, built by `generated::native_build` with -O3, at every vector width the CPU has),
/// the CPU backend's engine for these models. A perturbed kernel (one addition of 1e-9 mV) is detected, in both.
#[test]
fn generated_equation_kernels_match_the_interpreter_bit_for_bit() {
    use neurotwin_kernels::generated::{host_build, kernel_source, native_build_with, vector_widths};
    use neurotwin_models::NeuronParams;
    use neurotwin_models::equations::{self, EquationParams, InputTiming, Method};
    let map = neurotwin_models::testing::string_map;
    let lif = |tau: &str, i_e: &str| {
        neurotwin_models::testing::iaf_psc_exp_equations(&[
            ("C_m", "250 pF"),
            ("tau_m", tau),
            ("E_L", "-70 mV"),
            ("V_th", "-55 mV"),
            ("V_reset", "-70 mV"),
            ("t_ref", "2 ms"),
            ("I_e", i_e),
            ("tau_syn_ex", "2 ms"),
            ("tau_syn_in", "5 ms"),
        ])
    };
    let adex = |b: &str| EquationParams {
        equations: "dV/dt = (-g_L*(V - E_L) + g_L*D_T*exp((min(V, 0*mV) - V_T)/D_T) - w_a + I_ex + I_stim)/C : mV\n\
                    dw_a/dt = (a*(min(V, 0*mV) - E_L) - w_a)/tau_w : pA\ndI_ex/dt = -I_ex/(2*ms) : pA"
            .into(),
        threshold: "V >= 0 * mV".into(),
        reset: "V = -58 * mV; w_a += b".into(),
        refractory: Some("0.3 ms".into()),
        clamp: vec!["V".into()],
        parameters: map(&[
            ("C", "281 pF"),
            ("g_L", "30 nS"),
            ("E_L", "-70.6 mV"),
            ("V_T", "-50.4 mV"),
            ("D_T", "2 mV"),
            ("tau_w", "144 ms"),
            ("a", "4 nS"),
            ("b", b),
        ]),
        inputs: map(&[("exc", "I_ex += w"), ("inh", "I_ex += w")]),
        init: map(&[("V", "E_L")]),
        method: Method::Rk4,
        substeps: 2,
        input_timing: Default::default(),
    };
    let odd = |k: &str| {
        EquationParams {
        equations: "dV/dt = (max(abs(V)*tanh(V/(10*mV)), sqrt(g*g)*(E - V)/nS) - V)/tau + I_stim/C + ((V/mV)^2 - (V/mV)**-2)*mV/(1e6*ms) : mV\n\
                    dg/dt = -g/tau_g + log(1 + abs(g)/nS)*nS/(1e3*ms) : nS"
            .into(),
        threshold: "V > k * mV".into(),
        reset: "V = -20 * mV; g = 0 * nS".into(),
        refractory: None,
        clamp: vec![],
        parameters: map(&[("tau", "10 ms"), ("C", "100 pF"), ("E", "20 mV"), ("tau_g", "3 ms"), ("k", k)]),
        inputs: map(&[("exc", "g += abs(w)"), ("inh", "g += w*w/nS")]),
        init: map(&[("V", "-10 * mV")]),
        method: Method::Rk2,
        substeps: 3,
        input_timing: Default::default(),
    }
    };
    let cases: Vec<(&str, [EquationParams; 2], DriveScale)> = vec![
        (
            "eq_lif",
            [lif("10 ms", "0 pA"), lif("15 ms", "120 pA")],
            DriveScale { ext_lo: 200.0, ext_span: 400.0, exc: 600.0, inh: 300.0, gap_g_max: None },
        ),
        (
            "eq_adex",
            [adex("80.5 pA"), adex("40 pA")],
            DriveScale { ext_lo: 300.0, ext_span: 1200.0, exc: 600.0, inh: 300.0, gap_g_max: None },
        ),
        (
            "eq_odd",
            [odd("15"), odd("12")],
            DriveScale { ext_lo: 100.0, ext_span: 1500.0, exc: 3.0, inh: 2.0, gap_g_max: None },
        ),
        // Inputs added before the integration (jNeuroML's order), exact and explicit.
        (
            "eq_lif_first",
            [lif("10 ms", "0 pA"), lif("15 ms", "120 pA")]
                .map(|p| EquationParams { input_timing: InputTiming::Before, ..p }),
            DriveScale { ext_lo: 200.0, ext_span: 400.0, exc: 600.0, inh: 300.0, gap_g_max: None },
        ),
        (
            "eq_odd_first",
            [odd("15"), odd("12")].map(|p| EquationParams { input_timing: InputTiming::Before, ..p }),
            DriveScale { ext_lo: 100.0, ext_span: 1500.0, exc: 3.0, inh: 2.0, gap_g_max: None },
        ),
    ];
    for (name, params, scale) in cases {
        let sets: Vec<NeuronParams> = params.iter().cloned().map(NeuronParams::Equations).collect();
        let model = CompiledModel::compile(&sets, &channels(), DT_MS).unwrap();
        let CompiledModel::Equations(compiled) = &model else { panic!() };
        let src = equations::cuda_source(name, compiled).unwrap();
        let init = |i: u32, set: usize, rng: &CounterRng| {
            let mut v = model.initial_state(set);
            v[0] += 8.0 * rng.uniform(i, 1, 0);
            v
        };
        let run = |src: String| {
            let host = host_build(&kernel_source(name, src), model.n_state(), channels().len()).unwrap();
            let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
                host.update(st, input, spiked)
            };
            compare(&model, &init, &scale, &mut kernel)
        };
        let perturb = |src: &str| {
            let line = "    x0 = nt_sel(is_refr, g0, f0);";
            assert!(src.contains(line), "the exact update's line changed: update the perturbation");
            src.replace(line, "    x0 = nt_sel(is_refr, g0, __dadd_rn(f0, nt_bc(1e-9)));")
        };
        if name == "eq_lif" {
            let broken = run(perturb(&src));
            assert!(broken.mismatched_steps > 0, "a perturbed generated kernel must be detected");
        }
        let r = run(src);
        assert_identical(name, &r);
        // The native CPU block function, run block by block as the CPU backend does.
        let run_native = |src: String, vector: &[&'static str]| {
            let fn_name = format!("nt_native_{name}");
            let build = native_build_with(&fn_name, &src, vector).unwrap();
            let block_fn = build.block_fn();
            let constants: Vec<Vec<f64>> = compiled.iter().map(equations::native_constants).collect();
            let n_state = model.n_state();
            let n_ch = channels().len();
            let mut kernel = |st: &mut [f64], input: &LifExpStepInput, _: Gap, spiked: &mut [u8], _: &mut [f64]| {
                let mut lane_ext = [0.0; LANES];
                for b in 0..N_NEURONS.div_ceil(LANES) {
                    let n = (N_NEURONS - b * LANES).min(LANES);
                    lane_ext.fill(0.0);
                    lane_ext[..n].copy_from_slice(&input.i_ext[b * LANES..b * LANES + n]);
                    let block_input = BlockInput {
                        n,
                        param_set: &input.param_set[b * LANES..b * LANES + n],
                        syn: &input.syn[b * n_ch * LANES..(b + 1) * n_ch * LANES],
                        i_ext: &lane_ext,
                        forced: input.forced[b],
                        gap: None,
                    };
                    let mut out = BlockOutput::default();
                    let state = &mut st[b * n_state * LANES..(b + 1) * n_state * LANES];
                    equations::update_block_with(compiled, state, &block_input, &mut out, |set, st| {
                        // SAFETY: `st` holds n_state * 64 values, `syn` n_ch * 64, `lane_ext` 64; the constant table
                        // is this model's (`native_source` and `native_constants` of the same sets).
                        unsafe {
                            block_fn(
                                st.as_mut_ptr(),
                                block_input.syn.as_ptr(),
                                lane_ext.as_ptr(),
                                constants[set].as_ptr(),
                                compiled[set].refractory_steps as f64,
                                block_input.forced,
                            )
                        }
                    });
                    for l in 0..n {
                        spiked[b * LANES + l] = ((out.spikes >> l) & 1) as u8;
                    }
                }
            };
            compare(&model, &init, &scale, &mut kernel)
        };
        let native = equations::native_source(&format!("nt_native_{name}"), compiled).unwrap();
        let widths = vector_widths();
        if name == "eq_lif" {
            let broken = run_native(perturb(&native), &widths[0].1);
            assert!(broken.mismatched_steps > 0, "a perturbed native function must be detected");
        }
        // Every vector width this CPU has (8, 4 and 2 lanes on AVX-512 machines).
        for (width, flags) in &widths {
            let r = run_native(native.clone(), flags);
            assert_identical(&format!("{name} (native, {width} lanes)"), &r);
        }
        assert!(
            r.reference_spikes > r.forced_spikes + 2_000,
            "{name}: {} spikes, {} forced",
            r.reference_spikes,
            r.forced_spikes
        );
    }
}
