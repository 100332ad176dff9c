//! neurotwin's own HDF5 connectome file (`.h5`): a connectome, a compiled network, or both, stored as
//! flat columnar arrays so that a large connectome loads in seconds.
//!
//! # Layout, version `connectome/2`
//!
//! Conventions: *string* = HDF5 fixed-length UTF-8 string, NUL-padded, as wide as the longest value of its
//! dataset or attribute rounded up to 8, 16, 32, 64, 128, 256, 1,024, 4,096, 16,384 or 65,536 bytes (the
//! most a string may hold; h5py reads them as `bytes`, `ds.asstr()[()]` as `str`); all arrays are
//! one-dimensional unless a shape is given; `N` neurons, `M` connections. Every non-empty dataset is chunked
//! (at most 65,536 rows and about 1 MiB a chunk) with HDF5's Fletcher-32 checksum filter; arrays of 4,096 or
//! more elements are also compressed (byte shuffle + deflate level 4) when the HDF5 library has its deflate
//! filter (it reads back without the filter being requested). The file's objects use the HDF5 1.10 format
//! (library version bounds v110), whose object headers, chunk indexes and heaps carry checksums too.
//!
//! *Coded strings* (values that repeat a lot) are stored as a table of distinct values,
//! `<column>_table` (string\[T\], in order of first appearance), plus `<column>` (u32\[rows\]) holding the
//! index into the table, or `4294967295` (`u32::MAX`) for "none". Optional numbers use NaN for "none".
//!
//! ```text
//! /                                   attributes: neurotwin_format = "connectome/1" (string),
//!                                                 name (string; the connectome's short name)
//! /provenance                         string[P]     one entry per source
//! /neurons/id                         u64[N]        external ids, unique; row = simulation index
//! /neurons/name                       string[N]     "" = unnamed
//! /neurons/cell_type                  string[N]     "" = unknown
//! /neurons/transmitter_table          string[T]     coded: neurotransmitter as given by the source
//! /neurons/transmitter                u32[N]
//! /neurons/region_table               string[R]     coded: region / ganglion / neuropil
//! /neurons/region                     u32[N]
//! /neurons/position                   f32[N, 3]     soma x, y, z; a row of three NaN = no position
//!
//! /connections/pre                    u64[M]        presynaptic neuron id
//! /connections/post                   u64[M]        postsynaptic neuron id
//! /connections/kind                   u8[M]         0 = chemical, 1 = electrical (listed once per junction)
//! /connections/count                  f32[M]        number of synapses (>= 0)
//! /connections/weight                 f32[M]        explicit weight, NaN = none
//! /connections/transmitter_table      string[T]     coded: per-connection neurotransmitter
//! /connections/transmitter            u32[M]
//! /connections/receptor_table         string[R]     coded: per-connection receptor class
//! /connections/receptor               u32[M]
//! /connections/delay_ms               f32[M]        NaN = none
//! /connections/confidence             f32[M]        NaN = none
//!
//! /compiled                           attributes: dt_ms (f64), report (string: the CompileReport as
//!                                     JSON; a non-finite bytes_per_synapse is stored as null)
//! /compiled/receptors/name            string[C]     receptor channels; synapse receptor indices refer here
//! /compiled/receptors/excitatory      u8[C]         1 = excitatory, 0 = inhibitory
//! /compiled/chemical                  attributes: n_pre (u32), n_post (u32),
//!                                                 weight_encoding = "dense" | "table" (string)
//! /compiled/chemical/row_segments     u32[n_pre + 1]  segments of row i: row_segments[i] .. [i + 1]
//! /compiled/chemical/segment_start    u64[S + 1]      synapses of segment s: segment_start[s] .. [s + 1]
//! /compiled/chemical/segment_delay    u16[S]          delay in time steps (>= 1)
//! /compiled/chemical/segment_receptor u8[S]           index into /compiled/receptors
//! /compiled/chemical/targets          u32[K]          postsynaptic neuron index, sorted in a segment
//! /compiled/chemical/weights          f32[K]          "dense": one weight per synapse
//! /compiled/chemical/weight_values    f32[V]          "table": exact distinct weights (V <= 65,536) …
//! /compiled/chemical/weight_index     u16[K]          … and per synapse an index into weight_values
//! /compiled/gap                       attribute: n (u32)
//! /compiled/gap/row_ptr               u64[n + 1]      entries of row i: row_ptr[i] .. [i + 1]
//! /compiled/gap/partner               u32[E]          partner neuron index, sorted in a row
//! /compiled/gap/conductance           f32[E]          nS; each junction appears in both rows
//! ```
//!
//! A file written by [`write_connectome`] has `/neurons`, `/connections` and `/provenance`; one written
//! by [`write_compiled`] has `/neurons`, `/provenance` and `/compiled` (the compiled network's own neuron
//! table, name and provenance); [`write_connectome_and_compiled`] writes all of them. A compiled network
//! is read back without recompiling; its synapse matrix is checked ([`SynapseMatrix::check`]) and so are
//! the gap matrix and the receptor indices.
//!
//! Writes are atomic: the file is written to a temporary file in the destination directory and renamed
//! into place only when complete. Every failure (missing file, not HDF5, wrong or missing format
//! attribute, missing dataset, wrong type, inconsistent lengths) is a [`ConnectomeError::Hdf5`] or
//! [`ConnectomeError::Format`] that names the file and the dataset(s).
//!
//! # Damaged files
//!
//! Reading never follows a pointer stored in a `connectome/2` file to somewhere else in the file without a
//! checksum: strings are stored inside the datasets, data chunks carry Fletcher-32 checksums and metadata
//! the HDF5 1.10 checksums, so a changed byte is reported as an error naming the dataset (or the file) rather
//! than read silently or crashing libhdf5. Before a dataset is read, its declared shape is checked against
//! the shapes of the datasets it must match, against what the file's size could hold (deflate compresses at
//! most about 1,000 : 1) and against the memory limit ([`neurotwin_io::budget::check_memory`]), so a damaged
//! size is an error and not an attempt to allocate terabytes (the shared reader [`neurotwin_io::h5`] does these
//! checks).
//!
//! # Version `connectome/1`
//!
//! Files of the previous version (strings as HDF5 *variable-length* strings, small arrays unchunked and
//! without checksums, HDF5 1.8 objects) are still read. They are **not protected** against damage: their
//! strings are read through pointers into the file's global heap, which libhdf5 follows unchecked, so a
//! corrupted `connectome/1` file can crash the process (SIGSEGV in `H5HG_read`) instead of giving an error.
//! Convert one with `neurotwin import old.h5 -o new.h5`, which writes `connectome/2`.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;

use hdf5::file::LibraryVersion;
use hdf5::types::{FixedUnicode, TypeDescriptor};
use hdf5::{Dataset, File, Group, H5Type, Location};
use neurotwin_io::h5::{H5File, is_fixed_string, is_varlen_string, join, type_name};
use neurotwin_models::ReceptorChannel;

use crate::compile::{CompileReport, CompiledNetwork};
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::{SynapseMatrix, Weights};
use crate::network::{Connection, Connectome, Neuron, SynapseKind};
use crate::share::{ConnectomeShare, ReceptorUse};

pub(crate) mod strings;

use strings::with_width;

/// Name of the root attribute holding the format version.
pub const FORMAT_ATTR: &str = "neurotwin_format";
/// The format version this module writes (and reads).
pub const FORMAT: &str = "connectome/2";
/// The previous format version, still read; such files are not protected against damage (see the module
/// documentation).
pub const FORMAT_V1: &str = "connectome/1";
/// Code of a missing value in a coded string column.
pub const NONE_CODE: u32 = u32::MAX;

/// Arrays with at least this many elements are chunked and compressed.
const COMPRESS_MIN: usize = 4096;
/// Most rows per chunk (along the first dimension).
const CHUNK: usize = 1 << 16;
/// Largest chunk (bytes) for wide rows (long strings): fewer rows a chunk.
const CHUNK_BYTES: usize = 1 << 20;
const DEFLATE_LEVEL: u8 = 4;

/// What a neurotwin HDF5 file holds (see [`contents`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Hdf5Contents {
    pub format: String,
    pub name: String,
    pub neurons: usize,
    /// Number of connections, when the file has a `/connections` group.
    pub connections: Option<usize>,
    /// Whether the file has a `/compiled` group.
    pub compiled: bool,
}

// ---------------------------------------------------------------------------------------------------
// Public API

/// Writes `c` to `path` (atomically; an existing file is replaced). The connectome is validated first
/// ([`Connectome::validate`]), so every file written can be read back.
pub fn write_connectome(path: impl AsRef<Path>, c: &Connectome) -> Result<(), ConnectomeError> {
    let path = path.as_ref();
    c.validate()?;
    write_atomically(path, |w, f| {
        w.root(f, &c.name, &c.provenance, &c.neurons)?;
        w.connections(f, &c.connections)
    })
}

/// Writes a compiled network to `path` (atomically) with its neuron table, name and provenance. The
/// synapse matrix is checked first ([`SynapseMatrix::check`]).
pub fn write_compiled(path: impl AsRef<Path>, net: &CompiledNetwork) -> Result<(), ConnectomeError> {
    let path = path.as_ref();
    net.check_whole(&format!("writing {}", path.display()))?;
    check_before_write(path, net)?;
    write_atomically(path, |w, f| {
        w.root(f, &net.name, &net.provenance, &net.neurons)?;
        w.compiled(f, net)
    })
}

/// Writes a connectome and its compiled network into one file. Both must have the same neuron table.
pub fn write_connectome_and_compiled(
    path: impl AsRef<Path>,
    c: &Connectome,
    net: &CompiledNetwork,
) -> Result<(), ConnectomeError> {
    let path = path.as_ref();
    if c.neurons != net.neurons {
        return Err(ConnectomeError::format(
            path,
            "the compiled network's neuron table differs from the connectome's: they cannot share /neurons",
        ));
    }
    c.validate()?;
    check_before_write(path, net)?;
    write_atomically(path, |w, f| {
        w.root(f, &c.name, &c.provenance, &c.neurons)?;
        w.connections(f, &c.connections)?;
        w.compiled(f, net)
    })
}

fn check_before_write(path: &Path, net: &CompiledNetwork) -> Result<(), ConnectomeError> {
    net.chemical.check().map_err(|e| ConnectomeError::format(path, format!("not written: synapse matrix: {e}")))?;
    check_gap(&net.gap).map_err(|e| ConnectomeError::format(path, format!("not written: gap matrix: {e}")))
}

/// Reads a connectome written by [`write_connectome`] and validates it.
pub fn read_connectome(path: impl AsRef<Path>) -> Result<Connectome, ConnectomeError> {
    let path = path.as_ref();
    let r = Reader::open(path)?;
    if !r.h.file().link_exists("connections") {
        return Err(r.format(if r.h.file().link_exists("compiled") {
            "no /connections group: this file holds a compiled network only (read it with read_compiled)".to_string()
        } else {
            "missing group /connections".to_string()
        }));
    }
    let (name, provenance, neurons) = r.root()?;
    let connections = r.connections()?;
    let c = Connectome { name, provenance, neurons, connections };
    c.validate().map_err(|e| r.format(format!("invalid connectome: {}", strip_invalid(&e))))?;
    Ok(c)
}

/// Rows of `/connections` read at a time by [`read_connectome_share`] (≈ 3 MB of columns).
const SHARE_ROWS: usize = 1 << 16;

/// Reads the neuron table and only the connections onto one rank's targets (`share`, balanced on the chemical
/// connections onto each block of 64 neurons), streaming `/connections` in slices of [`SHARE_ROWS`] rows twice
/// (counts per block, then the rows kept), so that a rank never holds the whole connection list. Each kept row is
/// checked as [`read_connectome`] checks every row, with its row number in the file; an unknown postsynaptic id
/// is an error on every rank (the first pass sees every row). The whole share (`Share::WHOLE`) reads every row.
pub fn read_connectome_share(
    path: impl AsRef<Path>,
    share: &crate::share::Share,
) -> Result<ConnectomeShare, ConnectomeError> {
    let path = path.as_ref();
    let r = Reader::open(path)?;
    if !r.h.file().link_exists("connections") {
        return Err(r.format("missing group /connections (a file holding a compiled network only cannot be split)"));
    }
    let (name, provenance, neurons) = r.root()?;
    let probe = Connectome { name, provenance, neurons, connections: Vec::new() };
    let idx = probe.id_index().map_err(|e| r.format(format!("invalid connectome: {}", strip_invalid(&e))))?;
    let n = probe.neurons.len() as u32;
    let g = r.group(r.h.file(), "connections")?;
    let m = r.len_of(&g, "pre")?;
    let columns = ["post", "kind", "count", "weight", "transmitter", "receptor", "delay_ms", "confidence"];
    r.same_rows(&g, &columns, "pre", m)?;
    let slice = |name: &str| -> Result<Dataset, ConnectomeError> { r.dataset(&g, name) };
    let (ds_pre, ds_post, ds_kind, ds_count, ds_weight) =
        (slice("pre")?, slice("post")?, slice("kind")?, slice("count")?, slice("weight")?);
    let (ds_nt, ds_rc, ds_delay, ds_conf) =
        (slice("transmitter")?, slice("receptor")?, slice("delay_ms")?, slice("confidence")?);
    r.h.require_type::<u64>(&ds_pre)?;
    r.h.require_type::<u64>(&ds_post)?;
    r.h.require_type::<u8>(&ds_kind)?;
    for ds in [&ds_count, &ds_weight, &ds_delay, &ds_conf] {
        r.h.require_type::<f32>(ds)?;
    }
    r.h.require_type::<u32>(&ds_nt)?;
    r.h.require_type::<u32>(&ds_rc)?;
    let read = |ds: &Dataset, what: &str, a: usize, b: usize| -> Result<Vec<u8>, ConnectomeError> {
        ds.read_slice_1d::<u8, _>(a..b)
            .map(|v| v.to_vec())
            .map_err(|e| r.format(format!("{}[{a}..{b}]: {e}", join(&g, what))))
    };
    macro_rules! rows {
        ($ds:expr, $t:ty, $what:expr, $a:expr, $b:expr) => {
            $ds.read_slice_1d::<$t, _>($a..$b)
                .map(|v| v.to_vec())
                .map_err(|e| r.format(format!("{}[{}..{}]: {e}", join(&g, $what), $a, $b)))?
        };
    }
    let kind_of = |k: usize, x: u8| match x {
        0 => Ok(SynapseKind::Chemical),
        1 => Ok(SynapseKind::Electrical),
        x => Err(r.format(format!("{}[{k}] = {x}: must be 0 (chemical) or 1 (electrical)", join(&g, "kind")))),
    };

    // Pass 1: chemical connections per block of targets, and what whole-network checks need.
    let nt_table = r.strings(&g, "transmitter_table")?;
    let rc_table = r.strings(&g, "receptor_table")?;
    // A neuron's transmitter as a code past the connections' table (`NONE_CODE`: none).
    let mut neuron_nt_table: Vec<&str> = Vec::new();
    let neuron_nt: Vec<u32> = probe
        .neurons
        .iter()
        .map(|x| match x.transmitter.as_deref() {
            None => NONE_CODE,
            Some(t) => {
                let k = neuron_nt_table.iter().position(|&y| y == t).unwrap_or_else(|| {
                    neuron_nt_table.push(t);
                    neuron_nt_table.len() - 1
                });
                (nt_table.len() + k) as u32
            }
        })
        .collect();
    let mut uses: HashMap<(u32, u32), ReceptorUse> = HashMap::new();
    let mut cost = vec![0.0f64; n.div_ceil(crate::share::BLOCK) as usize];
    let (mut largest_count, mut any_chemical, mut any_weighted) = (0.0f32, false, false);
    for a in (0..m).step_by(SHARE_ROWS) {
        let b = (a + SHARE_ROWS).min(m);
        let post: Vec<u64> = rows!(ds_post, u64, "post", a, b);
        let pre: Vec<u64> = rows!(ds_pre, u64, "pre", a, b);
        let kind = read(&ds_kind, "kind", a, b)?;
        let count: Vec<f32> = rows!(ds_count, f32, "count", a, b);
        let weight: Vec<f32> = rows!(ds_weight, f32, "weight", a, b);
        let nt: Vec<u32> = rows!(ds_nt, u32, "transmitter", a, b);
        let rc: Vec<u32> = rows!(ds_rc, u32, "receptor", a, b);
        for (j, &id) in post.iter().enumerate() {
            let Some(&t) = idx.get(&id) else {
                return Err(r.format(format!(
                    "invalid connectome: connection #{}: post neuron id {id} is not in the neuron table",
                    a + j
                )));
            };
            if kind_of(a + j, kind[j])? == SynapseKind::Chemical {
                cost[(t / crate::share::BLOCK) as usize] += 1.0;
                any_chemical = true;
                let weighted = !weight[j].is_nan();
                if weighted {
                    any_weighted = true;
                } else {
                    largest_count = largest_count.max(count[j]);
                }
                let Some(&p) = idx.get(&pre[j]) else {
                    return Err(r.format(format!(
                        "invalid connectome: connection #{}: pre neuron id {} is not in the neuron table",
                        a + j,
                        pre[j]
                    )));
                };
                for (what, c, len) in [("transmitter", nt[j], nt_table.len()), ("receptor", rc[j], rc_table.len())] {
                    if c != NONE_CODE && c as usize >= len {
                        return Err(r.format(format!(
                            "{}[{}] = {c} is outside {}_table ({len} entries; {NONE_CODE} means none)",
                            join(&g, what),
                            a + j,
                            join(&g, what)
                        )));
                    }
                }
                let code = if nt[j] == NONE_CODE { neuron_nt[p as usize] } else { nt[j] };
                let u = uses.entry((code, rc[j])).or_insert_with(|| ReceptorUse {
                    transmitter: None,
                    receptor: None,
                    largest_count: 0.0,
                    weighted: false,
                    first_row: a + j,
                    pre: pre[j],
                    post: id,
                });
                u.weighted |= weighted;
                if !weighted && count[j].is_finite() {
                    u.largest_count = u.largest_count.max(count[j]);
                }
            }
        }
    }
    let targets = share.targets_by_cost(n, &cost);
    let mut receptor_uses: Vec<ReceptorUse> = Vec::with_capacity(uses.len());
    for ((code, rc), mut u) in uses {
        u.transmitter = match code {
            NONE_CODE => None,
            c if (c as usize) < nt_table.len() => Some(nt_table[c as usize].clone()),
            c if (c as usize) < nt_table.len() + neuron_nt_table.len() => {
                Some(neuron_nt_table[c as usize - nt_table.len()].to_string())
            }
            c => {
                return Err(r.format(format!(
                    "{}[{}] = {c} is outside {}_table ({} entries; {NONE_CODE} means none)",
                    join(&g, "transmitter"),
                    u.first_row,
                    join(&g, "transmitter"),
                    nt_table.len()
                )));
            }
        };
        u.receptor = match rc {
            NONE_CODE => None,
            c if (c as usize) < rc_table.len() => Some(rc_table[c as usize].clone()),
            c => {
                return Err(r.format(format!(
                    "{}[{}] = {c} is outside {}_table ({} entries; {NONE_CODE} means none)",
                    join(&g, "receptor"),
                    u.first_row,
                    join(&g, "receptor"),
                    rc_table.len()
                )));
            }
        };
        receptor_uses.push(u);
    }
    receptor_uses.sort_by_key(|u| u.first_row);

    // Pass 2: the rows onto those targets (and every electrical one).
    let decode = |table: &[String], what: &str, k: usize, c: u32| -> Result<Option<String>, ConnectomeError> {
        match c {
            NONE_CODE => Ok(None),
            c if (c as usize) < table.len() => Ok(Some(table[c as usize].clone())),
            c => Err(r.format(format!(
                "{}[{k}] = {c} is outside {}_table ({} entries; {NONE_CODE} means none)",
                join(&g, what),
                join(&g, what),
                table.len()
            ))),
        }
    };
    let some = |x: f32| if x.is_nan() { None } else { Some(x) };
    let mut connections = Vec::new();
    for a in (0..m).step_by(SHARE_ROWS) {
        let b = (a + SHARE_ROWS).min(m);
        let post: Vec<u64> = rows!(ds_post, u64, "post", a, b);
        let kind = read(&ds_kind, "kind", a, b)?;
        let keep: Vec<bool> =
            post.iter().zip(&kind).map(|(id, &k)| k == 1 || idx.get(id).is_some_and(|t| targets.contains(t))).collect();
        if !keep.iter().any(|&k| k) {
            continue;
        }
        let pre: Vec<u64> = rows!(ds_pre, u64, "pre", a, b);
        let count: Vec<f32> = rows!(ds_count, f32, "count", a, b);
        let weight: Vec<f32> = rows!(ds_weight, f32, "weight", a, b);
        let nt: Vec<u32> = rows!(ds_nt, u32, "transmitter", a, b);
        let rc: Vec<u32> = rows!(ds_rc, u32, "receptor", a, b);
        let delay: Vec<f32> = rows!(ds_delay, f32, "delay_ms", a, b);
        let conf: Vec<f32> = rows!(ds_conf, f32, "confidence", a, b);
        for j in (0..b - a).filter(|&j| keep[j]) {
            let k = a + j;
            let c = Connection {
                pre: pre[j],
                post: post[j],
                kind: kind_of(k, kind[j])?,
                count: count[j],
                weight: some(weight[j]),
                transmitter: decode(&nt_table, "transmitter", k, nt[j])?,
                receptor: decode(&rc_table, "receptor", k, rc[j])?,
                delay_ms: some(delay[j]),
                confidence: some(conf[j]),
            };
            crate::network::check_connection(k, &c, &idx)
                .map_err(|e| r.format(format!("invalid connectome: {}", strip_invalid(&e))))?;
            connections.push(c);
        }
    }
    let connectome = Connectome { connections, ..probe };
    Ok(ConnectomeShare { connectome, targets, largest_count, any_chemical, any_weighted, receptor_uses })
}

/// Reads a compiled network written by [`write_compiled`] (or [`write_connectome_and_compiled`])
/// without recompiling, and checks its structure.
pub fn read_compiled(path: impl AsRef<Path>) -> Result<CompiledNetwork, ConnectomeError> {
    let path = path.as_ref();
    let r = Reader::open(path)?;
    if !r.h.file().link_exists("compiled") {
        return Err(r.format(if r.h.file().link_exists("connections") {
            "no /compiled group: this file holds a connectome only (compile it, or write it with write_compiled)"
                .to_string()
        } else {
            "missing group /compiled".to_string()
        }));
    }
    let (name, provenance, neurons) = r.root()?;
    r.compiled(name, provenance, neurons)
}

/// Opens a file, checks its format attribute and says what it holds, reading only sizes.
pub fn contents(path: impl AsRef<Path>) -> Result<Hdf5Contents, ConnectomeError> {
    let path = path.as_ref();
    let r = Reader::open(path)?;
    let name = r.str_attr(r.h.file(), "name")?;
    let neurons = r.group(r.h.file(), "neurons")?;
    let n = r.len_of(&neurons, "id")?;
    let connections = if r.h.file().link_exists("connections") {
        let g = r.group(r.h.file(), "connections")?;
        Some(r.len_of(&g, "pre")?)
    } else {
        None
    };
    Ok(Hdf5Contents {
        format: r.format_name().to_string(),
        name,
        neurons: n,
        connections,
        compiled: r.h.file().link_exists("compiled"),
    })
}

fn strip_invalid(e: &ConnectomeError) -> String {
    match e {
        ConnectomeError::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Writing

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Writer, &File) -> Result<(), ConnectomeError>,
) -> Result<(), ConnectomeError> {
    let herr = |what: &str, e: &dyn Display| ConnectomeError::Hdf5 {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    };
    // Temporary file beside `path` (0666 − umask), fsynced and renamed into place by the shared I/O layer.
    neurotwin_io::atomic::write_file(path, |tmp: &Path| {
        let w = Writer { path, compress: hdf5::filters::deflate_available() };
        let f = File::with_options()
            .with_fapl(|p| p.libver_bounds(LibraryVersion::V110, LibraryVersion::latest()))
            .create(tmp)
            .map_err(|e| herr("cannot create the HDF5 file", &e))?;
        w.str_attr(&f, FORMAT_ATTR, FORMAT)?;
        write(&w, &f)?;
        f.flush().map_err(|e| herr("cannot flush", &e))?;
        f.close().map_err(|e| herr("cannot close", &e))
    })
}

struct Writer<'a> {
    path: &'a Path,
    compress: bool,
}

/// Distinct values in order of first appearance and one code per row.
fn encode_strings<'s>(values: impl Iterator<Item = Option<&'s str>>) -> (Vec<&'s str>, Vec<u32>) {
    let mut table: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let codes = values
        .map(|v| match v {
            None => NONE_CODE,
            Some(s) => *index.entry(s).or_insert_with(|| {
                table.push(s);
                (table.len() - 1) as u32
            }),
        })
        .collect();
    (table, codes)
}

fn opt_f32(v: Option<f32>) -> f32 {
    v.unwrap_or(f32::NAN)
}

impl Writer<'_> {
    fn err(&self, what: impl Display, e: impl Display) -> ConnectomeError {
        ConnectomeError::Hdf5 { path: self.path.to_path_buf(), message: format!("{what}: {e}") }
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, ConnectomeError> {
        parent.create_group(name).map_err(|e| self.err(format!("cannot create group {name}"), e))
    }

    fn array<T: H5Type>(&self, g: &Group, name: &str, data: &[T]) -> Result<(), ConnectomeError> {
        self.array_nd(g, name, data, vec![data.len()])
    }

    /// Writes `data` with `shape`: chunked with the Fletcher-32 checksum when not empty, compressed too when
    /// large (see the module documentation).
    fn array_nd<T: H5Type>(&self, g: &Group, name: &str, data: &[T], shape: Vec<usize>) -> Result<(), ConnectomeError> {
        let full = || format!("{}/{name}", g.name().trim_end_matches('/'));
        let mut b = g.new_dataset::<T>();
        if !data.is_empty() && !shape.is_empty() {
            let row_bytes = std::mem::size_of::<T>() * shape[1..].iter().product::<usize>();
            let mut chunk = shape.clone();
            chunk[0] = chunk[0].min(CHUNK).min((CHUNK_BYTES / row_bytes.max(1)).max(1));
            b = b.chunk(chunk);
            if self.compress && data.len() >= COMPRESS_MIN {
                b = b.shuffle().deflate(DEFLATE_LEVEL);
            }
            b = b.fletcher32();
        }
        let ds = b.shape(shape).create(name).map_err(|e| self.err(format!("cannot create {}", full()), e))?;
        if !data.is_empty() {
            ds.write_raw(data).map_err(|e| self.err(format!("cannot write {}", full()), e))?;
        }
        Ok(())
    }

    /// A string array as fixed-length UTF-8 strings (see the module documentation).
    fn strings<'s>(&self, g: &Group, name: &str, values: impl Iterator<Item = &'s str>) -> Result<(), ConnectomeError> {
        let values: Vec<&str> = values.collect();
        let full = || format!("{}/{name}", g.name().trim_end_matches('/'));
        let width = strings::width_for(&values).map_err(|(k, m)| self.err(format!("{}[{k}]", full()), m))?;
        with_width!(width, N => self.fixed_strings::<N>(g, name, &values), Err(self.err(full(), "string too long")))
    }

    fn fixed_strings<const N: usize>(&self, g: &Group, name: &str, values: &[&str]) -> Result<(), ConnectomeError> {
        let v: Vec<FixedUnicode<N>> = values
            .iter()
            .enumerate()
            .map(|(k, s)| strings::fixed::<N>(s).map_err(|m| self.err(format!("{}/{name}[{k}]", g.name()), m)))
            .collect::<Result<_, _>>()?;
        self.array(g, name, &v)
    }

    fn coded<'s>(
        &self,
        g: &Group,
        name: &str,
        values: impl Iterator<Item = Option<&'s str>>,
    ) -> Result<(), ConnectomeError> {
        let (table, codes) = encode_strings(values);
        self.strings(g, &format!("{name}_table"), table.into_iter())?;
        self.array(g, name, &codes)
    }

    /// A scalar fixed-length UTF-8 string attribute.
    fn str_attr(&self, loc: &Location, name: &str, value: &str) -> Result<(), ConnectomeError> {
        let width = strings::width_for(&[value]).map_err(|(_, m)| self.err(format!("attribute {name}"), m))?;
        with_width!(width, N => self.fixed_attr::<N>(loc, name, value), Err(self.err(name, "string too long")))
    }

    fn fixed_attr<const N: usize>(&self, loc: &Location, name: &str, value: &str) -> Result<(), ConnectomeError> {
        let v = strings::fixed::<N>(value).map_err(|m| self.err(format!("attribute {name}"), m))?;
        loc.new_attr::<FixedUnicode<N>>()
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(|e| self.err(format!("cannot write attribute {name}"), e))
    }

    fn num_attr<T: H5Type>(&self, loc: &Location, name: &str, value: T) -> Result<(), ConnectomeError> {
        loc.new_attr::<T>()
            .create(name)
            .and_then(|a| a.write_scalar(&value))
            .map_err(|e| self.err(format!("cannot write attribute {name}"), e))
    }

    /// Root attributes, `/provenance` and `/neurons`.
    fn root(&self, f: &File, name: &str, provenance: &[String], neurons: &[Neuron]) -> Result<(), ConnectomeError> {
        self.str_attr(f, "name", name)?;
        self.strings(f, "provenance", provenance.iter().map(String::as_str))?;
        let g = self.group(f, "neurons")?;
        let ids: Vec<u64> = neurons.iter().map(|n| n.id).collect();
        self.array(&g, "id", &ids)?;
        self.strings(&g, "name", neurons.iter().map(|n| n.name.as_str()))?;
        self.strings(&g, "cell_type", neurons.iter().map(|n| n.cell_type.as_str()))?;
        self.coded(&g, "transmitter", neurons.iter().map(|n| n.transmitter.as_deref()))?;
        self.coded(&g, "region", neurons.iter().map(|n| n.region.as_deref()))?;
        let pos: Vec<f32> = neurons.iter().flat_map(|n| n.position.unwrap_or([f32::NAN; 3])).collect();
        self.array_nd(&g, "position", &pos, vec![neurons.len(), 3])
    }

    fn connections(&self, f: &File, cs: &[Connection]) -> Result<(), ConnectomeError> {
        let g = self.group(f, "connections")?;
        let col_u64 = |get: fn(&Connection) -> u64| cs.iter().map(get).collect::<Vec<u64>>();
        let col_f32 = |get: fn(&Connection) -> f32| cs.iter().map(get).collect::<Vec<f32>>();
        self.array(&g, "pre", &col_u64(|c| c.pre))?;
        self.array(&g, "post", &col_u64(|c| c.post))?;
        let kind: Vec<u8> = cs
            .iter()
            .map(|c| match c.kind {
                SynapseKind::Chemical => 0,
                SynapseKind::Electrical => 1,
            })
            .collect();
        self.array(&g, "kind", &kind)?;
        self.array(&g, "count", &col_f32(|c| c.count))?;
        self.array(&g, "weight", &col_f32(|c| opt_f32(c.weight)))?;
        self.coded(&g, "transmitter", cs.iter().map(|c| c.transmitter.as_deref()))?;
        self.coded(&g, "receptor", cs.iter().map(|c| c.receptor.as_deref()))?;
        self.array(&g, "delay_ms", &col_f32(|c| opt_f32(c.delay_ms)))?;
        self.array(&g, "confidence", &col_f32(|c| opt_f32(c.confidence)))
    }

    fn compiled(&self, f: &File, net: &CompiledNetwork) -> Result<(), ConnectomeError> {
        let g = self.group(f, "compiled")?;
        self.num_attr(&g, "dt_ms", net.dt_ms)?;
        let report = report_to_json(&net.report).map_err(|e| self.err("cannot encode the compile report", e))?;
        self.str_attr(&g, "report", &report)?;

        let rg = self.group(&g, "receptors")?;
        self.strings(&rg, "name", net.receptors.iter().map(|r| r.name.as_str()))?;
        let exc: Vec<u8> = net.receptors.iter().map(|r| r.excitatory as u8).collect();
        self.array(&rg, "excitatory", &exc)?;

        let m = &net.chemical;
        let cg = self.group(&g, "chemical")?;
        self.num_attr(&cg, "n_pre", m.n_pre)?;
        self.num_attr(&cg, "n_post", m.n_post)?;
        self.array(&cg, "row_segments", &m.row_segments)?;
        self.array(&cg, "segment_start", &m.segment_start)?;
        self.array(&cg, "segment_delay", &m.segment_delay)?;
        self.array(&cg, "segment_receptor", &m.segment_receptor)?;
        self.array(&cg, "targets", &m.targets)?;
        match &m.weights {
            Weights::Dense(w) => {
                self.str_attr(&cg, "weight_encoding", "dense")?;
                self.array(&cg, "weights", w)?;
            }
            Weights::Table { values, index } => {
                self.str_attr(&cg, "weight_encoding", "table")?;
                self.array(&cg, "weight_values", values)?;
                self.array(&cg, "weight_index", index)?;
            }
        }

        let gg = self.group(&g, "gap")?;
        self.num_attr(&gg, "n", net.gap.n)?;
        self.array(&gg, "row_ptr", &net.gap.row_ptr)?;
        self.array(&gg, "partner", &net.gap.partner)?;
        self.array(&gg, "conductance", &net.gap.conductance)
    }
}

/// JSON of the report; `bytes_per_synapse` (NaN for an empty matrix) becomes `null` when not finite.
fn report_to_json(r: &CompileReport) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(r)?;
    if !r.bytes_per_synapse.is_finite() {
        v["bytes_per_synapse"] = serde_json::Value::Null;
    }
    serde_json::to_string(&v)
}

fn report_from_json(s: &str) -> Result<CompileReport, serde_json::Error> {
    let mut v: serde_json::Value = serde_json::from_str(s)?;
    let bps = v.get("bytes_per_synapse").and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    if let Some(o) = v.as_object_mut() {
        o.insert("bytes_per_synapse".into(), serde_json::json!(0.0));
    }
    let mut r: CompileReport = serde_json::from_value(v)?;
    r.bytes_per_synapse = bps;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------------
// Reading

/// The reader of one file: the shared HDF5 wrapper ([`neurotwin_io::h5`]: located errors, declared sizes
/// checked against the file and the memory limit before anything is read) plus this format's rules.
struct Reader<'a> {
    path: &'a Path,
    h: H5File,
    /// Format version: 2 (`connectome/2`) or 1 (`connectome/1`, variable-length strings).
    version: u8,
}

impl<'a> Reader<'a> {
    fn open(path: &'a Path) -> Result<Self, ConnectomeError> {
        let h = H5File::open(path)?.with_budget_fix("read a smaller connectome");
        if !h.has_attr(h.file(), FORMAT_ATTR) {
            return Err(ConnectomeError::format(
                path,
                format!(
                    "no `{FORMAT_ATTR}` attribute at the root: not a neurotwin connectome file (expected \
                     {FORMAT_ATTR} = \"{FORMAT}\")"
                ),
            ));
        }
        let mut r = Self { path, h, version: 0 };
        r.version = r.read_version()?;
        Ok(r)
    }

    /// The format version from the root attribute: `connectome/2` stored as a fixed-length string, or
    /// `connectome/1` as a variable-length one.
    fn read_version(&self) -> Result<u8, ConnectomeError> {
        let varlen = is_varlen_string(&self.h.attr_type(self.h.file(), FORMAT_ATTR)?);
        let value = self.h.attr_string(self.h.file(), FORMAT_ATTR)?;
        match (value.as_str(), varlen) {
            (FORMAT, false) => Ok(2),
            (FORMAT_V1, true) => Ok(1),
            (FORMAT | FORMAT_V1, _) => Err(self.format(format!(
                "{FORMAT_ATTR} = \"{value}\" is stored as a {} string, which neurotwin never writes for that \
                 version: the file is damaged or was not written by neurotwin",
                if varlen { "variable-length" } else { "fixed-length" }
            ))),
            _ => Err(self.format(format!(
                "{FORMAT_ATTR} = \"{value}\" is not supported: this version reads \"{FORMAT}\" and \"{FORMAT_V1}\""
            ))),
        }
    }

    /// The format version as written in the file.
    fn format_name(&self) -> &'static str {
        if self.version == 1 { FORMAT_V1 } else { FORMAT }
    }

    fn format(&self, message: impl Into<String>) -> ConnectomeError {
        ConnectomeError::format(self.path, message)
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, ConnectomeError> {
        Ok(self.h.group(&join(parent, name))?)
    }

    fn dataset(&self, g: &Group, name: &str) -> Result<Dataset, ConnectomeError> {
        Ok(self.h.dataset(&join(g, name))?)
    }

    /// Number of rows (first dimension) of a dataset (read from its metadata only).
    fn len_of(&self, g: &Group, name: &str) -> Result<usize, ConnectomeError> {
        let ds = self.dataset(g, name)?;
        Ok(ds.shape().first().copied().unwrap_or(0))
    }

    /// Checks, before any of them is read, that the datasets `names` of `g` have `n` rows, as `like` has.
    fn same_rows(&self, g: &Group, names: &[&str], like: &str, n: usize) -> Result<(), ConnectomeError> {
        for name in names {
            let rows = self.len_of(g, name)?;
            if rows != n {
                return Err(self.format(format!(
                    "inconsistent lengths: {} has {rows} entries but {} has {n}",
                    join(g, name),
                    join(g, like)
                )));
            }
        }
        Ok(())
    }

    /// Reads a dataset of exactly type `T` and shape `[rows, cols…]`; returns the flat data and rows.
    fn array_nd<T: H5Type>(&self, g: &Group, name: &str, cols: &[usize]) -> Result<(Vec<T>, usize), ConnectomeError> {
        let ds = self.dataset(g, name)?;
        self.h.require_type::<T>(&ds)?;
        let shape = ds.shape();
        if shape.len() != cols.len() + 1 || shape[1..] != *cols {
            let want_shape: Vec<String> =
                std::iter::once("n".to_string()).chain(cols.iter().map(|c| c.to_string())).collect();
            let full = join(g, name);
            return Err(self.format(format!("{full} has shape {shape:?}, expected [{}]", want_shape.join(", "))));
        }
        Ok((self.h.read_nd::<T>(&ds)?.0, shape[0]))
    }

    fn array<T: H5Type>(&self, g: &Group, name: &str) -> Result<Vec<T>, ConnectomeError> {
        Ok(self.array_nd(g, name, &[])?.0)
    }

    /// Reads a 1-D array and checks it has `len` elements (the length of dataset `like`).
    fn array_len<T: H5Type>(&self, g: &Group, name: &str, len: usize, like: &str) -> Result<Vec<T>, ConnectomeError> {
        let v = self.array::<T>(g, name)?;
        self.check_len(g, name, v.len(), len, like)?;
        Ok(v)
    }

    fn check_len(&self, g: &Group, name: &str, got: usize, len: usize, like: &str) -> Result<(), ConnectomeError> {
        if got != len {
            return Err(self.format(format!(
                "inconsistent lengths: {} has {got} entries but {} has {len}",
                join(g, name),
                join(g, like)
            )));
        }
        Ok(())
    }

    /// Refuses a string type this file's version does not store: `connectome/2` has fixed-length strings
    /// only (variable-length ones are read through unchecked heap pointers, see the module documentation).
    fn check_string_type(&self, full: &str, t: &TypeDescriptor) -> Result<(), ConnectomeError> {
        if is_fixed_string(t) || (self.version == 1 && is_varlen_string(t)) {
            return Ok(());
        }
        let expected = if self.version == 2 { "a fixed-length string" } else { "a string" };
        Err(self.format(format!("{full} has type {}, expected {expected}", type_name(t))))
    }

    /// A 1-D string dataset: fixed-length strings, or (in `connectome/1` files only) variable-length ones.
    fn strings(&self, g: &Group, name: &str) -> Result<Vec<String>, ConnectomeError> {
        let ds = self.dataset(g, name)?;
        self.check_string_type(&join(g, name), &self.h.dtype(&ds)?)?;
        Ok(self.h.read_string_list(&ds)?)
    }

    fn strings_len(&self, g: &Group, name: &str, len: usize, like: &str) -> Result<Vec<String>, ConnectomeError> {
        let v = self.strings(g, name)?;
        self.check_len(g, name, v.len(), len, like)?;
        Ok(v)
    }

    /// A coded string column: `<name>_table` + `<name>` codes.
    fn coded(&self, g: &Group, name: &str, len: usize, like: &str) -> Result<Vec<Option<String>>, ConnectomeError> {
        let table_name = format!("{name}_table");
        let table = self.strings(g, &table_name)?;
        let codes = self.array_len::<u32>(g, name, len, like)?;
        codes
            .iter()
            .enumerate()
            .map(|(k, &c)| match c {
                NONE_CODE => Ok(None),
                c if (c as usize) < table.len() => Ok(Some(table[c as usize].clone())),
                c => Err(self.format(format!(
                    "{}[{k}] = {c} is outside {} ({} entries; {NONE_CODE} means none)",
                    join(g, name),
                    join(g, &table_name),
                    table.len()
                ))),
            })
            .collect()
    }

    /// A scalar string attribute: fixed-length, or (in `connectome/1` files only) variable-length.
    fn str_attr(&self, loc: &Location, name: &str) -> Result<String, ConnectomeError> {
        let t = self.h.attr_type(loc, name)?;
        self.check_string_type(&H5File::attr_label(loc, name), &t)?;
        Ok(self.h.attr_string(loc, name)?)
    }

    fn num_attr<T: H5Type>(&self, loc: &Location, name: &str) -> Result<T, ConnectomeError> {
        Ok(self.h.attr_scalar::<T>(loc, name)?)
    }

    /// Name, provenance and neuron table.
    fn root(&self) -> Result<(String, Vec<String>, Vec<Neuron>), ConnectomeError> {
        let name = self.str_attr(self.h.file(), "name")?;
        let provenance = self.strings(self.h.file(), "provenance")?;
        let g = self.group(self.h.file(), "neurons")?;
        let n = self.len_of(&g, "id")?;
        self.same_rows(&g, &["name", "cell_type", "transmitter", "region", "position"], "id", n)?;
        let ids = self.array::<u64>(&g, "id")?;
        let names = self.strings_len(&g, "name", n, "id")?;
        let types = self.strings_len(&g, "cell_type", n, "id")?;
        let nts = self.coded(&g, "transmitter", n, "id")?;
        let regions = self.coded(&g, "region", n, "id")?;
        let (pos, rows) = self.array_nd::<f32>(&g, "position", &[3])?;
        if rows != n {
            return Err(self.format(format!(
                "inconsistent lengths: {} has {rows} rows but {} has {n}",
                join(&g, "position"),
                join(&g, "id")
            )));
        }
        let neurons = ids
            .into_iter()
            .zip(names)
            .zip(types)
            .zip(nts.into_iter().zip(regions))
            .enumerate()
            .map(|(i, (((id, name), cell_type), (transmitter, region)))| {
                let p = [pos[3 * i], pos[3 * i + 1], pos[3 * i + 2]];
                Neuron {
                    id,
                    name,
                    cell_type,
                    transmitter,
                    position: if p.iter().all(|x| x.is_nan()) { None } else { Some(p) },
                    region,
                }
            })
            .collect();
        Ok((name, provenance, neurons))
    }

    fn connections(&self) -> Result<Vec<Connection>, ConnectomeError> {
        let g = self.group(self.h.file(), "connections")?;
        let m = self.len_of(&g, "pre")?;
        let columns = ["post", "kind", "count", "weight", "transmitter", "receptor", "delay_ms", "confidence"];
        self.same_rows(&g, &columns, "pre", m)?;
        let pre = self.array_len::<u64>(&g, "pre", m, "pre")?;
        let post = self.array_len::<u64>(&g, "post", m, "pre")?;
        let kind = self.array_len::<u8>(&g, "kind", m, "pre")?;
        let count = self.array_len::<f32>(&g, "count", m, "pre")?;
        let weight = self.array_len::<f32>(&g, "weight", m, "pre")?;
        let nt = self.coded(&g, "transmitter", m, "pre")?;
        let rc = self.coded(&g, "receptor", m, "pre")?;
        let delay = self.array_len::<f32>(&g, "delay_ms", m, "pre")?;
        let conf = self.array_len::<f32>(&g, "confidence", m, "pre")?;
        let some = |x: f32| if x.is_nan() { None } else { Some(x) };
        let mut out = Vec::with_capacity(m);
        for (k, (transmitter, receptor)) in nt.into_iter().zip(rc).enumerate() {
            let kind = match kind[k] {
                0 => SynapseKind::Chemical,
                1 => SynapseKind::Electrical,
                x => {
                    return Err(
                        self.format(format!("{}[{k}] = {x}: must be 0 (chemical) or 1 (electrical)", join(&g, "kind")))
                    );
                }
            };
            out.push(Connection {
                pre: pre[k],
                post: post[k],
                kind,
                count: count[k],
                weight: some(weight[k]),
                transmitter,
                receptor,
                delay_ms: some(delay[k]),
                confidence: some(conf[k]),
            });
        }
        Ok(out)
    }

    fn compiled(
        &self,
        name: String,
        provenance: Vec<String>,
        neurons: Vec<Neuron>,
    ) -> Result<CompiledNetwork, ConnectomeError> {
        let g = self.group(self.h.file(), "compiled")?;
        let dt_ms = self.num_attr::<f64>(&g, "dt_ms")?;
        let report_json = self.str_attr(&g, "report")?;
        let report = report_from_json(&report_json)
            .map_err(|e| self.format(format!("attribute `report` of /compiled is not a valid compile report: {e}")))?;

        let rg = self.group(&g, "receptors")?;
        let rnames = self.strings(&rg, "name")?;
        let exc = self.array_len::<u8>(&rg, "excitatory", rnames.len(), "name")?;
        let receptors: Vec<ReceptorChannel> =
            rnames.into_iter().zip(exc).map(|(name, e)| ReceptorChannel { name, excitatory: e != 0 }).collect();

        let cg = self.group(&g, "chemical")?;
        let n_pre = self.num_attr::<u32>(&cg, "n_pre")?;
        let n_post = self.num_attr::<u32>(&cg, "n_post")?;
        let row_segments = self.array::<u32>(&cg, "row_segments")?;
        let segment_start = self.array::<u64>(&cg, "segment_start")?;
        let segment_delay = self.array::<u16>(&cg, "segment_delay")?;
        let segment_receptor = self.array_len::<u8>(&cg, "segment_receptor", segment_delay.len(), "segment_delay")?;
        let targets = self.array::<u32>(&cg, "targets")?;
        let k = targets.len();
        let weights = match self.str_attr(&cg, "weight_encoding")?.as_str() {
            "dense" => Weights::Dense(self.array_len::<f32>(&cg, "weights", k, "targets")?),
            "table" => Weights::Table {
                values: self.array::<f32>(&cg, "weight_values")?,
                index: self.array_len::<u16>(&cg, "weight_index", k, "targets")?,
            },
            other => {
                return Err(self.format(format!(
                    "attribute `weight_encoding` of /compiled/chemical is \"{other}\": must be \"dense\" or \"table\""
                )));
            }
        };
        let chemical = SynapseMatrix {
            n_pre,
            n_post,
            row_segments,
            segment_start,
            segment_delay,
            segment_receptor,
            targets,
            weights,
        };
        chemical
            .check()
            .map_err(|e| self.format(format!("the synapse matrix in /compiled/chemical is inconsistent: {e}")))?;
        if let Some(&r) = chemical.segment_receptor.iter().find(|&&r| r as usize >= receptors.len()) {
            return Err(self.format(format!(
                "/compiled/chemical/segment_receptor holds receptor {r} but /compiled/receptors/name has {} entries",
                receptors.len()
            )));
        }

        let gg = self.group(&g, "gap")?;
        let gn = self.num_attr::<u32>(&gg, "n")?;
        let row_ptr = self.array::<u64>(&gg, "row_ptr")?;
        let partner = self.array::<u32>(&gg, "partner")?;
        let conductance = self.array_len::<f32>(&gg, "conductance", partner.len(), "partner")?;
        let gap = GapMatrix { n: gn, row_ptr, partner, conductance };
        check_gap(&gap).map_err(|e| self.format(format!("the gap matrix in /compiled/gap is inconsistent: {e}")))?;

        let n = neurons.len();
        if n_pre as usize != n || n_post as usize != n || gn as usize != n {
            return Err(self.format(format!(
                "inconsistent sizes: /neurons/id has {n} neurons but /compiled/chemical is {n_pre} x {n_post} and \
                 /compiled/gap has n = {gn}"
            )));
        }
        if !(dt_ms.is_finite() && dt_ms > 0.0) {
            return Err(self.format(format!("attribute `dt_ms` of /compiled is {dt_ms}: must be finite and > 0")));
        }
        Ok(CompiledNetwork { name, provenance, neurons, receptors, chemical, gap, dt_ms, report, held_targets: None })
    }
}

fn check_gap(g: &GapMatrix) -> Result<(), String> {
    if g.row_ptr.len() != g.n as usize + 1 {
        return Err(format!("row_ptr has {} entries, expected n + 1 = {}", g.row_ptr.len(), g.n as u64 + 1));
    }
    if g.row_ptr[0] != 0 || *g.row_ptr.last().unwrap() as usize != g.partner.len() {
        return Err("row pointers must start at 0 and end at the number of entries".into());
    }
    if g.row_ptr.windows(2).any(|w| w[0] > w[1]) {
        return Err("row pointers decrease".into());
    }
    if g.partner.iter().any(|&p| p >= g.n) {
        return Err("a partner index >= n".into());
    }
    if g.conductance.iter().any(|c| !c.is_finite()) {
        return Err("a non-finite conductance".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Connectome {
        let mut a = Neuron::new(1, "AVAL");
        a.transmitter = Some("ACh".into());
        a.region = Some("head".into());
        a.position = Some([1.0, 2.0, 3.0]);
        Connectome {
            name: "small".into(),
            provenance: vec!["test".into()],
            neurons: vec![a, Neuron::new(2, "AVAR"), Neuron::new(3, "DA01")],
            connections: vec![Connection::chemical(1, 2, 2.0), Connection::electrical(1, 3, 1.0)],
        }
    }

    /// Defect 4: a `/neurons/id` declaring 2^40 elements made the reader try to allocate 8 TiB and abort
    /// ("memory allocation failed"); the declared size is checked first.
    #[test]
    fn a_dataset_declaring_2_pow_40_elements_is_refused_before_allocating() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("huge.h5");
        write_connectome(&p, &small()).unwrap();
        {
            let f = File::open_rw(&p).unwrap();
            f.unlink("neurons/id").unwrap();
            let g = f.group("neurons").unwrap();
            g.new_dataset::<u64>().chunk(1 << 16).shape(1usize << 40).create("id").unwrap();
        }
        // The shapes are compared before anything is read.
        let m = read_connectome(&p).unwrap_err().to_string();
        assert!(m.contains("huge.h5") && m.contains("inconsistent lengths"), "{m}");
        assert!(m.contains("/neurons/name has 3 entries but /neurons/id has 1099511627776"), "{m}");
        // All of /neurons grown alike: the size bound itself refuses.
        {
            let f = File::open_rw(&p).unwrap();
            let g = f.group("neurons").unwrap();
            for name in ["name", "cell_type", "transmitter", "region", "position"] {
                g.unlink(name).unwrap();
            }
            let huge = 1usize << 40;
            g.new_dataset::<FixedUnicode<8>>().chunk(1 << 16).shape(huge).create("name").unwrap();
            g.new_dataset::<FixedUnicode<8>>().chunk(1 << 16).shape(huge).create("cell_type").unwrap();
            g.new_dataset::<u32>().chunk(1 << 16).shape(huge).create("transmitter").unwrap();
            g.new_dataset::<u32>().chunk(1 << 16).shape(huge).create("region").unwrap();
            g.new_dataset::<f32>().chunk((1 << 16, 3)).shape((huge, 3)).create("position").unwrap();
        }
        let m = read_connectome(&p).unwrap_err().to_string();
        assert!(m.contains("/neurons/id declares 1099511627776 elements") && m.contains("damaged"), "{m}");
    }

    /// Files are `connectome/2`: strings fixed-length, datasets checksummed; they round-trip.
    #[test]
    fn version_2_stores_fixed_length_strings_with_checksums() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.h5");
        write_connectome(&p, &small()).unwrap();
        let f = File::open(&p).unwrap();
        let names = f.dataset("neurons/name").unwrap();
        assert_eq!(names.dtype().unwrap().to_descriptor().unwrap(), TypeDescriptor::FixedUnicode(8));
        assert!(names.filters().iter().any(|x| *x == hdf5::filters::Filter::fletcher32()), "{:?}", names.filters());
        let fmt = f.attr(FORMAT_ATTR).unwrap().dtype().unwrap().to_descriptor().unwrap();
        assert!(matches!(fmt, TypeDescriptor::FixedUnicode(_)), "{fmt:?}");
        assert_eq!(contents(&p).unwrap().format, FORMAT);
        assert_eq!(read_connectome(&p).unwrap(), small());
    }

    /// Files of the previous version (variable-length strings), written by `neurotwin import` before the change,
    /// are still read.
    #[test]
    fn version_1_files_are_still_read() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/connectome_v1_small.h5");
        assert_eq!(contents(&p).unwrap().format, FORMAT_V1);
        let c = read_connectome(&p).unwrap();
        let names: Vec<&str> = c.neurons.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["AVAL", "AVAR", "DA01", "PVDL"]);
        assert_eq!(c.neurons[0].region.as_deref(), Some("head"));
        assert_eq!(c.connections.len(), 4);
        let net = read_compiled(&p).unwrap();
        assert_eq!(net.neurons, c.neurons);
        assert_eq!(net.dt_ms, 0.1);
    }
}
