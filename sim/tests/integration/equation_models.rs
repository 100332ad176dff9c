//! Equation-defined models (`model = "equations"`) in whole networks against the built-in models.

use neurotwin_connectome::generators::{CubaConfig, cuba};
use neurotwin_models::NeuronParams;
use neurotwin_models::equations::{EquationParams, Method};
use neurotwin_models::testing::string_map as map;
use neurotwin_sim::host_kernels::HostKernelBackend;
use neurotwin_sim::*;

/// NEST `iaf_psc_exp` as equations with the CUBA benchmark's parameters (`cuba::cuba_neuron_params`).
fn cuba_equations() -> EquationParams {
    neurotwin_models::testing::cuba_iaf_psc_exp_equations()
}

/// CUBA 4000 for 1 s: the equation-defined `iaf_psc_exp` (exact propagators from a matrix exponential) gives the
/// built-in `lif_exp`'s spikes exactly — every (step, neuron) of ≈ 20,000 — on the CPU backend.
#[test]
fn equation_iaf_psc_exp_gives_the_spikes_of_lif_exp_on_cuba() {
    let steps = 10_000;
    let run_with = |equations: bool| {
        let mut g = cuba(&CubaConfig::default(), 1, 0.1).unwrap();
        if equations {
            for p in &mut g.populations {
                p.params = NeuronParams::Equations(cuba_equations());
            }
        }
        let setup = SimSetup::from_generated(g, 1, steps).unwrap();
        let mut b = CpuBackend::new(&setup).unwrap();
        let rec = run(&setup, &Default::default(), &Default::default(), &mut b, &Default::default()).unwrap();
        (rec.spike_steps, rec.spike_neurons)
    };
    let (built_in, equations) = (run_with(false), run_with(true));
    assert!(built_in.0.len() > 15_000, "{} spikes", built_in.0.len());
    assert_eq!(built_in, equations);
}

/// The `cuda-host` backend runs the model's generated CUDA C (built for the host, `generated_models`) in the one
/// step sequence of the GPU: on CUBA 4000 over 1 s it gives the built-in `lif_exp`'s spikes (on the CPU backend)
/// exactly, and the final state of the CPU interpreter bit for bit. The CUDA backend takes such a model (it loads
/// the generated unit on its device; without a GPU it fails only for want of one).
#[test]
fn generated_kernel_on_the_cuda_host_backend_gives_the_same_spikes() {
    let steps = 10_000;
    let setup = |equations: bool| {
        let mut g = cuba(&CubaConfig::default(), 1, 0.1).unwrap();
        if equations {
            for p in &mut g.populations {
                p.params = NeuronParams::Equations(cuba_equations());
            }
        }
        SimSetup::from_generated(g, 1, steps).unwrap()
    };
    let outcome = |setup: &SimSetup, b: &mut dyn Backend| {
        let rec = run(setup, &Default::default(), &Default::default(), b, &Default::default()).unwrap();
        let mut v = Vec::new();
        b.read_state(0, &(0..4000).collect::<Vec<u32>>(), &mut v);
        ((rec.spike_steps, rec.spike_neurons), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    let built_in = setup(false);
    let (spikes, _) = outcome(&built_in, &mut CpuBackend::new(&built_in).unwrap());
    let eq = setup(true);
    let (cpu_spikes, cpu_v) = outcome(&eq, &mut CpuBackend::new(&eq).unwrap());
    let (host_spikes, host_v) = outcome(&eq, &mut HostKernelBackend::new(&eq).unwrap());
    assert!(spikes.0.len() > 15_000, "{} spikes", spikes.0.len());
    assert_eq!(host_spikes, spikes);
    assert_eq!(cpu_spikes, spikes);
    assert_eq!(host_v, cpu_v, "final V of the generated kernel and the interpreter");
    if let Err(e) = neurotwin_sim::cuda::CudaBackend::new(&eq) {
        assert!(matches!(e, SimError::BackendUnavailable { .. }), "only the device may be missing: {e}");
    }
}

/// NEST `iaf_psc_delta` as equations (delta synapses: the input jumps `V`, which is clamped — and so ignores
/// input — while refractory) with the Brunel 2000 network's parameters: Brunel order 500 (N = 2,500, Poisson
/// background) over 500 ms gives the built-in `lif_delta`'s spikes exactly, on the CPU backend and with the
/// generated kernel on `cuda-host`.
#[test]
fn equation_iaf_psc_delta_gives_the_spikes_of_lif_delta_on_brunel() {
    use neurotwin_connectome::generators::{BrunelConfig, brunel};
    let cfg = BrunelConfig { order: 500, ..Default::default() };
    let p = cfg.neuron_params();
    let q = |x: f64, unit: &str| format!("{x:?} {unit}");
    let eq = EquationParams {
        equations: "dV/dt = -(V - E_L)/tau_m + (I_e + I_stim)/C_m : mV".into(),
        threshold: "V >= V_th".into(),
        reset: "V = V_reset".into(),
        refractory: Some("t_ref".into()),
        clamp: vec!["V".into()],
        parameters: [
            ("C_m", q(p.c_m, "pF")),
            ("tau_m", q(p.tau_m, "ms")),
            ("E_L", q(p.e_l, "mV")),
            ("V_th", q(p.v_th, "mV")),
            ("V_reset", q(p.v_reset, "mV")),
            ("t_ref", q(p.t_ref, "ms")),
            ("I_e", q(p.i_e, "pA")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        inputs: map(&[("exc", "V += w"), ("inh", "V += w")]),
        init: map(&[("V", "E_L")]),
        method: Method::Exact,
        substeps: 1,
        input_timing: Default::default(),
    };
    let steps = 5_000;
    let setup = |equations: bool| {
        let mut g = brunel(&cfg, 2, 0.1).unwrap();
        if equations {
            for pop in &mut g.populations {
                pop.params = NeuronParams::Equations(eq.clone());
            }
        }
        SimSetup::from_generated(g, 2, steps).unwrap()
    };
    let spikes = |setup: &SimSetup, b: &mut dyn Backend| {
        let rec = run(setup, &Default::default(), &Default::default(), b, &Default::default()).unwrap();
        (rec.spike_steps, rec.spike_neurons)
    };
    let built_in = setup(false);
    let reference = spikes(&built_in, &mut CpuBackend::new(&built_in).unwrap());
    assert!(reference.0.len() > 20_000, "{} spikes", reference.0.len());
    let eq_setup = setup(true);
    assert_eq!(spikes(&eq_setup, &mut CpuBackend::new(&eq_setup).unwrap()), reference);
    assert_eq!(spikes(&eq_setup, &mut HostKernelBackend::new(&eq_setup).unwrap()), reference);
}

/// The native code of an equation-defined model (`native_models.rs`: the block function and the fused ring pass,
/// compiled at run time) gives the interpreter's spikes and final state bit for bit in whole networks: CUBA 4000
/// for 1 s (ring input only) and Brunel order 500 for 0.5 s (Poisson background through the fused pass's extra
/// terms). A perturbed model (an excitatory time constant 1e-9 ms longer) is told apart, so the comparison can
/// fail.
#[test]
fn native_equation_code_equals_the_interpreter_in_whole_networks() {
    use neurotwin_connectome::generators::{BrunelConfig, brunel};
    use neurotwin_sim::native_models::EngineChoice;
    let outcome = |setup: &SimSetup, engine: EngineChoice| {
        let mut b = CpuBackend::with_equation_engine(setup, engine).unwrap();
        let expected = match engine {
            EngineChoice::Interpreter => "interpreter",
            _ => "native",
        };
        assert_eq!(b.equation_engine(), Some(expected));
        let rec = run(setup, &Default::default(), &Default::default(), &mut b, &Default::default()).unwrap();
        let n = setup.network.n_neurons() as u32;
        let mut state = Vec::new();
        for var in 0..setup.model.n_state() {
            let mut v = Vec::new();
            b.read_state(var, &(0..n).collect::<Vec<u32>>(), &mut v);
            state.extend(v.iter().map(|x| x.to_bits()));
        }
        ((rec.spike_steps, rec.spike_neurons), state)
    };
    type Outcome = ((Vec<u64>, Vec<u32>), Vec<u64>);
    // The first difference, without printing whole runs.
    let same = |a: &Outcome, b: &Outcome| -> Result<(), String> {
        if a.0 != b.0 {
            let k = a.0.1.iter().zip(&b.0.1).position(|(x, y)| x != y).unwrap_or(a.0.1.len().min(b.0.1.len()));
            return Err(format!("spikes differ from index {k} ({} vs {} spikes)", a.0.0.len(), b.0.0.len()));
        }
        match a.1.iter().zip(&b.1).position(|(x, y)| x != y) {
            Some(k) => {
                Err(format!("state value {k} differs: {} vs {}", f64::from_bits(a.1[k]), f64::from_bits(b.1[k])))
            }
            None => Ok(()),
        }
    };
    // CUBA: no external input, every block takes the ring pass.
    let cuba_setup = |tau_syn_ex: &str| {
        let mut g = cuba(&CubaConfig::default(), 1, 0.1).unwrap();
        for p in &mut g.populations {
            let mut eq = cuba_equations();
            eq.parameters.insert("tau_syn_ex".into(), tau_syn_ex.into());
            p.params = NeuronParams::Equations(eq);
        }
        SimSetup::from_generated(g, 1, 10_000).unwrap()
    };
    let cuba_eq = cuba_setup("5 ms");
    let interpreted = outcome(&cuba_eq, EngineChoice::Interpreter);
    assert!(interpreted.0.0.len() > 15_000, "{} spikes", interpreted.0.0.len());
    same(&outcome(&cuba_eq, EngineChoice::Native), &interpreted).expect("CUBA: native vs interpreter");
    let perturbed = outcome(&cuba_setup("5.000000001 ms"), EngineChoice::Native);
    assert!(same(&perturbed, &interpreted).is_err(), "a 1e-9 ms change of tau_syn_ex must show");
    // Brunel: Poisson background on every neuron (the ring pass with extra terms).
    let cfg = BrunelConfig { order: 500, ..Default::default() };
    let mut g = brunel(&cfg, 2, 0.1).unwrap();
    for pop in &mut g.populations {
        pop.params = NeuronParams::Equations(EquationParams {
            equations: "dV/dt = -(V - E_L)/tau_m + I_stim/C_m : mV".into(),
            threshold: "V >= 20 * mV".into(),
            reset: "V = 10 * mV".into(),
            refractory: Some("2 ms".into()),
            clamp: vec!["V".into()],
            parameters: map(&[("C_m", "250 pF"), ("tau_m", "20 ms"), ("E_L", "0 mV")]),
            inputs: map(&[("exc", "V += w"), ("inh", "V += w")]),
            init: map(&[("V", "E_L")]),
            method: Method::Exact,
            substeps: 1,
            input_timing: Default::default(),
        });
    }
    let brunel_eq = SimSetup::from_generated(g, 2, 5_000).unwrap();
    let interpreted = outcome(&brunel_eq, EngineChoice::Interpreter);
    assert!(interpreted.0.0.len() > 20_000, "{} spikes", interpreted.0.0.len());
    same(&outcome(&brunel_eq, EngineChoice::Native), &interpreted).expect("Brunel: native vs interpreter");
}
