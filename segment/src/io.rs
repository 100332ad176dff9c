//! Reading and writing EM volumes in HDF5: the CREMI layout (<https://cremi.org/data/>) and plain
//! datasets of any name (e.g. `stack` in gala's example volumes).
//!
//! CREMI layout (voxel order z, y, x):
//! ```text
//! /volumes/raw                        u8[z, y, x]   raw EM; attribute `resolution` = f64[3] nm (z, y, x)
//! /volumes/labels/neuron_ids          u64[z, y, x]  ground-truth bodies (optional)
//! /volumes/labels/clefts              u64[z, y, x]  synaptic clefts, 0xffffffffffffffff = no cleft (optional)
//! /annotations/ids                    u64[n]        synaptic sites (optional)
//! /annotations/locations              f64[n, 3]     site positions in nm (z, y, x)
//! /annotations/presynaptic_site/partners  u64[m, 2] (presynaptic site id, postsynaptic site id)
//! ```
//! (CREMI also stores `/annotations/types`; this module neither writes nor needs it.)
//!
//! Every read checks that the dataset exists, is three-dimensional, non-empty and of an accepted type,
//! and says which file, which dataset and what to do otherwise. Writes are atomic: a temporary file in the
//! destination directory is renamed into place only when complete.

use std::path::Path;

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, File, H5Type};
use neurotwin_io::h5::H5File;

use crate::error::SegmentError;
use crate::volume::Volume;

/// CREMI's raw dataset.
pub const RAW: &str = "volumes/raw";
/// CREMI's neuron ground truth.
pub const NEURON_IDS: &str = "volumes/labels/neuron_ids";
/// CREMI's cleft ground truth.
pub const CLEFTS: &str = "volumes/labels/clefts";
/// CREMI's "no cleft" value in [`CLEFTS`].
pub const NO_CLEFT: u64 = u64::MAX;

/// An annotated synaptic partner pair: positions of the pre- and postsynaptic sites in nm (z, y, x).
#[derive(Clone, Debug, PartialEq)]
pub struct PartnerSites {
    pub pre_nm: [f64; 3],
    pub post_nm: [f64; 3],
}

/// Opens an HDF5 file with the shared reader ([`neurotwin_io::h5`]: located errors, declared sizes checked
/// against the file and the memory limit before anything is read).
fn open(path: &Path) -> Result<H5File, SegmentError> {
    Ok(H5File::open(path)?)
}

/// Top-level names, for "missing dataset" messages.
fn listing(h: &H5File) -> String {
    let mut names = h.file().member_names().unwrap_or_default();
    if let Ok(g) = h.file().group("volumes") {
        names.extend(g.member_names().unwrap_or_default().into_iter().map(|n| format!("volumes/{n}")));
    }
    if names.is_empty() { "nothing".into() } else { names.join(", ") }
}

fn dataset(h: &H5File, name: &str) -> Result<Dataset, SegmentError> {
    if !h.exists(name) {
        return Err(SegmentError::dataset(
            h.path(),
            name,
            format!("missing (the file holds: {}); name the dataset with --raw-dataset / FILE:DATASET", listing(h)),
        ));
    }
    Ok(h.dataset(name)?)
}

fn shape3(ds: &Dataset, path: &Path, name: &str) -> Result<[usize; 3], SegmentError> {
    let s = ds.shape();
    if s.len() != 3 {
        return Err(SegmentError::dataset(
            path,
            name,
            format!("has rank {} (shape {s:?}); a volume must be three-dimensional (z, y, x)", s.len()),
        ));
    }
    if s.contains(&0) {
        return Err(SegmentError::dataset(path, name, format!("is empty (shape {s:?}); nothing to segment")));
    }
    Ok([s[0], s[1], s[2]])
}

/// Reads `ds` whole as `T` once the memory it needs passes the pipeline's guard (the shared reader then
/// checks the declared size against the file too).
fn read_as<T: H5Type>(h: &H5File, ds: &Dataset, name: &str) -> Result<Vec<T>, SegmentError> {
    let elements = ds.shape().iter().map(|&s| s as f64).product();
    crate::guards::check_read(h.path(), name, elements, size_of::<T>())?;
    Ok(h.read_nd::<T>(ds)?.0)
}

/// The `resolution` attribute (nm, z y x) of a dataset or of the file root, if present and valid.
fn resolution(h: &H5File, ds: &Dataset) -> Option<[f64; 3]> {
    let from =
        |a: hdf5::Attribute| (a.size() == 3).then(|| a.read_raw::<f64>().ok()).flatten().map(|v| [v[0], v[1], v[2]]);
    let r = ds.attr("resolution").ok().and_then(from).or_else(|| h.file().attr("resolution").ok().and_then(from))?;
    r.iter().all(|v| v.is_finite() && *v > 0.0).then_some(r)
}

/// The datasets directly in group `group` of an HDF5 file (names relative to the group, sorted); empty when the
/// group does not exist.
pub fn datasets_in(path: impl AsRef<Path>, group: &str) -> Result<Vec<String>, SegmentError> {
    let h = open(path.as_ref())?;
    let Ok(g) = h.file().group(group) else { return Ok(Vec::new()) };
    let mut names: Vec<String> =
        g.member_names().unwrap_or_default().into_iter().filter(|n| g.dataset(n).is_ok()).collect();
    names.sort();
    Ok(names)
}

/// The shape (z, y, x) of 3D dataset `name` of an HDF5 file, without reading it (to check what a run would
/// allocate before reading).
pub fn volume_shape(path: impl AsRef<Path>, name: &str) -> Result<[usize; 3], SegmentError> {
    let path = path.as_ref();
    let h = open(path)?;
    shape3(&dataset(&h, name)?, path, name)
}

/// Reads an 8-bit raw EM volume. The voxel size comes from the `resolution` attribute (nm, z y x) when
/// present, else `default_voxel_nm`; the second value says whether the attribute was found.
pub fn read_raw(
    path: impl AsRef<Path>,
    name: &str,
    default_voxel_nm: [f64; 3],
) -> Result<(Volume<u8>, bool), SegmentError> {
    let path = path.as_ref();
    let h = open(path)?;
    let ds = dataset(&h, name)?;
    let shape = shape3(&ds, path, name)?;
    let t = h.dtype(&ds)?;
    if t != TypeDescriptor::Unsigned(IntSize::U1) {
        return Err(SegmentError::dataset(
            path,
            name,
            format!("has type {t}, expected u8 (8-bit raw EM); rescale the volume to 0..255 and store it as uint8"),
        ));
    }
    let data = read_as::<u8>(&h, &ds, name)?;
    let res = resolution(&h, &ds);
    Ok((Volume { shape, voxel_nm: res.unwrap_or(default_voxel_nm), data }, res.is_some()))
}

/// Reads a label volume (ground truth, fragments): any unsigned or signed integer type; negative labels
/// are an error. 0 means background / unlabelled.
pub fn read_labels(path: impl AsRef<Path>, name: &str, voxel_nm: [f64; 3]) -> Result<Volume<u64>, SegmentError> {
    let path = path.as_ref();
    let h = open(path)?;
    let ds = dataset(&h, name)?;
    let shape = shape3(&ds, path, name)?;
    let t = h.dtype(&ds)?;
    let neg =
        |path: &Path| SegmentError::dataset(path, name, "holds negative labels; labels must be >= 0 (0 = background)");
    let data: Vec<u64> = match t {
        TypeDescriptor::Unsigned(_) => read_as::<u64>(&h, &ds, name)?,
        TypeDescriptor::Integer(_) => {
            let v = read_as::<i64>(&h, &ds, name)?;
            if v.iter().any(|&x| x < 0) {
                return Err(neg(path));
            }
            v.into_iter().map(|x| x as u64).collect()
        }
        other => {
            return Err(SegmentError::dataset(
                path,
                name,
                format!("has type {other}, expected an integer label type (uint8..uint64, int8..int64)"),
            ));
        }
    };
    let res = resolution(&h, &ds).unwrap_or(voxel_nm);
    Ok(Volume { shape, voxel_nm: res, data })
}

/// Reads a boundary-probability map: float32/float64 in [0, 1], or uint8 (scaled by 1/255). NaN,
/// infinite or out-of-range values are an error.
pub fn read_boundary(path: impl AsRef<Path>, name: &str, voxel_nm: [f64; 3]) -> Result<Volume<f32>, SegmentError> {
    let path = path.as_ref();
    let h = open(path)?;
    let ds = dataset(&h, name)?;
    let shape = shape3(&ds, path, name)?;
    let t = h.dtype(&ds)?;
    let data: Vec<f32> = match t {
        TypeDescriptor::Float(FloatSize::U4) => read_as::<f32>(&h, &ds, name)?,
        TypeDescriptor::Float(FloatSize::U8) => read_as::<f64>(&h, &ds, name)?.into_iter().map(|v| v as f32).collect(),
        TypeDescriptor::Unsigned(IntSize::U1) => {
            read_as::<u8>(&h, &ds, name)?.into_iter().map(crate::volume::unit_intensity).collect()
        }
        other => {
            return Err(SegmentError::dataset(
                path,
                name,
                format!("has type {other}, expected float32/float64 probabilities in [0, 1] (or uint8 0..255)"),
            ));
        }
    };
    let vol = Volume { shape, voxel_nm: resolution(&h, &ds).unwrap_or(voxel_nm), data };
    check_boundary(&vol).map_err(|m| SegmentError::dataset(path, name, m))?;
    Ok(vol)
}

/// Checks that a boundary map holds only finite values in [0, 1]; the message names the first bad voxel.
pub fn check_boundary(b: &Volume<f32>) -> Result<(), String> {
    if let Some(i) = b.data.iter().position(|v| !(v.is_finite() && (0.0..=1.0).contains(v))) {
        let bad = b.data.iter().filter(|v| !(v.is_finite() && (0.0..=1.0).contains(*v))).count();
        return Err(format!(
            "boundary map value {} at voxel (z, y, x) = {:?} ({bad} bad voxels in all): boundary probabilities must be \
             finite numbers in [0, 1] (NaN often marks unprocessed regions; fill them before segmenting)",
            b.data[i],
            b.coords(i)
        ));
    }
    Ok(())
}

/// Reads CREMI annotations (synaptic partner sites) if the file has them.
pub fn read_partner_sites(path: impl AsRef<Path>) -> Result<Option<Vec<PartnerSites>>, SegmentError> {
    let path = path.as_ref();
    let h = open(path)?;
    if !h.exists("annotations/presynaptic_site/partners") {
        return Ok(None);
    }
    let ids = read_as::<u64>(&h, &dataset(&h, "annotations/ids")?, "annotations/ids")?;
    let locs = read_as::<f64>(&h, &dataset(&h, "annotations/locations")?, "annotations/locations")?;
    let pn = "annotations/presynaptic_site/partners";
    let partners = read_as::<u64>(&h, &dataset(&h, pn)?, pn)?;
    if locs.len() != 3 * ids.len() || partners.len() % 2 != 0 {
        return Err(SegmentError::dataset(path, "annotations/locations", "needs shape [len(ids), 3] (z, y, x in nm)"));
    }
    let pos = |id: u64| -> Result<[f64; 3], SegmentError> {
        let k = ids
            .iter()
            .position(|&i| i == id)
            .ok_or_else(|| SegmentError::dataset(path, pn, format!("site id {id} is not in annotations/ids")))?;
        Ok([locs[3 * k], locs[3 * k + 1], locs[3 * k + 2]])
    };
    let mut out = Vec::with_capacity(partners.len() / 2);
    for p in partners.chunks(2) {
        out.push(PartnerSites { pre_nm: pos(p[0])?, post_nm: pos(p[1])? });
    }
    Ok(Some(out))
}

/// One dataset to write: name, and u8/u64/f32 data.
pub enum Data<'a> {
    U8(&'a Volume<u8>),
    U64(&'a Volume<u64>),
    F32(&'a Volume<f32>),
}

/// Writes several 3D datasets (each with a `resolution` attribute in nm) and optional CREMI partner
/// annotations into a new HDF5 file, atomically.
pub fn write_volumes(
    path: impl AsRef<Path>,
    datasets: &[(&str, Data<'_>)],
    partners: Option<&[PartnerSites]>,
) -> Result<(), SegmentError> {
    let path = path.as_ref();
    let herr = |what: &str, e: &dyn std::fmt::Display| SegmentError::hdf5(path, format!("{what}: {e}"));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| herr("cannot create the output directory", &e))?;
    let fname = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{fname}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| herr("cannot create a temporary file", &e))?;
    {
        let f = File::create(tmp.path()).map_err(|e| herr("cannot create the HDF5 file", &e))?;
        for (name, d) in datasets {
            match d {
                Data::U8(v) => write_one(&f, path, name, v)?,
                Data::U64(v) => write_one(&f, path, name, v)?,
                Data::F32(v) => write_one(&f, path, name, v)?,
            }
        }
        if let Some(ps) = partners {
            let n = ps.len();
            let ids: Vec<u64> = (0..2 * n as u64).collect();
            let mut locs = Vec::with_capacity(6 * n);
            for p in ps {
                locs.extend_from_slice(&p.pre_nm);
            }
            for p in ps {
                locs.extend_from_slice(&p.post_nm);
            }
            let mut pairs = Vec::with_capacity(2 * n);
            for k in 0..n as u64 {
                pairs.extend_from_slice(&[k, n as u64 + k]);
            }
            let g = f.create_group("annotations").map_err(|e| herr("cannot create /annotations", &e))?;
            let ps_g = g.create_group("presynaptic_site").map_err(|e| herr("cannot create group", &e))?;
            write_2d(&g, path, "annotations/ids", "ids", &ids, vec![2 * n])?;
            write_2d(&g, path, "annotations/locations", "locations", &locs, vec![2 * n, 3])?;
            write_2d(&ps_g, path, "annotations/presynaptic_site/partners", "partners", &pairs, vec![n, 2])?;
        }
        f.flush().map_err(|e| herr("cannot flush", &e))?;
        f.close().map_err(|e| herr("cannot close", &e))?;
    }
    tmp.as_file().sync_all().map_err(|e| herr("cannot sync", &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path).map_err(|e| herr("cannot move the finished file into place", &e.error))?;
    Ok(())
}

fn write_one<T: H5Type>(f: &File, path: &Path, name: &str, v: &Volume<T>) -> Result<(), SegmentError> {
    let herr = |what: String, e: hdf5::Error| SegmentError::dataset(path, name, format!("{what}: {e}"));
    let mut parent = f.group("/").map_err(|e| herr("cannot open root".into(), e))?;
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    for p in &parts[..parts.len() - 1] {
        parent = if parent.link_exists(p) {
            parent.group(p).map_err(|e| herr(format!("cannot open group {p}"), e))?
        } else {
            parent.create_group(p).map_err(|e| herr(format!("cannot create group {p}"), e))?
        };
    }
    let mut b = parent.new_dataset::<T>();
    if hdf5::filters::deflate_available() {
        let chunk = [v.shape[0].min(32), v.shape[1].min(128), v.shape[2].min(128)];
        b = b.chunk(chunk).deflate(4);
    }
    let ds = b.shape(v.shape.to_vec()).create(parts[parts.len() - 1]).map_err(|e| herr("cannot create".into(), e))?;
    ds.write_raw(&v.data).map_err(|e| herr("cannot write".into(), e))?;
    let a =
        ds.new_attr::<f64>().shape([3]).create("resolution").map_err(|e| herr("cannot add resolution".into(), e))?;
    a.write_raw(&v.voxel_nm).map_err(|e| herr("cannot write resolution".into(), e))?;
    Ok(())
}

fn write_2d<T: H5Type>(
    g: &hdf5::Group,
    path: &Path,
    full: &str,
    name: &str,
    data: &[T],
    shape: Vec<usize>,
) -> Result<(), SegmentError> {
    let ds = g
        .new_dataset::<T>()
        .shape(shape)
        .create(name)
        .map_err(|e| SegmentError::dataset(path, full, format!("cannot create: {e}")))?;
    if !data.is_empty() {
        ds.write_raw(data).map_err(|e| SegmentError::dataset(path, full, format!("cannot write: {e}")))?;
    }
    Ok(())
}
