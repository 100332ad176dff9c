//! neurotwin's own HDF5 connectome file (`.h5`): a connectome, a compiled network, or both, stored as
//! flat columnar arrays so that a large connectome loads in seconds.
//!
//! # Layout, version `connectome/1`
//!
//! Conventions: *string* = HDF5 variable-length UTF-8 string (h5py reads it as `str`); all arrays are
//! one-dimensional unless a shape is given; `N` neurons, `M` connections. Numeric arrays of 4,096 or
//! more elements are chunked (65,536 elements a chunk) and compressed (byte shuffle + deflate level 4)
//! when the HDF5 library has its deflate filter (it reads back without the filter being requested);
//! string arrays are never compressed (HDF5 would compress only the heap pointers).
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

use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;

use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{File, Group, H5Type, Location};
use neurotwin_models::ReceptorChannel;

use crate::compile::{CompileReport, CompiledNetwork};
use crate::error::ConnectomeError;
use crate::gap::GapMatrix;
use crate::matrix::{SynapseMatrix, Weights};
use crate::network::{Connection, Connectome, Neuron, SynapseKind};

/// Name of the root attribute holding the format version.
pub const FORMAT_ATTR: &str = "neurotwin_format";
/// The format version this module writes and reads.
pub const FORMAT: &str = "connectome/1";
/// Code of a missing value in a coded string column.
pub const NONE_CODE: u32 = u32::MAX;

/// Arrays with at least this many elements are chunked and compressed.
const COMPRESS_MIN: usize = 4096;
/// Elements per chunk (along the first dimension).
const CHUNK: usize = 1 << 16;
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
    if !r.file.link_exists("connections") {
        return Err(r.format(if r.file.link_exists("compiled") {
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

/// Reads a compiled network written by [`write_compiled`] (or [`write_connectome_and_compiled`])
/// without recompiling, and checks its structure.
pub fn read_compiled(path: impl AsRef<Path>) -> Result<CompiledNetwork, ConnectomeError> {
    let path = path.as_ref();
    let r = Reader::open(path)?;
    if !r.file.link_exists("compiled") {
        return Err(r.format(if r.file.link_exists("connections") {
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
    let name = r.str_attr(&r.file, "name")?;
    let neurons = r.group(&r.file, "neurons")?;
    let n = r.len_of(&neurons, "id")?;
    let connections = if r.file.link_exists("connections") {
        let g = r.group(&r.file, "connections")?;
        Some(r.len_of(&g, "pre")?)
    } else {
        None
    };
    Ok(Hdf5Contents {
        format: FORMAT.to_string(),
        name,
        neurons: n,
        connections,
        compiled: r.file.link_exists("compiled"),
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
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| herr("cannot create the output directory", &e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| herr("cannot create a temporary file", &e))?;
    {
        let w = Writer { path, compress: hdf5::filters::deflate_available() };
        let f = File::create(tmp.path()).map_err(|e| herr("cannot create the HDF5 file", &e))?;
        w.str_attr(&f, FORMAT_ATTR, FORMAT)?;
        write(&w, &f)?;
        f.flush().map_err(|e| herr("cannot flush", &e))?;
        f.close().map_err(|e| herr("cannot close", &e))?;
    }
    // Durable before it becomes visible; readable like any other data file (tempfile makes it 0600).
    tmp.as_file().sync_all().map_err(|e| herr("cannot sync", &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| herr("cannot set permissions", &e))?;
    }
    tmp.persist(path).map_err(|e| herr("cannot move the finished file into place", &e.error))?;
    Ok(())
}

struct Writer<'a> {
    path: &'a Path,
    compress: bool,
}

fn vlu(s: &str) -> Result<VarLenUnicode, String> {
    s.parse::<VarLenUnicode>().map_err(|_| format!("string {s:?} contains a NUL character, which HDF5 cannot store"))
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

    fn array_nd<T: H5Type>(&self, g: &Group, name: &str, data: &[T], shape: Vec<usize>) -> Result<(), ConnectomeError> {
        let full = || format!("{}/{name}", g.name().trim_end_matches('/'));
        let mut b = g.new_dataset::<T>();
        if self.compress && data.len() >= COMPRESS_MIN && !shape.is_empty() {
            let mut chunk = shape.clone();
            chunk[0] = chunk[0].min(CHUNK);
            b = b.chunk(chunk).shuffle().deflate(DEFLATE_LEVEL);
        }
        let ds = b.shape(shape).create(name).map_err(|e| self.err(format!("cannot create {}", full()), e))?;
        if !data.is_empty() {
            ds.write_raw(data).map_err(|e| self.err(format!("cannot write {}", full()), e))?;
        }
        Ok(())
    }

    fn strings<'s>(&self, g: &Group, name: &str, values: impl Iterator<Item = &'s str>) -> Result<(), ConnectomeError> {
        let v: Vec<VarLenUnicode> = values
            .enumerate()
            .map(|(k, s)| vlu(s).map_err(|m| self.err(format!("{}/{name}[{k}]", g.name()), m)))
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

    fn str_attr(&self, loc: &Location, name: &str, value: &str) -> Result<(), ConnectomeError> {
        let v = vlu(value).map_err(|m| self.err(format!("attribute {name}"), m))?;
        loc.new_attr::<VarLenUnicode>()
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

struct Reader<'a> {
    path: &'a Path,
    file: File,
}

const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Whether the file carries the HDF5 superblock signature at offset 0, 512, 1024, … (user block).
fn has_hdf5_signature(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let mut off = 0u64;
    while off + 8 <= len {
        let mut buf = [0u8; 8];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut buf)?;
        if buf == HDF5_SIGNATURE {
            return Ok(true);
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Ok(false)
}

fn type_name(d: &TypeDescriptor) -> String {
    match d {
        TypeDescriptor::VarLenUnicode => "variable-length UTF-8 string".into(),
        other => other.to_string(),
    }
}

impl<'a> Reader<'a> {
    fn open(path: &'a Path) -> Result<Self, ConnectomeError> {
        let herr = |m: String| ConnectomeError::Hdf5 { path: path.to_path_buf(), message: m };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(herr("file not found".into())),
            Err(e) => return Err(herr(format!("cannot open: {e}"))),
            Ok(m) if m.is_dir() => return Err(herr("is a directory, not an HDF5 file".into())),
            Ok(_) => {}
        }
        match has_hdf5_signature(path) {
            Ok(true) => {}
            Ok(false) => return Err(herr("not an HDF5 file (no HDF5 signature)".into())),
            Err(e) => return Err(herr(format!("cannot read: {e}"))),
        }
        let file = File::open(path).map_err(|e| herr(format!("cannot open as HDF5: {e}")))?;
        let r = Self { path, file };
        if !r.file.attr_names().map(|n| n.iter().any(|a| a == FORMAT_ATTR)).unwrap_or(false) {
            return Err(r.format(format!(
                "no `{FORMAT_ATTR}` attribute at the root: not a neurotwin connectome file (expected \
                 {FORMAT_ATTR} = \"{FORMAT}\")"
            )));
        }
        let fmt = r.str_attr(&r.file, FORMAT_ATTR)?;
        if fmt != FORMAT {
            return Err(
                r.format(format!("{FORMAT_ATTR} = \"{fmt}\" is not supported: this version reads \"{FORMAT}\""))
            );
        }
        Ok(r)
    }

    fn format(&self, message: impl Into<String>) -> ConnectomeError {
        ConnectomeError::format(self.path, message)
    }

    fn herr(&self, what: impl Display, e: impl Display) -> ConnectomeError {
        ConnectomeError::Hdf5 { path: self.path.to_path_buf(), message: format!("{what}: {e}") }
    }

    fn group(&self, parent: &Group, name: &str) -> Result<Group, ConnectomeError> {
        let full = join(parent, name);
        if !parent.link_exists(name) {
            return Err(self.format(format!("missing group {full}")));
        }
        parent.group(name).map_err(|e| self.format(format!("{full} is not a group ({e})")))
    }

    fn dataset(&self, g: &Group, name: &str) -> Result<hdf5::Dataset, ConnectomeError> {
        let full = join(g, name);
        if !g.link_exists(name) {
            return Err(self.format(format!("missing dataset {full}")));
        }
        g.dataset(name).map_err(|e| self.format(format!("{full} is not a dataset ({e})")))
    }

    /// Number of rows (first dimension) of a dataset.
    fn len_of(&self, g: &Group, name: &str) -> Result<usize, ConnectomeError> {
        let ds = self.dataset(g, name)?;
        Ok(ds.shape().first().copied().unwrap_or(0))
    }

    /// Reads a dataset of exactly type `T` and shape `[rows, cols…]`; returns the flat data and rows.
    fn array_nd<T: H5Type>(&self, g: &Group, name: &str, cols: &[usize]) -> Result<(Vec<T>, usize), ConnectomeError> {
        let full = join(g, name);
        let ds = self.dataset(g, name)?;
        let want = T::type_descriptor();
        let got = ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        if got != want {
            return Err(self.format(format!("{full} has type {}, expected {}", type_name(&got), type_name(&want))));
        }
        let shape = ds.shape();
        if shape.len() != cols.len() + 1 || shape[1..] != *cols {
            let want_shape: Vec<String> =
                std::iter::once("n".to_string()).chain(cols.iter().map(|c| c.to_string())).collect();
            return Err(self.format(format!("{full} has shape {shape:?}, expected [{}]", want_shape.join(", "))));
        }
        let v = ds.read_raw::<T>().map_err(|e| self.herr(format!("cannot read {full}"), e))?;
        Ok((v, shape[0]))
    }

    fn array<T: H5Type>(&self, g: &Group, name: &str) -> Result<Vec<T>, ConnectomeError> {
        Ok(self.array_nd(g, name, &[])?.0)
    }

    /// Reads a 1-D array and checks it has `len` elements (the length of dataset `like`).
    fn array_len<T: H5Type>(&self, g: &Group, name: &str, len: usize, like: &str) -> Result<Vec<T>, ConnectomeError> {
        let v = self.array::<T>(g, name)?;
        if v.len() != len {
            return Err(self.format(format!(
                "inconsistent lengths: {} has {} entries but {} has {len}",
                join(g, name),
                v.len(),
                join(g, like)
            )));
        }
        Ok(v)
    }

    fn strings(&self, g: &Group, name: &str) -> Result<Vec<String>, ConnectomeError> {
        Ok(self.array::<VarLenUnicode>(g, name)?.into_iter().map(|s| s.as_str().to_string()).collect())
    }

    fn strings_len(&self, g: &Group, name: &str, len: usize, like: &str) -> Result<Vec<String>, ConnectomeError> {
        Ok(self.array_len::<VarLenUnicode>(g, name, len, like)?.into_iter().map(|s| s.as_str().to_string()).collect())
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

    fn str_attr(&self, loc: &Location, name: &str) -> Result<String, ConnectomeError> {
        let full = format!("attribute `{name}` of {}", loc.name());
        let a = loc.attr(name).map_err(|_| self.format(format!("missing {full}")))?;
        let t = a.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        match t {
            TypeDescriptor::VarLenUnicode => a
                .read_scalar::<VarLenUnicode>()
                .map(|s| s.as_str().to_string())
                .map_err(|e| self.herr(format!("cannot read {full}"), e)),
            TypeDescriptor::VarLenAscii => a
                .read_scalar::<hdf5::types::VarLenAscii>()
                .map(|s| s.as_str().to_string())
                .map_err(|e| self.herr(format!("cannot read {full}"), e)),
            other => Err(self.format(format!("{full} has type {}, expected a string", type_name(&other)))),
        }
    }

    fn num_attr<T: H5Type>(&self, loc: &Location, name: &str) -> Result<T, ConnectomeError> {
        let full = format!("attribute `{name}` of {}", loc.name());
        let a = loc.attr(name).map_err(|_| self.format(format!("missing {full}")))?;
        let t = a.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.herr(format!("type of {full}"), e))?;
        if t != T::type_descriptor() {
            return Err(self.format(format!(
                "{full} has type {}, expected {}",
                type_name(&t),
                type_name(&T::type_descriptor())
            )));
        }
        a.read_scalar::<T>().map_err(|e| self.herr(format!("cannot read {full}"), e))
    }

    /// Name, provenance and neuron table.
    fn root(&self) -> Result<(String, Vec<String>, Vec<Neuron>), ConnectomeError> {
        let name = self.str_attr(&self.file, "name")?;
        let provenance = self.strings(&self.file, "provenance")?;
        let g = self.group(&self.file, "neurons")?;
        let ids = self.array::<u64>(&g, "id")?;
        let n = ids.len();
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
        let g = self.group(&self.file, "connections")?;
        let pre = self.array::<u64>(&g, "pre")?;
        let m = pre.len();
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
        let g = self.group(&self.file, "compiled")?;
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
        Ok(CompiledNetwork { name, provenance, neurons, receptors, chemical, gap, dt_ms, report })
    }
}

fn join(g: &Group, name: &str) -> String {
    format!("{}/{name}", g.name().trim_end_matches('/'))
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
