//! One HDF5 reader for every crate: [`H5File`] opens a file with clear errors and reads datasets and
//! attributes only after checking what they declare, so that no input can make a reader allocate terabytes
//! or fail with a bare libhdf5 message.
//!
//! Every error is an [`H5Error`] naming the file and the dataset, group or attribute, saying what was
//! expected; each crate converts it into its own error type (`From` impls in the crates' `error.rs`).
//!
//! # Checks before a dataset is read whole
//!
//! 1. its element type: exactly `T` ([`H5File::require_type`]), or any number when `T` is a number (libhdf5
//!    converts; [`H5File::read_nd`]), or a string ([`H5File::read_string_list`]);
//! 2. its rank ([`H5File::read_vec`]: 1, [`H5File::read_2d`]: 2);
//! 3. its declared size against the file's size: a contiguous or compact dataset cannot store more bytes than
//!    the file has; a chunked one at most [`MAX_COMPRESSION`] times as many (deflate's limit is about
//!    1,032 : 1; unwritten chunks read as the fill value, so a mostly unwritten dataset is refused too);
//!    virtual and external datasets (data in other files) are bounded by the memory limit only;
//! 4. the memory it needs once read against [`crate::budget::check_memory`] (`--max-memory`).
//!
//! A read that fails a Fletcher-32 checksum is reported as damage ([`H5ErrorKind::Damaged`]).
//!
//! # Strings
//!
//! Fixed-length strings (ASCII or UTF-8, up to [`MAX_STRING_BYTES`] bytes) live inside the dataset's own
//! (checksummed) storage. Variable-length strings are pointers into the file's global heap, which libhdf5
//! follows without any check: a damaged heap pointer can crash the process inside libhdf5 (SIGSEGV in
//! `H5HG_read`) before any check here can help. They are read (after the same size checks), but formats that
//! must survive damage store fixed-length strings. Every string is checked to be UTF-8.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use hdf5::dataset::Layout;
use hdf5::types::{FixedAscii, FixedUnicode, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Attribute, Dataset, Group, H5Type, Location};

use crate::budget;

/// The longest string (bytes of UTF-8) read or written.
pub const MAX_STRING_BYTES: usize = 65536;
/// Largest ratio of declared to stored bytes a chunked dataset may have (deflate's limit is about 1,032 : 1).
pub const MAX_COMPRESSION: f64 = 1100.0;
/// Allowance on top of the file-size bound for a chunked dataset (bytes), so that small unwritten datasets pass.
const CHUNKED_SLACK_BYTES: f64 = (1u64 << 20) as f64;
/// Bytes a `String` takes besides its text (pointer, length, capacity).
const STRING_OVERHEAD: usize = 24;
/// What to do when the memory limit refuses a read, unless the caller says better ([`H5File::with_budget_fix`]).
const DEFAULT_BUDGET_FIX: &str = "check that the file is not damaged, or read a smaller file";

const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Runs `$body` with the constant `$N` set to the smallest of 8, 16, 32, 64, 128, 256, 1,024, 4,096, 16,384
/// and 65,536 that holds `$w` bytes, or evaluates `$else` when `$w` exceeds [`MAX_STRING_BYTES`]: the `hdf5`
/// crate types fixed-length strings by a compile-time capacity.
#[doc(hidden)]
#[macro_export]
macro_rules! __h5_with_width {
    ($w:expr, $N:ident => $body:expr, $else:expr) => {
        match $w {
            0..=8 => {
                const $N: usize = 8;
                $body
            }
            9..=16 => {
                const $N: usize = 16;
                $body
            }
            17..=32 => {
                const $N: usize = 32;
                $body
            }
            33..=64 => {
                const $N: usize = 64;
                $body
            }
            65..=128 => {
                const $N: usize = 128;
                $body
            }
            129..=256 => {
                const $N: usize = 256;
                $body
            }
            257..=1024 => {
                const $N: usize = 1024;
                $body
            }
            1025..=4096 => {
                const $N: usize = 4096;
                $body
            }
            4097..=16384 => {
                const $N: usize = 16384;
                $body
            }
            16385..=65536 => {
                const $N: usize = 65536;
                $body
            }
            _ => $else,
        }
    };
}
#[doc(inline)]
pub use crate::__h5_with_width as with_width;

/// What kind of failure an [`H5Error`] is; crates map kinds onto their own error variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H5ErrorKind {
    /// The file is missing, a directory, unreadable or not HDF5 at all.
    Open,
    /// An object is missing or not what the reader expects (type, rank, shape, attribute).
    Format,
    /// The file is damaged: a declared size the file cannot hold, a failed checksum, text that is not UTF-8.
    Damaged,
    /// Reading would need more memory than the limit ([`crate::budget`]).
    Budget,
    /// libhdf5 failed on a file that looked valid.
    Library,
}

/// A located HDF5 failure: the file, the object and what was wrong or expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct H5Error {
    /// The file.
    pub path: PathBuf,
    /// The dataset or group (`/neurons/id`) or attribute (``attribute `rate` of /``); empty for the file.
    pub object: String,
    pub kind: H5ErrorKind,
    /// What was wrong and what was expected; names `object`.
    pub message: String,
}

impl H5Error {
    pub fn new(path: &Path, object: impl Into<String>, kind: H5ErrorKind, message: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), object: object.into(), kind, message: message.into() }
    }

    /// The same error with `fix` appended to the message (`…: fix`).
    pub fn hint(mut self, fix: impl Display) -> Self {
        let fix = fix.to_string();
        if !fix.is_empty() {
            self.message = format!("{}: {fix}", self.message);
        }
        self
    }
}

/// A dataset given by its path in the file (`"/neurons/id"`, `"volumes/raw"`) or already opened.
pub trait DatasetRef {
    fn open_in(&self, f: &H5File) -> Result<Dataset, H5Error>;
}

impl DatasetRef for str {
    fn open_in(&self, f: &H5File) -> Result<Dataset, H5Error> {
        f.dataset(self)
    }
}

impl DatasetRef for String {
    fn open_in(&self, f: &H5File) -> Result<Dataset, H5Error> {
        f.dataset(self)
    }
}

impl DatasetRef for Dataset {
    fn open_in(&self, _: &H5File) -> Result<Dataset, H5Error> {
        Ok(self.clone())
    }
}

/// A string type of the `hdf5` crate whose stored bytes can be read back (without the NUL padding).
pub trait H5String: H5Type {
    fn bytes(&self) -> &[u8];
}

impl<const N: usize> H5String for FixedUnicode<N> {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<const N: usize> H5String for FixedAscii<N> {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl H5String for VarLenUnicode {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl H5String for VarLenAscii {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// `/group/name` for member `name` of `g`.
pub fn join(g: &Group, name: &str) -> String {
    format!("{}/{name}", g.name().trim_end_matches('/'))
}

/// A type for people: strings say whether they are fixed- or variable-length.
pub fn type_name(d: &TypeDescriptor) -> String {
    match d {
        TypeDescriptor::VarLenUnicode => "variable-length UTF-8 string".into(),
        TypeDescriptor::VarLenAscii => "variable-length ASCII string".into(),
        TypeDescriptor::FixedUnicode(w) => format!("fixed-length UTF-8 string ({w} bytes)"),
        TypeDescriptor::FixedAscii(w) => format!("fixed-length ASCII string ({w} bytes)"),
        other => other.to_string(),
    }
}

/// Whether `d` is a number type that libhdf5 converts to any other (integers, floats, booleans).
pub fn is_number(d: &TypeDescriptor) -> bool {
    matches!(
        d,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_) | TypeDescriptor::Boolean
    )
}

/// Whether `d` is a fixed-length string type.
pub fn is_fixed_string(d: &TypeDescriptor) -> bool {
    matches!(d, TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_))
}

/// Whether `d` is a variable-length string type (read through the global heap; see the module documentation).
pub fn is_varlen_string(d: &TypeDescriptor) -> bool {
    matches!(d, TypeDescriptor::VarLenAscii | TypeDescriptor::VarLenUnicode)
}

/// `[a, b]` as `a × b`; a scalar as `1`.
fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "1".into();
    }
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" × ")
}

/// Whether the file carries the HDF5 superblock signature at offset 0, 512, 1024, … (after a user block).
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

/// An HDF5 file opened for reading, with its path and size for located errors and size bounds.
pub struct H5File {
    path: PathBuf,
    file: hdf5::File,
    /// Size of the file (bytes), which bounds what its datasets can declare.
    len: u64,
    budget_fix: String,
}

impl std::fmt::Debug for H5File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5File").field("path", &self.path).field("len", &self.len).finish()
    }
}

impl H5File {
    /// Opens `path` read-only, telling "file not found", "is a directory" and "not an HDF5 file" apart from
    /// libhdf5 failures.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, H5Error> {
        let path = path.as_ref();
        let fail = |kind, m: String| H5Error::new(path, "", kind, m);
        let len = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(H5ErrorKind::Open, "file not found".into()));
            }
            Err(e) => return Err(fail(H5ErrorKind::Open, format!("cannot open: {e}"))),
            Ok(m) if m.is_dir() => return Err(fail(H5ErrorKind::Open, "is a directory, not an HDF5 file".into())),
            Ok(m) => m.len(),
        };
        match has_hdf5_signature(path) {
            Ok(true) => {}
            Ok(false) => {
                return Err(fail(
                    H5ErrorKind::Open,
                    "cannot open as HDF5: not an HDF5 file (no HDF5 signature)".into(),
                ));
            }
            Err(e) => return Err(fail(H5ErrorKind::Open, format!("cannot read: {e}"))),
        }
        let file = hdf5::File::open(path)
            .map_err(|e| fail(H5ErrorKind::Library, format!("cannot open as HDF5 (is the file complete?): {e}")))?;
        Ok(Self { path: path.to_path_buf(), file, len, budget_fix: DEFAULT_BUDGET_FIX.into() })
    }

    /// Sets what a memory refusal tells the user to do ("read a smaller connectome").
    pub fn with_budget_fix(mut self, fix: impl Into<String>) -> Self {
        self.budget_fix = fix.into();
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying `hdf5` file (root group), for what this module does not wrap.
    pub fn file(&self) -> &hdf5::File {
        &self.file
    }

    /// Size of the file (bytes).
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// An error about `object` of this file.
    pub fn error(&self, object: impl Into<String>, kind: H5ErrorKind, message: impl Into<String>) -> H5Error {
        H5Error::new(&self.path, object, kind, message)
    }

    fn format(&self, object: &str, message: String) -> H5Error {
        self.error(object, H5ErrorKind::Format, message)
    }

    fn library(&self, object: &str, what: &str, e: impl Display) -> H5Error {
        self.error(object, H5ErrorKind::Library, format!("{what}: {e}"))
    }

    /// An error reading `object`; a failed checksum is said to be damage.
    fn read_error(&self, object: &str, e: hdf5::Error) -> H5Error {
        let m = e.to_string();
        if m.contains("Fletcher32") || m.contains("checksum") {
            return self.error(
                object,
                H5ErrorKind::Damaged,
                format!(
                    "cannot read {object}: its stored data do not match their checksum, the file is damaged \
                     (restore it from a copy or re-create it) ({m})"
                ),
            );
        }
        self.library(object, &format!("cannot read {object}"), m)
    }

    // ---------------------------------------------------------------------------------------------------
    // Objects

    /// Whether `full` (`/a/b/c` or `a/b/c`) exists; every intermediate link is checked, so libhdf5 reports no
    /// error for a missing parent.
    pub fn exists(&self, full: &str) -> bool {
        let mut g: Group = match self.file.as_group() {
            Ok(g) => g,
            Err(_) => return false,
        };
        let parts: Vec<&str> = full.split('/').filter(|p| !p.is_empty()).collect();
        for (k, p) in parts.iter().enumerate() {
            if !g.link_exists(p) {
                return false;
            }
            if k + 1 < parts.len() {
                match g.group(p) {
                    Ok(next) => g = next,
                    Err(_) => return false,
                }
            }
        }
        true
    }

    /// The group at `full`.
    pub fn group(&self, full: &str) -> Result<Group, H5Error> {
        if !self.exists(full) {
            return Err(self.format(full, format!("missing group {full}")));
        }
        self.file.group(full).map_err(|e| self.format(full, format!("{full} is not a group ({e})")))
    }

    /// The dataset at `full`.
    pub fn dataset(&self, full: &str) -> Result<Dataset, H5Error> {
        if !self.exists(full) {
            return Err(self.format(full, format!("missing dataset {full}")));
        }
        self.file.dataset(full).map_err(|e| self.format(full, format!("{full} is not a dataset ({e})")))
    }

    /// The names of the members of `g`, sorted.
    pub fn members(&self, g: &Group) -> Result<Vec<String>, H5Error> {
        let name = g.name();
        let mut m = g.member_names().map_err(|e| self.library(&name, &format!("cannot list {name}"), e))?;
        m.sort();
        Ok(m)
    }

    /// The element type of `ds`.
    pub fn dtype(&self, ds: &Dataset) -> Result<TypeDescriptor, H5Error> {
        let name = ds.name();
        ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.library(&name, &format!("type of {name}"), e))
    }

    /// Refuses `ds` unless its element type is exactly `T`'s.
    pub fn require_type<T: H5Type>(&self, ds: &Dataset) -> Result<(), H5Error> {
        let (want, got) = (T::type_descriptor(), self.dtype(ds)?);
        if got != want {
            let name = ds.name();
            return Err(
                self.format(&name, format!("{name} has type {}, expected {}", type_name(&got), type_name(&want)))
            );
        }
        Ok(())
    }

    /// Refuses `ds` unless `T` can be read from it: the same type, or numbers (libhdf5 converts between them).
    fn check_convertible<T: H5Type>(&self, ds: &Dataset) -> Result<(), H5Error> {
        let (want, got) = (T::type_descriptor(), self.dtype(ds)?);
        if got == want || (is_number(&want) && is_number(&got)) {
            return Ok(());
        }
        let name = ds.name();
        let expected = if is_number(&want) { format!("numbers ({})", type_name(&want)) } else { type_name(&want) };
        Err(self.format(&name, format!("{name} has type {}, expected {expected}", type_name(&got))))
    }

    fn check_rank(&self, ds: &Dataset, shape: &[usize], rank: usize, expected: &str) -> Result<(), H5Error> {
        if shape.len() != rank {
            let name = ds.name();
            return Err(self.format(&name, format!("{name} has shape {shape:?}, expected {expected}")));
        }
        Ok(())
    }

    /// Refuses to read `ds` whole when its declared shape is more than the file can hold (see the module
    /// documentation) or needs more than the memory limit at `in_memory` bytes an element.
    pub fn check_declared(&self, ds: &Dataset, in_memory: f64) -> Result<(), H5Error> {
        self.check_shape(ds, &ds.shape(), in_memory)
    }

    fn check_shape(&self, ds: &Dataset, shape: &[usize], in_memory: f64) -> Result<(), H5Error> {
        let name = ds.name();
        let n = budget::product(&shape.iter().map(|&d| d as f64).collect::<Vec<_>>());
        let stored = n * ds.dtype().map(|t| t.size()).unwrap_or(1) as f64;
        let file = self.len as f64;
        let bound = match ds.dcpl() {
            Ok(pl) if !pl.external().is_empty() => None,
            Ok(pl) => match pl.layout() {
                Layout::Contiguous | Layout::Compact => Some((file, "")),
                Layout::Chunked => Some((file * MAX_COMPRESSION + CHUNKED_SLACK_BYTES, " even compressed")),
                Layout::Virtual => None,
            },
            Err(_) => Some((file * MAX_COMPRESSION + CHUNKED_SLACK_BYTES, " even compressed")),
        };
        if let Some((bound, how)) = bound
            && stored > bound
        {
            return Err(self.error(
                &name,
                H5ErrorKind::Damaged,
                format!(
                    "{name} declares {} elements ({} of data), more than this file of {} can hold{how}: the file is \
                     damaged (restore it from a copy or re-create it)",
                    shape_text(shape),
                    budget::human_bytes(stored),
                    budget::human_bytes(file)
                ),
            ));
        }
        let what = format!("reading {name} ({} elements)", shape_text(shape));
        budget::check_memory(&what, n * in_memory, &self.budget_fix)
            .map_err(|e| self.error(&name, H5ErrorKind::Budget, e.to_string()))
    }

    // ---------------------------------------------------------------------------------------------------
    // Datasets

    /// Reads a whole dataset of any rank as `T` (numbers are converted by libhdf5), after the checks of the
    /// module documentation; returns the values in row-major order and the shape.
    pub fn read_nd<T: H5Type>(&self, ds: &(impl DatasetRef + ?Sized)) -> Result<(Vec<T>, Vec<usize>), H5Error> {
        let ds = ds.open_in(self)?;
        self.check_convertible::<T>(&ds)?;
        let shape = ds.shape();
        self.read_checked(&ds, shape)
    }

    fn read_checked<T: H5Type>(&self, ds: &Dataset, shape: Vec<usize>) -> Result<(Vec<T>, Vec<usize>), H5Error> {
        self.check_shape(ds, &shape, std::mem::size_of::<T>() as f64)?;
        let v = ds.read_raw::<T>().map_err(|e| self.read_error(&ds.name(), e))?;
        Ok((v, shape))
    }

    /// Reads a one-dimensional dataset as `T` (see [`H5File::read_nd`]).
    pub fn read_vec<T: H5Type>(&self, ds: &(impl DatasetRef + ?Sized)) -> Result<Vec<T>, H5Error> {
        let ds = ds.open_in(self)?;
        self.check_convertible::<T>(&ds)?;
        let shape = ds.shape();
        self.check_rank(&ds, &shape, 1, "one dimension [n]")?;
        Ok(self.read_checked(&ds, shape)?.0)
    }

    /// Reads a two-dimensional dataset as `T` (see [`H5File::read_nd`]): values row by row and `[rows, columns]`.
    pub fn read_2d<T: H5Type>(&self, ds: &(impl DatasetRef + ?Sized)) -> Result<(Vec<T>, [usize; 2]), H5Error> {
        let ds = ds.open_in(self)?;
        self.check_convertible::<T>(&ds)?;
        let shape = ds.shape();
        self.check_rank(&ds, &shape, 2, "two dimensions [rows, columns]")?;
        let (v, s) = self.read_checked(&ds, shape)?;
        Ok((v, [s[0], s[1]]))
    }

    /// Reads a one-dimensional string dataset: fixed-length (up to [`MAX_STRING_BYTES`] bytes) or
    /// variable-length, ASCII or UTF-8 (see the module documentation on variable-length strings).
    pub fn read_string_list(&self, ds: &(impl DatasetRef + ?Sized)) -> Result<Vec<String>, H5Error> {
        let ds = ds.open_in(self)?;
        let shape = ds.shape();
        self.check_rank(&ds, &shape, 1, "one dimension [n]")?;
        self.strings(&ds, &shape)
    }

    /// Reads a scalar (or one-element) string dataset.
    pub fn read_string_scalar(&self, ds: &(impl DatasetRef + ?Sized)) -> Result<String, H5Error> {
        let ds = ds.open_in(self)?;
        let shape = ds.shape();
        if shape.iter().product::<usize>() != 1 {
            let name = ds.name();
            return Err(self.format(&name, format!("{name} has shape {shape:?}, expected one string")));
        }
        Ok(self.strings(&ds, &shape)?.remove(0))
    }

    fn strings(&self, ds: &Dataset, shape: &[usize]) -> Result<Vec<String>, H5Error> {
        let name = ds.name();
        let too_wide = |w: usize| {
            self.format(&name, format!("{name} holds strings of {w} bytes, more than the {MAX_STRING_BYTES} read"))
        };
        match self.dtype(ds)? {
            TypeDescriptor::FixedUnicode(w) => {
                with_width!(w, N => self.read_strings::<FixedUnicode<N>>(ds, shape, w), Err(too_wide(w)))
            }
            TypeDescriptor::FixedAscii(w) => {
                with_width!(w, N => self.read_strings::<FixedAscii<N>>(ds, shape, w), Err(too_wide(w)))
            }
            TypeDescriptor::VarLenUnicode => self.read_strings::<VarLenUnicode>(ds, shape, 16),
            TypeDescriptor::VarLenAscii => self.read_strings::<VarLenAscii>(ds, shape, 16),
            other => Err(self.format(&name, format!("{name} has type {}, expected strings", type_name(&other)))),
        }
    }

    /// Reads strings of type `S`, `width` bytes each as stored, after the size checks.
    fn read_strings<S: H5String>(&self, ds: &Dataset, shape: &[usize], width: usize) -> Result<Vec<String>, H5Error> {
        self.check_shape(ds, shape, (std::mem::size_of::<S>() + STRING_OVERHEAD + width) as f64)?;
        let name = ds.name();
        let v = ds.read_raw::<S>().map_err(|e| self.read_error(&name, e))?;
        v.iter().enumerate().map(|(k, s)| self.text(s.bytes(), || format!("{name}[{k}]"))).collect()
    }

    /// The stored bytes as text; `what` names the value for the error.
    fn text(&self, bytes: &[u8], what: impl FnOnce() -> String) -> Result<String, H5Error> {
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            let what = what();
            self.error(&what, H5ErrorKind::Damaged, format!("{what} is not valid UTF-8 ({e})"))
        })
    }

    // ---------------------------------------------------------------------------------------------------
    // Attributes

    /// Whether `loc` has an attribute `name`.
    pub fn has_attr(&self, loc: &Location, name: &str) -> bool {
        loc.attr_names().map(|n| n.iter().any(|a| a == name)).unwrap_or(false)
    }

    /// ``attribute `name` of /group``.
    pub fn attr_label(loc: &Location, name: &str) -> String {
        format!("attribute `{name}` of {}", loc.name())
    }

    /// Attribute `name` of `loc` with its label; missing is an error.
    fn attr(&self, loc: &Location, name: &str) -> Result<(Attribute, String), H5Error> {
        let full = Self::attr_label(loc, name);
        if !self.has_attr(loc, name) {
            return Err(self.format(&full, format!("missing {full}")));
        }
        let a = loc.attr(name).map_err(|e| self.library(&full, &format!("cannot open {full}"), e))?;
        Ok((a, full))
    }

    fn attr_dtype(&self, a: &Attribute, full: &str) -> Result<TypeDescriptor, H5Error> {
        a.dtype().and_then(|t| t.to_descriptor()).map_err(|e| self.library(full, &format!("type of {full}"), e))
    }

    /// Refuses an attribute that is not a single value.
    fn one_value(&self, a: &Attribute, full: &str, expected: &str) -> Result<(), H5Error> {
        if a.size() != 1 {
            return Err(self.format(full, format!("{full} has {} elements, expected {expected}", a.size())));
        }
        Ok(())
    }

    /// The element type of attribute `name` of `loc`.
    pub fn attr_type(&self, loc: &Location, name: &str) -> Result<TypeDescriptor, H5Error> {
        let (a, full) = self.attr(loc, name)?;
        self.attr_dtype(&a, &full)
    }

    /// A string attribute (scalar or one element; fixed- or variable-length).
    pub fn attr_string(&self, loc: &Location, name: &str) -> Result<String, H5Error> {
        let (a, full) = self.attr(loc, name)?;
        let t = self.attr_dtype(&a, &full)?;
        let too_wide = |w: usize| {
            self.format(&full, format!("{full} is a string of {w} bytes, more than the {MAX_STRING_BYTES} read"))
        };
        let read = |e: hdf5::Error| self.read_error(&full, e);
        let bytes = match t {
            TypeDescriptor::FixedUnicode(w) => {
                self.one_value(&a, &full, "one string")?;
                with_width!(w, N => first_bytes(a.read_raw::<FixedUnicode<N>>().map_err(read)?), return Err(too_wide(w)))
            }
            TypeDescriptor::FixedAscii(w) => {
                self.one_value(&a, &full, "one string")?;
                with_width!(w, N => first_bytes(a.read_raw::<FixedAscii<N>>().map_err(read)?), return Err(too_wide(w)))
            }
            TypeDescriptor::VarLenUnicode => {
                self.one_value(&a, &full, "one string")?;
                first_bytes(a.read_raw::<VarLenUnicode>().map_err(read)?)
            }
            TypeDescriptor::VarLenAscii => {
                self.one_value(&a, &full, "one string")?;
                first_bytes(a.read_raw::<VarLenAscii>().map_err(read)?)
            }
            other => {
                return Err(self.format(&full, format!("{full} has type {}, expected a string", type_name(&other))));
            }
        };
        self.text(&bytes, || full.clone())
    }

    /// [`H5File::attr_string`], or `None` when `loc` has no attribute `name`.
    pub fn attr_string_opt(&self, loc: &Location, name: &str) -> Result<Option<String>, H5Error> {
        if !self.has_attr(loc, name) {
            return Ok(None);
        }
        self.attr_string(loc, name).map(Some)
    }

    /// A numeric attribute (any integer or float type, one element) as f64.
    pub fn attr_f64(&self, loc: &Location, name: &str) -> Result<f64, H5Error> {
        let (a, full) = self.attr(loc, name)?;
        let t = self.attr_dtype(&a, &full)?;
        if !is_number(&t) {
            return Err(self.format(&full, format!("{full} has type {}, expected a number", type_name(&t))));
        }
        self.one_value(&a, &full, "one number")?;
        let v = a.read_raw::<f64>().map_err(|e| self.read_error(&full, e))?;
        v.first().copied().ok_or_else(|| self.format(&full, format!("{full} holds no value, expected one number")))
    }

    /// [`H5File::attr_f64`], or `None` when `loc` has no attribute `name`.
    pub fn attr_f64_opt(&self, loc: &Location, name: &str) -> Result<Option<f64>, H5Error> {
        if !self.has_attr(loc, name) {
            return Ok(None);
        }
        self.attr_f64(loc, name).map(Some)
    }

    /// A scalar attribute of exactly type `T`.
    pub fn attr_scalar<T: H5Type>(&self, loc: &Location, name: &str) -> Result<T, H5Error> {
        let (a, full) = self.attr(loc, name)?;
        let (want, got) = (T::type_descriptor(), self.attr_dtype(&a, &full)?);
        if got != want {
            return Err(
                self.format(&full, format!("{full} has type {}, expected {}", type_name(&got), type_name(&want)))
            );
        }
        a.read_scalar::<T>().map_err(|e| self.read_error(&full, e))
    }
}

/// The bytes of the first string of `v` (empty when there is none).
fn first_bytes<S: H5String>(v: Vec<S>) -> Vec<u8> {
    v.first().map(|s| s.bytes().to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::budget::{Limits, default_limits, set_limits};

    fn file(dir: &Path, name: &str, build: impl FnOnce(&hdf5::File)) -> PathBuf {
        let p = dir.join(name);
        let f = hdf5::File::create(&p).unwrap();
        build(&f);
        f.close().unwrap();
        p
    }

    /// A chunked dataset declaring 2^40 elements (never written, so the file is a few KiB) is refused before
    /// anything is allocated, with the declared size; so is a contiguous one declaring more than the file.
    #[test]
    fn a_dataset_declaring_2_pow_40_elements_is_refused_before_allocating() {
        let t = tempfile::tempdir().unwrap();
        let p = file(t.path(), "huge.h5", |f| {
            let g = f.create_group("g").unwrap();
            g.new_dataset::<u64>().chunk(1 << 16).shape(1usize << 40).create("ids").unwrap();
            g.new_dataset::<f32>().chunk((1 << 10, 3)).shape((1usize << 38, 3)).create("xyz").unwrap();
            f.new_dataset::<u8>().shape(1usize << 20).create("contiguous").unwrap();
        });
        let h = H5File::open(&p).unwrap();
        let e = h.read_vec::<u64>("/g/ids").unwrap_err();
        assert_eq!((e.kind, e.object.as_str()), (H5ErrorKind::Damaged, "/g/ids"));
        let m = e.to_string();
        assert!(m.contains("huge.h5: /g/ids declares 1099511627776 elements (8.0 TiB of data)"), "{m}");
        assert!(m.contains("even compressed") && m.contains("damaged"), "{m}");
        let m = h.read_2d::<f32>("/g/xyz").unwrap_err().to_string();
        assert!(m.contains("/g/xyz declares 274877906944 × 3 elements"), "{m}");
        // Unchunked: the file cannot hold more bytes than it has.
        let m = h.read_vec::<u8>("contiguous").unwrap_err().to_string();
        assert!(
            m.contains("contiguous declares 1048576 elements (1.0 MiB of data)") && !m.contains("compressed"),
            "{m}"
        );
    }

    /// Within what the file can hold but beyond the memory limit: refused with the estimate and the fix.
    #[test]
    fn a_read_beyond_the_memory_limit_is_refused_with_the_estimate() {
        set_limits(Limits { max_memory_bytes: 1 << 20, memory_source: "test", ..default_limits() });
        let t = tempfile::tempdir().unwrap();
        let p = file(t.path(), "big.h5", |f| {
            f.new_dataset::<u64>().chunk(1 << 12).shape(200_000).create("x").unwrap();
        });
        let h = H5File::open(&p).unwrap().with_budget_fix("read a smaller thing");
        let e = h.read_vec::<u64>("x").unwrap_err();
        assert_eq!(e.kind, H5ErrorKind::Budget);
        let m = e.to_string();
        assert!(m.contains("big.h5: reading /x (200000 elements) needs about 1.5 MiB"), "{m}");
        assert!(m.contains("read a smaller thing") && m.contains("--max-memory"), "{m}");
    }

    /// Wrong rank, wrong type, a missing dataset or attribute: errors name the file, the object and what was
    /// expected.
    #[test]
    fn wrong_rank_and_type_are_located_errors() {
        let t = tempfile::tempdir().unwrap();
        let p = file(t.path(), "f.h5", |f| {
            f.new_dataset::<u32>().shape([2, 2]).create("m").unwrap().write_raw(&[1u32, 2, 3, 4]).unwrap();
            let s: Vec<VarLenUnicode> = vec![VarLenUnicode::from_str("a").unwrap()];
            f.new_dataset_builder().with_data(&s).create("s").unwrap();
            f.new_attr::<u32>().create("n").unwrap().write_scalar(&7u32).unwrap();
        });
        let h = H5File::open(&p).unwrap();
        let e = h.read_vec::<u32>("m").unwrap_err();
        assert_eq!((e.kind, e.object.as_str()), (H5ErrorKind::Format, "/m"));
        assert!(e.to_string().contains("f.h5: /m has shape [2, 2], expected one dimension [n]"), "{e}");
        let e = h.read_vec::<f64>("s").unwrap_err().to_string();
        assert!(e.contains("f.h5: /s has type variable-length UTF-8 string, expected numbers (float64)"), "{e}");
        let e = h.require_type::<u64>(&h.dataset("m").unwrap()).unwrap_err().to_string();
        assert!(e.contains("/m has type uint32, expected uint64"), "{e}");
        let e = h.read_string_list("m").unwrap_err().to_string();
        assert!(e.contains("/m has shape [2, 2], expected one dimension"), "{e}");
        let e = h.read_vec::<u8>("/nope/x").unwrap_err().to_string();
        assert!(e.contains("f.h5: missing dataset /nope/x"), "{e}");
        let e = h.attr_string(h.file(), "n").unwrap_err().to_string();
        assert!(e.contains("attribute `n` of / has type uint32, expected a string"), "{e}");
        let e = h.attr_scalar::<f64>(h.file(), "n").unwrap_err().to_string();
        assert!(e.contains("attribute `n` of / has type uint32, expected float64"), "{e}");
        assert_eq!(h.attr_f64(h.file(), "n").unwrap(), 7.0);
        assert_eq!(h.attr_f64_opt(h.file(), "absent").unwrap(), None);
        assert!(h.attr_f64(h.file(), "absent").unwrap_err().to_string().contains("missing attribute `absent` of /"));
        // Numbers convert: u32 read as f64.
        assert_eq!(h.read_2d::<f64>("m").unwrap(), (vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
        let e = H5File::open(t.path().join("absent.h5")).unwrap_err();
        assert_eq!((e.kind, e.to_string().contains("absent.h5: file not found")), (H5ErrorKind::Open, true));
        std::fs::write(t.path().join("text.h5"), "not hdf5").unwrap();
        let e = H5File::open(t.path().join("text.h5")).unwrap_err().to_string();
        assert!(e.contains("not an HDF5 file"), "{e}");
    }

    /// Fixed- and variable-length strings, ASCII and UTF-8, in datasets and attributes, read back as written;
    /// bytes that are not UTF-8 are a located error.
    #[test]
    fn strings_round_trip_fixed_and_variable_length() {
        let t = tempfile::tempdir().unwrap();
        let words = ["AVAL", "", "αβγ", "a much longer name than eight bytes"];
        let p = file(t.path(), "s.h5", |f| {
            let fixed: Vec<FixedUnicode<64>> = words.iter().map(|w| FixedUnicode::from_str(w).unwrap()).collect();
            f.new_dataset_builder().with_data(&fixed).create("fixed").unwrap();
            let ascii: Vec<FixedAscii<8>> = ["ab", "c"].iter().map(|w| FixedAscii::from_ascii(w).unwrap()).collect();
            f.new_dataset_builder().with_data(&ascii).create("ascii").unwrap();
            let var: Vec<VarLenUnicode> = words.iter().map(|w| VarLenUnicode::from_str(w).unwrap()).collect();
            f.new_dataset_builder().with_data(&var).create("var").unwrap();
            let var_ascii: Vec<VarLenAscii> = ["x", "yz"].iter().map(|w| VarLenAscii::from_ascii(w).unwrap()).collect();
            f.new_dataset_builder().with_data(&var_ascii).create("var_ascii").unwrap();
            let bad = ["ok", "QQQQQQQQ"].map(|w| FixedAscii::<8>::from_ascii(w).unwrap());
            f.new_dataset_builder().with_data(&bad).create("bad").unwrap();
            let v = VarLenUnicode::from_str("connectome/1").unwrap();
            f.new_attr::<VarLenUnicode>().create("var").unwrap().write_scalar(&v).unwrap();
            let w = FixedUnicode::<16>::from_str("dense").unwrap();
            f.new_attr::<FixedUnicode<16>>().create("fixed").unwrap().write_scalar(&w).unwrap();
            let scalar = VarLenUnicode::from_str("GCaMP6s").unwrap();
            f.new_dataset::<VarLenUnicode>().create("indicator").unwrap().write_scalar(&scalar).unwrap();
        });
        // /bad[1] becomes bytes that are not UTF-8 (the dataset is contiguous: its bytes are in the file as is).
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.windows(8).position(|w| w == b"QQQQQQQQ").unwrap();
        bytes[at..at + 2].copy_from_slice(b"\xff\xfe");
        std::fs::write(&p, bytes).unwrap();
        let h = H5File::open(&p).unwrap();
        assert_eq!(h.read_string_list("fixed").unwrap(), words);
        assert_eq!(h.read_string_list("var").unwrap(), words);
        assert_eq!(h.read_string_list("ascii").unwrap(), ["ab", "c"]);
        assert_eq!(h.read_string_list("var_ascii").unwrap(), ["x", "yz"]);
        assert_eq!(h.read_string_scalar("indicator").unwrap(), "GCaMP6s");
        assert_eq!(h.attr_string(h.file(), "var").unwrap(), "connectome/1");
        assert_eq!(h.attr_string_opt(h.file(), "fixed").unwrap().as_deref(), Some("dense"));
        assert_eq!(h.attr_type(h.file(), "var").unwrap(), TypeDescriptor::VarLenUnicode);
        let e = h.read_string_list("bad").unwrap_err();
        assert_eq!(e.kind, H5ErrorKind::Damaged);
        assert!(e.to_string().contains("s.h5: /bad[1] is not valid UTF-8"), "{e}");
    }

    #[test]
    fn widths_round_up_and_cover_the_maximum() {
        let w = |n: usize| with_width!(n, N => Some(N), None);
        assert_eq!((w(0), w(8), w(9), w(300)), (Some(8), Some(8), Some(16), Some(1024)));
        assert_eq!((w(MAX_STRING_BYTES), w(MAX_STRING_BYTES + 1)), (Some(MAX_STRING_BYTES), None));
    }
}
