//! Leaky integrate-and-fire neuron with delta synapses, integrated exactly, as NEST's `iaf_psc_delta`
//! (the neuron of the Brunel 2000 network, J Comput Neurosci 8:183; exact integration after Rotter &
//! Diesmann 1999, Biol. Cybern. 81:381).
//!
//! `C_m dV/dt = -(C_m/τ_m)(V - E_L) + I_e + I_ext`; a synaptic event of weight `J` (mV) makes `V += J`
//! (the sign is carried by the weight). After a spike `V = V_reset` for `t_ref`.
//!
//! Step order (as NEST's `iaf_psc_delta::update`): if the neuron is not refractory, `V` is propagated
//! exactly over the step with this step's constant current and this step's synaptic jumps are added;
//! otherwise the refractory counter is decremented and the input is discarded (`refractory_input =
//! false`, NEST's default) or stored, decayed with `τ_m` until the end of the refractory period and then
//! added (`refractory_input = true`). Then the threshold is tested. Input arriving at step `s` therefore
//! moves `V` at step `s` already (unlike `lif_exp`, where a current must first build up). A forced lane
//! spikes and resets at the threshold test exactly as a crossing would (also during refractoriness, as
//! in `lif_exp`).

use serde::{Deserialize, Serialize};

use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check};

/// Parameters (units in the doc comments). Defaults are NEST 3 `iaf_psc_delta` defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifDeltaParams {
    /// Membrane capacitance (pF).
    pub c_m: f64,
    /// Membrane time constant (ms).
    pub tau_m: f64,
    /// Resting potential (mV).
    pub e_l: f64,
    /// Spike threshold (mV).
    pub v_th: f64,
    /// Reset potential (mV).
    pub v_reset: f64,
    /// Absolute refractory period (ms); rounded to whole steps.
    pub t_ref: f64,
    /// Constant bias current (pA).
    pub i_e: f64,
    /// Keep synaptic input that arrives during the refractory period: it is decayed with `τ_m` from its
    /// arrival to the end of the refractory period and then added to `V` (NEST `refractory_input`).
    /// `false` (default, as NEST) discards it.
    pub refractory_input: bool,
}

impl Default for LifDeltaParams {
    fn default() -> Self {
        Self {
            c_m: 250.0,
            tau_m: 10.0,
            e_l: -70.0,
            v_th: -55.0,
            v_reset: -70.0,
            t_ref: 2.0,
            i_e: 0.0,
            refractory_input: false,
        }
    }
}

/// Propagators and thresholds for one parameter set and one `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub e_l: f64,
    /// Threshold and reset relative to `E_L` (mV).
    pub theta: f64,
    pub reset: f64,
    pub i_e: f64,
    pub refractory_steps: u32,
    /// exp(-h/τ_m)
    pub p22: f64,
    /// τ_m/C (1 - exp(-h/τ_m)): response of V to a constant current over one step (mV/pA)
    pub p20: f64,
    /// 1.0 to keep input arriving during refractoriness, 0.0 to discard it.
    pub keep_refractory_input: f64,
    /// Number of receptor channels (all are summed: delta synapses have no kinetics).
    pub n_channels: usize,
}

pub fn compile(p: &LifDeltaParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    check("c_m", p.c_m, p.c_m > 0.0, "capacitance must be positive (pF)")?;
    check("tau_m", p.tau_m, p.tau_m > 0.0, "membrane time constant must be positive (ms)")?;
    check("e_l", p.e_l, true, "must be finite (mV)")?;
    check("v_th", p.v_th, p.v_th > p.v_reset, "threshold must lie above v_reset (mV)")?;
    check("v_reset", p.v_reset, true, "must be finite (mV)")?;
    check("t_ref", p.t_ref, p.t_ref >= 0.0, "refractory period must be >= 0 (ms)")?;
    check("i_e", p.i_e, true, "must be finite (pA)")?;
    let p22 = (-h / p.tau_m).exp();
    Ok(Compiled {
        e_l: p.e_l,
        theta: p.v_th - p.e_l,
        reset: p.v_reset - p.e_l,
        i_e: p.i_e,
        refractory_steps: (p.t_ref / h).round() as u32,
        p22,
        // -expm1 keeps full precision for h << τ_m (as NEST's P30).
        p20: -p.tau_m / p.c_m * (-h / p.tau_m).exp_m1(),
        keep_refractory_input: if p.refractory_input { 1.0 } else { 0.0 },
        n_channels: channels.len(),
    })
}

/// State order: `V_m` (mV), `refractory` (steps left), `refr_input` (mV: input stored during the
/// refractory period, already decayed to the end of the period; always 0 unless `refractory_input`).
pub fn state_names(_c: &Compiled) -> Vec<String> {
    vec!["V_m".to_string(), "refractory".to_string(), "refr_input".to_string()]
}

pub fn initial_state(c: &Compiled) -> Vec<f64> {
    vec![c.e_l, 0.0, 0.0]
}

pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state.split_at_mut(LANES);
    let (refr, buf) = rest.split_at_mut(LANES);
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let mut s = 0.0;
        for ch in 0..c.n_channels {
            s += input.syn[ch * LANES + l];
        }
        let mut y = vm[l] - c.e_l;
        if refr[l] > 0.0 {
            refr[l] -= 1.0;
            // Input at a step with `r` refractory steps left is decayed by exp(-r h/τ_m) on release.
            buf[l] = (buf[l] + s * c.keep_refractory_input) * c.p22;
        } else {
            y = y * c.p22 + (c.i_e + input.i_ext[l]) * c.p20 + s + buf[l];
            buf[l] = 0.0;
        }
        if y >= c.theta || (input.forced >> l) & 1 == 1 {
            y = c.reset;
            refr[l] = c.refractory_steps as f64;
            out.spikes |= 1 << l;
            out.activity[l] = 1.0;
        }
        vm[l] = y + c.e_l;
    }
}

/// One full block of one parameter set with two receptor channels whose input is the delay ring, plus at most
/// one additive term per channel and lane (`extra`, channel-major `[2 * LANES]`: a Poisson drive's
/// `count * weight`), and nothing else (no currents, gap junctions, forced spikes or channel gains): the ring's
/// fixed-point sums are converted (`x as f64 * inv_scale`) and cleared, the extra term added, and the neurons
/// updated, in one pass over the block. The same IEEE operations in the same order as the ring gather, the
/// stimulus sum and [`update_block`] with zero external current (bit-identical, tested). Returns the spike
/// mask (bit `l` = lane `l`). With AVX-512 (F, DQ, VL; checked at run time) eight lanes per instruction.
pub fn update_full_block_2ch_from_ring(
    c: &Compiled,
    state: &mut [f64],
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> u64 {
    assert!(state.len() >= 3 * LANES && ring0.len() >= LANES && ring1.len() >= LANES && c.n_channels == 2);
    assert!(extra.is_none_or(|e| e.len() >= 2 * LANES));
    #[cfg(target_arch = "x86_64")]
    if crate::rng::has_avx512() {
        // SAFETY: the CPU supports AVX-512F, DQ and VL (checked just above); the lengths are asserted above.
        return unsafe { full_block_2ch_from_ring_avx512(c, state, ring0, ring1, inv_scale, extra) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::avx2::has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above); the lengths are asserted above.
        return unsafe { full_block_2ch_from_ring_avx2(c, state, ring0, ring1, inv_scale, extra) };
    }
    full_block_2ch_from_ring_portable(c, state, ring0, ring1, inv_scale, extra)
}

fn full_block_2ch_from_ring_portable(
    c: &Compiled,
    state: &mut [f64],
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> u64 {
    let syn = crate::ring_input::two_channels(ring0, ring1, inv_scale, extra);
    let param_set = [0u16; LANES];
    let input = BlockInput { n: LANES, param_set: &param_set, syn: &syn, i_ext: &[0.0; LANES], forced: 0, gap: None };
    let mut out = BlockOutput::default();
    update_block(std::slice::from_ref(c), state, &input, &mut out);
    out.spikes
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn full_block_2ch_from_ring_avx512(
    c: &Compiled,
    state: &mut [f64],
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> u64 {
    use std::arch::x86_64::*;
    let (vm, rest) = state[..3 * LANES].split_at_mut(LANES);
    let (refr, buf) = rest.split_at_mut(LANES);
    let set1 = |x: f64| _mm512_set1_pd(x);
    let (e_l, p22, theta, reset) = (set1(c.e_l), set1(c.p22), set1(c.theta), set1(c.reset));
    // `(i_e + i_ext) * p20` with i_ext = +0.0 in every lane, as the general path computes it.
    let drive = set1((c.i_e + 0.0) * c.p20);
    let keep = set1(c.keep_refractory_input);
    let (refractory, one, zero, scale) = (set1(c.refractory_steps as f64), set1(1.0), set1(0.0), set1(inv_scale));
    let mut mask = 0u64;
    for k in (0..LANES).step_by(8) {
        // SAFETY: k + 8 <= LANES and every slice holds at least LANES entries (asserted by the caller).
        unsafe {
            let (pv, pr, pb) = (vm.as_mut_ptr().add(k), refr.as_mut_ptr().add(k), buf.as_mut_ptr().add(k));
            let (s0, s1) =
                crate::ring_input::two_channels_avx512(ring0.as_mut_ptr(), ring1.as_mut_ptr(), k, scale, extra);
            // `s = 0.0; s += syn[0]; s += syn[1]`, as the general update sums the channels.
            let s = _mm512_add_pd(_mm512_add_pd(zero, s0), s1);
            let y0 = _mm512_sub_pd(_mm512_loadu_pd(pv), e_l);
            let b = _mm512_loadu_pd(pb);
            let r = _mm512_loadu_pd(pr);
            let is_refractory = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(r, zero);
            let integrated = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(y0, p22), drive), s), b);
            let kept = _mm512_mul_pd(_mm512_add_pd(b, _mm512_mul_pd(s, keep)), p22);
            let y = _mm512_mask_blend_pd(is_refractory, integrated, y0);
            let r = _mm512_mask_sub_pd(r, is_refractory, r, one);
            _mm512_storeu_pd(pb, _mm512_mask_blend_pd(is_refractory, zero, kept));
            let spike = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(y, theta);
            _mm512_storeu_pd(pr, _mm512_mask_blend_pd(spike, r, refractory));
            _mm512_storeu_pd(pv, _mm512_add_pd(_mm512_mask_blend_pd(spike, y, reset), e_l));
            mask |= (spike as u64) << k;
        }
    }
    mask
}

/// [`full_block_2ch_from_ring_avx512`] on AVX2: four lanes per instruction, comparisons as all-ones lane masks,
/// selections by `blendv`; the same IEEE operations on the same values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn full_block_2ch_from_ring_avx2(
    c: &Compiled,
    state: &mut [f64],
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> u64 {
    use std::arch::x86_64::*;
    let (vm, rest) = state[..3 * LANES].split_at_mut(LANES);
    let (refr, buf) = rest.split_at_mut(LANES);
    let set1 = |x: f64| _mm256_set1_pd(x);
    let (e_l, p22, theta, reset) = (set1(c.e_l), set1(c.p22), set1(c.theta), set1(c.reset));
    // `(i_e + i_ext) * p20` with i_ext = +0.0 in every lane, as the general path computes it.
    let drive = set1((c.i_e + 0.0) * c.p20);
    let keep = set1(c.keep_refractory_input);
    let (refractory, one, zero, scale) = (set1(c.refractory_steps as f64), set1(1.0), set1(0.0), set1(inv_scale));
    let mut mask = 0u64;
    for k in (0..LANES).step_by(4) {
        // SAFETY: k + 4 <= LANES and every slice holds at least LANES entries (asserted by the caller).
        unsafe {
            let (pv, pr, pb) = (vm.as_mut_ptr().add(k), refr.as_mut_ptr().add(k), buf.as_mut_ptr().add(k));
            let (s0, s1) =
                crate::ring_input::two_channels_avx2(ring0.as_mut_ptr(), ring1.as_mut_ptr(), k, scale, extra);
            // `s = 0.0; s += syn[0]; s += syn[1]`, as the general update sums the channels.
            let s = _mm256_add_pd(_mm256_add_pd(zero, s0), s1);
            let y0 = _mm256_sub_pd(_mm256_loadu_pd(pv), e_l);
            let b = _mm256_loadu_pd(pb);
            let r = _mm256_loadu_pd(pr);
            let is_refractory = _mm256_cmp_pd::<_CMP_GT_OQ>(r, zero);
            let integrated = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(y0, p22), drive), s), b);
            let kept = _mm256_mul_pd(_mm256_add_pd(b, _mm256_mul_pd(s, keep)), p22);
            let y = _mm256_blendv_pd(integrated, y0, is_refractory);
            let r = _mm256_blendv_pd(r, _mm256_sub_pd(r, one), is_refractory);
            _mm256_storeu_pd(pb, _mm256_blendv_pd(zero, kept, is_refractory));
            let spike = _mm256_cmp_pd::<_CMP_GE_OQ>(y, theta);
            _mm256_storeu_pd(pr, _mm256_blendv_pd(r, refractory, spike));
            _mm256_storeu_pd(pv, _mm256_add_pd(_mm256_blendv_pd(y, reset, spike), e_l));
            mask |= (_mm256_movemask_pd(spike) as u64) << k;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledModel;
    use crate::testing::{Drive, run_single, trace_v};

    use crate::testing::exc_inh_channels as channels;

    fn model(p: &LifDeltaParams, h: f64) -> CompiledModel {
        CompiledModel::LifDelta(vec![compile(p, &channels(), h).unwrap()])
    }

    /// Constant suprathreshold current from V = E_L: V(t) = R I (1 − e^{−t/τ}) (relative to E_L, R = τ/C)
    /// crosses θ at t* = τ ln(R I / (R I − θ)). Exact integration samples V(t) on the grid, so the first
    /// spike is at the first grid time ≥ t*; every ISI is the refractory steps plus the same number of
    /// free steps from V_reset; the rate is the closed form 1 / (t_ref + τ ln((R I − V_reset)/(R I − θ)))
    /// up to that rounding.
    #[test]
    fn constant_current_matches_closed_form() {
        let p = LifDeltaParams { i_e: 500.0, ..Default::default() };
        let h = 0.1;
        let spikes = run_single(&model(&p, h), 2, 20_000, &Drive::none());
        let ri = p.tau_m / p.c_m * p.i_e; // 20 mV
        let theta = p.v_th - p.e_l; // 15 mV
        let t_first = p.tau_m * (ri / (ri - theta)).ln();
        let k_first = (t_first / h).ceil() as u64;
        assert_eq!(spikes[0] + 1, k_first, "first spike after {} steps, closed form {t_first} ms", spikes[0] + 1);
        let t_free = p.tau_m * ((ri - (p.v_reset - p.e_l)) / (ri - theta)).ln();
        let isi_steps = (p.t_ref / h).round() as u64 + (t_free / h).ceil() as u64;
        for w in spikes.windows(2) {
            assert_eq!(w[1] - w[0], isi_steps);
        }
        let rate = 1000.0 / (p.t_ref + t_free);
        let measured = 1000.0 * (spikes.len() - 1) as f64 / ((spikes[spikes.len() - 1] - spikes[0]) as f64 * h);
        assert!(measured <= rate && measured > 1000.0 / (p.t_ref + t_free + h), "rate {measured} vs {rate} Hz");
    }

    /// One synaptic jump J at step 0 on either channel: V(t) = E_L + J e^{−t/τ_m}; the jump is applied in
    /// the step it arrives, so trace[k + 1] = E_L + J e^{−k h/τ_m}. Inhibitory weights carry their sign.
    #[test]
    fn single_jump_decays_exponentially() {
        let p = LifDeltaParams::default();
        let h = 0.1;
        for (ch, j) in [(0usize, 2.0), (1, -3.0)] {
            let trace = trace_v(&model(&p, h), 2, 1000, &Drive::single_input(ch, j));
            assert_eq!(trace[0], p.e_l);
            for k in [0usize, 1, 10, 100, 500] {
                let exact = p.e_l + j * (-(k as f64) * h / p.tau_m).exp();
                assert!((trace[k + 1] - exact).abs() < 1e-12, "step {k}: {} vs {exact}", trace[k + 1]);
            }
        }
    }

    /// A forced spike at step 0 starts 20 refractory steps (2 ms / 0.1 ms). A jump arriving at step 5
    /// (16 refractory steps left) is discarded by default: V stays at V_reset = E_L for good. With
    /// `refractory_input` it is added when the period ends (step 21) decayed by e^{−16 h/τ_m}.
    #[test]
    fn refractory_input_is_discarded_or_kept_decayed() {
        let h = 0.1;
        let j = 5.0;
        let drive = Drive { inputs: vec![(5, 0, j)], forced: vec![0], ..Default::default() };
        let p = LifDeltaParams::default();
        let m = model(&p, h);
        assert_eq!(run_single(&m, 2, 100, &drive), vec![0]);
        let trace = trace_v(&m, 2, 100, &drive);
        assert!(trace.iter().all(|&v| v == p.e_l), "discarded input must not move V");

        let p = LifDeltaParams { refractory_input: true, ..Default::default() };
        let trace = trace_v(&model(&p, h), 2, 100, &drive);
        assert!(trace[..=21].iter().all(|&v| v == p.e_l), "V is clamped during the refractory period");
        let exact = p.e_l + j * (-16.0 * h / p.tau_m).exp();
        assert!((trace[22] - exact).abs() < 1e-12, "released input {} vs {exact}", trace[22]);
        assert!((trace[32] - (p.e_l + j * (-26.0 * h / p.tau_m).exp())).abs() < 1e-12);
    }

    /// A forced spike behaves as a threshold crossing: spike, V = V_reset, refractory counter set; a
    /// suprathreshold jump does the same.
    #[test]
    fn forced_spike_resets_like_threshold_crossing() {
        let p = LifDeltaParams { v_reset: -65.0, ..Default::default() };
        let h = 0.1;
        let m = model(&p, h);
        let forced = Drive { forced: vec![3], ..Default::default() };
        let jump = Drive { inputs: vec![(3, 0, 20.0)], ..Default::default() };
        for drive in [forced, jump] {
            let mut states = Vec::new();
            let spikes = run_single(&m, 2, 10, &drive);
            crate::testing::run_with(&m, 2, 10, &drive, |_, st, _| states.push(st.to_vec()));
            assert_eq!(spikes, vec![3]);
            assert_eq!(states[3], vec![-65.0, 20.0, 0.0]);
            assert_eq!(states[4], vec![-65.0, 19.0, 0.0]);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        let bad = [
            LifDeltaParams { tau_m: 0.0, ..Default::default() },
            LifDeltaParams { c_m: -1.0, ..Default::default() },
            LifDeltaParams { v_th: -80.0, ..Default::default() },
            LifDeltaParams { t_ref: -1.0, ..Default::default() },
            LifDeltaParams { i_e: f64::NAN, ..Default::default() },
        ];
        for p in bad {
            assert!(compile(&p, &channels(), 0.1).is_err(), "{p:?}");
        }
    }

    /// The fused ring-to-spikes pass (AVX-512 or AVX2 where the CPU has it, else the portable one; AVX2 and the
    /// portable one also explicitly) equals the ring
    /// gather, the stimulus sum and the general update, bit for bit: refractory lanes with input discarded and
    /// kept (`refractory_input`), spikes, zeros of both signs in the extra term, and the ring slots cleared.
    #[test]
    fn fused_ring_pass_equals_gather_then_general_update() {
        use crate::rng::{CounterRng, Stream};
        for keep in [false, true] {
            let p = LifDeltaParams { refractory_input: keep, i_e: 12.5, ..Default::default() };
            let c = compile(&p, &channels(), 0.1).unwrap();
            let rng = CounterRng::new(13, Stream::Trial);
            let mut fused = vec![0.0; 3 * LANES];
            for l in 0..LANES {
                fused[l] = -70.0 + 15.0 * rng.uniform(l as u32, 0, 0);
                fused[LANES + l] = if l % 5 == 0 { 3.0 } else { 0.0 };
            }
            let (mut general, mut portable) = (fused.clone(), fused.clone());
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut, unused_variables))]
            let mut avx2 = fused.clone();
            let inv_scale = 1.0 / (1u64 << 44) as f64;
            let param_set = [0u16; LANES];
            let (mut spikes, mut kept) = (0, false);
            for step in 0..400u64 {
                let ring: Vec<i64> =
                    (0..2 * LANES).map(|k| ((rng.uniform(k as u32, step, 1) - 0.4) * 6.0e13) as i64).collect();
                let extra: Option<Vec<f64>> = (step % 2 == 1).then(|| {
                    let weight = |k: usize| if k < LANES { 0.5 } else { -0.5 };
                    (0..2 * LANES).map(|k| (rng.uniform(k as u32, step, 3) * 4.0).floor() * weight(k)).collect()
                });
                let mut syn: Vec<f64> = ring.iter().map(|&x| x as f64 * inv_scale).collect();
                if let Some(e) = &extra {
                    syn.iter_mut().zip(e).for_each(|(s, e)| *s += e);
                }
                let input = BlockInput {
                    n: LANES,
                    param_set: &param_set,
                    syn: &syn,
                    i_ext: &[0.0; LANES],
                    forced: 0,
                    gap: None,
                };
                let mut out = BlockOutput::default();
                update_block(std::slice::from_ref(&c), &mut general, &input, &mut out);
                let (mut r0, mut r1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
                let mask =
                    update_full_block_2ch_from_ring(&c, &mut fused, &mut r0, &mut r1, inv_scale, extra.as_deref());
                assert!(r0.iter().chain(&r1).all(|&x| x == 0), "ring slots cleared, step {step}");
                let (mut q0, mut q1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
                let mask_portable =
                    full_block_2ch_from_ring_portable(&c, &mut portable, &mut q0, &mut q1, inv_scale, extra.as_deref());
                #[cfg(target_arch = "x86_64")]
                if crate::avx2::has_avx2() {
                    let (mut a0, mut a1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
                    // SAFETY: AVX2 checked just above; every slice holds LANES entries or more.
                    let m = unsafe {
                        full_block_2ch_from_ring_avx2(&c, &mut avx2, &mut a0, &mut a1, inv_scale, extra.as_deref())
                    };
                    assert_eq!(m, out.spikes, "avx2, step {step}");
                    assert!(a0.iter().chain(&a1).all(|&x| x == 0), "ring slots cleared, step {step}");
                    assert!(avx2.iter().zip(&general).all(|(a, b)| a.to_bits() == b.to_bits()), "avx2, step {step}");
                }
                assert_eq!(mask, out.spikes, "step {step}");
                assert_eq!(mask_portable, out.spikes, "step {step}");
                spikes += mask.count_ones();
                kept |= general[2 * LANES..].iter().any(|&b| b != 0.0);
                for (x, y) in [(&fused, &general), (&portable, &general)] {
                    assert!(x.iter().zip(y.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "step {step}");
                }
            }
            assert!(spikes > 100 && spikes < 400 * 64 / 2, "lanes must fire and rest: {spikes} spikes");
            assert_eq!(kept, keep, "refractory input kept exactly when asked");
        }
    }
}
