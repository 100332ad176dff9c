//! Conformance of the `cuda-host` backend — the shared launch sequence of `neurotwin_sim::launch` on the
//! CUDA C kernels of `neurotwin-kernels` compiled for the host — with the CPU backend: the conformance suite
//! (`suite::conformance_suite!`: CUBA, Brunel, the C. elegans scenario with a receptor block and a silenced
//! set, a random network for each of the five models, step-by-step vs windowed drain, and proof that a
//! deliberately broken delivery kernel is caught), the same suite `gpu_conformance.rs` runs on a GPU.
//!
//! Plus the launches themselves: a launcher wrapping the host one records every launch's kernel and grid, every
//! copy and every graph capture and replay, and the sequence must be the one of the header of
//! `kernels/cuda/network.cu`, with the grids the CUDA launcher uses (one thread per element in blocks of 256, the
//! fixed 256 x 128 delivery grid), captured once per step shape and replayed.

use std::convert::Infallible;
use std::ops::Range;

use neurotwin_kernels::packs::{DevPtr, KernelArgs, KernelFn};
use neurotwin_sim::host_kernels::{HostKernelBackend, HostLauncher, HostOp};
use neurotwin_sim::launch::{Elem, Grid, KernelBackend, Launcher};
use neurotwin_sim::*;

use super::suite::{self, Kind};

fn host(setup: &SimSetup) -> Box<dyn Backend> {
    Box::new(HostKernelBackend::new(setup).unwrap())
}

fn host_broken(setup: &SimSetup) -> Box<dyn Backend> {
    Box::new(HostKernelBackend::new_with_broken_delivery_for_test(setup).unwrap())
}

/// The cuda-host backend launching every kernel directly (no graphs).
fn host_direct(setup: &SimSetup) -> Box<dyn Backend> {
    let mut b = HostKernelBackend::new(setup).unwrap();
    b.set_use_graphs(false);
    Box::new(b)
}

suite::conformance_suite!(suite_host, host, broken = host_broken);

/// What the recording launcher saw: a launch (kernel, blocks, threads), a host→device write of `len` elements, a
/// memset, the start and end of a capture, a graph replay.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Launch(&'static str, u32, u32),
    Write(usize),
    Clear,
    Begin,
    End,
    Graph,
}

/// The host launcher, logging every operation before forwarding it unchanged.
#[derive(Default)]
struct Recording {
    inner: HostLauncher,
    log: Vec<Event>,
    /// A delivery grid other than the host launcher's.
    delivery: Option<Grid>,
}

impl Launcher for Recording {
    type Buf<T: Elem> = Vec<T>;
    type Error = Infallible;
    type Graph = Vec<HostOp>;
    const NAME: &'static str = "cuda-host (recording)";

    fn spike_window(&self, n: usize) -> usize {
        self.inner.spike_window(n)
    }
    fn delivery_grid(&self) -> Grid {
        self.delivery.unwrap_or_else(|| self.inner.delivery_grid())
    }
    fn upload<T: Elem>(&self, data: &[T]) -> Result<Vec<T>, Infallible> {
        self.inner.upload(data)
    }
    fn zeros<T: Elem>(&self, len: usize) -> Result<Vec<T>, Infallible> {
        self.inner.zeros(len)
    }
    fn write<T: Elem>(&mut self, src: &[T], dst: &mut Vec<T>) -> Result<(), Infallible> {
        self.log.push(Event::Write(src.len()));
        self.inner.write(src, dst)
    }
    fn clear<T: Elem>(&mut self, buf: &mut Vec<T>) -> Result<(), Infallible> {
        self.log.push(Event::Clear);
        self.inner.clear(buf)
    }
    fn read<T: Elem>(&self, src: &Vec<T>, range: Range<usize>, dst: &mut [T]) -> Result<(), Infallible> {
        self.inner.read(src, range, dst)
    }
    fn ptr<T: Elem>(&self, buf: &mut Vec<T>) -> DevPtr<T> {
        self.inner.ptr(buf)
    }
    fn cptr<T: Elem>(&self, buf: &Vec<T>) -> DevPtr<T> {
        self.inner.cptr(buf)
    }
    unsafe fn launch<P: KernelArgs>(&mut self, kernel: &KernelFn<P>, g: Grid, args: &P) -> Result<(), Infallible> {
        self.log.push(Event::Launch(kernel.name, g.blocks, g.threads));
        // SAFETY: forwarded unchanged; the caller upholds the launch contract of `Launcher`.
        unsafe { self.inner.launch(kernel, g, args) }
    }
    fn begin_capture(&mut self) -> Result<(), Infallible> {
        self.log.push(Event::Begin);
        self.inner.begin_capture()
    }
    fn end_capture(&mut self) -> Result<Vec<HostOp>, Infallible> {
        self.log.push(Event::End);
        self.inner.end_capture()
    }
    fn launch_graph(&mut self, graph: &Vec<HostOp>) -> Result<(), Infallible> {
        self.log.push(Event::Graph);
        self.inner.launch_graph(graph)
    }
}

/// The launches of one step of the random lif_exp network (700 neurons in 11 blocks, 3 channels, gap junctions,
/// 64 spike trains, synapses) with or without silencing (gains only fill the fused kernel's gain pack), as written
/// down from `kernels/cuda/network.cu` with the CUDA launcher's grids (704 padded neurons or 700 → 3 blocks of 256; 11 mask words, 3 chunks of 4 words in 1
/// group and 64 trains → 1 block of 256; the top scans and the clock → 1 block; the piece numbering: 700 spikes →
/// 3 blocks (spike_pieces, spike_work_base), 22 chunks of 32 spikes in 5 groups → 1 block; delivery → 256 blocks of
/// 128).
fn step_launches(silenced: bool) -> Vec<Event> {
    let launch = |k: &'static str, b: u32, t: u32| Event::Launch(k, b, t);
    let mut e = vec![Event::Clear, launch("spike_train_input", 1, 256), launch("lif_exp_step", 3, 256)];
    if silenced {
        e.push(launch("apply_silence_and_flag", 3, 256));
    }
    e.extend([
        launch("spike_masks", 1, 256),
        launch("spike_chunk_totals", 1, 256),
        launch("spike_scan_groups", 1, 256),
        launch("spike_scan_tops", 1, 256),
        launch("spike_scatter", 1, 256),
        launch("spike_pieces", 3, 256),
        launch("spike_work", 1, 256),
        launch("spike_scan_groups", 1, 256),
        launch("spike_scan_tops", 1, 256),
        launch("spike_work_base", 3, 256),
        launch("deliver_spikes", 256, 128),
        launch("snapshot_v", 3, 256),
        launch("clock_tick", 1, 256),
    ]);
    e
}

/// Six steps: plain, with a gain change, with the gain kept and a neuron silenced, with both undone (the plain
/// shape's graph is replayed, nothing captured), the same again, and one step out of sequence (the clock is
/// written, the graph replayed). Each new shape is captured once — the launches logged between Begin and End are
/// recorded, not run — then replayed. Spikes and final V_m must equal those of the plain cuda-host backend and of
/// the cuda-host backend launching every kernel directly.
#[test]
fn host_launcher_receives_the_cuda_launch_sequence_and_grids() {
    let (setup, _) = suite::random_setup(Kind::LifExp);
    assert_eq!(setup.n_neurons(), 700);
    let mut rec = KernelBackend::with_launcher(Recording::default(), &setup).unwrap();
    let mut plain = HostKernelBackend::new(&setup).unwrap();
    let mut direct = HostKernelBackend::new(&setup).unwrap();
    direct.set_use_graphs(false);
    let n_ch = setup.network.receptors.len();
    let mut control = StepControl::new(n_ch, setup.n_neurons());
    let mut controls = Vec::new();
    controls.push(control.clone());
    control.channel_gain[1] = 0.5;
    controls.push(control.clone());
    control.silenced[3] = 1 << 7;
    controls.push(control.clone());
    control = StepControl::new(n_ch, setup.n_neurons());
    controls.push(control.clone());
    controls.push(control.clone());
    controls.push(control);
    let steps = [0u64, 1, 2, 3, 4, 9];

    let capture = |silenced| {
        let mut e = vec![Event::Begin];
        e.extend(step_launches(silenced));
        e.extend([Event::End, Event::Graph]);
        e
    };
    let mut expected = vec![Event::Launch("snapshot_v", 3, 256)];
    expected.extend(capture(false));
    expected.push(Event::Write(3));
    expected.extend(capture(false));
    expected.push(Event::Write(11));
    expected.extend(capture(true));
    expected.extend([Event::Write(3), Event::Write(11), Event::Graph]);
    expected.push(Event::Graph);
    expected.extend([Event::Write(1), Event::Graph]);
    for (&step, c) in steps.iter().zip(&controls) {
        rec.advance(step, c).unwrap();
        plain.advance(step, c).unwrap();
        direct.advance(step, c).unwrap();
    }
    let log = &rec.launcher().log;
    if let Some(k) = (0..log.len().max(expected.len())).find(|&k| log.get(k) != expected.get(k)) {
        panic!("launch #{k}: got {:?}, expected {:?}\nfull log: {log:?}", log.get(k), expected.get(k));
    }
    let mut spikes = Vec::new();
    for b in [&mut rec as &mut dyn Backend, &mut plain, &mut direct] {
        let mut s = Vec::new();
        b.drain_spikes(&mut |st, x| s.extend(x.iter().map(|&i| (st, i)))).unwrap();
        let mut v = Vec::new();
        b.read_state(0, &(0..700).collect::<Vec<u32>>(), &mut v);
        spikes.push((s, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
    }
    assert!(!spikes[0].0.is_empty(), "the test network must spike");
    assert_eq!(spikes[0], spikes[1]);
    assert_eq!(spikes[0], spikes[2]);
}

/// Graph replay and direct launches agree over a long wash-in (`suite::graph_replay_equals_direct`), for every
/// model.
#[test]
fn graph_replay_equals_direct_launches_through_a_wash_in() {
    for kind in
        [Kind::LifExp, Kind::LifDelta, Kind::Izhikevich, Kind::Adex, Kind::Graded, Kind::LifCondExp, Kind::AdexCond]
    {
        let (setup, _) = suite::random_setup(kind);
        suite::graph_replay_equals_direct(kind, 60, host(&setup).as_mut(), host_direct(&setup).as_mut());
    }
}

/// The delivery kernels stride over their items, so the grid a large GPU gets (`delivery_blocks_for`) gives the
/// same sums as the host's: an odd grid of 7 blocks of 64 threads and one of 2,112 blocks give the spikes and V_m
/// of the fixed grid, on the 6,000-spike volleys and on the graded model.
#[test]
fn delivery_results_do_not_depend_on_the_grid() {
    for setup in [suite::volley_setup(), suite::random_setup(Kind::Graded).0] {
        let control = StepControl::new(setup.network.receptors.len(), setup.n_neurons());
        let run = |delivery: Option<Grid>| {
            let launcher = Recording { delivery, ..Recording::default() };
            let mut b = KernelBackend::with_launcher(launcher, &setup).unwrap();
            let mut spikes = Vec::new();
            for step in 0..40 {
                b.advance(step, &control).unwrap();
                b.drain_spikes(&mut |st, x| spikes.extend(x.iter().map(|&i| (st, i)))).unwrap();
            }
            let mut v = Vec::new();
            b.read_state(0, &(0..setup.n_neurons() as u32).collect::<Vec<_>>(), &mut v);
            let grids: Vec<Event> = b
                .launcher()
                .log
                .iter()
                .filter(|e| matches!(e, Event::Launch(k, ..) if k.starts_with("deliver")))
                .cloned()
                .collect();
            (spikes, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), grids)
        };
        let fixed = run(None);
        for grid in [Grid { blocks: 7, threads: 64 }, Grid { blocks: 2112, threads: 128 }] {
            let other = run(Some(grid));
            assert!(
                other.2.iter().all(|e| matches!(e, Event::Launch(_, b, t) if *b == grid.blocks && *t == grid.threads))
            );
            assert!(!other.2.is_empty());
            assert_eq!((&fixed.0, &fixed.1), (&other.0, &other.1), "delivery on {grid:?} differs");
        }
    }
}

/// Backends of the same network alive at the same time (the trials of a scenario) share its arrays; a backend of
/// an equal but separately built network does not. A backend run after another on the shared arrays gives the same
/// spikes and V_m as the first, so no kernel writes the shared arrays.
#[test]
fn trials_of_one_network_share_its_arrays_read_only() {
    let (setup, _) = suite::random_setup(Kind::LifExp);
    let first = HostKernelBackend::new(&setup).unwrap();
    let second = HostKernelBackend::new(&setup.clone()).unwrap();
    assert!(first.shares_network_with(&second));
    let mut separate = setup.clone();
    separate.network = std::sync::Arc::new((*setup.network).clone());
    let other = HostKernelBackend::new(&separate).unwrap();
    assert!(!other.shares_network_with(&first));
    let run = |mut b: HostKernelBackend| {
        let control = StepControl::new(setup.network.receptors.len(), setup.n_neurons());
        let mut spikes = Vec::new();
        for step in 0..120 {
            b.advance(step, &control).unwrap();
            if step % 10 == 9 {
                b.drain_spikes(&mut |st, x| spikes.extend(x.iter().map(|&i| (st, i)))).unwrap();
            }
        }
        let mut v = Vec::new();
        b.read_state(0, &(0..setup.n_neurons() as u32).collect::<Vec<_>>(), &mut v);
        (spikes, v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    };
    let (a, b, c) = (run(first), run(second), run(other));
    assert!(!a.0.is_empty());
    assert_eq!(a, b, "the second backend on the shared arrays differs from the first");
    assert_eq!(a, c, "the shared arrays differ from a separate copy");
}

/// The volley case is sharp too: the deliberately broken delivery kernel changes its spikes or final V_m.
#[test]
fn broken_delivery_is_detected_on_synchronous_volleys() {
    let setup = suite::volley_setup();
    let mut cpu = CpuBackend::new(&setup).unwrap();
    let mut broken = host_broken(&setup);
    let a = suite::outcome(&setup, &Default::default(), &mut cpu);
    let b = suite::outcome(&setup, &Default::default(), broken.as_mut());
    assert_ne!(a, b, "a broken delivery kernel went unnoticed on the volleys");
    assert_ne!((a.steps, a.neurons), (b.steps, b.neurons), "the broken delivery must change the spikes");
}
