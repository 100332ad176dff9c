//! A fit at whole-fly-brain scale: the `flybrain` generator (at full scale 139,255 neurons and 15.1 M
//! connections) as a leaky rate model, a few per-cell-type parameters fitted by checkpointed BPTT and
//! Adam to a teacher trajectory, with the wall time and peak memory of every iteration (BENCHMARKS.md,
//! section "Fitting at fly-brain scale").
//!
//! ```sh
//! cargo run --release -p neurotwin-fit --example flybrain_fit -- --scale 1 --steps 1000 --checkpoint 32 --iters 3
//! ```
//!
//! Options (defaults in brackets): `--scale` [1.0] fraction of the 139,255 neurons; `--steps` [1000]
//! time steps of `--dt` [1.0] ms; `--checkpoint` [32] states kept every this many steps; `--iters` [3]
//! Adam iterations; `--observed` [2000] neurons in the loss; `--stimulated` [16] neurons driven by
//! pulses; `--lr` [0.02] Adam learning rate; `--seed` [1] generator seed; `--forward` [1] also time one
//! forward pass (`RateModel::loss`) on its own, 0 to skip.
//!
//! The network: the generator's weights are `± count × 27.5 pA` (`weight_per_synapse_pa`, exact in f32:
//! counts up to 5,000), so `FitNetwork::from_compiled(net, 27.5, 1.0, &[])` recovers the synapse counts
//! exactly; the generator makes no gap junctions. Cell types are the four transmitter populations (ACh,
//! GABA, Glu, Mod).
//!
//! The task: a teacher with known per-type `tau` and `bias` and per-presynaptic-type `strength` produces
//! the target trajectory `V` of the observed neurons (every `n / observed`-th neuron) under pulse input
//! into the ACh neurons of highest out-degree; the student starts from uniform values and fits those 12
//! numbers (everything else fixed: gain 1, θ 0, slope 1, ReLU) to the MSE over every step.
//!
//! Peak memory is the kernel's VmHWM, reset (`/proc/self/clear_refs` ← 5) once the network is loaded, so
//! the per-iteration peak is that of the fit, not of the conversion; the load peak is printed first.

use std::collections::BTreeMap;
use std::time::Instant;

use neurotwin_connectome::generators::{FlyBrainConfig, flybrain};
use neurotwin_fit::adam::Adam;
use neurotwin_fit::rate::{Activation, Input, Objective, Pulse, RateModel, RateValues};
use neurotwin_fit::spec::{ParamSpec, build_params};
use neurotwin_fit::{FitNetwork, ParamSet};

struct Args {
    scale: f64,
    steps: usize,
    dt: f64,
    checkpoint: usize,
    iters: usize,
    observed: usize,
    stimulated: usize,
    lr: f64,
    seed: u64,
    forward: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        scale: 1.0,
        steps: 1000,
        dt: 1.0,
        checkpoint: 32,
        iters: 3,
        observed: 2000,
        stimulated: 16,
        lr: 0.02,
        seed: 1,
        forward: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--scale" => a.scale = value.parse().map_err(|e| bad(&e))?,
            "--steps" => a.steps = value.parse().map_err(|e| bad(&e))?,
            "--dt" => a.dt = value.parse().map_err(|e| bad(&e))?,
            "--checkpoint" => a.checkpoint = value.parse().map_err(|e| bad(&e))?,
            "--iters" => a.iters = value.parse().map_err(|e| bad(&e))?,
            "--observed" => a.observed = value.parse().map_err(|e| bad(&e))?,
            "--stimulated" => a.stimulated = value.parse().map_err(|e| bad(&e))?,
            "--lr" => a.lr = value.parse().map_err(|e| bad(&e))?,
            "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
            "--forward" => a.forward = value != "0",
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.steps == 0 || a.checkpoint == 0 || a.observed == 0 {
        return Err("--steps, --checkpoint and --observed must be > 0".into());
    }
    Ok(a)
}

/// A field of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`); 0 where unavailable.
fn proc_status_bytes(field: &str) -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0); false where not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU seconds (user + system, all threads) of this process so far, from `/proc/self/stat` (0 where
/// unavailable; clock ticks of 1/100 s assumed, the Linux `USER_HZ`).
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let Some(rest) = s.rfind(')').map(|k| &s[k + 1..]) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |k: usize| f.get(k).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// Records the observed neurons' `V` at every step (the teacher's trajectory).
struct Recorder<'a> {
    observed: &'a [u32],
    values: Vec<f64>,
}

impl Objective for Recorder<'_> {
    fn observe(&mut self, _t: usize, v: &[f64]) {
        self.values.extend(self.observed.iter().map(|&i| v[i as usize]));
    }
    fn finish(&mut self) -> f64 {
        0.0
    }
    fn inject(&self, _t: usize, _v: &[f64], _grad: &mut [f64]) {}
}

/// Mean squared error of the observed neurons' `V` against targets, over every step `0 ..= T`.
struct Mse<'a> {
    observed: &'a [u32],
    /// `(T + 1) × observed.len()`.
    target: &'a [f64],
    norm: f64,
    sum: f64,
}

impl Objective for Mse<'_> {
    fn observe(&mut self, t: usize, v: &[f64]) {
        let m = self.observed.len();
        for (k, &i) in self.observed.iter().enumerate() {
            let d = v[i as usize] - self.target[t * m + k];
            self.sum += d * d;
        }
    }
    fn finish(&mut self) -> f64 {
        self.sum / self.norm
    }
    fn inject(&self, t: usize, v: &[f64], grad: &mut [f64]) {
        let m = self.observed.len();
        for (k, &i) in self.observed.iter().enumerate() {
            grad[i as usize] += 2.0 * (v[i as usize] - self.target[t * m + k]) / self.norm;
        }
    }
}

/// Per-cell-type `tau` and `bias`, per-presynaptic-type `strength`; the rest fixed at the defaults
/// (gain 1, θ 0, slope 1, no gap junctions).
fn specs(tau: [f64; 4], bias: [f64; 4], strength: [f64; 4]) -> BTreeMap<String, ParamSpec> {
    let types = ["ACh", "GABA", "Glu", "Mod"];
    let strength_labels = ["ACh (+)", "GABA (−)", "Glu (−)", "Mod (+)"];
    let mut tau_spec = ParamSpec::fitted("cell_type", tau[0], Some(1.0), None);
    let mut bias_spec = ParamSpec::fitted("cell_type", bias[0], None, None);
    let mut strength_spec = ParamSpec::fitted("pre_type", strength[0], Some(0.0), None);
    for k in 0..4 {
        tau_spec.init_groups.insert(types[k].into(), tau[k]);
        bias_spec.init_groups.insert(types[k].into(), bias[k]);
        strength_spec.init_groups.insert(strength_labels[k].into(), strength[k]);
    }
    let mut s = BTreeMap::new();
    s.insert("tau".to_string(), tau_spec);
    s.insert("bias".to_string(), bias_spec);
    s.insert("strength".to_string(), strength_spec);
    s
}

fn fitted_values(p: &ParamSet) -> String {
    let mut out = Vec::new();
    for b in p.blocks.iter().filter(|b| b.fitted) {
        let v = p.group_values(b);
        let parts: Vec<String> = b.labels.iter().zip(&v).map(|(l, x)| format!("{l} {x:.5}")).collect();
        out.push(format!("{}: {}", b.name, parts.join(", ")));
    }
    out.join("; ")
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse_args()?;
    println!(
        "flybrain fit: scale {}, {} steps × {} ms, checkpoint every {}, {} iterations, {} observed, {} stimulated, \
         lr {}, {} threads",
        a.scale,
        a.steps,
        a.dt,
        a.checkpoint,
        a.iters,
        a.observed,
        a.stimulated,
        a.lr,
        rayon::current_num_threads()
    );

    // Network: generator → CompiledNetwork → FitNetwork.
    let t0 = Instant::now();
    let cfg = FlyBrainConfig { scale: a.scale, ..FlyBrainConfig::default() };
    let generated = flybrain(&cfg, a.seed, a.dt)?;
    let t_gen = t0.elapsed().as_secs_f64();
    let compiled = generated.network;
    let m = &compiled.chemical;
    println!(
        "generated: {} neurons, {} matrix entries, matrix {:.1} MB, {:.2} s (RSS {:.0} MB)",
        compiled.n_neurons(),
        m.targets.len(),
        mb(m.bytes()),
        t_gen,
        mb(proc_status_bytes("VmRSS"))
    );
    let t1 = Instant::now();
    let net = FitNetwork::from_compiled(&compiled, cfg.weight_per_synapse_pa, 1.0, &[])?;
    let t_conv = t1.elapsed().as_secs_f64();
    drop(compiled);
    let total_count: f64 = net.count.iter().map(|&c| c as f64).sum();
    let integral = net.count.iter().all(|&c| c.fract() == 0.0 && c >= 1.0);
    println!(
        "converted: {} connections, {} synapses (integral counts: {}), {} gap entries, FitNetwork {:.1} MB, {:.2} s",
        net.n_connections(),
        total_count,
        integral,
        net.n_gap_entries(),
        mb(net.bytes()),
        t_conv
    );

    let t2 = Instant::now();
    let teacher =
        build_params(&net, "rate", &specs([10.0, 20.0, 15.0, 40.0], [0.1, 0.05, 0.05, 0.2], [2e-3, 3e-3, 2e-3, 1e-3]))?;
    let mut p = build_params(&net, "rate", &specs([25.0; 4], [0.02; 4], [1.5e-3; 4]))?;
    let model = RateModel::new(&net, a.dt, Activation::Relu);
    let t_params = t2.elapsed().as_secs_f64();
    println!("parameters and model: {:.2} s; {} raw numbers, {} fitted", t_params, p.raw.len(), {
        p.fitted_mask().iter().filter(|&&m| m).count()
    });

    // Observed neurons: every (n / observed)-th. Stimulated: the ACh neurons of highest out-degree, each
    // driven for 200 ms, starts staggered over the first half.
    let n = net.n;
    let n_obs = a.observed.min(n);
    let observed: Vec<u32> = (0..n_obs).map(|k| (k * n / n_obs) as u32).collect();
    let mut ach: Vec<u32> = (0..n as u32).filter(|&i| net.cell_types[i as usize] == "ACh").collect();
    ach.sort_by_key(|&j| std::cmp::Reverse(net.out_ptr[j as usize + 1] - net.out_ptr[j as usize]));
    let pulse_len = (200.0 / a.dt).round().max(1.0) as usize;
    let pulses: Vec<Pulse> = ach
        .iter()
        .take(a.stimulated)
        .enumerate()
        .map(|(k, &j)| {
            let start = (k * a.steps / 2) / a.stimulated.max(1);
            Pulse { neuron: j, start, stop: (start + pulse_len).min(a.steps), amplitude: 2.0 }
        })
        .collect();
    let input = Input { steps: a.steps, v0: Vec::new(), pulses, clamp: None };
    input.check(n)?;

    // Targets from the teacher (one forward pass).
    let t3 = Instant::now();
    let tv = RateValues::from_params(&net, &teacher);
    let mut rec = Recorder { observed: &observed, values: Vec::with_capacity((a.steps + 1) * n_obs) };
    model.loss(&tv, &input, &mut rec);
    drop(tv);
    drop(teacher);
    let target = rec.values;
    let t_teacher = t3.elapsed().as_secs_f64();
    let tmax = target.iter().fold(0.0f64, |x, &y| x.max(y.abs()));
    let last = &target[a.steps * n_obs..];
    let active = last.iter().filter(|&&v| v > 0.0).count();
    println!(
        "teacher forward pass: {:.2} s ({:.2} ms/step); max |V| of observed {:.4}, {} of {} observed above 0 at the end",
        t_teacher,
        1e3 * t_teacher / a.steps as f64,
        tmax,
        active,
        n_obs
    );
    if !tmax.is_finite() {
        return Err("teacher trajectory is not finite".into());
    }

    let load_peak = proc_status_bytes("VmHWM");
    let reset = reset_peak_rss();
    println!(
        "load peak RSS {:.0} MB; RSS now {:.0} MB; peak reset for the fit: {}",
        mb(load_peak),
        mb(proc_status_bytes("VmRSS")),
        if reset { "yes" } else { "no (peaks below include the load)" }
    );

    let norm = ((a.steps + 1) * n_obs) as f64;
    if a.forward {
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        let load0 = load_average();
        let v = RateValues::from_params(&net, &p);
        let mut obj = Mse { observed: &observed, target: &target, norm, sum: 0.0 };
        let l = model.loss(&v, &input, &mut obj);
        let s = t.elapsed().as_secs_f64();
        println!(
            "forward only (RateModel::loss): loss {l:.6e}, {s:.2} s ({:.2} ms/step), CPU {:.1} s, load {load0:.2}",
            1e3 * s / a.steps as f64,
            cpu_seconds() - cpu0
        );
    }

    let mask = p.fitted_mask();
    let mut adam = Adam::new(p.raw.len(), a.lr);
    let mut losses = Vec::new();
    let mut times = Vec::new();
    let mut cpus = Vec::new();
    println!("fitting at start: {}", fitted_values(&p));
    for iter in 0..a.iters {
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        let load0 = load_average();
        let v = RateValues::from_params(&net, &p);
        let t_values = t.elapsed().as_secs_f64();
        let mut obj = Mse { observed: &observed, target: &target, norm, sum: 0.0 };
        let tg = Instant::now();
        let (loss, g) = model.loss_and_grad(&v, &input, &mut obj, a.checkpoint);
        let t_grad = tg.elapsed().as_secs_f64();
        let peak_grad = proc_status_bytes("VmHWM");
        let tr = Instant::now();
        let mut grad = vec![0.0; p.raw.len()];
        g.reduce(&net, &v, &p, &mut grad);
        drop(g);
        drop(v);
        let t_reduce = tr.elapsed().as_secs_f64();
        if !loss.is_finite() || grad.iter().any(|x| !x.is_finite()) {
            return Err(format!("iteration {iter}: loss {loss} or a gradient is not finite").into());
        }
        let gnorm = grad.iter().map(|x| x * x).sum::<f64>().sqrt();
        adam.step(&mut p.raw, &grad, &mask, 1.0);
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        losses.push(loss);
        times.push(secs);
        cpus.push(cpu);
        println!(
            "iter {iter}: loss {loss:e}, |grad| {gnorm:e}, {secs:.2} s (values {t_values:.2}, loss_and_grad \
             {t_grad:.2}, reduce {t_reduce:.2}), CPU {cpu:.1} s, load {load0:.2}, peak RSS {:.0} MB (after loss_and_grad {:.0} MB), RSS {:.0} MB",
            mb(proc_status_bytes("VmHWM")),
            mb(peak_grad),
            mb(proc_status_bytes("VmRSS"))
        );
    }
    println!("fitted: {}", fitted_values(&p));
    let decreasing = losses.windows(2).all(|w| w[1] < w[0]);
    let improved = losses.len() < 2 || losses[losses.len() - 1] < losses[0];
    let mean_s = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let mean_cpu = cpus.iter().sum::<f64>() / cpus.len().max(1) as f64;
    println!(
        "summary: n {n}, steps {}, checkpoint {}, peak RSS (fit) {:.0} MB, load peak {:.0} MB, mean {:.2} s/iteration \
         ({:.1} CPU s), losses [{}], decreasing at every iteration: {}",
        a.steps,
        a.checkpoint,
        mb(proc_status_bytes("VmHWM")),
        mb(load_peak),
        mean_s,
        mean_cpu,
        losses.iter().map(|l| format!("{l:.4e}")).collect::<Vec<_>>().join(", "),
        if decreasing { "yes" } else { "no" }
    );
    if !improved {
        return Err("the last loss is not below the first".into());
    }
    Ok(())
}
