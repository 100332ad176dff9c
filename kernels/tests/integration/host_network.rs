//! Conformance of the network kernels (`cuda/network.cu`) and of `lif_delta_update` (`cuda/lif_delta.cu`),
//! compiled for the host, with the Rust implementation: fixed-point conversion, Poisson sampling, activation
//! draws and the lif_delta block update, bit for bit; and the step clock (`clock_tick`, the slot
//! `gather_input` reads). (Whole-network conformance with the CPU backend is in
//! `neurotwin-sim`'s `tests/integration/conformance_host_kernels.rs`.)

use neurotwin_kernels::host::{
    self, LANES, LifDeltaTable, LifExpStepInput, STIM_ACTIVATION, STIM_POISSON, StimulusParams, StimulusSet, raw,
};
use neurotwin_kernels::packs::{Clock, ClockTickArgs, DevPtr, GatherInputArgs};
use neurotwin_models::lif_delta::{self, LifDeltaParams};
use neurotwin_models::poisson::PoissonTable;
use neurotwin_models::rng::{CounterRng, SequenceRng, Stream};
use neurotwin_models::{BlockInput, BlockOutput, CompiledModel, ReceptorChannel};

/// `__double2ll_rn(x * scale)` (host: `llrint`) equals Rust's `(x * scale).round_ties_even() as i64` for ties
/// of both signs, values next to ties, large magnitudes up to 2^62 and random values over all scales the
/// delivery uses.
#[test]
fn to_fixed_matches_round_ties_even() {
    let mut xs: Vec<f64> = Vec::new();
    for k in -2000i64..2000 {
        let t = k as f64 + 0.5;
        xs.extend([t, f64::from_bits(t.to_bits() + 1), f64::from_bits(t.to_bits() - 1), k as f64]);
    }
    for e in 0..62 {
        let p = 2f64.powi(e);
        xs.extend([p, -p, p + 0.5, -(p + 0.5), p * 1.5, p - 0.5, -(p - 0.5)]);
    }
    let big = 2f64.powi(62) - 1024.0; // doubles just below 2^62
    xs.extend([0.0, -0.0, big, -big, big - 512.0, big + 511.0]);
    let mut r = SequenceRng::new(CounterRng::new(3, Stream::Trial), 0);
    for _ in 0..200_000 {
        let mag = 2f64.powf(r.uniform() * 61.0);
        xs.push(if r.uniform() < 0.5 { -mag } else { mag } * r.uniform());
    }
    for scale in [1.0, 2f64.powi(20), 2f64.powi(-3)] {
        let xs: Vec<f64> = xs.iter().map(|&x| x / scale).filter(|x| (x * scale).abs() < 2f64.powi(62)).collect();
        let mut out = vec![0i64; xs.len()];
        host::to_fixed_fill(&xs, scale, &mut out);
        for (x, got) in xs.iter().zip(&out) {
            assert_eq!(*got, (x * scale).round_ties_even() as i64, "x = {x:e}, scale {scale}");
        }
    }
}

/// `stimulus_input` with one Poisson stimulus of weight 1 puts `PoissonTable::sample` (count) into `syn`,
/// for means from 0 to 1000 per step (one to 32 parts), many neurons and steps; an activation stimulus sets
/// the forced bit exactly when `uniform < p_event`.
#[test]
fn poisson_and_activation_draws_match() {
    let n = 200usize;
    let n_blocks = n.div_ceil(LANES);
    for (k, lambda) in [0.0, 0.02, 0.9, 2.0, 31.9, 32.0, 32.5, 150.0, 1000.0].into_iter().enumerate() {
        let t = PoissonTable::new(lambda);
        let seed = 17 + k as u64;
        let sub = k as u32 * 3;
        let rng = CounterRng::new(seed, Stream::PoissonInput).substream(sub);
        let act_rng = CounterRng::new(seed, Stream::Activation).substream(sub + 1);
        let p_event = 0.3;
        let stimuli = vec![
            StimulusParams {
                start: 0,
                stop: u64::MAX,
                lambda_part: t.lambda_part,
                exp_neg: t.exp_neg,
                parts: t.parts,
                value: 1.0,
                kind: STIM_POISSON,
                stream: Stream::PoissonInput as u32 | (sub << 16),
                channel: 1,
                ..Default::default()
            },
            StimulusParams {
                start: 0,
                stop: u64::MAX,
                p_event,
                kind: STIM_ACTIVATION,
                stream: Stream::Activation as u32 | ((sub + 1) << 16),
                ..Default::default()
            },
        ];
        let ptr: Vec<u32> = (0..=n as u32).map(|i| 2 * i).collect();
        let of: Vec<u32> = (0..n).flat_map(|_| [0u32, 1]).collect();
        let set = StimulusSet::new(n, 2, ptr, of, stimuli);
        for step in [0u64, 1, 77, 1 << 33] {
            let mut syn = vec![0.0; n_blocks * 2 * LANES];
            let mut i_ext = vec![9.0; n];
            let mut forced = vec![0u64; n_blocks];
            host::stimulus_input(&set, step, seed, true, &mut syn, &mut i_ext, &mut forced);
            for (i, &ie) in i_ext.iter().enumerate() {
                let (b, l) = (i / LANES, i % LANES);
                let want = t.sample(&rng, i as u32, step, 0) as f64;
                assert_eq!(syn[(b * 2 + 1) * LANES + l], want, "lambda {lambda} neuron {i} step {step}");
                assert_eq!(syn[(b * 2) * LANES + l], 0.0);
                assert_eq!(ie, 0.0);
                let fired = act_rng.uniform(i as u32, step, 0) < p_event;
                assert_eq!((forced[b] >> l) & 1 == 1, fired, "activation neuron {i} step {step}");
            }
        }
    }
}

/// `lif_delta_update` equals `lif_delta::update_block` bit for bit (state and spikes) over random inputs, with
/// and without `refractory_input`, forced spikes and a partial last block.
#[test]
fn lif_delta_update_matches_model() {
    let channels: Vec<ReceptorChannel> =
        ["e", "i", "x"].iter().map(|c| ReceptorChannel { name: c.to_string(), excitatory: *c != "i" }).collect();
    let params = [
        LifDeltaParams::default(),
        LifDeltaParams { refractory_input: true, i_e: 120.0, t_ref: 0.5, ..Default::default() },
        LifDeltaParams { tau_m: 7.0, c_m: 80.0, v_th: -60.0, v_reset: -75.0, ..Default::default() },
    ];
    let h = 0.1;
    let sets: Vec<lif_delta::Compiled> = params.iter().map(|p| lif_delta::compile(p, &channels, h).unwrap()).collect();
    let model = CompiledModel::LifDelta(sets.clone());
    let table = LifDeltaTable::from_compiled(3, &sets);
    let n = 150usize;
    let n_blocks = n.div_ceil(LANES);
    let param_set: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
    let mut padded_set = param_set.clone();
    padded_set.resize(n_blocks * LANES, 0);
    let mut cpu = vec![0.0; n_blocks * 3 * LANES];
    for i in 0..n {
        for (v, x) in model.initial_state(param_set[i] as usize).into_iter().enumerate() {
            cpu[(i / LANES) * 3 * LANES + v * LANES + i % LANES] = x;
        }
    }
    let mut gpu = cpu.clone();
    let mut r = SequenceRng::new(CounterRng::new(8, Stream::Trial), 1);
    let mut spikes_seen = 0;
    for step in 0..3000 {
        let syn: Vec<f64> = (0..n_blocks * 3 * LANES).map(|_| (r.uniform() - 0.3) * 3.0).collect();
        let i_ext: Vec<f64> = (0..n).map(|_| r.uniform() * 200.0).collect();
        let forced: Vec<u64> =
            (0..n_blocks).map(|b| if step % 97 == b as u64 { 0x8000_0000_0001 } else { 0 }).collect();
        let mut spiked = vec![0u8; n];
        let input = LifExpStepInput { param_set: &param_set, syn: &syn, i_ext: &i_ext, forced: &forced };
        host::lif_delta_update(&table, &mut gpu, &input, &mut spiked);
        for b in 0..n_blocks {
            let lanes = LANES.min(n - b * LANES);
            let mut ie = [0.0; LANES];
            ie[..lanes].copy_from_slice(&i_ext[b * LANES..b * LANES + lanes]);
            let bi = BlockInput {
                n: lanes,
                param_set: &padded_set[b * LANES..(b + 1) * LANES],
                syn: &syn[b * 3 * LANES..(b + 1) * 3 * LANES],
                i_ext: &ie,
                forced: forced[b],
                gap: None,
            };
            let mut out = BlockOutput::default();
            model.update_block(&mut cpu[b * 3 * LANES..(b + 1) * 3 * LANES], &bi, &mut out);
            for l in 0..lanes {
                assert_eq!(
                    spiked[b * LANES + l] == 1,
                    (out.spikes >> l) & 1 == 1,
                    "step {step} neuron {}",
                    b * LANES + l
                );
            }
            spikes_seen += out.spikes.count_ones();
        }
        assert_eq!(
            gpu.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            cpu.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "state differs at step {step}"
        );
    }
    assert!(spikes_seen > 1000, "{spikes_seen} spikes");
}

/// `clock_tick` advances the step clock by exactly one step per launch, however large the grid (only thread 0
/// writes): step and window step both +1, carrying past 2^32 for the step.
#[test]
fn clock_tick_advances_step_and_k_by_one_per_launch() {
    let mut clock = Clock::at(u64::from(u32::MAX) - 1, 7);
    host::clock_tick(&mut clock);
    assert_eq!(clock, Clock::at(u64::from(u32::MAX), 8));
    for (blocks, threads) in [(1, 1), (1, 128), (5, 128), (3, 32)] {
        let before = clock;
        let ptr: *mut Clock = &mut clock;
        let args = ClockTickArgs { clock: DevPtr::host(ptr) };
        // SAFETY: every thread of the grid may run the kernel; only thread 0 writes *clock, a live local.
        unsafe { raw::clock_tick(blocks, threads, &args) };
        assert_eq!((clock.step, clock.k), (before.step + 1, before.k + 1), "grid {blocks} x {threads}");
    }
    assert_eq!(clock, Clock::at(u64::from(u32::MAX) + 4, 12));
}

/// One `gather_input` pack replayed over steps, with `clock_tick` between them (as a captured step graph does),
/// gathers ring slot `clock.step % slots` of every channel into `syn` (value × 2^-8), clears exactly that slot
/// and leaves the other slots untouched; the safe wrapper reads the same slot for a given step.
#[test]
fn gather_input_reads_the_slot_of_the_clock_step() {
    let (n_channels, slots, n_pad) = (2usize, 5usize, 2 * LANES);
    let inv_scale = 2f64.powi(-8);
    // A distinct value per (channel, slot, neuron), never 0.
    let value = |c: usize, s: usize, i: usize| ((c * slots + s) * n_pad + i + 1) as i64 * 3;
    let fresh_ring = || -> Vec<i64> {
        (0..n_channels * slots * n_pad).map(|x| value(x / (slots * n_pad), x / n_pad % slots, x % n_pad)).collect()
    };
    // syn index of neuron i, channel c ([block][channel][lane]).
    let at = |c: usize, i: usize| (i / LANES * n_channels + c) * LANES + i % LANES;
    let mut ring = fresh_ring();
    let mut syn = vec![f64::NAN; n_channels * n_pad];
    // Steps 10^9 + 3, + 4, + 5: slots 3, 4, then 0 (the wrap).
    let mut clock = Clock::at(1_000_000_003, 0);
    let clock_ptr: *mut Clock = &mut clock;
    let gather = GatherInputArgs {
        ring: DevPtr::host(ring.as_mut_ptr()),
        syn: DevPtr::host(syn.as_mut_ptr()),
        clock: DevPtr::host(clock_ptr),
        inv_scale,
        n_pad: n_pad as u32,
        n_channels: n_channels as u32,
        slots: slots as u32,
        pad: 0,
    };
    let tick = ClockTickArgs { clock: DevPtr::host(clock_ptr) };
    let mut gathered = Vec::new();
    for want_slot in [3usize, 4, 0] {
        // SAFETY: threads i < n_pad touch ring[(c * slots + step % slots) * n_pad + i] (ring holds n_channels *
        // slots * n_pad entries) and syn[(i / 64 * n_channels + c) * 64 + i % 64] (n_channels * n_pad entries);
        // ring, syn and clock are live locals not otherwise accessed during the launches.
        unsafe {
            raw::gather_input(2, 64, &gather);
            raw::clock_tick(1, 1, &tick);
        }
        for i in 0..n_pad {
            for c in 0..n_channels {
                let want = value(c, want_slot, i) as f64 * inv_scale;
                assert_eq!(syn[at(c, i)], want, "slot {want_slot} channel {c} neuron {i}");
            }
        }
        gathered.push(want_slot);
        let fresh = fresh_ring();
        for (x, (&r, &f)) in ring.iter().zip(&fresh).enumerate() {
            let s = x / n_pad % slots;
            let want = if gathered.contains(&s) { 0 } else { f };
            assert_eq!(r, want, "ring entry {x} (slot {s}) after gathering slots {gathered:?}");
        }
    }
    assert_eq!(clock, Clock::at(1_000_000_006, 3));

    // The safe wrapper: step 7 of 5 slots reads slot 2.
    let mut ring = fresh_ring();
    host::gather_input(&mut ring, n_channels, slots, 7, inv_scale, &mut syn);
    for (c, i) in [(1, 5), (0, LANES + 3), (1, n_pad - 1)] {
        assert_eq!(syn[at(c, i)], value(c, 2, i) as f64 * inv_scale, "wrapper: channel {c} neuron {i}");
    }
    assert!(ring.iter().enumerate().all(|(x, &r)| (r == 0) == (x / n_pad % slots == 2)));
}
