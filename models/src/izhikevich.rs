//! Izhikevich's simple model (Izhikevich 2003, IEEE Trans Neural Netw 14:1569):
//!
//! `dv/dt = 0.04 v² + 5 v + 140 − u + I`,  `du/dt = a (b v − u)`;  if `v ≥ v_peak`: `v = c`, `u += d`.
//!
//! Units as in the paper: `v` in mV, `t` in ms, `u` and `I` in mV/ms (the model has no capacitance).
//! The external current `i_ext` (pA) and the bias `i_e` are taken as `I` directly, i.e. as if `C = 1 pF`
//! (NEST's `izhikevich` does the same: "I_e, pA, R = 1"); scale weights of currents accordingly.
//! Synaptic input is a voltage jump (mV, sign carried by the weight) added to `v` after the step's
//! integration and before the threshold test, summed over all receptor channels, as NEST's
//! `izhikevich`. (In the paper's network code the summed weights are added to `I` for one 1 ms step,
//! which moves `v` by about the weight in mV; the jump is that effect without the step-size dependence.)
//!
//! Integration: forward Euler on `n = ceil(h / max_substep)` equal substeps per step, `v` and `u` both
//! from the values at the start of the substep (NEST's default `consistent_integration` scheme; the
//! paper's two 0.5 ms half steps for `v` followed by `u` from the new `v` are not reproduced). The
//! threshold is tested after every substep and the reset applied there, so the spike upswing cannot
//! overflow; at most one spike per step is reported. Default `max_substep = 0.1 ms`: at h = 0.1 ms this
//! is one Euler step, the same arithmetic as NEST's default scheme (identical spike times for an RS cell
//! at I = 10 over 1 s, checked against NEST 3.10), at h = 1 ms ten substeps. For regular spiking the
//! firing rate is within 1.5 % of a 2 µs RK4 reference (tested). A forced lane spikes and resets
//! (`v = c`, `u += d`) at the end of the step, unless it already crossed in that step.

use serde::{Deserialize, Serialize};

use crate::model::{BlockInput, BlockOutput, LANES, ModelError, ReceptorChannel, check};

/// Parameters. Defaults: regular spiking (RS) cell of Izhikevich 2003, Fig. 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IzhikevichParams {
    /// Time scale of the recovery variable `u` (1/ms).
    pub a: f64,
    /// Sensitivity of `u` to subthreshold `v` (dimensionless; (mV/ms)/mV).
    pub b: f64,
    /// After-spike reset of `v` (mV).
    pub c: f64,
    /// After-spike increment of `u` (mV/ms).
    pub d: f64,
    /// Spike cut-off: a spike is emitted when `v ≥ v_peak` (mV).
    pub v_peak: f64,
    /// Constant bias current `I` (mV/ms, i.e. pA with C = 1 pF).
    pub i_e: f64,
    /// Longest forward-Euler substep (ms); each step is split into `ceil(h / max_substep)` equal substeps.
    pub max_substep: f64,
}

impl Default for IzhikevichParams {
    fn default() -> Self {
        Self { a: 0.02, b: 0.2, c: -65.0, d: 8.0, v_peak: 30.0, i_e: 0.0, max_substep: 0.1 }
    }
}

/// Constants for one parameter set and one `dt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub v_peak: f64,
    pub i_e: f64,
    /// Substeps per step and their length (ms).
    pub n_sub: u32,
    pub h_sub: f64,
    /// Initial state (`v`, `u`): the lower fixed point for `I = i_e` (the resting state; for RS it is
    /// stable below I ≈ 3.8) if it exists, else `(c, b c)` as in the paper's network code.
    pub v0: f64,
    pub u0: f64,
    pub n_channels: usize,
}

/// Lower fixed point of the model for constant current `i`: with `u = b v`,
/// `0.04 v² + (5 − b) v + 140 + i = 0`, which has a solution iff `(5 − b)² ≥ 0.16 (140 + i)`.
pub fn resting_point(b: f64, i: f64) -> Option<(f64, f64)> {
    let disc = (5.0 - b) * (5.0 - b) - 0.16 * (140.0 + i);
    (disc >= 0.0).then(|| {
        let v = (-(5.0 - b) - disc.sqrt()) / 0.08;
        (v, b * v)
    })
}

pub fn compile(p: &IzhikevichParams, channels: &[ReceptorChannel], h: f64) -> Result<Compiled, ModelError> {
    check("a", p.a, true, "must be finite (1/ms)")?;
    check("b", p.b, true, "must be finite (dimensionless)")?;
    check("c", p.c, p.c < p.v_peak, "reset must lie below v_peak (mV)")?;
    check("d", p.d, true, "must be finite (mV/ms)")?;
    check("v_peak", p.v_peak, true, "must be finite (mV)")?;
    check("i_e", p.i_e, true, "must be finite (pA, taken as mV/ms)")?;
    check("max_substep", p.max_substep, p.max_substep > 0.0, "must be positive (ms)")?;
    let n_sub = (h / p.max_substep * (1.0 - 1e-12)).ceil().max(1.0);
    check("max_substep", p.max_substep, n_sub <= 1e6, "needs more than 10^6 substeps per step (ms)")?;
    let (v0, u0) = resting_point(p.b, p.i_e).unwrap_or((p.c, p.b * p.c));
    Ok(Compiled {
        a: p.a,
        b: p.b,
        c: p.c,
        d: p.d,
        v_peak: p.v_peak,
        i_e: p.i_e,
        n_sub: n_sub as u32,
        h_sub: h / n_sub,
        v0,
        u0,
        n_channels: channels.len(),
    })
}

/// State order: `V_m` (mV), `U_m` (recovery variable, mV/ms).
pub fn state_names(_c: &Compiled) -> Vec<String> {
    vec!["V_m".to_string(), "U_m".to_string()]
}

pub fn initial_state(c: &Compiled) -> Vec<f64> {
    vec![c.v0, c.u0]
}

pub fn update_block(sets: &[Compiled], state: &mut [f64], input: &BlockInput, out: &mut BlockOutput) {
    let (vm, um) = state.split_at_mut(LANES);
    for l in 0..input.n {
        let c = &sets[input.param_set[l] as usize];
        let i = c.i_e + input.i_ext[l];
        let (mut v, mut u) = (vm[l], um[l]);
        let mut spiked = false;
        for _ in 0..c.n_sub {
            let dv = 0.04 * v * v + 5.0 * v + 140.0 - u + i;
            let du = c.a * (c.b * v - u);
            v += c.h_sub * dv;
            u += c.h_sub * du;
            if v >= c.v_peak {
                v = c.c;
                u += c.d;
                spiked = true;
            }
        }
        for ch in 0..c.n_channels {
            v += input.syn[ch * LANES + l];
        }
        let forced = (input.forced >> l) & 1 == 1;
        if v >= c.v_peak || (forced && !spiked) {
            v = c.c;
            u += c.d;
            spiked = true;
        }
        if spiked {
            out.spikes |= 1 << l;
            out.activity[l] = 1.0;
        }
        vm[l] = v;
        um[l] = u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledModel;
    use crate::testing::{Drive, run_single, run_with};

    fn channels() -> Vec<ReceptorChannel> {
        vec![ReceptorChannel { name: "exc".into(), excitatory: true }]
    }

    fn model(p: &IzhikevichParams, h: f64) -> CompiledModel {
        CompiledModel::Izhikevich(vec![compile(p, &channels(), h).unwrap()])
    }

    /// Independent reference: classical RK4 with step `hs`, same reset rule, started from the same state.
    fn rk4_spike_times(p: &IzhikevichParams, i: f64, t_end: f64, hs: f64) -> Vec<f64> {
        let f = |v: f64, u: f64| (0.04 * v * v + 5.0 * v + 140.0 - u + i, p.a * (p.b * v - u));
        let (mut v, mut u) = resting_point(p.b, p.i_e).unwrap();
        let mut out = Vec::new();
        let n = (t_end / hs).round() as usize;
        for k in 0..n {
            let k1 = f(v, u);
            let k2 = f(v + hs / 2.0 * k1.0, u + hs / 2.0 * k1.1);
            let k3 = f(v + hs / 2.0 * k2.0, u + hs / 2.0 * k2.1);
            let k4 = f(v + hs * k3.0, u + hs * k3.1);
            v += hs / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            u += hs / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
            if v >= p.v_peak {
                v = p.c;
                u += p.d;
                out.push((k + 1) as f64 * hs);
            }
        }
        out
    }

    /// Mean rate (Hz) over the spikes after `skip` ms (tonic regime, after the initial adaptation).
    fn rate(times: &[f64], skip: f64) -> f64 {
        let t: Vec<f64> = times.iter().copied().filter(|&t| t > skip).collect();
        1000.0 * (t.len() - 1) as f64 / (t[t.len() - 1] - t[0])
    }

    fn model_spike_times(p: &IzhikevichParams, h: f64, i: f64, t_end: f64) -> Vec<f64> {
        let steps = (t_end / h).round() as u64;
        run_single(&model(p, h), 1, steps, &Drive::current(i)).iter().map(|&s| (s + 1) as f64 * h).collect()
    }

    /// F–I points of the RS cell against RK4 with a 2 µs step: the default scheme (one Euler step of
    /// 0.1 ms) within 1.5 %, 0.01 ms substeps within 0.3 %; the same number of spikes in 1 s; and the
    /// F–I curve is increasing.
    #[test]
    fn fi_curve_matches_rk4_reference_and_is_monotonic() {
        let p = IzhikevichParams::default();
        let fine = IzhikevichParams { max_substep: 0.01, ..Default::default() };
        let mut last = 0.0;
        for i in [5.0, 10.0, 15.0, 20.0, 30.0] {
            let reference = rk4_spike_times(&p, i, 1000.0, 0.002);
            let r_ref = rate(&reference, 200.0);
            let coarse = model_spike_times(&p, 0.1, i, 1000.0);
            let r_coarse = rate(&coarse, 200.0);
            let r_fine = rate(&model_spike_times(&fine, 0.1, i, 1000.0), 200.0);
            // h = 1 ms (the paper's step) with ten substeps is the same scheme as h = 0.1 ms.
            let r_paper_step = rate(&model_spike_times(&p, 1.0, i, 1000.0), 200.0);
            assert!((r_coarse / r_ref - 1.0).abs() < 0.015, "I={i}: {r_coarse} Hz vs RK4 {r_ref} Hz");
            assert!((r_fine / r_ref - 1.0).abs() < 0.003, "I={i}: {r_fine} Hz vs RK4 {r_ref} Hz");
            assert!((r_paper_step / r_ref - 1.0).abs() < 0.03, "I={i}: h = 1 ms {r_paper_step} Hz vs {r_ref}");
            assert!((coarse.len() as i64 - reference.len() as i64).abs() <= 1, "I={i}: spike count");
            assert!(r_ref > last, "F–I must increase: {r_ref} Hz at I={i} after {last} Hz");
            last = r_ref;
        }
    }

    /// RS with I = 10 fires tonic regular spikes with spike-frequency adaptation (Izhikevich 2003, Fig. 2
    /// "regular spiking"): the first ISI is much shorter than the following ones, the late ISIs are
    /// constant (a periodic orbit), and the late rate agrees with the RK4 reference within 1.5 %.
    #[test]
    fn regular_spiking_is_tonic_with_adaptation() {
        let t = model_spike_times(&IzhikevichParams::default(), 0.1, 10.0, 2000.0);
        let isi: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(isi.len() > 30);
        assert!(isi[0] < 0.5 * isi[1], "adapting ISIs {:?}", &isi[..4]);
        let late = &isi[isi.len() - 10..];
        let (lo, hi) = late.iter().fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)));
        assert!(hi - lo <= 0.1 + 1e-9, "late ISIs vary: {late:?}");
        let r = 1000.0 * late.len() as f64 / late.iter().sum::<f64>();
        let r_ref = rate(&rk4_spike_times(&IzhikevichParams::default(), 10.0, 2000.0, 0.002), 1000.0);
        assert!((r / r_ref - 1.0).abs() < 0.015, "tonic rate {r} Hz vs RK4 {r_ref} Hz");
    }

    /// Threshold current. With `u = b v`, a resting point exists iff I ≤ (5 − b)²/0.16 − 140 = 4.0
    /// (saddle-node), but for RS it loses stability earlier, at the (subcritical) Andronov–Hopf point where
    /// the Jacobian's trace 0.08 v + 5 − a vanishes: v_H = (a − 5)/0.08 = −62.25 mV,
    /// I_H = −(0.04 v_H² + (5 − b) v_H + 140) = 3.7975. Started at the resting point of I (as `i_e`) and
    /// nudged by 0.1 mV: no spike below I_H; spikes above I_H; above 4.0 there is no resting point and
    /// the cell fires from any start.
    #[test]
    fn rheobase_matches_bifurcation_analysis() {
        let p = IzhikevichParams::default();
        let (a, b) = (p.a, p.b);
        let i_sn = (5.0 - b) * (5.0 - b) / 0.16 - 140.0;
        assert!((i_sn - 4.0).abs() < 1e-12);
        let v_h = (a - 5.0) / 0.08;
        let i_h = -(0.04 * v_h * v_h + (5.0 - b) * v_h + 140.0);
        assert!((i_h - 3.7975).abs() < 1e-9);
        let nudge = Drive::single_input(0, 0.1);
        let steps = 50_000; // 5 s
        for (i, fires) in [(i_h - 0.02, false), (i_h + 0.02, true), (3.95, true), (i_sn + 0.02, true)] {
            let q = IzhikevichParams { i_e: i, ..p.clone() };
            let n = run_single(&model(&q, 0.1), 1, steps, &nudge).len();
            assert_eq!(n > 0, fires, "I = {i}: {n} spikes");
            if fires {
                assert!(n > 10, "I = {i}: repetitive firing expected, got {n} spikes");
            }
        }
        // Without a resting point the initial state falls back to (c, b c).
        let c = compile(&IzhikevichParams { i_e: 4.02, ..p.clone() }, &channels(), 0.1).unwrap();
        assert_eq!((c.v0, c.u0), (p.c, p.b * p.c));
        // Below I_H the resting point is the initial state and is a fixed point of the Euler map.
        let q = IzhikevichParams { i_e: 3.0, ..p };
        let c = compile(&q, &channels(), 0.1).unwrap();
        let mut last = Vec::new();
        run_with(&model(&q, 0.1), 1, 1000, &Drive::none(), |_, st, _| last = st.to_vec());
        assert!((last[0] - c.v0).abs() < 1e-9 && (last[1] - c.u0).abs() < 1e-9);
    }

    /// A forced spike resets exactly as a threshold crossing (v = c, u += d); synaptic input is a voltage
    /// jump applied after the step's integration.
    #[test]
    fn forced_spike_and_synaptic_jump() {
        let p = IzhikevichParams::default();
        let m = model(&p, 0.1);
        let c = compile(&p, &channels(), 0.1).unwrap();
        let mut states = Vec::new();
        let drive = Drive { forced: vec![0], inputs: vec![(5, 0, 2.0)], ..Default::default() };
        let mut spikes = Vec::new();
        run_with(&m, 1, 6, &drive, |s, st, out| {
            states.push(st.to_vec());
            if out.spikes & 1 == 1 {
                assert_eq!(out.activity[0], 1.0);
                spikes.push(s);
            }
        });
        assert_eq!(spikes, vec![0]);
        // step 0: one Euler step from rest (a fixed point: no change), then the forced reset
        assert_eq!(states[0], vec![p.c, c.u0 + p.d]);
        // step 5: Euler step from states[4], then the 2 mV jump
        let (v, u) = (states[4][0], states[4][1]);
        let v_expected = v + 0.1 * (0.04 * v * v + 5.0 * v + 140.0 - u) + 2.0;
        assert_eq!(states[5][0], v_expected);
        // a large jump crosses v_peak and resets in the same step
        let kick = Drive::single_input(0, 200.0);
        assert_eq!(run_single(&m, 1, 3, &kick), vec![0]);
    }

    #[test]
    fn rejects_bad_parameters() {
        let bad = [
            IzhikevichParams { c: 40.0, ..Default::default() },
            IzhikevichParams { max_substep: 0.0, ..Default::default() },
            IzhikevichParams { a: f64::INFINITY, ..Default::default() },
            IzhikevichParams { d: f64::NAN, ..Default::default() },
        ];
        for p in bad {
            assert!(compile(&p, &channels(), 0.1).is_err(), "{p:?}");
        }
    }
}
