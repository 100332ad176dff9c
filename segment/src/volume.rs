//! A dense 3D volume in (z, y, x) order with an anisotropic voxel size in nanometres.

use crate::error::SegmentError;

/// An 8-bit intensity (raw EM, or a boundary map stored as uint8) as a value in [0, 1]: `v / 255`. The one
/// conversion every stage uses (membrane filter, U-Net input, training patches, boundary maps read as uint8).
#[inline]
pub fn unit_intensity(v: u8) -> f32 {
    v as f32 / 255.0
}

/// A dense 3D array stored z-major (`index = (z · ny + y) · nx + x`), with the physical size of one
/// voxel along z, y, x in nm (EM volumes are usually anisotropic, e.g. CREMI: 40 × 4 × 4 nm).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume<T> {
    /// Number of voxels along z, y, x.
    pub shape: [usize; 3],
    /// Voxel size along z, y, x in nm.
    pub voxel_nm: [f64; 3],
    pub data: Vec<T>,
}

impl<T: Clone> Volume<T> {
    /// A volume filled with `value`.
    pub fn filled(shape: [usize; 3], voxel_nm: [f64; 3], value: T) -> Self {
        Self { shape, voxel_nm, data: vec![value; shape[0] * shape[1] * shape[2]] }
    }

    /// Wraps `data`; fails when its length is not `shape[0]·shape[1]·shape[2]`, a size is zero or a voxel
    /// size is not a finite positive number.
    pub fn from_vec(shape: [usize; 3], voxel_nm: [f64; 3], data: Vec<T>) -> Result<Self, SegmentError> {
        let n = shape[0] * shape[1] * shape[2];
        if n == 0 {
            return Err(SegmentError::Invalid(format!("volume of shape {shape:?} (z, y, x) is empty")));
        }
        if data.len() != n {
            return Err(SegmentError::Invalid(format!(
                "volume of shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        check_voxel(voxel_nm)?;
        Ok(Self { shape, voxel_nm, data })
    }

    /// A copy of the box `[lo, hi)` (voxel coordinates z, y, x).
    pub fn crop(&self, lo: [usize; 3], hi: [usize; 3]) -> Self {
        let s = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let mut data = Vec::with_capacity(s[0] * s[1] * s[2]);
        for z in lo[0]..hi[0] {
            for y in lo[1]..hi[1] {
                let i = self.idx(z, y, lo[2]);
                data.extend_from_slice(&self.data[i..i + s[2]]);
            }
        }
        Self { shape: s, voxel_nm: self.voxel_nm, data }
    }

    /// A copy of the z-slices `[z0, z1)`.
    pub fn z_slab(&self, z0: usize, z1: usize) -> Self {
        self.crop([z0, 0, 0], [z1, self.shape[1], self.shape[2]])
    }

    /// Applies `f` to every voxel.
    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Volume<U> {
        Volume { shape: self.shape, voxel_nm: self.voxel_nm, data: self.data.iter().map(f).collect() }
    }
}

impl<T> Volume<T> {
    /// Linear index of voxel (z, y, x).
    #[inline]
    pub fn idx(&self, z: usize, y: usize, x: usize) -> usize {
        (z * self.shape[1] + y) * self.shape[2] + x
    }

    /// Voxel coordinates (z, y, x) of a linear index.
    #[inline]
    pub fn coords(&self, i: usize) -> [usize; 3] {
        let x = i % self.shape[2];
        let r = i / self.shape[2];
        [r / self.shape[1], r % self.shape[1], x]
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Voxels in one z-slice.
    pub fn slice_len(&self) -> usize {
        self.shape[1] * self.shape[2]
    }

    /// Centre of voxel (z, y, x) in nm.
    pub fn position_nm(&self, c: [usize; 3]) -> [f64; 3] {
        [c[0] as f64 * self.voxel_nm[0], c[1] as f64 * self.voxel_nm[1], c[2] as f64 * self.voxel_nm[2]]
    }
}

/// Checks that a voxel size (nm) is finite and positive.
pub fn check_voxel(voxel_nm: [f64; 3]) -> Result<(), SegmentError> {
    if voxel_nm.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(SegmentError::Invalid(format!(
            "voxel size {voxel_nm:?} nm (z, y, x) must be three finite numbers > 0"
        )));
    }
    Ok(())
}

/// The 6 face neighbours of voxel `c` inside `shape`, as linear indices, in a fixed order.
#[inline]
pub fn face_neighbours(shape: [usize; 3], c: [usize; 3], out: &mut Vec<usize>) {
    out.clear();
    let [z, y, x] = c;
    let i = (z * shape[1] + y) * shape[2] + x;
    let sl = shape[1] * shape[2];
    if z > 0 {
        out.push(i - sl);
    }
    if y > 0 {
        out.push(i - shape[2]);
    }
    if x > 0 {
        out.push(i - 1);
    }
    if x + 1 < shape[2] {
        out.push(i + 1);
    }
    if y + 1 < shape[1] {
        out.push(i + shape[2]);
    }
    if z + 1 < shape[0] {
        out.push(i + sl);
    }
}
