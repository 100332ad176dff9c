//! Union-find over u64 labels with path halving and a deterministic root choice (the smaller label).

use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct UnionFind {
    parent: HashMap<u64, u64>,
}

impl UnionFind {
    pub fn new() -> Self {
        Self::default()
    }

    /// Root of `x` (x itself when never united).
    pub fn find(&mut self, x: u64) -> u64 {
        let mut x = x;
        loop {
            let p = *self.parent.get(&x).unwrap_or(&x);
            if p == x {
                return x;
            }
            let gp = *self.parent.get(&p).unwrap_or(&p);
            self.parent.insert(x, gp);
            x = gp;
        }
    }

    /// Unites the sets of `a` and `b`; the new root is the smaller of the two roots. Returns it.
    pub fn union(&mut self, a: u64, b: u64) -> u64 {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        if lo != hi {
            self.parent.insert(hi, lo);
        }
        lo
    }
}
