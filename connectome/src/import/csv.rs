//! Generic CSV importer: a connections file plus an optional neurons file → [`Connectome`].
//!
//! Both files are delimited text with a header line. The delimiter (comma or tab) is detected from the
//! header line; fields are trimmed; column names are matched case-insensitively; gzip-compressed files
//! (recognised by their magic bytes, whatever their name) are decompressed on the fly. Blank lines
//! before the header are skipped; a line longer than [`MAX_LINE_BYTES`] is an error (such a "line" is a
//! binary file or a file without line breaks, not a table). Columns not listed below are ignored. Files are streamed record by
//! record (a FlyWire dump has ~16M rows), so only the neuron table and the connections are held.
//!
//! # Neurons file (optional)
//!
//! | column | accepted names | content |
//! |---|---|---|
//! | id (**required**) | `id`, `root_id`, `bodyId`, `body_id`, `neuron_id` | unsigned integer, unique |
//! | name | `name`, `instance` | text (names used by `pre_name`/`post_name` must be unique) |
//! | cell type | `cell_type`, `primary_type`, `type`, `celltype`, `class` | text; per row the first non-empty of these columns |
//! | transmitter | `transmitter`, `nt_type`, `nt`, `predictedNt`, `predicted_nt`, `neurotransmitter` | text (any spelling [`canonical`](crate::transmitter::canonical) knows, or free text) |
//! | position | `x`,`y`,`z` (or `pos_x`… / `soma_x`…), or one column `position` / `somaLocation` holding `[x, y, z]` | numbers, all three or none |
//! | region | `region`, `ganglion`, `neuropil` | text |
//!
//! Without a neurons file the neuron table is synthesised from the connections: ids in ascending order
//! (names empty), or — when the connections name their neurons — one neuron per distinct name in order
//! of first appearance, with ids 0, 1, 2, …. A synthesised neuron's transmitter is the majority
//! transmitter of its outgoing chemical rows, weighted by synapse count (ties: the one seen first).
//!
//! # Connections file
//!
//! | column | accepted names | content |
//! |---|---|---|
//! | pre, post (**required**) | `pre`/`post`, `pre_id`/`post_id`, `pre_root_id`/`post_root_id`, `bodyId_pre`/`bodyId_post`; or `pre_name`/`post_name` | neuron ids; or names resolved through the neuron table (a `pre`/`post` column whose first value is not an integer holds names) |
//! | count (**required**) | `count`, `syn_count`, `synapses`, `nsyn`, `n_syn`, `synapse_count`; else `weight` | synapse (or junction) count, finite, >= 0 |
//! | weight | `weight` (only when one of the count columns is present) | explicit weight in the model's unit (signed, finite); overrides count × weight per synapse |
//! | transmitter | `transmitter`, `nt_type`, `nt`, `neurotransmitter` | text; overrides the presynaptic neuron's |
//! | receptor | `receptor` | receptor class name (overrides the transmitter map) |
//! | delay | `delay_ms`, `delay` | ms, > 0 |
//! | confidence | `confidence` | in \[0, 1\] |
//! | type | `type`, `kind`, `synapse_type`, `connection_type` | `chemical` (also `chem`; default when empty or absent) or `electrical` (also `elec`, `gap`, `gap_junction`, `gj`) |
//!
//! Electrical rows are undirected junctions: list each junction once (a file listing both directions
//! doubles the coupling).
//!
//! # Layouts
//!
//! The layout is detected from the connections header (or forced with [`CsvLayout`]); all layouts
//! accept the column names above, they differ in how rows become connections:
//!
//! - [`CsvLayout::Generic`]: one connection per row.
//! - [`CsvLayout::FlyWire`] (header has `pre_root_id`, `post_root_id`; the public dump is
//!   `pre_root_id, post_root_id, neuropil, syn_count, nt_type`): rows of the same (pre, post, type) —
//!   one per neuropil — are summed into one connection; its transmitter is the majority `nt_type` of
//!   the rows weighted by `syn_count`. A FlyWire neurons file (`root_id`, `cell_type`/`primary_type`,
//!   `nt_type`, …) may be given.
//! - [`CsvLayout::NeuPrint`] (header has `bodyId_pre`, `bodyId_post`; `weight` is the synapse count):
//!   rows of the same (pre, post, type) — e.g. one per ROI — are summed likewise. A neuPrint neurons
//!   file (`bodyId`, `type`, `instance`, `predictedNt`) may be given.
//!
//! When rows are summed, explicit weights are summed too; receptor, delay and confidence are taken from
//! the first row that has them.
//!
//! # Errors
//!
//! Every failure is a [`ConnectomeError`] naming the file and, for data, the line and column:
//! unreadable file, malformed row (`connections.csv:17: column syn_count: "abc" is not a number`),
//! missing required column (with the columns found and the names accepted), a connection to a neuron
//! that is not in the neurons file, negative or non-finite counts, non-finite weights, duplicate neuron
//! ids. The result is checked with [`Connectome::validate`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ::csv::{ByteRecord, ErrorKind, Reader, ReaderBuilder};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use crate::error::ConnectomeError;
use crate::network::{Connection, Connectome, Neuron, SynapseKind};

/// How the rows of a connections file become connections (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsvLayout {
    /// Detect from the connections header.
    #[default]
    Auto,
    /// One connection per row.
    Generic,
    /// FlyWire connections dump: rows per neuropil summed per (pre, post).
    #[serde(rename = "flywire")]
    FlyWire,
    /// neuPrint adjacency export: `weight` is the count, rows per ROI summed per (pre, post).
    #[serde(rename = "neuprint")]
    NeuPrint,
}

impl CsvLayout {
    /// The layout a connections header indicates (never `Auto`).
    pub fn detect<S: AsRef<str>>(columns: &[S]) -> Self {
        let has = |name: &str| columns.iter().any(|c| normalise(c.as_ref()) == name);
        if has("pre_root_id") && has("post_root_id") {
            Self::FlyWire
        } else if has("bodyid_pre") && has("bodyid_post") {
            Self::NeuPrint
        } else {
            Self::Generic
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Generic => "generic",
            Self::FlyWire => "flywire",
            Self::NeuPrint => "neuprint",
        }
    }

    /// Whether rows of the same (pre, post, type) are summed into one connection.
    fn sums_rows(self) -> bool {
        matches!(self, Self::FlyWire | Self::NeuPrint)
    }
}

impl fmt::Display for CsvLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CsvLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "generic" => Ok(Self::Generic),
            "flywire" => Ok(Self::FlyWire),
            "neuprint" => Ok(Self::NeuPrint),
            _ => Err(format!("unknown CSV layout `{s}` (valid: auto, generic, flywire, neuprint)")),
        }
    }
}

// ------------------------------------------------------------------------------------------ columns

const NEURON_ID: &[&str] = &["id", "root_id", "bodyid", "body_id", "neuron_id"];
const NEURON_NAME: &[&str] = &["name", "instance"];
const NEURON_TYPE: &[&str] = &["cell_type", "primary_type", "type", "celltype", "class"];
const NEURON_NT: &[&str] = &["transmitter", "nt_type", "nt", "predictednt", "predicted_nt", "neurotransmitter"];
const NEURON_REGION: &[&str] = &["region", "ganglion", "neuropil"];
const NEURON_XYZ: &[[&str; 3]] = &[["x", "y", "z"], ["pos_x", "pos_y", "pos_z"], ["soma_x", "soma_y", "soma_z"]];
const NEURON_POSITION: &[&str] = &["position", "somalocation", "soma_location", "soma_position"];

const PRE_ID: &[&str] = &["pre", "pre_id", "pre_root_id", "bodyid_pre"];
const POST_ID: &[&str] = &["post", "post_id", "post_root_id", "bodyid_post"];
const PRE_NAME: &[&str] = &["pre_name"];
const POST_NAME: &[&str] = &["post_name"];
const COUNT: &[&str] = &["count", "syn_count", "synapses", "nsyn", "n_syn", "synapse_count"];
const WEIGHT: &[&str] = &["weight"];
const CONN_NT: &[&str] = &["transmitter", "nt_type", "nt", "neurotransmitter"];
const RECEPTOR: &[&str] = &["receptor"];
const DELAY: &[&str] = &["delay_ms", "delay"];
const CONFIDENCE: &[&str] = &["confidence"];
const KIND: &[&str] = &["type", "kind", "synapse_type", "connection_type"];

fn normalise(column: &str) -> String {
    column.trim().trim_start_matches('\u{feff}').trim().to_ascii_lowercase()
}

// ------------------------------------------------------------------------------------------ reading

/// Longest accepted line of a CSV file (header or record), in bytes (1 MiB): a longer line means a
/// binary file or one without line breaks, which would otherwise be read into memory whole.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Error of [`LineLimited`]: physical line `line` (1-based) exceeds [`MAX_LINE_BYTES`].
#[derive(Debug)]
struct LineTooLong {
    line: u64,
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} is longer than 1 MiB", self.line)
    }
}

impl std::error::Error for LineTooLong {}

/// A reader that fails with [`LineTooLong`] once a line exceeds [`MAX_LINE_BYTES`].
struct LineLimited<R> {
    inner: R,
    /// Current physical line (1-based).
    line: u64,
    /// Bytes of the current line read so far.
    len: usize,
}

impl<R: Read> Read for LineLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.line += 1;
                self.len = 0;
            } else {
                self.len += 1;
                if self.len > MAX_LINE_BYTES {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, LineTooLong { line: self.line }));
                }
            }
        }
        Ok(n)
    }
}

/// A read error as a [`ConnectomeError`]; an over-long line becomes a message that asks whether the
/// file is a CSV file at all.
fn read_error(path: &Path, e: std::io::Error) -> ConnectomeError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<LineTooLong>()) {
        Some(t) => ConnectomeError::format(path, format!("{t} — is this a CSV file? {ONE_RECORD_PER_LINE}")),
        None => ConnectomeError::io(path, e),
    }
}

const ONE_RECORD_PER_LINE: &str = "(expected a text table: a header line naming the columns, then one record per line)";

/// Bytes and lines of blank lines skipped before the header: CSV reader positions are offset by them.
#[derive(Clone, Copy, Default)]
struct Skipped {
    bytes: u64,
    lines: u64,
}

/// One delimited file being streamed.
struct Table {
    path: PathBuf,
    reader: Reader<Box<dyn Read>>,
    skipped: Skipped,
    /// Column names as written (trimmed).
    columns: Vec<String>,
    /// Lower-cased column names for matching.
    keys: Vec<String>,
    delimiter: u8,
}

/// Comma or tab, whichever occurs more often (outside quotes) in the header line.
fn sniff_delimiter(line: &[u8]) -> u8 {
    let (mut commas, mut tabs, mut quoted) = (0usize, 0usize, false);
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b'\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    if tabs > commas { b'\t' } else { b',' }
}

/// The (decompressed) bytes of a file: gzip data is recognised by its magic bytes (1f 8b).
fn open_bytes(path: &Path) -> Result<Box<dyn BufRead>, ConnectomeError> {
    let file = File::open(path).map_err(|e| ConnectomeError::io(path, e))?;
    let mut raw = BufReader::with_capacity(1 << 16, file);
    let gz = raw.fill_buf().map_err(|e| ConnectomeError::io(path, e))?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz { Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(raw))) } else { Box::new(raw) })
}

/// Why `line` (the header line) is not text, if it is not: zero bytes, control characters or invalid
/// UTF-8 mean a binary file.
fn not_text(line: &[u8]) -> Option<&'static str> {
    if line.contains(&0) {
        Some("holds zero bytes")
    } else if line.iter().any(|&b| (b < 0x20 && !b"\t\r\n".contains(&b)) || b == 0x7f) {
        Some("holds control characters")
    } else if std::str::from_utf8(line).is_err() {
        Some("is not UTF-8 text")
    } else {
        None
    }
}

/// Reads the first non-blank line into `first`, counting the blank lines before it.
fn first_line(path: &Path, r: &mut impl BufRead, first: &mut Vec<u8>) -> Result<Skipped, ConnectomeError> {
    let mut skipped = Skipped::default();
    loop {
        first.clear();
        let n = r.read_until(b'\n', first).map_err(|e| read_error(path, e))?;
        if n == 0 {
            let what = if skipped.lines == 0 { "empty file" } else { "only blank lines" };
            return Err(ConnectomeError::format(
                path,
                format!("{what}: expected a header line naming the columns (comma- or tab-separated)"),
            ));
        }
        if !first.iter().all(u8::is_ascii_whitespace) {
            return Ok(skipped);
        }
        skipped.bytes += n as u64;
        skipped.lines += 1;
    }
}

/// Line number (1-based) of the record that the CSV reader started reading at byte `start`: the CSV
/// reader's own line count does not include blank lines (or the LF of a CRLF) skipped before a record,
/// so errors re-read the file up to the record instead. `None` if the file cannot be re-read.
fn line_at(path: &Path, start: u64) -> Option<u64> {
    let mut r = open_bytes(path).ok()?;
    let (mut pos, mut line) = (0u64, 1u64);
    loop {
        let buf = r.fill_buf().ok()?;
        if buf.is_empty() {
            return Some(line);
        }
        let mut used = 0;
        for &b in buf {
            if pos >= start && b != b'\n' && b != b'\r' {
                return Some(line);
            }
            line += (b == b'\n') as u64;
            pos += 1;
            used += 1;
        }
        r.consume(used);
    }
}

/// Where a record starts: byte offset (as the CSV reader reports it) and the reader's line estimate.
#[derive(Clone, Copy)]
struct Pos {
    byte: u64,
    csv_line: u64,
}

impl Pos {
    /// The position in the file of a CSV reader position (which does not count skipped blank lines).
    fn of(p: Option<&::csv::Position>, skipped: Skipped) -> Self {
        p.map_or(Self { byte: 0, csv_line: 0 }, |p| Self {
            byte: p.byte() + skipped.bytes,
            csv_line: p.line() + skipped.lines,
        })
    }

    /// The exact line (re-reads the file; for error messages only).
    fn line(self, path: &Path) -> u64 {
        line_at(path, self.byte).unwrap_or(self.csv_line)
    }
}

impl Table {
    fn open(path: &Path) -> Result<Self, ConnectomeError> {
        let mut inner = BufReader::new(LineLimited { inner: open_bytes(path)?, line: 1, len: 0 });
        let mut first = Vec::new();
        let skipped = first_line(path, &mut inner, &mut first)?;
        if let Some(why) = not_text(&first) {
            return Err(ConnectomeError::format(
                path,
                format!("line {} {why} — is this a CSV file? {ONE_RECORD_PER_LINE}", skipped.lines + 1),
            ));
        }
        let delimiter = sniff_delimiter(&first);
        let source: Box<dyn Read> = Box::new(Cursor::new(first).chain(inner));
        let mut reader = ReaderBuilder::new().delimiter(delimiter).from_reader(source);
        let headers = reader.byte_headers().map_err(|e| csv_error(path, delimiter, skipped, e))?;
        let columns: Vec<String> = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        let keys = columns.iter().map(|c| normalise(c)).collect();
        Ok(Self { path: path.to_path_buf(), reader, skipped, columns, keys, delimiter })
    }

    /// Index of the first accepted name present (aliases in priority order).
    fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|a| self.keys.iter().position(|k| k == a))
    }

    /// Indices of all accepted names present, in priority order.
    fn find_all(&self, aliases: &[&str]) -> Vec<usize> {
        aliases.iter().filter_map(|a| self.keys.iter().position(|k| k == a)).collect()
    }

    fn missing(&self, what: &str, accepted: &str) -> ConnectomeError {
        ConnectomeError::format(
            &self.path,
            format!(
                "no {what} column: expected {accepted}; the file has the columns {} (delimiter {})",
                column_list(&self.columns),
                delimiter_name(self.delimiter)
            ),
        )
    }

    fn require(&self, what: &str, aliases: &[&str]) -> Result<usize, ConnectomeError> {
        self.find(aliases).ok_or_else(|| self.missing(what, &one_of(aliases)))
    }

    /// Reads the next record; `false` at the end of the file.
    fn next(&mut self, rec: &mut ByteRecord) -> Result<bool, ConnectomeError> {
        self.reader.read_byte_record(rec).map_err(|e| csv_error(&self.path, self.delimiter, self.skipped, e))
    }

    fn row<'a>(&'a self, rec: &'a ByteRecord) -> Row<'a> {
        Row { path: &self.path, pos: Pos::of(rec.position(), self.skipped), rec, columns: &self.columns }
    }
}

fn one_of(aliases: &[&str]) -> String {
    let quoted: Vec<String> = aliases.iter().map(|a| format!("`{a}`")).collect();
    if quoted.len() == 1 { quoted[0].clone() } else { format!("one of {}", quoted.join(", ")) }
}

fn delimiter_name(d: u8) -> &'static str {
    if d == b'\t' { "tab" } else { "comma" }
}

/// Column names for a message: at most 20, each cut to 40 characters.
fn column_list(columns: &[String]) -> String {
    let mut shown: Vec<String> = columns
        .iter()
        .take(20)
        .map(|c| match c.char_indices().nth(40) {
            Some((end, _)) => format!("`{}…`", &c[..end]),
            None => format!("`{c}`"),
        })
        .collect();
    if columns.len() > 20 {
        shown.push(format!("… ({} columns in all)", columns.len()));
    }
    shown.join(", ")
}

fn csv_error(path: &Path, delimiter: u8, skipped: Skipped, e: ::csv::Error) -> ConnectomeError {
    let message = e.to_string();
    let pos = e.position().map(|p| Pos::of(Some(p), skipped));
    match e.into_kind() {
        ErrorKind::Io(io) => read_error(path, io),
        ErrorKind::UnequalLengths { pos, expected_len, len } => ConnectomeError::parse(
            path,
            Pos::of(pos.as_ref(), skipped).line(path),
            format!(
                "malformed row: {len} fields, but the header has {expected_len} (fields are separated by {})",
                delimiter_name(delimiter)
            ),
        ),
        _ => match pos {
            Some(p) => ConnectomeError::parse(path, p.line(path), message),
            None => ConnectomeError::format(path, message),
        },
    }
}

/// One record with its location, for located field errors.
struct Row<'a> {
    path: &'a Path,
    pos: Pos,
    rec: &'a ByteRecord,
    columns: &'a [String],
}

impl<'a> Row<'a> {
    fn err(&self, col: usize, message: impl fmt::Display) -> ConnectomeError {
        ConnectomeError::parse(self.path, self.pos.line(self.path), format!("column {}: {message}", self.columns[col]))
    }

    /// The trimmed text of a field ("" when the row is short).
    fn text(&self, col: usize) -> Result<&'a str, ConnectomeError> {
        let raw = self.rec.get(col).unwrap_or(b"");
        std::str::from_utf8(raw).map(str::trim).map_err(|_| self.err(col, "not valid UTF-8 text"))
    }

    fn opt_text(&self, col: Option<usize>) -> Result<Option<&'a str>, ConnectomeError> {
        match col {
            Some(c) => self.text(c).map(|s| (!s.is_empty()).then_some(s)),
            None => Ok(None),
        }
    }

    fn number(&self, col: usize, expected: &str) -> Result<f64, ConnectomeError> {
        let s = self.text(col)?;
        if s.is_empty() {
            return Err(self.err(col, format!("empty, expected {expected}")));
        }
        s.parse::<f64>().map_err(|_| self.err(col, format!("{s:?} is not a number (expected {expected})")))
    }

    fn opt_number(&self, col: Option<usize>, expected: &str) -> Result<Option<f64>, ConnectomeError> {
        match col {
            Some(c) if !self.text(c)?.is_empty() => self.number(c, expected).map(Some),
            _ => Ok(None),
        }
    }

    fn id(&self, col: usize) -> Result<u64, ConnectomeError> {
        let s = self.text(col)?;
        if s.is_empty() {
            return Err(self.err(col, "empty, expected a neuron id (an unsigned integer)"));
        }
        s.parse::<u64>().map_err(|_| self.err(col, format!("{s:?} is not a neuron id (expected an unsigned integer)")))
    }

    fn name(&self, col: usize) -> Result<&'a str, ConnectomeError> {
        let s = self.text(col)?;
        if s.is_empty() {
            return Err(self.err(col, "empty, expected a neuron name"));
        }
        Ok(s)
    }
}

// ------------------------------------------------------------------------------------------ neurons

/// The neuron table read from a neurons file.
struct NeuronTable {
    path: PathBuf,
    neurons: Vec<Neuron>,
    /// Where each neuron's record starts in the file.
    starts: Vec<Pos>,
    index: IdMap<u64, u32>,
}

impl NeuronTable {
    /// Name → id for name-based connection files; names must be unique.
    fn names(&self) -> Result<HashMap<String, u64>, ConnectomeError> {
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(self.neurons.len());
        for (i, n) in self.neurons.iter().enumerate() {
            if n.name.is_empty() {
                continue;
            }
            if let Some(&j) = first.get(n.name.as_str()) {
                return Err(ConnectomeError::parse(
                    &self.path,
                    self.starts[i].line(&self.path),
                    format!(
                        "neuron name `{}` appears twice (first at line {}): names used to refer to neurons \
                         (pre_name/post_name) must be unique",
                        n.name,
                        self.starts[j].line(&self.path)
                    ),
                ));
            }
            first.insert(&n.name, i);
        }
        Ok(first.into_iter().map(|(name, i)| (name.to_string(), self.neurons[i].id)).collect())
    }
}

enum PositionColumns {
    None,
    Xyz([usize; 3]),
    Combined(usize),
}

fn parse_coordinate(row: &Row, col: usize, s: &str) -> Result<f32, ConnectomeError> {
    let v: f32 = s.parse().map_err(|_| row.err(col, format!("{s:?} is not a number (expected a coordinate)")))?;
    if !v.is_finite() {
        return Err(row.err(col, format!("{s:?}: coordinates must be finite numbers")));
    }
    Ok(v)
}

fn read_neurons(path: &Path) -> Result<NeuronTable, ConnectomeError> {
    let mut t = Table::open(path)?;
    let id_col = t.require("neuron id", NEURON_ID)?;
    let name_col = t.find(NEURON_NAME);
    let type_cols = t.find_all(NEURON_TYPE);
    let nt_col = t.find(NEURON_NT);
    let region_col = t.find(NEURON_REGION);
    let pos_cols = match NEURON_XYZ.iter().find_map(|names| {
        let c = [t.find(&[names[0]])?, t.find(&[names[1]])?, t.find(&[names[2]])?];
        Some(c)
    }) {
        Some(c) => PositionColumns::Xyz(c),
        None => t.find(NEURON_POSITION).map_or(PositionColumns::None, PositionColumns::Combined),
    };
    let mut table = NeuronTable { path: path.to_path_buf(), neurons: vec![], starts: vec![], index: IdMap::default() };
    let mut rec = ByteRecord::new();
    while t.next(&mut rec)? {
        let row = t.row(&rec);
        let id = row.id(id_col)?;
        if let Some(&i) = table.index.get(&id) {
            return Err(ConnectomeError::parse(
                path,
                row.pos.line(path),
                format!(
                    "neuron id {id} appears twice (first at line {}): neuron ids must be unique",
                    table.starts[i as usize].line(path)
                ),
            ));
        }
        let mut n = Neuron::new(id, row.opt_text(name_col)?.unwrap_or(""));
        for &c in &type_cols {
            if let Some(s) = row.opt_text(Some(c))? {
                n.cell_type = s.to_string();
                break;
            }
        }
        n.transmitter = row.opt_text(nt_col)?.map(str::to_string);
        n.region = row.opt_text(region_col)?.map(str::to_string);
        n.position = match pos_cols {
            PositionColumns::None => None,
            PositionColumns::Xyz(cols) => {
                let given = [row.opt_text(Some(cols[0]))?, row.opt_text(Some(cols[1]))?, row.opt_text(Some(cols[2]))?];
                if given.iter().all(Option::is_none) {
                    None
                } else {
                    let mut p = [0f32; 3];
                    for k in 0..3 {
                        let Some(s) = given[k] else {
                            return Err(row.err(
                                cols[k],
                                "empty, but other coordinates are given (give x, y and z together or none)",
                            ));
                        };
                        p[k] = parse_coordinate(&row, cols[k], s)?;
                    }
                    Some(p)
                }
            }
            PositionColumns::Combined(c) => match row.opt_text(Some(c))? {
                None => None,
                Some(s) => {
                    let inner = s.trim_start_matches(['[', '(']).trim_end_matches([']', ')']);
                    let parts: Vec<&str> = inner
                        .split(|ch: char| ch == ',' || ch == ';' || ch.is_whitespace())
                        .filter(|p| !p.is_empty())
                        .collect();
                    if parts.len() != 3 {
                        return Err(
                            row.err(c, format!("{s:?} is not a position (expected three numbers, e.g. [x, y, z])"))
                        );
                    }
                    let mut p = [0f32; 3];
                    for k in 0..3 {
                        p[k] = parse_coordinate(&row, c, parts[k])?;
                    }
                    Some(p)
                }
            },
        };
        let start = row.pos;
        table.index.insert(id, table.neurons.len() as u32);
        table.neurons.push(n);
        table.starts.push(start);
    }
    Ok(table)
}

// ------------------------------------------------------------------------------------------ connections

/// Small string table so that repeated transmitter / receptor names are stored once while streaming.
#[derive(Default)]
struct Interner {
    map: HashMap<Box<str>, u32>,
    names: Vec<String>,
}

impl Interner {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.map.insert(s.into(), i);
        self.names.push(s.to_string());
        i
    }
}

/// Transmitter votes weighted by synapse count (most connections have a single transmitter, which is
/// kept inline).
#[derive(Default)]
struct Votes {
    first: Option<(u32, f64)>,
    rest: Vec<(u32, f64)>,
}

impl Votes {
    fn add(&mut self, key: u32, weight: f64) {
        match &mut self.first {
            None => self.first = Some((key, weight)),
            Some((k, w)) if *k == key => *w += weight,
            Some(_) => match self.rest.iter_mut().find(|(k, _)| *k == key) {
                Some(v) => v.1 += weight,
                None => self.rest.push((key, weight)),
            },
        }
    }

    /// Key with the largest vote; ties go to the key seen first.
    fn majority(&self) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        for &(k, w) in self.first.iter().chain(&self.rest) {
            if best.is_none_or(|(_, bw)| w > bw) {
                best = Some((k, w));
            }
        }
        best.map(|(k, _)| k)
    }
}

/// FxHash-style hasher for the integer keys (neuron ids, id pairs) of the multi-million-entry maps of
/// a FlyWire import; several times faster than the default SipHash. Keys come from data files, not
/// from an adversary.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.add(x as u64)
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.add(x as u64)
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.add(x)
    }
    #[inline]
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64)
    }
    #[inline]
    fn write_isize(&mut self, x: isize) {
        self.add(x as u64)
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ends {
    Ids,
    Names,
}

/// How connection endpoints become neuron ids: through the neurons file, or by synthesising neurons.
struct Resolver<'t> {
    table: Option<&'t NeuronTable>,
    /// Names → ids (from the table, or synthesised in order of appearance).
    by_name: HashMap<String, u64>,
    synth_names: Vec<String>,
    synth_ids: IdSet<u64>,
}

impl Resolver<'_> {
    fn unknown(&self, row: &Row, col: usize, what: String) -> ConnectomeError {
        let t = self.table.expect("only called with a neurons file");
        row.err(
            col,
            format!(
                "{what} is not in the neurons file {}: add it to the neurons file or drop the row",
                t.path.display()
            ),
        )
    }

    fn id(&mut self, row: &Row, col: usize, id: u64) -> Result<u64, ConnectomeError> {
        match self.table {
            Some(t) if !t.index.contains_key(&id) => Err(self.unknown(row, col, format!("neuron id {id}"))),
            Some(_) => Ok(id),
            None => {
                self.synth_ids.insert(id);
                Ok(id)
            }
        }
    }

    fn name(&mut self, row: &Row, col: usize, name: &str) -> Result<u64, ConnectomeError> {
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        if self.table.is_some() {
            return Err(self.unknown(row, col, format!("neuron `{name}`")));
        }
        let id = self.synth_names.len() as u64;
        self.synth_names.push(name.to_string());
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }
}

/// Columns of a connections file.
struct ConnColumns {
    pre: usize,
    post: usize,
    /// `pre`/`post` columns whose content (ids or names) is decided by the first row.
    sniff: bool,
    ends: Ends,
    count: usize,
    weight: Option<usize>,
    nt: Option<usize>,
    receptor: Option<usize>,
    delay: Option<usize>,
    confidence: Option<usize>,
    kind: Option<usize>,
}

fn connection_columns(t: &Table) -> Result<ConnColumns, ConnectomeError> {
    let accepted = |ids: &[&str], names: &[&str]| format!("{} (neuron ids) or {} (names)", one_of(ids), one_of(names));
    let ids = (t.find(PRE_ID), t.find(POST_ID));
    let names = (t.find(PRE_NAME), t.find(POST_NAME));
    let (pre, post, ends, sniff) = match (ids, names) {
        ((Some(a), Some(b)), _) => {
            let generic = t.keys[a] == "pre" || t.keys[b] == "post";
            (a, b, Ends::Ids, generic)
        }
        (_, (Some(a), Some(b))) => (a, b, Ends::Names, false),
        ((None, _), (None, _)) => return Err(t.missing("presynaptic neuron", &accepted(PRE_ID, PRE_NAME))),
        _ => return Err(t.missing("postsynaptic neuron", &accepted(POST_ID, POST_NAME))),
    };
    let (count, weight) = match t.find(COUNT) {
        Some(c) => (c, t.find(WEIGHT)),
        None => match t.find(WEIGHT) {
            Some(w) => (w, None),
            None => {
                let mut all = COUNT.to_vec();
                all.extend_from_slice(WEIGHT);
                return Err(t.missing("synapse count", &one_of(&all)));
            }
        },
    };
    Ok(ConnColumns {
        pre,
        post,
        sniff,
        ends,
        count,
        weight,
        nt: t.find(CONN_NT),
        receptor: t.find(RECEPTOR),
        delay: t.find(DELAY),
        confidence: t.find(CONFIDENCE),
        kind: t.find(KIND),
    })
}

fn parse_kind(row: &Row, col: Option<usize>) -> Result<SynapseKind, ConnectomeError> {
    let Some(c) = col else { return Ok(SynapseKind::Chemical) };
    let s = row.text(c)?;
    let is = |names: &[&str]| names.iter().any(|n| s.eq_ignore_ascii_case(n));
    if s.is_empty() || is(&["chemical", "chem"]) {
        Ok(SynapseKind::Chemical)
    } else if is(&["electrical", "elec", "gap", "gap_junction", "gapjunction", "gj"]) {
        Ok(SynapseKind::Electrical)
    } else {
        Err(row.err(c, format!("{s:?} is not a connection type (expected chemical, or electrical / gap)")))
    }
}

/// A summed connection (FlyWire / neuPrint layouts).
struct Sum {
    pre: u64,
    post: u64,
    kind: SynapseKind,
    count: f64,
    weight: Option<f64>,
    votes: Votes,
    receptor: Option<u32>,
    delay: Option<f32>,
    confidence: Option<f32>,
}

/// The values of one row, validated.
struct RowValues {
    pre: u64,
    post: u64,
    kind: SynapseKind,
    count: f64,
    weight: Option<f64>,
    nt: Option<u32>,
    receptor: Option<u32>,
    delay: Option<f32>,
    confidence: Option<f32>,
}

fn dataset_name(path: &Path) -> String {
    let mut p = path.to_path_buf();
    if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        p.set_extension("");
    }
    p.file_stem().map_or_else(|| "connectome".to_string(), |s| s.to_string_lossy().into_owned())
}

/// Reads just the header of a connections file and returns the layout it indicates.
pub fn detect_layout(connections: &Path) -> Result<CsvLayout, ConnectomeError> {
    Ok(CsvLayout::detect(&Table::open(connections)?.columns))
}

/// Imports a connectome from a connections file and an optional neurons file (see the module
/// documentation for columns, layouts and errors). The connectome is named after the connections file;
/// its provenance lists the files, the layout used and the row / connection counts.
pub fn read_csv(connections: &Path, neurons: Option<&Path>, layout: CsvLayout) -> Result<Connectome, ConnectomeError> {
    // Header: the neurons file, then the connections file's columns and layout.
    let table = neurons.map(read_neurons).transpose()?;
    let mut t = Table::open(connections)?;
    let layout = match layout {
        CsvLayout::Auto => CsvLayout::detect(&t.columns),
        l => l,
    };
    let cols = connection_columns(&t)?;

    // Rows → connections.
    let Streamed { rows, connections, synth } = read_connections(&mut t, cols, table.as_ref(), layout)?;
    let mut provenance =
        vec![format!("{}: {} layout, {rows} rows -> {} connections", t.path.display(), layout, connections.len())];

    // Neuron table: the neurons file's, or synthesised from the connections.
    let neurons = match table {
        Some(tab) => {
            provenance.push(format!("{}: {} neurons", tab.path.display(), tab.neurons.len()));
            tab.neurons
        }
        None => {
            let (neurons, line) = synth.neurons();
            provenance.push(line);
            neurons
        }
    };
    let c = Connectome { name: dataset_name(&t.path), provenance, neurons, connections };
    c.validate()?;
    Ok(c)
}

/// What streaming the rows of a connections file yields.
struct Streamed {
    /// Data rows read.
    rows: u64,
    connections: Vec<Connection>,
    /// The neurons met, for a neuron table synthesised when there is no neurons file.
    synth: SynthNeurons,
}

/// Streams the rows of connections file `t` into connections: validates each row, resolves its ends
/// through the neurons `table` (or records them for a synthesised table) and collects the connections
/// as `layout` says. Whether `pre`/`post` columns hold ids or names may be decided by the first row.
fn read_connections(
    t: &mut Table,
    mut cols: ConnColumns,
    table: Option<&NeuronTable>,
    layout: CsvLayout,
) -> Result<Streamed, ConnectomeError> {
    let mut resolver = Resolver { table, by_name: HashMap::new(), synth_names: vec![], synth_ids: IdSet::default() };
    let mut collector = Collector::new(layout, table.is_none());
    let mut rows: u64 = 0;
    let mut names_ready = false;
    let mut rec = ByteRecord::new();
    while t.next(&mut rec)? {
        let row = t.row(&rec);
        if rows == 0 && cols.sniff && (row.text(cols.pre)?.parse::<u64>().is_err()) {
            cols.ends = Ends::Names;
        }
        if cols.ends == Ends::Names && !names_ready {
            if let Some(tab) = table {
                resolver.by_name = tab.names()?;
            }
            names_ready = true;
        }
        rows += 1;
        let ends = endpoints(&row, &cols, &mut resolver)?;
        let v = row_values(&row, &cols, ends, &mut collector.strings)?;
        collector.add(v);
    }
    let (connections, votes, strings) = collector.finish();
    let synth = SynthNeurons {
        by_name: cols.ends == Ends::Names,
        names: resolver.synth_names,
        ids: resolver.synth_ids,
        votes,
        strings,
    };
    Ok(Streamed { rows, connections, synth })
}

/// The (pre, post) neuron ids of a row, by id or by name as `cols.ends` says.
fn endpoints(row: &Row, cols: &ConnColumns, resolver: &mut Resolver) -> Result<(u64, u64), ConnectomeError> {
    Ok(match cols.ends {
        Ends::Ids => {
            let (a, b) = (row.id(cols.pre)?, row.id(cols.post)?);
            (resolver.id(row, cols.pre, a)?, resolver.id(row, cols.post, b)?)
        }
        Ends::Names => {
            let (a, b) = (row.name(cols.pre)?, row.name(cols.post)?);
            (resolver.name(row, cols.pre, a)?, resolver.name(row, cols.post, b)?)
        }
    })
}

/// The validated values of a row whose ends are `(pre, post)`: count finite and >= 0, weight finite,
/// delay (ms) finite and > 0, confidence in [0, 1]; transmitter and receptor names are interned in
/// `strings`.
fn row_values(
    row: &Row,
    cols: &ConnColumns,
    (pre, post): (u64, u64),
    strings: &mut Interner,
) -> Result<RowValues, ConnectomeError> {
    let count = row.number(cols.count, "a synapse count")?;
    if !count.is_finite() {
        return Err(
            row.err(cols.count, format!("{count} is not a valid synapse count (expected a finite number >= 0)"))
        );
    }
    if count < 0.0 {
        return Err(row.err(cols.count, format!("{count} is negative: synapse counts must be >= 0")));
    }
    let weight = row.opt_number(cols.weight, "a weight")?;
    if let (Some(w), Some(c)) = (weight, cols.weight)
        && !w.is_finite()
    {
        return Err(row.err(c, format!("{w} is not a valid weight (expected a finite number)")));
    }
    let delay = row.opt_number(cols.delay, "a delay in ms")?;
    if let (Some(d), Some(c)) = (delay, cols.delay)
        && !(d.is_finite() && d > 0.0)
    {
        return Err(row.err(c, format!("{d} is not a valid delay (expected a finite number of ms > 0)")));
    }
    let confidence = row.opt_number(cols.confidence, "a confidence in [0, 1]")?;
    if let (Some(q), Some(c)) = (confidence, cols.confidence)
        && !(0.0..=1.0).contains(&q)
    {
        return Err(row.err(c, format!("{q} is not a valid confidence (expected a number in [0, 1])")));
    }
    Ok(RowValues {
        pre,
        post,
        kind: parse_kind(row, cols.kind)?,
        count,
        weight,
        nt: row.opt_text(cols.nt)?.map(|s| strings.get(s)),
        receptor: row.opt_text(cols.receptor)?.map(|s| strings.get(s)),
        delay: delay.map(|d| d as f32),
        confidence: confidence.map(|q| q as f32),
    })
}

/// Connections collected while the rows stream by: one per row, or — for layouts that sum rows — one
/// per (pre, post, kind).
struct Collector {
    layout: CsvLayout,
    /// Whether to count the transmitter votes of presynaptic neurons (for a synthesised neuron table).
    vote_neurons: bool,
    /// Transmitter and receptor names.
    strings: Interner,
    /// Per presynaptic neuron id: transmitters of its chemical rows, weighted by synapse count.
    neuron_votes: IdMap<u64, Votes>,
    direct: Vec<Connection>,
    sums: Vec<Sum>,
    sum_index: IdMap<(u64, u64, SynapseKind), u32>,
}

impl Collector {
    fn new(layout: CsvLayout, vote_neurons: bool) -> Self {
        Self {
            layout,
            vote_neurons,
            strings: Interner::default(),
            neuron_votes: IdMap::default(),
            direct: Vec::new(),
            sums: Vec::new(),
            sum_index: IdMap::default(),
        }
    }

    fn add(&mut self, v: RowValues) {
        if self.vote_neurons
            && v.kind == SynapseKind::Chemical
            && let Some(nt) = v.nt
        {
            self.neuron_votes.entry(v.pre).or_default().add(nt, v.count);
        }
        if self.layout.sums_rows() {
            self.add_to_sum(v);
        } else {
            let name = |k: Option<u32>| k.map(|k| self.strings.names[k as usize].clone());
            let c = Connection {
                pre: v.pre,
                post: v.post,
                kind: v.kind,
                count: v.count as f32,
                weight: v.weight.map(|w| w as f32),
                transmitter: name(v.nt),
                receptor: name(v.receptor),
                delay_ms: v.delay,
                confidence: v.confidence,
            };
            self.direct.push(c);
        }
    }

    /// Adds a row to the sum of its (pre, post, kind): counts and weights add up, the transmitter is
    /// voted for, receptor, delay and confidence come from the first row that has them.
    fn add_to_sum(&mut self, v: RowValues) {
        let sums = &mut self.sums;
        let i = *self.sum_index.entry((v.pre, v.post, v.kind)).or_insert_with(|| {
            sums.push(Sum {
                pre: v.pre,
                post: v.post,
                kind: v.kind,
                count: 0.0,
                weight: None,
                votes: Votes::default(),
                receptor: None,
                delay: None,
                confidence: None,
            });
            (sums.len() - 1) as u32
        });
        let s = &mut sums[i as usize];
        s.count += v.count;
        if let Some(w) = v.weight {
            s.weight = Some(s.weight.unwrap_or(0.0) + w);
        }
        if let Some(nt) = v.nt {
            s.votes.add(nt, v.count);
        }
        s.receptor = s.receptor.or(v.receptor);
        s.delay = s.delay.or(v.delay);
        s.confidence = s.confidence.or(v.confidence);
    }

    /// The connections, the transmitter votes per presynaptic neuron and the interned names they use.
    fn finish(self) -> (Vec<Connection>, IdMap<u64, Votes>, Vec<String>) {
        let Self { layout, strings, neuron_votes, direct, sums, sum_index, .. } = self;
        drop(sum_index);
        let names = strings.names;
        let connections = if layout.sums_rows() {
            sums.into_iter()
                .map(|s| Connection {
                    pre: s.pre,
                    post: s.post,
                    kind: s.kind,
                    count: s.count as f32,
                    weight: s.weight.map(|w| w as f32),
                    transmitter: s.votes.majority().map(|k| names[k as usize].clone()),
                    receptor: s.receptor.map(|k| names[k as usize].clone()),
                    delay_ms: s.delay,
                    confidence: s.confidence,
                })
                .collect()
        } else {
            direct
        };
        (connections, neuron_votes, names)
    }
}

/// The neurons a connections file refers to, for a neuron table synthesised without a neurons file.
struct SynthNeurons {
    /// Whether the file names its neurons (else it gives their ids).
    by_name: bool,
    /// Names in order of first appearance (neuron `i` has id `i`).
    names: Vec<String>,
    ids: IdSet<u64>,
    /// Per neuron id: transmitters of its outgoing chemical rows, weighted by synapse count.
    votes: IdMap<u64, Votes>,
    /// The names the votes refer to.
    strings: Vec<String>,
}

impl SynthNeurons {
    /// The majority transmitter of neuron `id` (ties: the one seen first).
    fn transmitter(&self, id: u64) -> Option<String> {
        self.votes.get(&id).and_then(Votes::majority).map(|k| self.strings[k as usize].clone())
    }

    /// The neuron table — one neuron per name (ids 0, 1, …) or per id (ascending) — and its provenance
    /// line.
    fn neurons(mut self) -> (Vec<Neuron>, String) {
        let names = std::mem::take(&mut self.names);
        let neuron = |id: u64, name: String| {
            let mut n = Neuron::new(id, name);
            n.transmitter = self.transmitter(id);
            n
        };
        if self.by_name {
            let n: Vec<Neuron> = names.into_iter().enumerate().map(|(i, name)| neuron(i as u64, name)).collect();
            let line = format!("neuron table synthesised from the {} neuron names (ids 0..)", n.len());
            (n, line)
        } else {
            let mut ids: Vec<u64> = self.ids.iter().copied().collect();
            ids.sort_unstable();
            let line = format!("neuron table synthesised from the {} neuron ids", ids.len());
            (ids.into_iter().map(|id| neuron(id, String::new())).collect(), line)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_parse_and_detect() {
        assert_eq!("FlyWire".parse::<CsvLayout>().unwrap(), CsvLayout::FlyWire);
        assert_eq!("neuprint".parse::<CsvLayout>().unwrap(), CsvLayout::NeuPrint);
        assert!("hemibrain".parse::<CsvLayout>().unwrap_err().contains("valid: auto, generic, flywire, neuprint"));
        assert_eq!(
            CsvLayout::detect(&["pre_root_id", "post_root_id", "neuropil", "syn_count", "nt_type"]),
            CsvLayout::FlyWire
        );
        assert_eq!(CsvLayout::detect(&["bodyId_pre", "bodyId_post", "weight"]), CsvLayout::NeuPrint);
        assert_eq!(CsvLayout::detect(&["\u{feff}pre", "post", "count"]), CsvLayout::Generic);
    }

    #[test]
    fn delimiter_sniffing_ignores_quoted_commas() {
        assert_eq!(sniff_delimiter(b"pre\tpost\t\"a,b,c\"\n"), b'\t');
        assert_eq!(sniff_delimiter(b"pre,post,count\n"), b',');
        assert_eq!(sniff_delimiter(b"single\n"), b',');
    }

    #[test]
    fn majority_prefers_weight_then_first_seen() {
        let mut v = Votes::default();
        assert_eq!(v.majority(), None);
        v.add(1, 2.0);
        v.add(2, 3.0);
        v.add(1, 1.0);
        v.add(3, 3.0);
        assert_eq!(v.majority(), Some(1));
        v.add(3, 0.5);
        assert_eq!(v.majority(), Some(3));
        assert_eq!(dataset_name(Path::new("/x/proofread_connections_783.csv.gz")), "proofread_connections_783");
    }

    #[test]
    fn lines_longer_than_the_limit_are_refused_with_their_number() {
        let mut data = b"pre,post,count\n".to_vec();
        data.extend(std::iter::repeat_n(b'1', MAX_LINE_BYTES + 1));
        let mut r = LineLimited { inner: Cursor::new(data), line: 1, len: 0 };
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        let e = read_error(Path::new("x.csv"), e).to_string();
        assert!(e.starts_with("x.csv: line 2 is longer than 1 MiB — is this a CSV file?"), "{e}");
        let mut ok = LineLimited { inner: Cursor::new(vec![b'1'; MAX_LINE_BYTES]), line: 1, len: 0 };
        assert_eq!(std::io::copy(&mut ok, &mut std::io::sink()).unwrap(), MAX_LINE_BYTES as u64);
    }

    #[test]
    fn binary_header_lines_are_recognised() {
        assert_eq!(not_text(b"pre,post,count\r\n"), None);
        assert_eq!(not_text("pr\u{e9},post\tcount\n".as_bytes()), None);
        assert_eq!(not_text(b"pre\0post"), Some("holds zero bytes"));
        assert_eq!(not_text(b"pre\x1bpost"), Some("holds control characters"));
        assert_eq!(not_text(b"pre,\xff\xfe"), Some("is not UTF-8 text"));
        let long: Vec<String> = (0..30).map(|i| format!("{i}{}", "x".repeat(50))).collect();
        let shown = column_list(&long);
        assert!(shown.ends_with("… (30 columns in all)") && shown.len() < 1200, "{shown}");
    }
}
