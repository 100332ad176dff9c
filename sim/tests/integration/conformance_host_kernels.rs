//! Conformance of the `cuda-host` backend — the shared launch sequence of `neurotwin_sim::launch` on the
//! CUDA C kernels of `neurotwin-kernels` compiled for the host — with the CPU backend: the conformance suite
//! (`suite::conformance_suite!`: CUBA, Brunel, the C. elegans scenario with a receptor block and a silenced
//! set, a random network for each of the five models, step-by-step vs windowed drain, and proof that a
//! deliberately broken delivery kernel is caught), the same suite `gpu_conformance.rs` runs on a GPU.
//!
//! Plus the launches themselves: a launcher wrapping the host one records every launch's kernel and grid, and
//! the sequence must be the one of the header of `kernels/cuda/network.cu`, with the grids the CUDA launcher
//! uses (one thread per element in blocks of 256, the fixed 256 x 128 delivery grid).

use std::convert::Infallible;
use std::ops::Range;

use neurotwin_sim::host_kernels::{HostKernelBackend, HostLauncher};
use neurotwin_sim::launch::{DevStimulus, Elem, Grid, KernelBackend, Launcher, ModelKind, ModelOut, ParamBuf};
use neurotwin_sim::*;

use super::suite::{self, Kind};

fn host(setup: &SimSetup) -> Box<dyn Backend> {
    Box::new(HostKernelBackend::new(setup).unwrap())
}

fn host_broken(setup: &SimSetup) -> Box<dyn Backend> {
    Box::new(HostKernelBackend::new_with_broken_delivery_for_test(setup).unwrap())
}

suite::conformance_suite!(suite_host, host, broken = host_broken);

/// What the recording launcher saw: a launch (kernel, blocks, threads), a host→device write of `len` elements
/// or a memset.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    Launch(&'static str, u32, u32),
    Write(usize),
    Clear,
}

/// The host launcher, logging every launch and copy before forwarding it unchanged.
#[derive(Default)]
struct Recording {
    inner: HostLauncher,
    log: Vec<Event>,
}

impl Recording {
    fn launch(&mut self, kernel: &'static str, g: Grid) {
        self.log.push(Event::Launch(kernel, g.blocks, g.threads));
    }
}

/// Every launch method forwards its arguments unchanged to the host launcher after logging the grid.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
        $(
            unsafe fn $name(&mut self, g: Grid, $($arg: $ty),*) -> Result<(), Infallible> {
                self.launch(stringify!($name), g);
                // SAFETY: forwarded unchanged; the caller upholds the launch contract of `Launcher`.
                unsafe { self.inner.$name(g, $($arg),*) }
            }
        )*
    };
}

impl Launcher for Recording {
    type Buf<T: Elem> = Vec<T>;
    type Error = Infallible;
    const NAME: &'static str = "cuda-host (recording)";

    fn spike_window(&self, n: usize) -> usize {
        self.inner.spike_window(n)
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

    forward! {
        gather_input(n_pad: u32, n_ch: u32, slots: u32, slot: u32, ring: &mut Vec<i64>, inv: f64, syn: &mut Vec<f64>);
        stimulus_input(
            n: u32, n_ch: u32, step: u64, seed: u64, spiking: u32, ptr: &Vec<u32>, of: &Vec<u32>,
            stimuli: &Vec<DevStimulus>, syn: &mut Vec<f64>, i_ext: &mut Vec<f64>, forced: &mut Vec<u64>,
        );
        spike_train_input(n: u32, step: u64, neuron: &Vec<u32>, ptr: &Vec<u64>, steps: &Vec<u32>, forced: &mut Vec<u64>);
        gap_current(
            n: u32, row_ptr: &Vec<u64>, partner: &Vec<u32>, g: &Vec<f32>, v_prev: &Vec<f64>, i_ext: &mut Vec<f64>,
        );
        gap_conductance(
            n: u32, row_ptr: &Vec<u64>, partner: &Vec<u32>, g: &Vec<f32>, v_prev: &Vec<f64>, gap_g: &mut Vec<f64>,
            gap_gv: &mut Vec<f64>,
        );
        apply_channel_gain(n: u32, n_ch: u32, gain: &Vec<f64>, syn: &mut Vec<f64>);
        apply_silence_and_flag(n: u32, silenced: &Vec<u64>, spiked: &mut Vec<u8>);
        spike_masks(n: u32, spiked: &Vec<u8>, masks: &mut Vec<u64>);
        spike_chunk_totals(n_words: u32, chunk: u32, masks: &Vec<u64>, offset: &mut Vec<u64>);
        spike_scan_groups(n_chunks: u32, group: u32, offset: &mut Vec<u64>, group_offset: &mut Vec<u64>);
        spike_scan_tops(n_groups: u32, k: u32, group_offset: &mut Vec<u64>, rec_base: &mut Vec<u64>);
        spike_scatter(
            n_words: u32, chunk: u32, group: u32, masks: &Vec<u64>, offset: &Vec<u64>, group_offset: &Vec<u64>,
            rec: &mut Vec<u32>,
        );
        spike_pieces(
            max: u32, k: u32, rec_base: &Vec<u64>, rec: &Vec<u32>, rows: &Vec<u32>, pieces: &Vec<u64>,
            work_start: &mut Vec<u64>,
        );
        spike_work(max: u32, chunk: u32, k: u32, rec_base: &Vec<u64>, work_start: &mut Vec<u64>, work_chunk: &mut Vec<u64>);
        spike_work_base(
            max: u32, chunk: u32, group: u32, k: u32, rec_base: &Vec<u64>, work_chunk: &Vec<u64>,
            work_group: &Vec<u64>, work_start: &mut Vec<u64>,
        );
        deliver_spikes(
            rec_base: &Vec<u64>, k: u32, rec: &Vec<u32>, work_start: &Vec<u64>, work_total: &Vec<u64>,
            rows: &Vec<u32>, pieces: &Vec<u64>, start: &Vec<u64>, delay: &Vec<u16>,
            receptor: &Vec<u8>, targets: &Vec<u32>, w: Option<&Vec<f32>>, index: Option<&Vec<u16>>,
            table: Option<&Vec<i64>>, scale: f64, step: u64, slots: u32, n_pad: u32, ring: &mut Vec<i64>,
        );
        deliver_graded(
            n: u32, activity: &Vec<f64>, rows: &Vec<u32>, start: &Vec<u64>, delay: &Vec<u16>, receptor: &Vec<u8>,
            targets: &Vec<u32>, w: Option<&Vec<f32>>, index: Option<&Vec<u16>>, values: Option<&Vec<f32>>,
            scale: f64, step: u64, slots: u32, n_pad: u32, ring: &mut Vec<i64>,
        );
        silence_activity(n: u32, silenced: &Vec<u64>, activity: &mut Vec<f64>);
        snapshot_v(n_pad: u32, n_state: u32, state: &Vec<f64>, v_prev: &mut Vec<f64>);
    }

    unsafe fn model_update(
        &mut self,
        g: Grid,
        model: ModelKind,
        n: u32,
        n_ch: u32,
        state: &mut Vec<f64>,
        param_set: &Vec<u16>,
        params: &[ParamBuf<Self>],
        syn: &Vec<f64>,
        i_ext: &Vec<f64>,
        out: ModelOut<'_, Self>,
    ) -> Result<(), Infallible> {
        self.launch(model.unit_and_entry().1, g);
        let params: Vec<ParamBuf<HostLauncher>> = params
            .iter()
            .map(|p| match p {
                ParamBuf::F64(v) => ParamBuf::F64(v.clone()),
                ParamBuf::U32(v) => ParamBuf::U32(v.clone()),
            })
            .collect();
        let out = match out {
            ModelOut::Spiking { forced, spiked } => ModelOut::Spiking { forced, spiked },
            ModelOut::Graded { gap, activity } => ModelOut::Graded { gap, activity },
        };
        // SAFETY: forwarded with copies of the same parameter arrays; the caller upholds the launch contract.
        unsafe { self.inner.model_update(g, model, n, n_ch, state, param_set, &params, syn, i_ext, out) }
    }
}

/// The launch sequence of four steps of the random lif_exp network (700 neurons in 11 blocks, 3 channels,
/// gap junctions, 64 spike trains, synapses): plain, with a gain change, with the gain kept and a neuron
/// silenced, and with both undone — against the sequence written down from `kernels/cuda/network.cu` with the
/// CUDA launcher's grids (700 or 704 threads → 3 blocks of 256; 11 mask words, 3 chunks of 4 words in 1 group
/// and 64 trains → 1 block of 256; the top scan → 1 block; the piece numbering: 700 spikes → 3 blocks
/// (spike_pieces, spike_work_base), 22 chunks of 32 spikes in 5 groups → 1 block; delivery → 256 blocks of 128). The backend's results must equal the
/// plain cuda-host backend's.
#[test]
fn host_launcher_receives_the_cuda_launch_sequence_and_grids() {
    let (setup, _) = suite::random_setup(Kind::LifExp);
    assert_eq!(setup.n_neurons(), 700);
    let mut rec = KernelBackend::with_launcher(Recording::default(), &setup).unwrap();
    let mut plain = HostKernelBackend::new(&setup).unwrap();
    let n_ch = setup.network.receptors.len();
    let mut control = StepControl::new(n_ch, setup.n_neurons());
    let mut controls = Vec::new();
    controls.push(control.clone());
    control.channel_gain[1] = 0.5;
    controls.push(control.clone());
    control.silenced[3] = 1 << 7;
    controls.push(control.clone());
    control = StepControl::new(n_ch, setup.n_neurons());
    controls.push(control);

    let mut expected = vec![Event::Launch("snapshot_v", 3, 256)];
    let launch = |k: &'static str, b: u32, t: u32| Event::Launch(k, b, t);
    for step in 0..4 {
        expected.extend([
            launch("gather_input", 3, 256),
            Event::Clear,
            launch("stimulus_input", 3, 256),
            launch("spike_train_input", 1, 256),
            launch("gap_current", 3, 256),
        ]);
        match step {
            1 => expected.extend([Event::Write(3), launch("apply_channel_gain", 3, 256)]),
            2 => expected.push(launch("apply_channel_gain", 3, 256)),
            3 => expected.push(Event::Write(3)),
            _ => {}
        }
        expected.push(launch("lif_exp_update", 3, 256));
        match step {
            2 => expected.extend([Event::Write(11), launch("apply_silence_and_flag", 3, 256)]),
            3 => expected.push(Event::Write(11)),
            _ => {}
        }
        expected.extend([
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
        ]);
    }
    for (step, c) in controls.iter().enumerate() {
        rec.advance(step as u64, c).unwrap();
        plain.advance(step as u64, c).unwrap();
    }
    let log = &rec.launcher().log;
    if let Some(k) = (0..log.len().max(expected.len())).find(|&k| log.get(k) != expected.get(k)) {
        panic!("launch #{k}: got {:?}, expected {:?}\nfull log: {log:?}", log.get(k), expected.get(k));
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    rec.drain_spikes(&mut |st, s| a.extend(s.iter().map(|&i| (st, i)))).unwrap();
    plain.drain_spikes(&mut |st, s| b.extend(s.iter().map(|&i| (st, i)))).unwrap();
    assert_eq!(a, b);
    let all: Vec<u32> = (0..700).collect();
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    rec.read_state(0, &all, &mut va);
    plain.read_state(0, &all, &mut vb);
    assert_eq!(va.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), vb.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
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
