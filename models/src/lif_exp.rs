//! Leaky integrate-and-fire neuron with exponentially decaying current synapses, integrated exactly
//! (the propagator method of Rotter & Diesmann 1999, Biol. Cybern. 81:381), as NEST's `iaf_psc_exp`
//! (Tsodyks, Uziel & Markram 2000 synapse kinetics).
//!
//! `C_m dV/dt = -(C_m/τ_m)(V - E_L) + Σ_c I_c + I_e + I_ext`,  `dI_c/dt = -I_c / τ_c`,
//! a synaptic event of weight `w` (pA) makes `I_c += w`. After a spike `V = V_reset` for `t_ref`.
//!
//! Step order (as NEST's `iaf_psc_exp::update`): the membrane is propagated with the currents of the
//! previous step, then currents decay and this step's synaptic input is added, then the threshold is
//! tested. Input arriving at step `s` therefore first moves `V` at step `s + 1`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check, fired_mask, record_spikes};

/// Parameters (units in field names). Defaults are NEST 3 `iaf_psc_exp` defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifExpParams {
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
    /// Synaptic time constant of excitatory channels (ms).
    pub tau_syn_ex: f64,
    /// Synaptic time constant of inhibitory channels (ms).
    pub tau_syn_in: f64,
    /// Per-receptor overrides of the synaptic time constant (ms), by receptor name.
    pub tau_syn: BTreeMap<String, f64>,
}

impl Default for LifExpParams {
    fn default() -> Self {
        Self {
            c_m: 250.0,
            tau_m: 10.0,
            e_l: -70.0,
            v_th: -55.0,
            v_reset: -70.0,
            t_ref: 2.0,
            i_e: 0.0,
            tau_syn_ex: 2.0,
            tau_syn_in: 2.0,
            tau_syn: BTreeMap::new(),
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
    /// Per channel: exp(-h/τ_c)
    pub p11: Vec<f64>,
    /// Per channel: response of V after one step to a unit synaptic current (mV/pA)
    pub p21: Vec<f64>,
    pub channel_names: Vec<String>,
}

/// Exact propagator from synaptic current to membrane potential over one step `h` (Rotter & Diesmann
/// 1999, eq. 8 generalised), including the limit τ_syn → τ_m.
pub fn propagator_syn_to_v(tau_syn: f64, tau_m: f64, c_m: f64, h: f64) -> f64 {
    let d = tau_m - tau_syn;
    if (d / tau_m).abs() < 1e-9 {
        h / c_m * (-h / tau_m).exp()
    } else {
        tau_syn * tau_m / (c_m * d) * ((-h / tau_m).exp() - (-h / tau_syn).exp())
    }
}

pub fn compile(p: &LifExpParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    check("c_m", p.c_m, p.c_m > 0.0, "capacitance must be positive (pF)")?;
    check("tau_m", p.tau_m, p.tau_m > 0.0, "membrane time constant must be positive (ms)")?;
    check("e_l", p.e_l, true, "must be finite (mV)")?;
    check("v_th", p.v_th, p.v_th > p.v_reset, "threshold must lie above v_reset (mV)")?;
    check("v_reset", p.v_reset, true, "must be finite (mV)")?;
    check("t_ref", p.t_ref, p.t_ref >= 0.0, "refractory period must be >= 0 (ms)")?;
    check("i_e", p.i_e, true, "must be finite (pA)")?;
    check("tau_syn_ex", p.tau_syn_ex, p.tau_syn_ex > 0.0, "must be positive (ms)")?;
    check("tau_syn_in", p.tau_syn_in, p.tau_syn_in > 0.0, "must be positive (ms)")?;
    let mut p11 = Vec::new();
    let mut p21 = Vec::new();
    for c in channels {
        let tau = match p.tau_syn.get(&c.name) {
            Some(&t) => t,
            None if c.excitatory => p.tau_syn_ex,
            None => p.tau_syn_in,
        };
        check(&format!("tau_syn.{}", c.name), tau, tau > 0.0, "must be positive (ms)")?;
        p11.push((-h / tau).exp());
        p21.push(propagator_syn_to_v(tau, p.tau_m, p.c_m, h));
    }
    for name in p.tau_syn.keys() {
        if !channels.iter().any(|c| &c.name == name) {
            let known: Vec<_> = channels.iter().map(|c| c.name.as_str()).collect();
            return Err(ModelError::BadParameter {
                field: format!("tau_syn.{name}"),
                value: p.tau_syn[name],
                why: format!("no receptor channel `{name}` in this network (channels: {})", known.join(", ")),
            });
        }
    }
    let p22 = (-h / p.tau_m).exp();
    Ok(Compiled {
        e_l: p.e_l,
        theta: p.v_th - p.e_l,
        reset: p.v_reset - p.e_l,
        i_e: p.i_e,
        refractory_steps: (p.t_ref / h).round() as u32,
        p22,
        p20: p.tau_m / p.c_m * (1.0 - p22),
        p11,
        p21,
        channel_names: channels.iter().map(|c| c.name.clone()).collect(),
    })
}

/// State order: `V_m` (mV), `refractory` (steps left), then `I_syn_<channel>` (pA) per channel.
pub fn state_names(c: &Compiled) -> Vec<String> {
    let mut v = vec!["V_m".to_string(), "refractory".to_string()];
    v.extend(c.channel_names.iter().map(|n| format!("I_syn_{n}")));
    v
}

pub fn initial_state(c: &Compiled) -> Vec<f64> {
    let mut v = vec![c.e_l, 0.0];
    v.extend(c.p11.iter().map(|_| 0.0));
    v
}

pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let set0 = input.param_set[0];
    if input.n == LANES && sets[set0 as usize].p11.len() == 2 && input.param_set[..LANES].iter().all(|&s| s == set0) {
        return update_full_block_2ch(&sets[set0 as usize], state, input, out);
    }
    update_lanes(sets, state, input, out);
}

/// The general update: any parameter sets, channels and lane count, one lane after another.
fn update_lanes(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state.split_at_mut(LANES);
    let (refr, isyn) = rest.split_at_mut(LANES);
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let mut y = vm[l] - c.e_l;
        if refr[l] > 0.0 {
            refr[l] -= 1.0;
        } else {
            y = y * c.p22 + (c.i_e + input.i_ext[l]) * c.p20;
            for ch in 0..c.p11.len() {
                y += isyn[ch * LANES + l] * c.p21[ch];
            }
        }
        for ch in 0..c.p11.len() {
            let i = &mut isyn[ch * LANES + l];
            *i = *i * c.p11[ch] + input.syn[ch * LANES + l];
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

/// [`update_block`] for the common case of a full block of one parameter set with two receptor channels:
/// the same operations in the same order per lane (bit-identical results), written without per-lane
/// lookups or branches so that the compiler can vectorise it — with AVX2 when the CPU has it (checked at
/// run time; separate IEEE multiplies and adds either way, never fused, so the results do not depend on
/// the instruction set).
fn update_full_block_2ch(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { full_block_2ch_avx2(c, state, input, out) };
    }
    full_block_2ch(c, state, input, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn full_block_2ch_avx2(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    full_block_2ch(c, state, input, out)
}

#[inline(always)]
fn full_block_2ch(c: &Compiled, state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, rest) = state[..(2 + 2) * LANES].split_at_mut(LANES);
    let (refr, isyn) = rest.split_at_mut(LANES);
    let (i0, i1) = isyn.split_at_mut(LANES);
    let (s0, s1) = (&input.syn[..LANES], &input.syn[LANES..2 * LANES]);
    let (p11a, p11b, p21a, p21b) = (c.p11[0], c.p11[1], c.p21[0], c.p21[1]);
    let refractory = c.refractory_steps as f64;
    let mut fired = [0u8; LANES];
    for l in 0..LANES {
        let y0 = vm[l] - c.e_l;
        let integrated = y0 * c.p22 + (c.i_e + input.i_ext[l]) * c.p20 + i0[l] * p21a + i1[l] * p21b;
        let is_refractory = refr[l] > 0.0;
        let y = if is_refractory { y0 } else { integrated };
        let r = if is_refractory { refr[l] - 1.0 } else { refr[l] };
        i0[l] = i0[l] * p11a + s0[l];
        i1[l] = i1[l] * p11b + s1[l];
        let spike = y >= c.theta || (input.forced >> l) & 1 == 1;
        fired[l] = spike as u8;
        refr[l] = if spike { refractory } else { r };
        vm[l] = if spike { c.reset } else { y } + c.e_l;
    }
    record_spikes(fired_mask(&fired), out);
}

/// One full block of one parameter set with two receptor channels whose input is the delay ring, plus at most
/// one additive term per channel and lane (`extra`, channel-major `[2 * LANES]`: a Poisson drive's
/// `count * weight`), and nothing else (no currents, gap junctions, forced spikes or channel gains): each lane's
/// fixed-point ring sums are converted (`x as f64 * inv_scale`) and cleared, the extra term added, and the
/// neurons updated, in one pass over the block. The same IEEE operations in the same order as the ring gather,
/// the stimulus sum and [`update_block`] with zero external current (bit-identical, tested), without the
/// intermediate buffers. Returns the spike mask (bit `l` = lane `l`).
///
/// With AVX-512 (F, DQ, VL; checked at run time) eight lanes per instruction, comparisons straight into mask
/// registers; separate multiplies and adds, never fused, as everywhere.
pub fn update_full_block_2ch_from_ring(
    c: &Compiled,
    state: &mut [f64],
    ring0: &mut [i64],
    ring1: &mut [i64],
    inv_scale: f64,
    extra: Option<&[f64]>,
) -> u64 {
    assert!(state.len() >= 4 * LANES && ring0.len() >= LANES && ring1.len() >= LANES && c.p11.len() == 2);
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
    update_full_block_2ch(c, state, &input, &mut out);
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
    let (vm, rest) = state[..4 * LANES].split_at_mut(LANES);
    let (refr, isyn) = rest.split_at_mut(LANES);
    let (i0, i1) = isyn.split_at_mut(LANES);
    let set1 = |x: f64| _mm512_set1_pd(x);
    let (e_l, p22, theta, reset) = (set1(c.e_l), set1(c.p22), set1(c.theta), set1(c.reset));
    // `(i_e + i_ext) * p20` with i_ext = +0.0 in every lane, as the general path computes it.
    let drive = set1((c.i_e + 0.0) * c.p20);
    let (p11a, p11b, p21a, p21b) = (set1(c.p11[0]), set1(c.p11[1]), set1(c.p21[0]), set1(c.p21[1]));
    let (refractory, one, zero, scale) = (set1(c.refractory_steps as f64), set1(1.0), set1(0.0), set1(inv_scale));
    let mut mask = 0u64;
    for k in (0..LANES).step_by(8) {
        // SAFETY: k + 8 <= LANES and every slice holds at least LANES entries (asserted by the caller).
        unsafe {
            let (pv, pr, pi0, pi1) =
                (vm.as_mut_ptr().add(k), refr.as_mut_ptr().add(k), i0.as_mut_ptr().add(k), i1.as_mut_ptr().add(k));
            let y0 = _mm512_sub_pd(_mm512_loadu_pd(pv), e_l);
            let (a0, a1) = (_mm512_loadu_pd(pi0), _mm512_loadu_pd(pi1));
            let integrated = _mm512_add_pd(
                _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(y0, p22), drive), _mm512_mul_pd(a0, p21a)),
                _mm512_mul_pd(a1, p21b),
            );
            let r = _mm512_loadu_pd(pr);
            let is_refractory = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(r, zero);
            let y = _mm512_mask_blend_pd(is_refractory, integrated, y0);
            let r = _mm512_mask_sub_pd(r, is_refractory, r, one);
            let (s0, s1) =
                crate::ring_input::two_channels_avx512(ring0.as_mut_ptr(), ring1.as_mut_ptr(), k, scale, extra);
            _mm512_storeu_pd(pi0, _mm512_add_pd(_mm512_mul_pd(a0, p11a), s0));
            _mm512_storeu_pd(pi1, _mm512_add_pd(_mm512_mul_pd(a1, p11b), s1));
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
    let (vm, rest) = state[..4 * LANES].split_at_mut(LANES);
    let (refr, isyn) = rest.split_at_mut(LANES);
    let (i0, i1) = isyn.split_at_mut(LANES);
    let set1 = |x: f64| _mm256_set1_pd(x);
    let (e_l, p22, theta, reset) = (set1(c.e_l), set1(c.p22), set1(c.theta), set1(c.reset));
    // `(i_e + i_ext) * p20` with i_ext = +0.0 in every lane, as the general path computes it.
    let drive = set1((c.i_e + 0.0) * c.p20);
    let (p11a, p11b, p21a, p21b) = (set1(c.p11[0]), set1(c.p11[1]), set1(c.p21[0]), set1(c.p21[1]));
    let (refractory, one, zero, scale) = (set1(c.refractory_steps as f64), set1(1.0), set1(0.0), set1(inv_scale));
    let mut mask = 0u64;
    for k in (0..LANES).step_by(4) {
        // SAFETY: k + 4 <= LANES and every slice holds at least LANES entries (asserted by the caller).
        unsafe {
            let (pv, pr, pi0, pi1) =
                (vm.as_mut_ptr().add(k), refr.as_mut_ptr().add(k), i0.as_mut_ptr().add(k), i1.as_mut_ptr().add(k));
            let y0 = _mm256_sub_pd(_mm256_loadu_pd(pv), e_l);
            let (a0, a1) = (_mm256_loadu_pd(pi0), _mm256_loadu_pd(pi1));
            let integrated = _mm256_add_pd(
                _mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(y0, p22), drive), _mm256_mul_pd(a0, p21a)),
                _mm256_mul_pd(a1, p21b),
            );
            let r = _mm256_loadu_pd(pr);
            let is_refractory = _mm256_cmp_pd::<_CMP_GT_OQ>(r, zero);
            let y = _mm256_blendv_pd(integrated, y0, is_refractory);
            let r = _mm256_blendv_pd(r, _mm256_sub_pd(r, one), is_refractory);
            let (s0, s1) =
                crate::ring_input::two_channels_avx2(ring0.as_mut_ptr(), ring1.as_mut_ptr(), k, scale, extra);
            _mm256_storeu_pd(pi0, _mm256_add_pd(_mm256_mul_pd(a0, p11a), s0));
            _mm256_storeu_pd(pi1, _mm256_add_pd(_mm256_mul_pd(a1, p11b), s1));
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
    use crate::testing::{Drive, run_single};

    /// The vectorisable full-block path equals the general lane-by-lane update bit for bit, including
    /// refractory lanes, forced lanes, spikes during refractoriness and negative inputs.
    #[test]
    fn full_block_path_equals_general_update() {
        use crate::rng::{CounterRng, Stream};
        let c = compile(&LifExpParams { t_ref: 0.5, ..Default::default() }, &channels(), 0.1).unwrap();
        let sets = vec![c];
        let rng = CounterRng::new(9, Stream::Trial);
        let mut fast = vec![0.0; 4 * LANES];
        for l in 0..LANES {
            fast[l] = -70.0 + 25.0 * rng.uniform(l as u32, 0, 0);
            fast[LANES + l] = if l % 5 == 0 { 3.0 } else { 0.0 };
        }
        let mut slow = fast.clone();
        let param_set = [0u16; LANES];
        for step in 0..400u64 {
            let syn: Vec<f64> = (0..2 * LANES).map(|k| 600.0 * (rng.uniform(k as u32, step, 1) - 0.45)).collect();
            let i_ext: Vec<f64> = (0..LANES).map(|l| 50.0 * rng.uniform(l as u32, step, 2)).collect();
            let forced = if step % 7 == 0 { 0x0101_0000_1111_0001u64 } else { 0 };
            let input = BlockInput { n: LANES, param_set: &param_set, syn: &syn, i_ext: &i_ext, forced, gap: None };
            let (mut a, mut b) = (BlockOutput::default(), BlockOutput::default());
            update_block(&sets, &mut fast, &input, &mut a);
            update_lanes(&sets, &mut slow, &input, &mut b);
            assert_eq!(a.spikes, b.spikes, "step {step}");
            assert!(fast.iter().zip(&slow).all(|(x, y)| x.to_bits() == y.to_bits()), "step {step}");
        }
    }

    /// The fused ring-to-spikes pass (AVX-512 where the CPU has it, else the portable one) equals the ring
    /// gather followed by the general lane-by-lane update, bit for bit, with refractory lanes, spikes during
    /// refractoriness, negative and large fixed-point sums, with and without an extra term (zeros of both signs
    /// among them), and the ring slots cleared.
    #[test]
    fn fused_ring_pass_equals_gather_then_general_update() {
        use crate::rng::{CounterRng, Stream};
        let c = compile(&LifExpParams { t_ref: 0.5, i_e: 37.5, ..Default::default() }, &channels(), 0.1).unwrap();
        let sets = vec![c];
        let rng = CounterRng::new(11, Stream::Trial);
        let mut fused = vec![0.0; 4 * LANES];
        for l in 0..LANES {
            fused[l] = -70.0 + 25.0 * rng.uniform(l as u32, 0, 0);
            fused[LANES + l] = if l % 5 == 0 { 3.0 } else { 0.0 };
        }
        let (mut general, mut portable) = (fused.clone(), fused.clone());
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut, unused_variables))]
        let mut avx2 = fused.clone();
        let inv_scale = 1.0 / (1u64 << 40) as f64;
        let param_set = [0u16; LANES];
        let mut spikes = 0;
        for step in 0..400u64 {
            let ring: Vec<i64> =
                (0..2 * LANES).map(|k| ((rng.uniform(k as u32, step, 1) - 0.45) * 1.2e15) as i64).collect();
            // Every other step an extra term per lane (a Poisson drive's count × weight, 0 for most lanes).
            let extra: Option<Vec<f64>> = (step % 2 == 1).then(|| {
                let weight = |k: usize| if k < LANES { 87.5 } else { -87.5 };
                (0..2 * LANES).map(|k| (rng.uniform(k as u32, step, 3) * 4.0).floor() * weight(k)).collect()
            });
            let mut syn: Vec<f64> = ring.iter().map(|&x| x as f64 * inv_scale).collect();
            if let Some(e) = &extra {
                syn.iter_mut().zip(e).for_each(|(s, e)| *s += e);
            }
            let input =
                BlockInput { n: LANES, param_set: &param_set, syn: &syn, i_ext: &[0.0; LANES], forced: 0, gap: None };
            let mut out = BlockOutput::default();
            update_lanes(&sets, &mut general, &input, &mut out);
            let (mut r0, mut r1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
            let mask =
                update_full_block_2ch_from_ring(&sets[0], &mut fused, &mut r0, &mut r1, inv_scale, extra.as_deref());
            assert!(r0.iter().chain(&r1).all(|&x| x == 0), "ring slots cleared, step {step}");
            let (mut q0, mut q1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
            let mask_portable = full_block_2ch_from_ring_portable(
                &sets[0],
                &mut portable,
                &mut q0,
                &mut q1,
                inv_scale,
                extra.as_deref(),
            );
            #[cfg(target_arch = "x86_64")]
            if crate::avx2::has_avx2() {
                let (mut a0, mut a1) = (ring[..LANES].to_vec(), ring[LANES..].to_vec());
                // SAFETY: AVX2 checked just above; every slice holds LANES entries or more.
                let m = unsafe {
                    full_block_2ch_from_ring_avx2(&sets[0], &mut avx2, &mut a0, &mut a1, inv_scale, extra.as_deref())
                };
                assert_eq!(m, out.spikes, "avx2, step {step}");
                assert!(a0.iter().chain(&a1).all(|&x| x == 0), "ring slots cleared, step {step}");
                assert!(avx2.iter().zip(&general).all(|(a, b)| a.to_bits() == b.to_bits()), "avx2, step {step}");
            }
            assert_eq!(mask, out.spikes, "step {step}");
            assert_eq!(mask_portable, out.spikes, "step {step}");
            spikes += mask.count_ones();
            for (x, y) in [(&fused, &general), (&portable, &general)] {
                assert!(x.iter().zip(y.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "step {step}");
            }
        }
        assert!(spikes > 100 && spikes < 400 * 64 / 2, "the drive makes lanes fire and rest: {spikes} spikes");
    }

    use crate::testing::exc_inh_channels as channels;

    /// Constant suprathreshold current: time to first spike t* = τ ln(R I / (R I − θ)) from V = E_L and the
    /// rate 1 / (t_ref + τ ln((R I − V_reset) / (R I − θ))) (voltages relative to E_L, R = τ/C).
    #[test]
    fn constant_current_matches_closed_form() {
        let p = LifExpParams { i_e: 500.0, ..Default::default() };
        let h = 0.01;
        let c = compile(&p, &channels(), h).unwrap();
        let spikes = run_single(&crate::CompiledModel::LifExp(vec![c]), 2, 200_000, &Drive::none());
        let ri = p.tau_m / p.c_m * p.i_e; // 20 mV
        let theta = p.v_th - p.e_l; // 15 mV
        let t_first = p.tau_m * (ri / (ri - theta)).ln();
        let t_spike0 = (spikes[0] + 1) as f64 * h;
        assert!((t_spike0 - t_first).abs() <= h, "first spike {t_spike0} ms vs {t_first} ms");
        let isi = p.t_ref + p.tau_m * ((ri - (p.v_reset - p.e_l)) / (ri - theta)).ln();
        let measured = (spikes[spikes.len() - 1] - spikes[0]) as f64 * h / (spikes.len() - 1) as f64;
        // grid: each interval is rounded up to whole steps, at most one step longer
        assert!(measured >= isi - 1e-9 && measured <= isi + h, "ISI {measured} vs {isi}");
    }

    /// PSP of one exponential current: V(t) = w τ_s τ_m / (C (τ_m − τ_s)) (e^{−t/τ_m} − e^{−t/τ_s}),
    /// peak at t_max = τ_s τ_m / (τ_m − τ_s) ln(τ_m/τ_s).
    #[test]
    fn psp_peak_matches_closed_form() {
        let p = LifExpParams { v_th: 1000.0, tau_syn_ex: 2.0, ..Default::default() };
        let h = 0.01;
        let c = compile(&p, &channels(), h).unwrap();
        let model = crate::CompiledModel::LifExp(vec![c]);
        let w = 100.0;
        let trace = crate::testing::trace_v(&model, 2, 10_000, &Drive::single_input(0, w));
        let (ts, tm, cm) = (p.tau_syn_ex, p.tau_m, p.c_m);
        let t_max = ts * tm / (tm - ts) * (tm / ts).ln();
        let v = |t: f64| w * ts * tm / (cm * (tm - ts)) * ((-t / tm).exp() - (-t / ts).exp());
        // trace[k] is V after k steps; input added during step 0 first moves V in step 1, so
        // trace[k] is the closed form at (k - 1) h.
        let (k_peak, v_peak) = trace
            .iter()
            .enumerate()
            .map(|(k, &v)| (k, v - p.e_l))
            .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        let t_peak = (k_peak as f64 - 1.0) * h;
        assert!((t_peak - t_max).abs() <= h, "peak time {t_peak} vs {t_max}");
        assert!((v_peak - v(t_max)).abs() < 1e-4, "peak {v_peak} vs {}", v(t_max));
        for k in [5usize, 100, 400, 2000] {
            assert!((trace[k + 1] - p.e_l - v(k as f64 * h)).abs() < 1e-9, "V at step {k}");
        }
    }
}
