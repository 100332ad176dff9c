//! The f32 tensor of the CNN: C × Z × Y × X, x fastest, contiguous.

use super::CnnError;

/// A dense f32 tensor of shape `[channels, nz, ny, nx]` (x fastest).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `shape` (`[c, z, y, x]`) holding `data` (`c·z·y·x` values, x fastest).
    pub fn new(shape: [usize; 4], data: Vec<f32>) -> Result<Self, CnnError> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(data.len()) {
            return Err(CnnError::Shape(format!(
                "tensor of shape {shape:?} needs {} values, got {}",
                n.map_or_else(|| "too many".to_string(), |n| n.to_string()),
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A one-channel tensor from a `[z, y, x]` volume.
    pub fn from_volume(dims: [usize; 3], data: Vec<f32>) -> Result<Self, CnnError> {
        Self::new([1, dims[0], dims[1], dims[2]], data)
    }

    /// All zeros.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self { shape, data: vec![0.0; shape.iter().product()] }
    }

    /// `[c, z, y, x]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.shape[0]
    }

    /// Spatial dimensions `[z, y, x]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.shape[1], self.shape[2], self.shape[3]]
    }

    /// Voxels per channel.
    pub fn voxels(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// The values, x fastest.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The values, by value.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Channel `c` as a `z·y·x` slice.
    pub fn channel(&self, c: usize) -> &[f32] {
        let v = self.voxels();
        &self.data[c * v..(c + 1) * v]
    }

    /// Flat index of `(c, z, y, x)`.
    pub fn index(&self, c: usize, z: usize, y: usize, x: usize) -> usize {
        ((c * self.shape[1] + z) * self.shape[2] + y) * self.shape[3] + x
    }

    /// The value at `(c, z, y, x)`.
    pub fn at(&self, c: usize, z: usize, y: usize, x: usize) -> f32 {
        self.data[self.index(c, z, y, x)]
    }

    /// Largest absolute difference to `other` (same shape), NaN if either has a NaN where the other differs.
    pub fn max_abs_diff(&self, other: &Tensor) -> Result<f32, CnnError> {
        if self.shape != other.shape {
            return Err(CnnError::Shape(format!("shapes {:?} and {:?} differ", self.shape, other.shape)));
        }
        Ok(self.data.iter().zip(&other.data).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max))
    }

    /// Edge-replicating pad at the high end of each spatial axis to `dims` (each `>=` the current size).
    pub(crate) fn pad_replicate(&self, dims: [usize; 3]) -> Tensor {
        let [c, z0, y0, x0] = self.shape;
        if dims == [z0, y0, x0] {
            return self.clone();
        }
        let mut out = Tensor::zeros([c, dims[0], dims[1], dims[2]]);
        for ch in 0..c {
            for z in 0..dims[0] {
                for y in 0..dims[1] {
                    let src = self.index(ch, z.min(z0 - 1), y.min(y0 - 1), 0);
                    let dst = out.index(ch, z, y, 0);
                    for x in 0..dims[2] {
                        out.data[dst + x] = self.data[src + x.min(x0 - 1)];
                    }
                }
            }
        }
        out
    }

    /// The `[0, dims)` corner of each spatial axis.
    pub(crate) fn crop(&self, dims: [usize; 3]) -> Tensor {
        let [c, z0, y0, x0] = self.shape;
        if dims == [z0, y0, x0] {
            return self.clone();
        }
        let mut out = Tensor::zeros([c, dims[0], dims[1], dims[2]]);
        for ch in 0..c {
            for z in 0..dims[0] {
                for y in 0..dims[1] {
                    let src = self.index(ch, z, y, 0);
                    let dst = out.index(ch, z, y, 0);
                    out.data[dst..dst + dims[2]].copy_from_slice(&self.data[src..src + dims[2]]);
                }
            }
        }
        out
    }
}
