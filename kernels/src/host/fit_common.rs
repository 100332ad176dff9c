//! Pieces shared by the wrappers of the fitting kernels (`fit_rate`, `fit_lif`, `fit_graded`): the CSR
//! pointer-array check, the per-neuron pulse lists and the teacher-forcing map.

use super::len_u32;

pub(super) fn check_ptr(ptr: &[u64], n: usize, nnz: usize, what: &str) {
    assert_eq!(ptr.len(), n + 1, "{what}: pointer array must have n + 1 entries");
    assert_eq!(ptr[0], 0, "{what}: pointer array must start at 0");
    assert!(ptr.windows(2).all(|w| w[0] <= w[1]), "{what}: pointer array must be non-decreasing");
    assert_eq!(ptr[n], nnz as u64, "{what}: pointer array must end at the number of entries");
}

/// Step inputs `u_i(t)` as per-neuron lists of pulses (`neurotwin_fit::rate::Pulse`), in the order given.
#[derive(Clone, Debug, PartialEq)]
pub struct FitPulses {
    pub(super) n: usize,
    pub(super) ptr: Vec<u64>,
    pub(super) start: Vec<u64>,
    pub(super) stop: Vec<u64>,
    pub(super) amp: Vec<f64>,
}

impl FitPulses {
    /// Pulses `(neuron, start, stop, amplitude)`: `amplitude` on `neuron` for steps `start ≤ t < stop`.
    /// Panics if a neuron is `≥ n`.
    pub fn new(n: usize, pulses: &[(u32, u64, u64, f64)]) -> Self {
        len_u32(n);
        let mut ptr = vec![0u64; n + 1];
        for &(i, ..) in pulses {
            assert!((i as usize) < n, "pulse on neuron {i} of {n}");
            ptr[i as usize + 1] += 1;
        }
        for i in 0..n {
            ptr[i + 1] += ptr[i];
        }
        let mut fill: Vec<usize> = ptr[..n].iter().map(|&p| p as usize).collect();
        let (mut start, mut stop, mut amp) = (vec![0; pulses.len()], vec![0; pulses.len()], vec![0.0; pulses.len()]);
        for &(i, s, e, a) in pulses {
            let k = fill[i as usize];
            fill[i as usize] += 1;
            (start[k], stop[k], amp[k]) = (s, e, a);
        }
        Self { n, ptr, start, stop, amp }
    }
}

/// Teacher forcing in the kernels' form: for each neuron, its index in the clamp's neuron list (the last
/// one if listed twice, as the sequential assignment leaves it) or −1.
#[derive(Clone, Debug, PartialEq)]
pub struct FitClampMap {
    pub(super) idx: Vec<i32>,
    pub(super) k: usize,
}

impl FitClampMap {
    /// Panics if a neuron is `≥ n` or the list has `2^31` entries or more.
    pub fn new(n: usize, neurons: &[u32]) -> Self {
        len_u32(n);
        let mut idx = vec![-1i32; n];
        for (m, &i) in neurons.iter().enumerate() {
            assert!((i as usize) < n, "clamped neuron {i} of {n}");
            idx[i as usize] = i32::try_from(m).expect("more than 2^31 - 1 clamped neurons");
        }
        Self { idx, k: neurons.len() }
    }

    /// Number of values of one step (the length of the clamp's neuron list).
    pub fn width(&self) -> usize {
        self.k
    }
}
