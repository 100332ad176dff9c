use super::*;
use crate::lif_exp::LifExpParams;
use crate::testing::{Drive, exc_inh_channels, run_with, trace_v};
use crate::{CompiledModel, NeuronParams};

use crate::testing::string_map as map;

/// NEST's `iaf_psc_exp` written as equations, with the parameters of [`LifExpParams::default`].
pub fn iaf_psc_exp() -> EquationParams {
    crate::testing::iaf_psc_exp_equations(&[
        ("C_m", "250 pF"),
        ("tau_m", "10 ms"),
        ("E_L", "-70 mV"),
        ("V_th", "-55 mV"),
        ("V_reset", "-70 mV"),
        ("t_ref", "2 ms"),
        ("I_e", "0 pA"),
        ("tau_syn_ex", "2 ms"),
        ("tau_syn_in", "2 ms"),
    ])
}

fn compiled(p: &EquationParams) -> CompiledModel {
    CompiledModel::compile(&[NeuronParams::Equations(p.clone())], &exc_inh_channels(), 0.1).unwrap()
}

fn err(p: &EquationParams) -> String {
    CompiledModel::compile(&[NeuronParams::Equations(p.clone())], &exc_inh_channels(), 0.1).unwrap_err().to_string()
}

/// The exact-method `iaf_psc_exp` equals the built-in `lif_exp` (Rotter & Diesmann propagators): the same
/// spike steps under synaptic events, a suprathreshold current and a forced spike, and V within 1e-11 mV
/// (the propagators come from a matrix exponential instead of closed forms: last-bit differences).
#[test]
fn exact_iaf_psc_exp_equals_the_built_in_lif_exp() {
    let eq = compiled(&iaf_psc_exp());
    let lif =
        CompiledModel::compile(&[NeuronParams::LifExp(LifExpParams::default())], &exc_inh_channels(), 0.1).unwrap();
    assert_eq!(eq.state_names(), ["V", "I_ex", "I_in", "refractory"]);
    assert_eq!(eq.initial_state(0), [-70.0, 0.0, 0.0, 0.0]);
    let drive = Drive {
        inputs: vec![(5, 0, 600.0), (40, 1, -300.0), (90, 0, 2500.0), (91, 0, 2500.0)],
        i_ext: 1000.0,
        forced: vec![150],
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    run_with(&eq, 2, 2000, &drive, |s, st, o| a.push((s, st[0], o.spikes & 1)));
    run_with(&lif, 2, 2000, &drive, |s, st, o| b.push((s, st[0], o.spikes & 1)));
    let spikes = |x: &[(u64, f64, u64)]| x.iter().filter(|r| r.2 == 1).map(|r| r.0).collect::<Vec<_>>();
    assert!(spikes(&a).len() > 20, "{:?}", spikes(&a));
    assert_eq!(spikes(&a), spikes(&b));
    let worst = a.iter().zip(&b).map(|(x, y)| (x.1 - y.1).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-11, "largest |ΔV| {worst} mV");
}

/// Explicit methods converge at their order on a nonlinear model with a known solution: the quadratic
/// `dV/dt = -V²/τ` (V(0) = 1 mV: V(t) = 1/(1 + t/τ)) over 10 ms, Euler first, RK2 second, RK4 fourth order.
#[test]
fn explicit_methods_converge_at_their_order() {
    let p = |method: Method, substeps: u32| EquationParams {
        equations: "dV/dt = -V*V/(tau*mV) : mV".into(),
        threshold: "V > 100 * mV".into(),
        reset: String::new(),
        refractory: None,
        clamp: vec![],
        parameters: map(&[("tau", "5 ms")]),
        inputs: map(&[("exc", "V += w"), ("inh", "V += w")]),
        init: map(&[("V", "1 * mV")]),
        method,
        substeps,
        input_timing: Default::default(),
    };
    let exact = 1.0 / (1.0 + 10.0 / 5.0);
    for (method, order) in [(Method::Euler, 1.0), (Method::Rk2, 2.0), (Method::Rk4, 4.0)] {
        let e = |sub: u32| (trace_v(&compiled(&p(method, sub)), 2, 100, &Drive::none())[100] - exact).abs();
        let (e1, e2) = (e(1), e(2));
        let measured = (e1 / e2).log2();
        assert!((measured - order).abs() < 0.25, "{method:?}: order {measured} ({e1} -> {e2})");
    }
    let err = p(Method::Exact, 1);
    let e = super::compile(&err, &exc_inh_channels(), 0.1).unwrap_err().to_string();
    assert!(e.contains("linear") && e.contains("rk4") && e.contains("equations line 1"), "{e}");
}

/// An adaptive neuron (AdEx written as equations, nonlinear; V capped at the threshold on the right-hand sides as
/// NEST's `aeif` models do, since the threshold is tested once per step, after the substeps) with RK4 substeps spikes, resets two variables in order, adapts, and is deterministic.
#[test]
fn nonlinear_model_with_reset_of_two_variables() {
    let p = EquationParams {
        equations: "dV/dt = (-g_L*(V - E_L) + g_L*D_T*exp((min(V, 0*mV) - V_T)/D_T) - w_a + I_e + I_stim)/C : mV\n\
                    dw_a/dt = (a*(min(V, 0*mV) - E_L) - w_a)/tau_w : pA"
            .into(),
        threshold: "V >= 0 * mV".into(),
        reset: "V = -58 * mV; w_a += b".into(),
        refractory: None,
        clamp: vec![],
        parameters: map(&[
            ("C", "281 pF"),
            ("g_L", "30 nS"),
            ("E_L", "-70.6 mV"),
            ("V_T", "-50.4 mV"),
            ("D_T", "2 mV"),
            ("tau_w", "144 ms"),
            ("a", "4 nS"),
            ("b", "80.5 pA"),
            ("I_e", "1 nA"),
        ]),
        inputs: map(&[("exc", "V += w"), ("inh", "V += w")]),
        init: map(&[("V", "E_L")]),
        method: Method::Rk4,
        substeps: 4,
        input_timing: Default::default(),
    };
    let m = compiled(&p);
    let mut spikes = Vec::new();
    let mut w_after = Vec::new();
    run_with(&m, 2, 5000, &Drive::none(), |s, st, o| {
        if o.spikes & 1 == 1 {
            spikes.push(s);
            w_after.push(st[1]);
            assert_eq!(st[0], -58.0);
        }
    });
    assert!(spikes.len() >= 5, "{spikes:?}");
    let isi: Vec<u64> = spikes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(isi.last() > isi.first(), "adaptation lengthens the intervals: {isi:?}");
    assert!(w_after.windows(2).all(|w| w[1] > w[0] - 80.0), "{w_after:?}");
    let mut again = Vec::new();
    run_with(&m, 2, 5000, &Drive::none(), |s, _, o| {
        if o.spikes & 1 == 1 {
            again.push(s)
        }
    });
    assert_eq!(spikes, again);
}

/// Malformed definitions get a located error naming the field, line and column, the offending symbol and a fix.
#[test]
fn malformed_models_get_located_errors_with_suggestions() {
    let base = iaf_psc_exp();
    let with_eq = |line2: &str| EquationParams {
        equations: format!(
            "dV/dt = -(V - E_L)/tau_m + (I_ex + I_in + I_e + I_stim)/C_m : mV\n{line2}\ndI_in/dt = -I_in/tau_syn_in : pA"
        ),
        ..base.clone()
    };
    let e = err(&with_eq("dI_ex/dt = -I_ex/tau_syn_exx : pA"));
    assert!(e.contains("equations line 2, column 18") && e.contains("unknown name `tau_syn_exx`"), "{e}");
    assert!(e.contains("did you mean `tau_syn_ex`?"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex/tau_syn_ex + E_L : pA"));
    assert!(e.contains("cannot add mV and pA/ms") && e.contains("line 2"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex : pA"));
    assert!(e.contains("dI_ex/dt must be in pA/ms") && e.contains("right side is in pA"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex/(tau_syn_ex*0) : pA"));
    assert!(e.contains("column"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex/tau_syn_ex"));
    assert!(e.contains("unit of `I_ex` is missing"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex/tau_syn_ex : parsec"));
    assert!(e.contains("unknown unit `parsec`"), "{e}");
    let e = err(&with_eq("dI_ex/dt = exp(I_ex)/tau_syn_ex : pA"));
    assert!(e.contains("argument of `exp` must be dimensionless"), "{e}");
    let e = err(&with_eq("dI_ex/dt = -I_ex/tau_syn_ex/0 : pA"));
    assert!(e.contains("division by the constant 0"), "{e}");
    let e = err(&EquationParams { threshold: "V >= V_thr".into(), ..base.clone() });
    assert!(e.contains("threshold, column 6") && e.contains("did you mean `V_th`?"), "{e}");
    let e = err(&EquationParams { reset: "V = V_reset; U = 3 * mV".into(), ..base.clone() });
    assert!(e.contains("reset line 2") && e.contains("`U` is not a state variable"), "{e}");
    let e = err(&EquationParams { inputs: map(&[("exc", "I_ex += w")]), ..base.clone() });
    assert!(e.contains("receptor channel `inh` has no entry"), "{e}");
    let e = err(&EquationParams { inputs: map(&[("exc", "I_ex += w"), ("inh", "I_in = w")]), ..base.clone() });
    assert!(e.contains("inputs.inh") && e.contains("+="), "{e}");
    let e = err(&EquationParams { init: map(&[("V", "I_ex")]), ..base.clone() });
    assert!(e.contains("only parameters are allowed"), "{e}");
    let mut p = base.clone();
    p.parameters.insert("C_m".into(), "250 pFF".into());
    assert!(err(&p).contains("parameters.C_m"), "{}", err(&p));
    let e = err(&EquationParams { clamp: vec!["Vm".into()], ..base.clone() });
    assert!(e.contains("clamp: `Vm`") && e.contains("did you mean `V`?"), "{e}");
    // Sets of one simulation must share the model.
    let other = EquationParams { reset: "V = E_L".into(), ..base.clone() };
    let e = CompiledModel::compile(
        &[NeuronParams::Equations(base.clone()), NeuronParams::Equations(other)],
        &exc_inh_channels(),
        0.1,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("share the equations"), "{e}");
}

/// The model parses from scenario-shaped data (TOML) and round-trips.
#[test]
fn parses_from_tagged_data() {
    let json = serde_json::json!({
        "model": "equations",
        "equations": "dV/dt = -(V - E_L)/tau : mV",
        "threshold": "V > -50 * mV",
        "parameters": {"E_L": "-65 mV", "tau": "20 ms"},
        "inputs": {"exc": "V += w", "inh": "V += w"},
        "method": "rk2",
        "substeps": 2
    });
    let p: NeuronParams = serde_json::from_value(json).unwrap();
    assert_eq!(p.model_name(), "equations");
    let m = CompiledModel::compile(&[p], &exc_inh_channels(), 0.1).unwrap();
    assert_eq!(m.n_state(), 2);
}
