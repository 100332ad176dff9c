//! Calcium-imaging forward model and OASIS deconvolution, checked against closed forms written out here
//! (independently of the implementation) and against ground-truth spike trains.

use neurotwin_models::calcium::deconvolve::{
    estimate_gamma_ar1, estimate_noise_psd, gamma_from_tau, oasis_ar1, score_events, spike_events,
};
use neurotwin_models::calcium::indicator::PUBLISHED;
use neurotwin_models::calcium::{
    ActivityMapping, CalciumError, Drive, EventOptions, ForwardModel, ImagingParams, IndicatorParams, OasisOptions,
    PRESET_NAMES, Sampling,
};
use neurotwin_models::{CounterRng, SequenceRng, Stream};

/// Imaging at the simulation resolution (point samples every `dt`), noise-free.
fn fine_imaging(dt: f64) -> ImagingParams {
    ImagingParams {
        frame_period_ms: dt,
        sampling: Sampling::Point,
        f0_photons: 1000.0,
        shot_noise_factor: 0.0,
        read_noise_photons: 0.0,
    }
}

/// Closed-form difference of exponentials, e^{−t/τd} − e^{−t/τr}.
fn dexp(t: f64, tr: f64, td: f64) -> f64 {
    (-t / td).exp() - if tr > 0.0 { (-t / tr).exp() } else { 0.0 }
}

/// Closed-form peak time of the difference of exponentials.
fn t_peak(tr: f64, td: f64) -> f64 {
    (td / tr).ln() * tr * td / (td - tr)
}

/// ΔF/F of the Hill model written out independently: F ∝ 1 + (Rf − 1) cⁿ/(cⁿ + Kdⁿ), relative to rest.
fn hill_dff(p: &IndicatorParams, c: f64) -> f64 {
    let f = |c: f64| 1.0 + (p.dynamic_range - 1.0) * c.powf(p.hill_n) / (c.powf(p.hill_n) + p.kd_um.powf(p.hill_n));
    f(c) / f(p.ca_rest_um) - 1.0
}

/// First time after `from` (ms) at which the decreasing function `g` falls to `level` (bisection).
fn crossing(g: impl Fn(f64) -> f64, from: f64, level: f64) -> f64 {
    let (mut lo, mut hi) = (from, from);
    while g(hi) > level {
        hi += 10.0;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > level { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

fn argmax(v: &[f64]) -> usize {
    v.iter().enumerate().fold(0, |best, (i, x)| if *x > v[best] { i } else { best })
}

#[test]
fn single_spike_peak_time_half_decay_and_amplitude_match_closed_form_for_every_preset() {
    let dt = 0.1;
    let spike_ms = 100.0;
    for name in PRESET_NAMES {
        let p = IndicatorParams::preset(name).expect("preset exists");
        let (tr, td) = (p.tau_rise_ms, p.tau_decay_ms);
        let m = ForwardModel::new(p.clone(), fine_imaging(dt), dt).expect("valid");
        let duration = spike_ms + 10.0 * td;
        let dff = m.dff_sim(&Drive::SpikeTimes(&[spike_ms]), duration).expect("ok");
        let ca = m.calcium_um(&Drive::SpikeTimes(&[spike_ms]), duration).expect("ok");

        // Peak time of ΔF/F (the Hill curve is monotone, so it is the calcium peak time).
        let k_peak = argmax(&dff);
        let measured_peak = k_peak as f64 * dt - spike_ms;
        let analytic_peak = t_peak(tr, td);
        assert!(
            (measured_peak - analytic_peak).abs() <= dt + 1e-9,
            "{name}: peak {measured_peak} vs {analytic_peak} ms"
        );

        // Calcium decays to half its peak increment at the closed-form time.
        let rest = p.ca_rest_um;
        let dca_peak = ca[k_peak] - rest;
        let half_ca = ca[k_peak..].iter().position(|c| c - rest <= 0.5 * dca_peak).expect("decays") + k_peak;
        let analytic_half_ca =
            crossing(|t| dexp(t, tr, td), analytic_peak, 0.5 * dexp(analytic_peak, tr, td)) + spike_ms;
        assert!((half_ca as f64 * dt - analytic_half_ca).abs() <= dt + 1e-9, "{name}: calcium half-decay");

        // ΔF/F decays to half its peak where the independent Hill formula says.
        let dff_peak = dff[k_peak];
        let half_dff = dff[k_peak..].iter().position(|d| *d <= 0.5 * dff_peak).expect("decays") + k_peak;
        let kernel_peak = dexp(analytic_peak, tr, td);
        let dff_of_t = |t: f64| hill_dff(&p, rest + dca_peak * dexp(t, tr, td) / kernel_peak);
        let analytic_half_dff = crossing(dff_of_t, analytic_peak, 0.5 * dff_of_t(analytic_peak)) + spike_ms;
        assert!(
            (half_dff as f64 * dt - analytic_half_dff).abs() <= dt + 1e-9,
            "{name}: ΔF/F half-decay {} vs {analytic_half_dff}",
            half_dff as f64 * dt
        );

        // Peak amplitude equals the published 1-AP ΔF/F.
        let published = PUBLISHED.iter().find(|q| q.name == name).expect("published");
        let rel = (dff_peak - published.dff_1ap).abs() / published.dff_1ap;
        assert!(rel < 0.02, "{name}: peak ΔF/F {dff_peak} vs published {}", published.dff_1ap);
        // And the modelled transient reproduces the published time to peak and half-decay time.
        let t_half_from_peak = half_dff as f64 * dt - spike_ms - measured_peak;
        assert!((measured_peak - published.time_to_peak_ms).abs() <= dt + 1e-9, "{name}: published peak time");
        assert!((t_half_from_peak - published.half_decay_ms).abs() <= 2.0 * dt, "{name}: published t½");
        println!(
            "{name}: tau_rise {tr:.2} ms, tau_decay {td:.1} ms, peak {measured_peak:.1} ms \
             (published {}), ΔF/F t½ from peak {t_half_from_peak:.1} ms (published {}), peak ΔF/F {dff_peak:.4}",
            published.time_to_peak_ms, published.half_decay_ms
        );
    }
}

#[test]
fn ar1_single_spike_decays_exactly_exponentially_also_between_grid_points() {
    let mut p = IndicatorParams::preset("GCaMP6f").expect("preset");
    p.tau_rise_ms = 0.0;
    let dt = 0.5;
    let m = ForwardModel::new(p.clone(), fine_imaging(dt), dt).expect("valid");
    let spike = 10.03;
    let ca = m.calcium_um(&Drive::SpikeTimes(&[spike]), 1500.0).expect("ok");
    let dca = m.ca_per_spike_um();
    for (k, c) in ca.iter().enumerate() {
        let t = k as f64 * dt;
        let expected = if t >= spike { dca * (-(t - spike) / p.tau_decay_ms).exp() } else { 0.0 };
        assert!((c - p.ca_rest_um - expected).abs() <= 1e-12 * dca, "step {k}");
    }
    // The peak ΔF/F of the AR(1) kernel is still the published 1-AP value (peak at the spike).
    let dff_peak = p.dff(p.ca_rest_um + dca);
    assert!((dff_peak - p.dff_1ap).abs() < 1e-9);
}

#[test]
fn ar2_calcium_obeys_the_oasis_recursion_and_matches_the_closed_form_off_grid() {
    let p = IndicatorParams::preset("GCaMP6f").expect("preset");
    let dt = 0.25;
    let m = ForwardModel::new(p.clone(), fine_imaging(dt), dt).expect("valid");
    let spikes = [20.1, 140.37, 150.0];
    let ca = m.calcium_um(&Drive::SpikeTimes(&spikes), 800.0).expect("ok");
    let amp = m.ca_per_spike_um() / dexp(t_peak(p.tau_rise_ms, p.tau_decay_ms), p.tau_rise_ms, p.tau_decay_ms);
    for (k, c) in ca.iter().enumerate() {
        let t = k as f64 * dt;
        let expected: f64 =
            spikes.iter().filter(|s| **s <= t).map(|s| amp * dexp(t - s, p.tau_rise_ms, p.tau_decay_ms)).sum();
        assert!((c - p.ca_rest_um - expected).abs() < 1e-12, "step {k}");
    }
    let [g1, g2] = m.ar_coefficients(dt).expect("ok");
    let y: Vec<f64> = ca.iter().map(|c| c - p.ca_rest_um).collect();
    for k in (160.0 / dt) as usize..y.len() {
        assert!((y[k] - g1 * y[k - 1] - g2 * y[k - 2]).abs() < 1e-14, "AR(2) recursion at step {k}");
    }
}

#[test]
fn hill_curve_is_monotone_and_saturates_at_dynamic_range_minus_one() {
    for name in PRESET_NAMES {
        let mut p = IndicatorParams::preset(name).expect("preset");
        let mut previous = f64::NEG_INFINITY;
        for i in 0..400 {
            let c = 1e-4 * 1.05f64.powi(i);
            let d = p.dff(c);
            assert!(d >= previous, "{name}: not monotone at {c} µM");
            assert!((d - hill_dff(&p, c)).abs() < 1e-12);
            previous = d;
        }
        let huge = 1e4 * p.kd_um;
        let at_rest = 1.0 + (p.dynamic_range - 1.0) / (1.0 + (p.kd_um / p.ca_rest_um).powf(p.hill_n));
        assert!((p.dff(huge) - (p.dynamic_range / at_rest - 1.0)).abs() < 1e-6 * p.dynamic_range);
        assert!((p.dff_max() - (p.dynamic_range / at_rest - 1.0)).abs() < 1e-12 * p.dynamic_range);
        // Without resting calcium the saturation is exactly R_f − 1.
        p.ca_rest_um = 0.0;
        assert!((p.dff(huge) - (p.dynamic_range - 1.0)).abs() < 1e-6 * p.dynamic_range, "{name}");
    }
}

#[test]
fn graded_drive_reaches_the_analytic_steady_state_and_is_rectified() {
    let p = IndicatorParams::preset("GCaMP6s").expect("preset");
    let dt = 1.0;
    let m = ForwardModel::new(p.clone(), fine_imaging(dt), dt).expect("valid");
    let rate_hz = 5.0;
    let trace = vec![rate_hz; 20_000];
    let mapping = ActivityMapping { threshold: 0.0, gain: 1e-3 };
    let ca = m.calcium_um(&Drive::Activity { trace: &trace, mapping }, 20_000.0).expect("ok");
    // Steady state: (spikes per ms) × ∫ kernel = r/1000 × A (τ_d − τ_r), A = Δc_1AP / k(t_peak).
    let kp = dexp(t_peak(p.tau_rise_ms, p.tau_decay_ms), p.tau_rise_ms, p.tau_decay_ms);
    let expected = rate_hz / 1000.0 * m.ca_per_spike_um() / kp * (p.tau_decay_ms - p.tau_rise_ms);
    let tail = &ca[15_000..];
    let mean = tail.iter().sum::<f64>() / tail.len() as f64 - p.ca_rest_um;
    assert!((mean - expected).abs() < 0.01 * expected, "steady state {mean} vs {expected} µM");
    let below = vec![-3.0; 1000];
    let quiet = m.calcium_um(&Drive::Activity { trace: &below, mapping }, 1000.0).expect("ok");
    assert!(quiet.iter().all(|c| *c == p.ca_rest_um));
}

/// Poisson spike times (ms) at `rate_hz` over `duration_ms`, from the Trial stream (independent of the
/// imaging noise stream).
fn poisson_train(seed: u64, neuron: u32, rate_hz: f64, duration_ms: f64) -> Vec<f64> {
    let mut rng = SequenceRng::new(CounterRng::new(seed, Stream::Trial), neuron);
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        t += -rng.uniform().ln() / rate_hz * 1000.0;
        if t >= duration_ms {
            return out;
        }
        out.push(t);
    }
}

/// GCaMP6f at 30 Hz with exposure averaging; `snr` is the noise-free frame-sampled peak ΔF/F of an
/// isolated spike divided by the baseline ΔF/F noise σ (shot noise only, κ = 1, F0 = (snr/peak)²).
struct RoundTrip {
    f1: f64,
    sigma_true: f64,
    sigma_est: f64,
    gamma_true: f64,
    gamma_est: f64,
}

fn deconvolution_round_trip(snr: f64, seed: u64) -> RoundTrip {
    let p = IndicatorParams::preset("GCaMP6f").expect("preset");
    let dt = 1.0;
    let frame_ms = 1000.0 / 30.0;
    let clean = ForwardModel::new(p.clone(), ImagingParams::new(30.0, 1000.0), dt).expect("valid");
    let single = clean.dff_frames(&Drive::SpikeTimes(&[500.0]), 3000.0).expect("ok");
    let peak = single.iter().cloned().fold(0.0, f64::max);
    let f0 = (snr / peak).powi(2);
    let m = ForwardModel::new(p.clone(), ImagingParams::new(30.0, f0), dt).expect("valid");
    let duration = 2400.0 * frame_ms;
    let spikes = poisson_train(seed, 0, 0.7, duration);
    let y = m.dff_frames_noisy(&Drive::SpikeTimes(&spikes), duration, seed, 0).expect("ok");
    assert_eq!(y.len(), 2400);

    let sigma_est = estimate_noise_psd(&y).expect("noise");
    let gamma_est = estimate_gamma_ar1(&y, sigma_est, 5).expect("gamma");
    let opts = OasisOptions { gamma: gamma_est, lambda: 0.0, s_min: 0.5 * peak, baseline: 0.0 };
    let result = oasis_ar1(&y, &opts).expect("oasis");
    let events = spike_events(&result.spikes, &EventOptions { threshold: 0.0, merge_within_frames: 1 }).expect("ok");
    let detected: Vec<f64> = events.iter().map(|e| *e as f64).collect();
    let truth: Vec<f64> = spikes.iter().map(|t| t / frame_ms).collect();
    let score = score_events(&truth, &detected, 2.0).expect("score");
    RoundTrip {
        f1: score.f1,
        sigma_true: m.imaging().baseline_noise_dff(),
        sigma_est,
        gamma_true: gamma_from_tau(p.tau_decay_ms, frame_ms).expect("ok"),
        gamma_est,
    }
}

#[test]
fn oasis_recovers_spike_times_at_moderate_noise_and_degrades_at_high_noise() {
    // Single-spike SNR 4 (frame-sampled peak ΔF/F / baseline noise σ), three independent seeds.
    for seed in [1, 2, 3] {
        let r = deconvolution_round_trip(4.0, seed);
        println!(
            "SNR 4, seed {seed}: F1 {:.3}, σ true {:.4} est {:.4}, γ true {:.4} est {:.4}",
            r.f1, r.sigma_true, r.sigma_est, r.gamma_true, r.gamma_est
        );
        assert!(r.f1 >= 0.9, "F1 {} at SNR 4", r.f1);
        assert!((r.sigma_est / r.sigma_true - 1.0).abs() < 0.25, "σ estimate {} vs {}", r.sigma_est, r.sigma_true);
    }
    let r = deconvolution_round_trip(2.0, 1);
    println!("SNR 2: F1 {:.3}", r.f1);
    let r = deconvolution_round_trip(0.75, 1);
    println!("SNR 0.75: F1 {:.3}", r.f1);
    assert!(r.f1 < 0.7, "F1 {} at SNR 0.75 should be clearly worse", r.f1);
}

#[test]
fn noise_estimate_of_white_noise_is_accurate() {
    let rng = CounterRng::new(5, Stream::Trial);
    let y: Vec<f64> = (0..8192)
        .map(|i| {
            let [u1, u2] = rng.uniform2(0, i, 0);
            0.3 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let s = estimate_noise_psd(&y).expect("ok");
    assert!((s - 0.3).abs() < 0.015, "σ {s}");
}

#[test]
fn noisy_traces_are_identical_one_at_a_time_and_in_a_batch() {
    let p = IndicatorParams::preset("GCaMP8m").expect("preset");
    let mut imaging = ImagingParams::new(30.0, 200.0);
    imaging.read_noise_photons = 5.0;
    let m = ForwardModel::new(p, imaging, 0.5).expect("valid");
    let duration = 10_000.0;
    let trains: Vec<Vec<f64>> = (0..16).map(|j| poisson_train(9, j, 2.0, duration)).collect();
    let drives: Vec<Drive> = trains.iter().map(|t| Drive::SpikeTimes(t)).collect();
    let batch = m.dff_frames_noisy_batch(&drives, duration, 42, 100).expect("ok");
    for (j, d) in drives.iter().enumerate() {
        let single = m.dff_frames_noisy(d, duration, 42, 100 + j as u32).expect("ok");
        let same = single.iter().zip(&batch[j]).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && single.len() == batch[j].len(), "neuron {j}");
    }
    let other_seed = m.dff_frames_noisy(&drives[0], duration, 43, 100).expect("ok");
    assert!(other_seed.iter().zip(&batch[0]).filter(|(a, b)| a != b).count() > batch[0].len() / 2);
    let other_neuron = m.dff_frames_noisy(&drives[0], duration, 42, 101).expect("ok");
    assert_ne!(other_neuron, batch[0]);
    // Noise statistics: baseline frames of a silent neuron have the configured σ.
    let silent = m.dff_frames_noisy(&Drive::SpikeTimes(&[]), 100_000.0, 7, 0).expect("ok");
    let var = silent.iter().map(|v| v * v).sum::<f64>() / silent.len() as f64;
    let expected = m.imaging().baseline_noise_dff();
    assert!((var.sqrt() / expected - 1.0).abs() < 0.03, "σ {} vs {expected}", var.sqrt());
}

fn field_of(e: CalciumError) -> String {
    match e {
        CalciumError::BadParameter { field, .. } => field,
        CalciumError::BadInput { what, .. } => what,
    }
}

#[test]
fn invalid_parameters_are_rejected_naming_the_field() {
    let good = IndicatorParams::preset("gcamp6S").expect("case-insensitive");
    assert_eq!(IndicatorParams::preset("jGCaMP8m"), IndicatorParams::preset("GCaMP8m"));
    assert!(IndicatorParams::preset("GCaMP9x").is_none());
    let cases: Vec<(&str, IndicatorParams)> = vec![
        ("tau_decay_ms", IndicatorParams { tau_decay_ms: f64::NAN, ..good.clone() }),
        ("tau_rise_ms", IndicatorParams { tau_rise_ms: -1.0, ..good.clone() }),
        ("tau_decay_ms", IndicatorParams { tau_decay_ms: 10.0, tau_rise_ms: 20.0, ..good.clone() }),
        ("kd_um", IndicatorParams { kd_um: -0.1, ..good.clone() }),
        ("hill_n", IndicatorParams { hill_n: 0.0, ..good.clone() }),
        ("dynamic_range", IndicatorParams { dynamic_range: 0.5, ..good.clone() }),
        ("ca_rest_um", IndicatorParams { ca_rest_um: f64::NAN, ..good.clone() }),
        ("dff_1ap", IndicatorParams { dff_1ap: 1e3, ..good.clone() }),
        ("dff_1ap", IndicatorParams { dff_1ap: -0.1, ..good.clone() }),
    ];
    for (field, p) in cases {
        let e = p.validate().expect_err(field);
        assert!(e.to_string().contains(field), "{e}");
        let e = ForwardModel::new(p, ImagingParams::new(30.0, 100.0), 1.0).expect_err(field);
        assert_eq!(field_of(e), field);
    }
    let imaging_cases: Vec<(&str, ImagingParams)> = vec![
        ("f0_photons", ImagingParams::new(30.0, -5.0)),
        ("frame_period_ms", ImagingParams::new(f64::NAN, 100.0)),
        (
            "sampling.exposure_ms",
            ImagingParams { sampling: Sampling::Exposure { exposure_ms: 50.0 }, ..ImagingParams::new(30.0, 100.0) },
        ),
        ("read_noise_photons", ImagingParams { read_noise_photons: -1.0, ..ImagingParams::new(30.0, 100.0) }),
        ("shot_noise_factor", ImagingParams { shot_noise_factor: f64::INFINITY, ..ImagingParams::new(30.0, 100.0) }),
    ];
    for (field, im) in imaging_cases {
        assert_eq!(field_of(ForwardModel::new(good.clone(), im, 1.0).expect_err(field)), field);
    }
    let e = ForwardModel::new(good.clone(), ImagingParams::new(30.0, 100.0), 50.0).expect_err("dt");
    assert_eq!(field_of(e), "dt_ms");
    let m = ForwardModel::new(good, ImagingParams::new(30.0, 100.0), 1.0).expect("valid");
    assert_eq!(field_of(m.dff_frames(&Drive::SpikeTimes(&[f64::NAN]), 100.0).expect_err("nan")), "spike times");
    assert_eq!(field_of(m.dff_frames(&Drive::SpikeTimes(&[1.0]), -1.0).expect_err("dur")), "duration_ms");
    let bad = OasisOptions { gamma: 1.5, lambda: 0.0, s_min: 0.0, baseline: 0.0 };
    assert_eq!(field_of(oasis_ar1(&[0.0, 1.0], &bad).expect_err("gamma")), "gamma");
    let ok = OasisOptions { gamma: 0.9, ..bad };
    assert_eq!(field_of(oasis_ar1(&[0.0, f64::NAN], &ok).expect_err("nan")), "y");
}

#[test]
fn indicator_parameters_round_trip_through_serde_and_reject_unknown_fields() {
    let p = IndicatorParams::preset("GCaMP7f").expect("preset");
    let json = serde_json::to_string(&p).expect("serialise");
    let back: IndicatorParams = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, p);
    let extra = json.replacen('{', "{\"tau_decya_ms\": 1.0, ", 1);
    assert!(serde_json::from_str::<IndicatorParams>(&extra).is_err());
    let im = ImagingParams::new(30.0, 100.0);
    let back: ImagingParams = serde_json::from_str(&serde_json::to_string(&im).expect("ser")).expect("de");
    assert_eq!(back, im);
}

#[test]
fn spike_counts_and_point_sampling_agree_with_spike_times_and_the_fine_trace() {
    let p = IndicatorParams::preset("GCaMP8m").expect("preset");
    let dt = 0.5;
    let imaging = ImagingParams { sampling: Sampling::Point, ..ImagingParams::new(30.0, 500.0) };
    let m = ForwardModel::new(p, imaging, dt).expect("valid");
    let mut counts = vec![0u32; 4000];
    counts[100] = 1;
    counts[900] = 2;
    let times = [50.0, 450.0, 450.0];
    let a = m.calcium_um(&Drive::SpikeCounts(&counts), 2000.0).expect("ok");
    let b = m.calcium_um(&Drive::SpikeTimes(&times), 2000.0).expect("ok");
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-15));
    // Point sampling reads the fine trace at the step nearest to each frame start.
    let fine = m.dff_sim(&Drive::SpikeTimes(&times), 2000.0).expect("ok");
    let frames = m.dff_frames(&Drive::SpikeTimes(&times), 2000.0).expect("ok");
    assert_eq!(frames.len(), m.n_frames(2000.0).expect("ok"));
    for (i, f) in frames.iter().enumerate() {
        let k = (m.frame_time_ms(i) / dt).round() as usize;
        assert!((f - fine[k]).abs() < 1e-12, "frame {i}");
    }
}

#[test]
fn sparsity_penalty_removes_small_spikes() {
    let g = 0.9;
    let rng = CounterRng::new(11, Stream::Trial);
    let mut c = 0.0;
    let y: Vec<f64> = (0..3000u64)
        .map(|t| {
            let [u, v] = rng.uniform2(0, t, 0);
            c = g * c + if u < 0.02 { 1.0 } else { 0.0 };
            c + 0.1 * (v - 0.5) * 12f64.sqrt()
        })
        .collect();
    let nonzero = |lambda: f64| {
        let r = oasis_ar1(&y, &OasisOptions { gamma: g, lambda, s_min: 0.0, baseline: 0.0 }).expect("ok");
        assert!(r.spikes.iter().all(|s| *s >= 0.0) && r.calcium.iter().all(|c| *c >= 0.0));
        r.spikes.iter().filter(|s| **s > 0.0).count()
    };
    let (n0, n1, n2) = (nonzero(0.0), nonzero(0.3), nonzero(1.0));
    assert!(n0 > n1 && n1 > n2, "non-zero spikes {n0}, {n1}, {n2}");
}
