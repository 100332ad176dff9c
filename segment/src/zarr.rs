//! Zarr input (and output for tests and export) with the `zarrs` crate: a directory store holding Zarr v3
//! arrays (`zarr.json`) or Zarr v2 arrays (`.zarray`, read through zarrs' v2 compatibility).
//!
//! - An array is named by its path inside the store, e.g. `volumes/raw` for `STORE.zarr/volumes/raw/`
//!   (the CREMI names, as in HDF5); `/` names a store that is itself one array.
//! - Raw EM: rank 3 (z, y, x), data type `uint8`. Labels: rank 3, `uint8`..`uint64` or `int8`..`int64`
//!   (negative labels are an error), read as u64; 0 = background. Boundary maps: `float32`/`float64` in
//!   [0, 1] or `uint8` (÷ 255).
//! - Voxel size: the array attribute `resolution` or, failing that, `voxel_size`: three positive numbers in
//!   nm, in array axis order (z, y, x).
//! - Codecs compiled in: the uncompressed `bytes` codec, `gzip`, `zlib` and `zstd` (zarr-python 3's default).
//!   Blosc (zarr-python 2's default) and sharding are not: such arrays fail with a message naming the codec;
//!   re-encode them (e.g. with zarr-python, `compressors=ZstdCodec()`) to read them here.
//! - [`ZarrRaw`] is a [`RawSource`]: the boundary stage reads it region by region, decoding only the chunks
//!   a region touches, so a raw volume larger than memory can be turned into a boundary map block by block.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::array::codec::{GzipCodec, ZstdCodec};
use zarrs::array::data_type;
use zarrs::array::{Array, ArrayBuilder, DataType, Element, ElementOwned, FillValue};
use zarrs::filesystem::FilesystemStore;

use crate::boundary::RawSource;
use crate::error::SegmentError;
use crate::volume::{Volume, check_voxel};

/// Whether `path` looks like a Zarr store: a directory (HDF5 volumes are files).
pub fn is_zarr(path: &Path) -> bool {
    path.is_dir()
}

/// `/a/b` from `a/b` (zarrs node paths are absolute inside the store).
fn node_path(name: &str) -> String {
    format!("/{}", name.trim_matches('/'))
}

/// Arrays below the store root (up to 4 levels), for "missing array" messages.
fn listing(store: &Path) -> String {
    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
        if depth > 4 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).filter(|e| e.path().is_dir()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let p = e.path();
            let is_array = p.join(".zarray").is_file()
                || std::fs::read_to_string(p.join("zarr.json")).is_ok_and(|t| t.contains("\"array\""));
            if is_array {
                out.push(full);
            } else {
                walk(&p, &full, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    if store.join(".zarray").is_file()
        || std::fs::read_to_string(store.join("zarr.json")).is_ok_and(|t| t.contains("\"array\""))
    {
        return "one array at its root: name it with --raw-dataset / (or STORE:/)".into();
    }
    walk(store, "", 0, &mut out);
    if out.is_empty() { "no arrays".into() } else { out.join(", ") }
}

fn open_store(store: &Path) -> Result<Arc<FilesystemStore>, SegmentError> {
    if !store.exists() {
        return Err(SegmentError::zarr(store, "store not found"));
    }
    if !store.is_dir() {
        return Err(SegmentError::zarr(store, "is not a directory; a Zarr store is a directory"));
    }
    FilesystemStore::new(store)
        .map(Arc::new)
        .map_err(|e| SegmentError::zarr(store, format!("cannot open as a filesystem store: {e}")))
}

/// Opens array `name` of `store`, checking that it exists and is three-dimensional and non-empty.
pub fn open_array(store: &Path, name: &str) -> Result<(Array<FilesystemStore>, [usize; 3]), SegmentError> {
    let fs = open_store(store)?;
    let dir = store.join(name.trim_matches('/'));
    if !(dir.join("zarr.json").is_file() || dir.join(".zarray").is_file()) {
        return Err(SegmentError::dataset(
            store,
            name,
            format!(
                "missing: no Zarr array there (the store holds: {}); name the array with --raw-dataset / \
                 STORE:ARRAY",
                listing(store)
            ),
        ));
    }
    let array = Array::open(fs, &node_path(name))
        .map_err(|e| SegmentError::dataset(store, name, format!("cannot open as a Zarr array: {e}")))?;
    let s = array.shape();
    if s.len() != 3 {
        return Err(SegmentError::dataset(
            store,
            name,
            format!("has rank {} (shape {s:?}); a volume must be three-dimensional (z, y, x)", s.len()),
        ));
    }
    if s.contains(&0) {
        return Err(SegmentError::dataset(store, name, format!("is empty (shape {s:?}); nothing to segment")));
    }
    check_chunk(&array, store, name)?;
    let shape = [s[0] as usize, s[1] as usize, s[2] as usize];
    Ok((array, shape))
}

/// Refuses a chunk larger than the memory limit (8 bytes per value, the widest type read): zarrs decodes whole
/// chunks, and multiplies the chunk shape out in u64 (a damaged `chunk_shape` of 2^64 − 1 overflowed there).
fn check_chunk(array: &Array<FilesystemStore>, store: &Path, name: &str) -> Result<(), SegmentError> {
    let chunk: Vec<u64> = match array.chunk_shape(&[0, 0, 0]) {
        Ok(c) => c.iter().map(|d| d.get()).collect(),
        Err(e) => return Err(SegmentError::dataset(store, name, format!("has no usable chunk grid: {e}"))),
    };
    let values: f64 = chunk.iter().map(|&d| d as f64).product();
    let what = format!("decoding one chunk of shape {chunk:?} ({values:.3e} values)");
    neurotwin_io::budget::check_memory(&what, values * 8.0, "re-chunk the array into smaller chunks")
        .map_err(|e| SegmentError::dataset(store, name, e.to_string()))
}

/// The voxel size from the array attributes `resolution` or `voxel_size` (nm, z y x), if present and valid.
pub fn voxel_attribute(array: &Array<FilesystemStore>) -> Option<[f64; 3]> {
    let attrs = array.attributes();
    ["resolution", "voxel_size"].iter().find_map(|k| {
        let v = attrs.get(*k)?.as_array()?;
        let n: Vec<f64> = v.iter().filter_map(|x| x.as_f64()).collect();
        (n.len() == 3 && v.len() == 3 && check_voxel([n[0], n[1], n[2]]).is_ok()).then(|| [n[0], n[1], n[2]])
    })
}

fn read_box<T: ElementOwned>(
    array: &Array<FilesystemStore>,
    store: &Path,
    name: &str,
    lo: [usize; 3],
    hi: [usize; 3],
) -> Result<Vec<T>, SegmentError> {
    let elements = [0, 1, 2].map(|a| hi[a].saturating_sub(lo[a]) as f64).iter().product();
    crate::guards::check_read(store, name, elements, size_of::<T>())?;
    let ranges = [0, 1, 2].map(|a| lo[a] as u64..hi[a] as u64);
    array.retrieve_array_subset::<Vec<T>>(&ranges).map_err(|e| {
        SegmentError::dataset(store, name, format!("cannot read the region {lo:?}..{hi:?} (z, y, x): {e}"))
    })
}

/// A raw EM array in a Zarr store, read region by region.
pub struct ZarrRaw {
    array: Array<FilesystemStore>,
    store: PathBuf,
    name: String,
    shape: [usize; 3],
    /// Voxel size (nm, z y x): from the attributes, else the default given to [`ZarrRaw::open`].
    pub voxel_nm: [f64; 3],
    /// Whether the voxel size came from an attribute.
    pub voxel_from_attribute: bool,
}

impl ZarrRaw {
    /// Opens an 8-bit raw EM array; the voxel size comes from its `resolution`/`voxel_size` attribute when
    /// present, else `default_voxel_nm`.
    pub fn open(store: impl AsRef<Path>, name: &str, default_voxel_nm: [f64; 3]) -> Result<Self, SegmentError> {
        let store = store.as_ref();
        let (array, shape) = open_array(store, name)?;
        let dt = array.data_type();
        if *dt != data_type::uint8() {
            return Err(SegmentError::dataset(
                store,
                name,
                format!(
                    "has type {dt}, expected uint8 (8-bit raw EM); rescale the volume to 0..255 and store it as uint8"
                ),
            ));
        }
        let res = voxel_attribute(&array);
        Ok(Self {
            array,
            store: store.to_path_buf(),
            name: name.to_string(),
            shape,
            voxel_nm: res.unwrap_or(default_voxel_nm),
            voxel_from_attribute: res.is_some(),
        })
    }
}

impl RawSource for ZarrRaw {
    fn shape(&self) -> [usize; 3] {
        self.shape
    }
    fn voxel_nm(&self) -> [f64; 3] {
        self.voxel_nm
    }
    fn read(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Volume<u8>, SegmentError> {
        let data = read_box::<u8>(&self.array, &self.store, &self.name, lo, hi)?;
        Ok(Volume { shape: [0, 1, 2].map(|a| hi[a] - lo[a]), voxel_nm: self.voxel_nm, data })
    }
}

/// Converts a region of `array` of any integer type to u64 labels (negative labels are an error).
fn labels_region(
    array: &Array<FilesystemStore>,
    store: &Path,
    name: &str,
    lo: [usize; 3],
    hi: [usize; 3],
) -> Result<Vec<u64>, SegmentError> {
    fn unsigned<T: ElementOwned + Into<u64>>(
        a: &Array<FilesystemStore>,
        s: &Path,
        n: &str,
        lo: [usize; 3],
        hi: [usize; 3],
    ) -> Result<Vec<u64>, SegmentError> {
        Ok(read_box::<T>(a, s, n, lo, hi)?.into_iter().map(Into::into).collect())
    }
    fn signed<T: ElementOwned + Into<i64>>(
        a: &Array<FilesystemStore>,
        s: &Path,
        n: &str,
        lo: [usize; 3],
        hi: [usize; 3],
    ) -> Result<Vec<u64>, SegmentError> {
        let v = read_box::<T>(a, s, n, lo, hi)?;
        v.into_iter()
            .map(|x| {
                let x: i64 = x.into();
                u64::try_from(x).map_err(|_| {
                    SegmentError::dataset(s, n, "holds negative labels; labels must be >= 0 (0 = background)")
                })
            })
            .collect()
    }
    let dt = array.data_type().clone();
    if dt == data_type::uint8() {
        unsigned::<u8>(array, store, name, lo, hi)
    } else if dt == data_type::uint16() {
        unsigned::<u16>(array, store, name, lo, hi)
    } else if dt == data_type::uint32() {
        unsigned::<u32>(array, store, name, lo, hi)
    } else if dt == data_type::uint64() {
        unsigned::<u64>(array, store, name, lo, hi)
    } else if dt == data_type::int8() {
        signed::<i8>(array, store, name, lo, hi)
    } else if dt == data_type::int16() {
        signed::<i16>(array, store, name, lo, hi)
    } else if dt == data_type::int32() {
        signed::<i32>(array, store, name, lo, hi)
    } else if dt == data_type::int64() {
        signed::<i64>(array, store, name, lo, hi)
    } else {
        Err(SegmentError::dataset(
            store,
            name,
            format!("has type {dt}, expected an integer label type (uint8..uint64, int8..int64)"),
        ))
    }
}

/// Converts a region of a boundary-probability array (float32/float64 in [0, 1], or uint8 scaled by 1/255) to
/// f32; NaN, infinite or out-of-range values are an error (as [`crate::io::read_boundary`]).
fn boundary_region(
    array: &Array<FilesystemStore>,
    store: &Path,
    name: &str,
    lo: [usize; 3],
    hi: [usize; 3],
    voxel_nm: [f64; 3],
) -> Result<Volume<f32>, SegmentError> {
    let dt = array.data_type().clone();
    let data: Vec<f32> = if dt == data_type::float32() {
        read_box::<f32>(array, store, name, lo, hi)?
    } else if dt == data_type::float64() {
        read_box::<f64>(array, store, name, lo, hi)?.into_iter().map(|v| v as f32).collect()
    } else if dt == data_type::uint8() {
        read_box::<u8>(array, store, name, lo, hi)?.into_iter().map(crate::volume::unit_intensity).collect()
    } else {
        return Err(SegmentError::dataset(
            store,
            name,
            format!("has type {dt}, expected float32/float64 probabilities in [0, 1] (or uint8 0..255)"),
        ));
    };
    let vol = Volume { shape: [0, 1, 2].map(|a| hi[a] - lo[a]), voxel_nm, data };
    crate::io::check_boundary(&vol).map_err(|m| {
        SegmentError::dataset(
            store,
            name,
            format!("in the region {lo:?}..{hi:?} (z, y, x; the voxel below counts from its corner): {m}"),
        )
    })?;
    Ok(vol)
}

/// Reads a label array (ground truth): any integer type, negative labels an error, as u64; the voxel size
/// from the attributes, else `voxel_nm`.
pub fn read_labels(store: impl AsRef<Path>, name: &str, voxel_nm: [f64; 3]) -> Result<Volume<u64>, SegmentError> {
    let v = ZarrVolume::open(store, name)?;
    let data = v.labels([0; 3], v.shape)?;
    Ok(Volume { shape: v.shape, voxel_nm: v.voxel_nm.unwrap_or(voxel_nm), data })
}

/// Reads a boundary-probability array whole: float32/float64 in [0, 1], or uint8 (scaled by 1/255); NaN,
/// infinite or out-of-range values are an error (as [`crate::io::read_boundary`]).
pub fn read_boundary(store: impl AsRef<Path>, name: &str, voxel_nm: [f64; 3]) -> Result<Volume<f32>, SegmentError> {
    let v = ZarrVolume::open(store, name)?;
    v.boundary([0; 3], v.shape, v.voxel_nm.unwrap_or(voxel_nm))
}

/// One three-dimensional array of a Zarr store, read and written region by region: the out-of-core pipeline's
/// access to its inputs, intermediate arrays and outputs.
pub struct ZarrVolume {
    array: Array<FilesystemStore>,
    store: PathBuf,
    name: String,
    /// Shape (voxels, z y x).
    pub shape: [usize; 3],
    /// Voxel size from the `resolution`/`voxel_size` attribute (nm, z y x), when present.
    pub voxel_nm: Option<[f64; 3]>,
}

impl ZarrVolume {
    /// Opens an existing array (three-dimensional, non-empty, chunks within the memory limit).
    pub fn open(store: impl AsRef<Path>, name: &str) -> Result<Self, SegmentError> {
        let store = store.as_ref();
        let (array, shape) = open_array(store, name)?;
        let voxel_nm = voxel_attribute(&array);
        Ok(Self { array, store: store.to_path_buf(), name: name.to_string(), shape, voxel_nm })
    }

    /// Creates array `name` of element type `T` in `store` (created if needed): chunks of `chunk` voxels
    /// (z, y, x; clamped to the shape), zstd level 3 (fast, and read by zarr-python 3 by default), the voxel
    /// size as the `resolution` attribute, fill value 0. An existing array of that name is replaced.
    pub fn create<T: ZarrElement>(
        store: impl AsRef<Path>,
        name: &str,
        shape: [usize; 3],
        chunk: [usize; 3],
        voxel_nm: [f64; 3],
    ) -> Result<Self, SegmentError> {
        let store = store.as_ref();
        std::fs::create_dir_all(store).map_err(|e| SegmentError::zarr(store, format!("cannot create: {e}")))?;
        let fs = open_store(store)?;
        let werr = |e: &dyn std::fmt::Display| SegmentError::dataset(store, name, format!("cannot create: {e}"));
        let mut attrs = serde_json::Map::new();
        attrs.insert("resolution".into(), serde_json::json!(voxel_nm));
        let chunk_u64: Vec<u64> = [0, 1, 2].map(|a| chunk[a].clamp(1, shape[a].max(1)) as u64).to_vec();
        let zstd = ZstdCodec::new(3, false);
        let array = ArrayBuilder::new(
            shape.map(|s| s as u64).to_vec(),
            chunk_u64,
            T::zarr_type(),
            FillValue::from(vec![0u8; size_of::<T>()]),
        )
        .bytes_to_bytes_codecs(vec![Arc::new(zstd)])
        .attributes(attrs)
        .build(fs, &node_path(name))
        .map_err(|e| werr(&e))?;
        array.store_metadata().map_err(|e| werr(&e))?;
        Ok(Self { array, store: store.to_path_buf(), name: name.to_string(), shape, voxel_nm: Some(voxel_nm) })
    }

    /// The array's path inside its store.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The region `[lo, hi)` (z, y, x) of an integer label array as u64.
    pub fn labels(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Vec<u64>, SegmentError> {
        labels_region(&self.array, &self.store, &self.name, lo, hi)
    }

    /// The region `[lo, hi)` of a boundary-probability array as f32 in [0, 1] (checked), with voxel size
    /// `voxel_nm`.
    pub fn boundary(&self, lo: [usize; 3], hi: [usize; 3], voxel_nm: [f64; 3]) -> Result<Volume<f32>, SegmentError> {
        boundary_region(&self.array, &self.store, &self.name, lo, hi, voxel_nm)
    }

    /// Writes `v` at `lo` (z, y, x). Regions written by different calls should not share a chunk (each call
    /// rewrites the chunks it touches whole): callers write blocks aligned to the chunk grid.
    pub fn write<T: ZarrElement>(&self, lo: [usize; 3], v: &Volume<T>) -> Result<(), SegmentError> {
        let ranges = [0, 1, 2].map(|a| lo[a] as u64..(lo[a] + v.shape[a]) as u64);
        self.array.store_array_subset(&ranges, v.data.as_slice()).map_err(|e| {
            SegmentError::dataset(
                &self.store,
                &self.name,
                format!("cannot write the region at {lo:?} of shape {:?} (z, y, x): {e}", v.shape),
            )
        })
    }
}

/// An element type [`write_array`] can store.
pub trait ZarrElement: Element + Copy {
    fn zarr_type() -> DataType;
}
impl ZarrElement for u8 {
    fn zarr_type() -> DataType {
        data_type::uint8()
    }
}
impl ZarrElement for u32 {
    fn zarr_type() -> DataType {
        data_type::uint32()
    }
}
impl ZarrElement for u64 {
    fn zarr_type() -> DataType {
        data_type::uint64()
    }
}
impl ZarrElement for f32 {
    fn zarr_type() -> DataType {
        data_type::float32()
    }
}

/// Writes `v` as a Zarr v3 array `name` in `store` (created if needed; intermediate groups are implicit),
/// regular chunks of `chunk` voxels (z, y, x), gzip-compressed, with the voxel size as the `resolution`
/// attribute (nm, z y x). Not atomic (used for tests and export).
pub fn write_array<T: ZarrElement>(
    store: impl AsRef<Path>,
    name: &str,
    v: &Volume<T>,
    chunk: [usize; 3],
) -> Result<(), SegmentError> {
    let store = store.as_ref();
    std::fs::create_dir_all(store).map_err(|e| SegmentError::zarr(store, format!("cannot create: {e}")))?;
    let fs = open_store(store)?;
    let werr = |e: &dyn std::fmt::Display| SegmentError::dataset(store, name, format!("cannot write: {e}"));
    let mut attrs = serde_json::Map::new();
    attrs.insert("resolution".into(), serde_json::json!(v.voxel_nm));
    let chunk: Vec<u64> = [0, 1, 2].map(|a| chunk[a].clamp(1, v.shape[a].max(1)) as u64).to_vec();
    let gzip = GzipCodec::new(5).map_err(|e| werr(&e))?;
    let array = ArrayBuilder::new(
        v.shape.map(|s| s as u64).to_vec(),
        chunk,
        T::zarr_type(),
        FillValue::from(vec![0u8; size_of::<T>()]),
    )
    .bytes_to_bytes_codecs(vec![Arc::new(gzip)])
    .attributes(attrs)
    .build(fs, &node_path(name))
    .map_err(|e| werr(&e))?;
    array.store_metadata().map_err(|e| werr(&e))?;
    let ranges = [0, 1, 2].map(|a| 0..v.shape[a] as u64);
    array.store_array_subset(&ranges, v.data.as_slice()).map_err(|e| werr(&e))?;
    Ok(())
}
