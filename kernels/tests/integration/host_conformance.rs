//! Conformance of the CUDA C kernels, compiled for the host through `host/shim.h`, with the Rust CPU
//! implementation in `neurotwin-models`: every comparison is bit for bit.

use neurotwin_kernels::host::{self, LANES, LifExpStepInput, LifExpTable};
use neurotwin_models::lif_exp::{self, LifExpParams};
use neurotwin_models::rng::{CounterRng, Stream, philox4x32_10};
use neurotwin_models::{BlockInput, BlockOutput, CompiledModel, detmath};

/// Random123 known-answer vectors (kat_vectors, philox4x32_10) through the host-compiled device function.
#[test]
fn philox_known_answers() {
    assert_eq!(host::philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(host::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(
        host::philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
    // The same vector through the kernel: seed 0, stream word 0, neuron 0, step 0, draw 0 is counter 0, key 0.
    let mut out = [[0u32; 4]; 1];
    host::philox_fill(0, 0, 0, 0, 0, &mut out);
    assert_eq!(out[0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
}

/// Kernel `philox_fill` / `philox_uniform2_fill` equal `CounterRng::bits` / `uniform2` over many seeds, streams
/// (with sub-streams), steps (including ones above 2^32), draws and neuron ranges.
#[test]
fn philox_fill_matches_counter_rng() {
    let streams = [Stream::InitialState, Stream::PoissonInput, Stream::Activation, Stream::Connectivity, Stream::Trial];
    let seeds = [0u64, 1, 42, 0xDEAD_BEEF_0123_4567, u64::MAX];
    let steps = [0u64, 1, 999, (1 << 32) - 1, 1 << 32, 0x1234_5678_9ABC_DEF0, u64::MAX];
    let mut checked = 0usize;
    for &seed in &seeds {
        for (si, &stream) in streams.iter().enumerate() {
            for sub in [0u32, 1, 65_535] {
                let rng = CounterRng::new(seed, stream).substream(sub);
                let stream_word = stream as u32 | (sub << 16);
                for &step in &steps {
                    for draw in [0u32, 1, 255] {
                        let neuron0 = [0u32, 777, u32::MAX - 300][(si + draw as usize) % 3];
                        let mut bits = vec![[0u32; 4]; 300];
                        host::philox_fill(seed, stream_word, step, draw, neuron0, &mut bits);
                        let mut uni = vec![[0f64; 2]; 300];
                        host::philox_uniform2_fill(seed, stream_word, step, draw, neuron0, &mut uni);
                        for (j, (b, u)) in bits.iter().zip(&uni).enumerate() {
                            let neuron = neuron0 + j as u32;
                            assert_eq!(
                                *b,
                                rng.bits(neuron, step, draw),
                                "seed {seed} {stream:?}/{sub} n{neuron} s{step}"
                            );
                            let want = rng.uniform2(neuron, step, draw);
                            assert_eq!(u.map(f64::to_bits), want.map(f64::to_bits), "uniform2 n{neuron} s{step}");
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 5 * 5 * 3 * 7 * 3 * 300);
    // And the raw permutation on pseudo-random counters and keys.
    let rng = CounterRng::new(9, Stream::Trial);
    for i in 0..10_000u32 {
        let [a, b, c, d] = rng.bits(i, 3, 0);
        let [e, f, _, _] = rng.bits(i, 4, 0);
        assert_eq!(host::philox4x32_10([a, b, c, d], [e, f]), philox4x32_10([a, b, c, d], [e, f]));
    }
}

/// `nt_exp` of `cuda/detmath.cuh` (through kernel `detmath_exp_fill`) equals `detmath::exp` bit for bit on
/// 100k evenly spaced points in [−740, 709], 100k random points, and the special and saturating cases.
#[test]
fn detmath_exp_matches_rust() {
    let n = 100_000;
    let mut x: Vec<f64> = (0..n).map(|i| -740.0 + 1449.0 * i as f64 / (n - 1) as f64).collect();
    let rng = CounterRng::new(3, Stream::Trial);
    x.extend((0..n as u32).map(|i| -740.0 + 1449.0 * rng.uniform(i, 0, 0)));
    x.extend((0..n as u32).map(|i| (rng.uniform(i, 1, 0) - 0.5) * 4.0)); // around 0, where k is 0 or ±1..±3
    x.extend([
        0.0,
        -0.0,
        1.0,
        -1.0,
        709.78,
        709.7800000000001,
        709.0,
        -745.0,
        -745.0000000000001,
        -744.44,
        -708.4,
        -1000.0,
        1000.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        0.5 * std::f64::consts::LN_2,
        -0.5 * std::f64::consts::LN_2,
    ]);
    let mut out = vec![0.0; x.len()];
    host::detmath_exp_fill(&x, &mut out);
    for (&xi, &got) in x.iter().zip(&out) {
        let want = detmath::exp(xi);
        assert_eq!(got.to_bits(), want.to_bits(), "exp({xi:e}) = {got:e} (cuda) vs {want:e} (rust)");
    }
    let mut nan = [0.0];
    host::detmath_exp_fill(&[f64::NAN], &mut nan);
    assert!(nan[0].is_nan());
}

/// `nt_ln` and `nt_powf` of `cuda/detmath.cuh` (kernel `detmath_ln_pow_fill`) equal `detmath::ln` and
/// `detmath::powf` bit for bit: ln over 60 decades, subnormals and the special values; pow over [0, 1] (the STDP
/// weight range) with the exponents 0, 1 and fractional ones.
#[test]
fn detmath_ln_and_pow_match_rust() {
    let rng = CounterRng::new(5, Stream::Trial);
    let mut x: Vec<f64> = (0..50_000u32).map(|i| 10f64.powf(-300.0 + 600.0 * rng.uniform(i, 0, 0))).collect();
    x.extend((0..50_000u32).map(|i| rng.uniform(i, 1, 0)));
    x.extend([0.0, 1.0, 2.0, 0.5, std::f64::consts::SQRT_2, 1.0 + f64::EPSILON, 5e-324, 1e-310, f64::INFINITY, -1.0]);
    let y: Vec<f64> = (0..x.len() as u32).map(|i| [0.0, 1.0, 0.4, 0.05, 1.7][i as usize % 5]).collect();
    let mut out = vec![0.0; 2 * x.len()];
    host::detmath_ln_pow_fill(&x, &y, &mut out);
    for (j, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
        let (ln, pow) = (detmath::ln(xi), detmath::powf(xi, yi));
        assert!(out[2 * j].to_bits() == ln.to_bits() || (ln.is_nan() && out[2 * j].is_nan()), "ln({xi:e})");
        assert!(
            out[2 * j + 1].to_bits() == pow.to_bits() || (pow.is_nan() && out[2 * j + 1].is_nan()),
            "pow({xi:e}, {yi})"
        );
    }
}

/// `nt_expm1` of `cuda/detmath.cuh` (kernel `detmath_expm1_fill`) equals `detmath::expm1` bit for bit on both
/// branches (|x| up to ln2/2: the series; beyond: exp − 1), around the switch, and on the special values.
#[test]
fn detmath_expm1_matches_rust() {
    let rng = CounterRng::new(6, Stream::Trial);
    let mut x: Vec<f64> = (0..50_000u32).map(|i| -2.0 + 4.0 * rng.uniform(i, 0, 0)).collect();
    x.extend((0..50_000u32).map(|i| (rng.uniform(i, 1, 0) - 0.5) * 1e-6));
    let h = 0.5 * std::f64::consts::LN_2;
    x.extend([0.0, -0.0, h, -h, f64::from_bits(h.to_bits() + 1), -700.0, 700.0, 1e-320, f64::INFINITY, -f64::INFINITY]);
    let mut out = vec![0.0; x.len()];
    host::detmath_expm1_fill(&x, &mut out);
    for (&xi, &o) in x.iter().zip(&out) {
        let want = detmath::expm1(xi);
        assert!(o.to_bits() == want.to_bits() || (want.is_nan() && o.is_nan()), "expm1({xi:e}): {o} vs {want}");
    }
    let mut nan = [0.0];
    host::detmath_expm1_fill(&[f64::NAN], &mut nan);
    assert!(nan[0].is_nan());
}

const N_NEURONS: usize = 1000; // 15 full blocks and one of 40 lanes
const STEPS: u64 = 2000;
const DT_MS: f64 = 0.1;

fn channels() -> Vec<neurotwin_models::ReceptorChannel> {
    neurotwin_models::testing::exc_inh_channels()
}

/// Two parameter sets that differ in every constant the kernel reads.
fn compiled_sets() -> Vec<lif_exp::Compiled> {
    let a = LifExpParams { i_e: 300.0, ..Default::default() };
    let b = LifExpParams {
        c_m: 180.0,
        tau_m: 17.0,
        e_l: -65.0,
        v_th: -50.5,
        v_reset: -68.0,
        t_ref: 3.3,
        i_e: 120.0,
        tau_syn_ex: 1.7,
        tau_syn_in: 6.5,
        ..Default::default()
    };
    [a, b].iter().map(|p| lif_exp::compile(p, &channels(), DT_MS).unwrap()).collect()
}

fn table(sets: &[lif_exp::Compiled]) -> LifExpTable {
    LifExpTable::from_compiled(sets[0].p11.len(), sets)
}

/// Random per-step drive, a pure function of (neuron, step) through the counter RNG.
struct Drive {
    rng: CounterRng,
    n_channels: usize,
}

impl Drive {
    /// Fills the kernel's inputs for `step`: sparse synaptic events (exc +0..300 pA, inh −0..400 pA), an
    /// external current in [−50, 250) pA, and ~0.2 % forced spikes.
    fn fill(&self, step: u64, syn: &mut [f64], i_ext: &mut [f64], forced: &mut [u64]) {
        forced.fill(0);
        for (i, ext) in i_ext.iter_mut().enumerate() {
            let (b, l) = (i / LANES, i % LANES);
            let [u0, u1] = self.rng.uniform2(i as u32, step, 0);
            let [u2, u3] = self.rng.uniform2(i as u32, step, 1);
            *ext = -50.0 + 300.0 * u0;
            if u1 < 0.002 {
                forced[b] |= 1 << l;
            }
            let exc = if u2 < 0.3 { 300.0 * u2 / 0.3 } else { 0.0 };
            let inh = if u3 < 0.2 { -400.0 * u3 / 0.2 } else { 0.0 };
            for (c, v) in [exc, inh].into_iter().enumerate().take(self.n_channels) {
                syn[(b * self.n_channels + c) * LANES + l] = v;
            }
        }
    }
}

type Kernel = fn(&LifExpTable, &mut [f64], &LifExpStepInput, &mut [u8]);

/// Outcome of running the kernel and the Rust reference side by side.
#[derive(Debug, Default)]
struct Comparison {
    /// (step, neuron, variable) of the first differing state value or spike flag, if any.
    first_mismatch: Option<(u64, usize, String)>,
    /// Steps with at least one difference.
    mismatched_steps: u64,
    reference_spikes: u64,
    forced_spikes: u64,
}

/// Runs `kernel` and `CompiledModel::update_block` from the same random initial state with the same inputs
/// for STEPS steps, and compares every state value (bit pattern) and every spike flag after every step.
/// Each side keeps its own trajectory, so an early difference also shows up in everything it perturbs.
fn compare(kernel: Kernel) -> Comparison {
    let sets = compiled_sets();
    let t = table(&sets);
    let model = CompiledModel::LifExp(sets.clone());
    let n_ch = t.n_channels;
    let n_state = model.n_state();
    assert_eq!(n_state, 2 + n_ch);
    let n_blocks = N_NEURONS.div_ceil(LANES);
    let init = CounterRng::new(11, Stream::InitialState);
    let param_set: Vec<u16> = (0..N_NEURONS as u32).map(|i| (init.uniform(i, 0, 0) < 0.4) as u16).collect();
    let mut state = vec![0.0; n_blocks * n_state * LANES];
    for i in 0..N_NEURONS {
        let (b, l) = (i / LANES, i % LANES);
        let c = &sets[usize::from(param_set[i])];
        let u = init.uniform(i as u32, 1, 0);
        let s = &mut state[b * n_state * LANES..];
        s[l] = c.e_l + c.reset + (c.theta - c.reset) * u; // V_m between reset and threshold (mV)
        s[LANES + l] = (init.uniform(i as u32, 2, 0) * 3.0).floor(); // some neurons start refractory
        for ch in 0..n_ch {
            s[(2 + ch) * LANES + l] = 100.0 * (init.uniform(i as u32, 3, ch as u32) - 0.5);
        }
    }
    let mut gpu_state = state.clone();
    let mut cpu_state = state;
    let drive = Drive { rng: CounterRng::new(5, Stream::PoissonInput), n_channels: n_ch };
    let mut syn = vec![0.0; n_blocks * n_ch * LANES];
    let mut i_ext = vec![0.0; N_NEURONS];
    let mut forced = vec![0u64; n_blocks];
    let mut spiked = vec![0u8; N_NEURONS];
    let mut lane_ext = [0.0; LANES];
    let names = model.state_names();
    let mut result = Comparison::default();
    for step in 0..STEPS {
        drive.fill(step, &mut syn, &mut i_ext, &mut forced);
        let input = LifExpStepInput { param_set: &param_set, syn: &syn, i_ext: &i_ext, forced: &forced };
        kernel(&t, &mut gpu_state, &input, &mut spiked);
        let mut step_differs = false;
        for b in 0..n_blocks {
            let n = (N_NEURONS - b * LANES).min(LANES);
            lane_ext.fill(0.0);
            lane_ext[..n].copy_from_slice(&i_ext[b * LANES..b * LANES + n]);
            let block_input = BlockInput {
                n,
                param_set: &param_set[b * LANES..b * LANES + n],
                syn: &syn[b * n_ch * LANES..(b + 1) * n_ch * LANES],
                i_ext: &lane_ext,
                forced: forced[b],
                gap: None,
            };
            let mut out = BlockOutput::default();
            let block = b * n_state * LANES..(b + 1) * n_state * LANES;
            model.update_block(&mut cpu_state[block.clone()], &block_input, &mut out);
            result.reference_spikes += u64::from(out.spikes.count_ones());
            result.forced_spikes += u64::from(forced[b].count_ones());
            for l in 0..n {
                let i = b * LANES + l;
                let mut differs = None;
                if u64::from(spiked[i]) != (out.spikes >> l) & 1 {
                    differs = Some("spike".to_string());
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

/// (c) The host-compiled `lif_exp_update` kernel reproduces `CompiledModel::update_block` bit for bit:
/// ~1000 neurons (two parameter sets, a partial last block) × 2000 steps of random synaptic input, external
/// current and forced spikes.
#[test]
fn lif_exp_kernel_matches_cpu_bit_for_bit() {
    let r = compare(host::lif_exp_update);
    eprintln!("lif_exp: {} spikes ({} forced), identical", r.reference_spikes, r.forced_spikes);
    assert_eq!(r.first_mismatch, None, "first mismatch (step, neuron, what); {} steps differ", r.mismatched_steps);
    // The comparison is meaningful only if neurons actually cross threshold on their own.
    assert!(r.reference_spikes > r.forced_spikes + 5_000, "{} spikes, {} forced", r.reference_spikes, r.forced_spikes);
}

/// (d) The same comparison detects a kernel whose only change is the association of one sum (constant current
/// added after the synaptic terms): the check can fail.
#[test]
fn reordered_sum_is_detected() {
    let r = compare(host::lif_exp_update_broken_for_test);
    let (step, neuron, what) = r.first_mismatch.expect("the deliberately broken kernel was not detected");
    eprintln!(
        "broken kernel detected: first at step {step}, neuron {neuron}: {what}; {} steps differ",
        r.mismatched_steps
    );
    assert!(r.mismatched_steps > 0);
}
