//! `GapMatrix`: electrical couplings (gap junctions) as a symmetric CSR matrix of conductances.
//! The coupling current into neuron i is `I_i = Σ_j g_ij (V_j − V_i)` (pA for nS × mV).

use serde::{Deserialize, Serialize};

use crate::error::ConnectomeError;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GapMatrix {
    pub n: u32,
    /// Entries of row `i` are `row_ptr[i] .. row_ptr[i + 1]`.
    pub row_ptr: Vec<u64>,
    /// Partner neuron, sorted within a row.
    pub partner: Vec<u32>,
    /// Conductance (nS), > 0.
    pub conductance: Vec<f32>,
}

impl GapMatrix {
    /// Builds from undirected junctions `(a, b, g)`; each junction is stored in both rows, parallel
    /// junctions between the same pair are summed. Self-couplings are ignored (they carry no current).
    pub fn from_junctions(n: u32, junctions: &[(u32, u32, f32)]) -> Result<Self, ConnectomeError> {
        let mut entries: Vec<(u32, u32, f32)> = Vec::with_capacity(junctions.len() * 2);
        for &(a, b, g) in junctions {
            if a >= n || b >= n {
                return Err(ConnectomeError::Compile(format!("gap junction {a} - {b} outside {n} neurons")));
            }
            if !(g.is_finite() && g >= 0.0) {
                return Err(ConnectomeError::Compile(format!(
                    "gap junction {a} - {b}: conductance {g} nS must be finite and >= 0"
                )));
            }
            if a != b && g > 0.0 {
                entries.push((a, b, g));
                entries.push((b, a, g));
            }
        }
        entries.sort_by_key(|e| (e.0, e.1));
        let mut row_ptr = vec![0u64; n as usize + 1];
        let mut partner = Vec::new();
        let mut conductance: Vec<f32> = Vec::new();
        let mut last: Option<(u32, u32)> = None;
        for (a, b, g) in entries {
            if last == Some((a, b)) {
                *conductance.last_mut().unwrap() += g;
                continue;
            }
            last = Some((a, b));
            row_ptr[a as usize + 1] += 1;
            partner.push(b);
            conductance.push(g);
        }
        for i in 0..n as usize {
            row_ptr[i + 1] += row_ptr[i];
        }
        Ok(Self { n, row_ptr, partner, conductance })
    }

    pub fn empty(n: u32) -> Self {
        Self { n, row_ptr: vec![0; n as usize + 1], partner: vec![], conductance: vec![] }
    }

    pub fn n_entries(&self) -> usize {
        self.partner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partner.is_empty()
    }

    /// Partners and conductances of neuron `i`.
    #[inline]
    pub fn row(&self, i: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.row_ptr[i as usize] as usize, self.row_ptr[i as usize + 1] as usize);
        (&self.partner[a..b], &self.conductance[a..b])
    }

    pub fn bytes(&self) -> u64 {
        (self.row_ptr.len() * 8 + self.partner.len() * 8) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_parallel_junctions_summed() {
        let g = GapMatrix::from_junctions(3, &[(0, 1, 1.0), (1, 0, 0.5), (2, 2, 9.0)]).unwrap();
        assert_eq!(g.row(0), (&[1u32][..], &[1.5f32][..]));
        assert_eq!(g.row(1), (&[0u32][..], &[1.5f32][..]));
        assert_eq!(g.row(2).0.len(), 0);
        assert!(GapMatrix::from_junctions(2, &[(0, 1, -1.0)]).is_err());
    }
}
