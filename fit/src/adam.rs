//! Adam (Kingma & Ba 2015, ICLR, "Adam: a method for stochastic optimization", Algorithm 1), with the
//! paper's defaults β1 = 0.9, β2 = 0.999, ε = 1e-8, over the fitted entries of a raw parameter vector,
//! and a cosine learning-rate schedule (Loshchilov & Hutter 2017, ICLR, SGDR without restarts).

#[derive(Clone, Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u32,
}

impl Adam {
    pub fn new(n: usize, lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    /// One update of `x` with gradient `g`, entries where `mask` is false left alone; `lr_scale`
    /// multiplies the learning rate (schedule).
    pub fn step(&mut self, x: &mut [f64], g: &[f64], mask: &[bool], lr_scale: f64) {
        self.t += 1;
        let b1t = 1.0 - self.beta1.powi(self.t as i32);
        let b2t = 1.0 - self.beta2.powi(self.t as i32);
        let lr = self.lr * lr_scale;
        for k in 0..x.len() {
            if !mask[k] {
                continue;
            }
            self.m[k] = self.beta1 * self.m[k] + (1.0 - self.beta1) * g[k];
            self.v[k] = self.beta2 * self.v[k] + (1.0 - self.beta2) * g[k] * g[k];
            let m_hat = self.m[k] / b1t;
            let v_hat = self.v[k] / b2t;
            x[k] -= lr * m_hat / (v_hat.sqrt() + self.eps);
        }
    }
}

/// Cosine decay from 1 to `floor` over `total` steps.
pub fn cosine_schedule(step: usize, total: usize, floor: f64) -> f64 {
    if total <= 1 {
        return 1.0;
    }
    let x = (step as f64 / (total - 1) as f64).min(1.0);
    floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
}
