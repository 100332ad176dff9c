//! The kernels' parameter tables built from the models' compiled parameter sets (`neurotwin_models`), one
//! entry per set in set order, per-channel arrays set-major. Callers check that every set was compiled for
//! `n_channels` receptor channels (the tables' `n_sets` asserts the lengths).

use neurotwin_models::{adex, graded, izhikevich, lif_cond_exp, lif_delta, lif_exp};

use super::{AdexTable, GradedTable, IzhikevichTable, LifCondExpTable, LifDeltaTable, LifExpTable};

impl LifExpTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[lif_exp::Compiled]) -> Self {
        Self {
            n_channels,
            p22: sets.iter().map(|c| c.p22).collect(),
            p20: sets.iter().map(|c| c.p20).collect(),
            e_l: sets.iter().map(|c| c.e_l).collect(),
            theta: sets.iter().map(|c| c.theta).collect(),
            reset: sets.iter().map(|c| c.reset).collect(),
            i_e: sets.iter().map(|c| c.i_e).collect(),
            refractory_steps: sets.iter().map(|c| c.refractory_steps).collect(),
            p11: sets.iter().flat_map(|c| c.p11.iter().copied()).collect(),
            p21: sets.iter().flat_map(|c| c.p21.iter().copied()).collect(),
        }
    }
}

impl LifDeltaTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[lif_delta::Compiled]) -> Self {
        Self {
            n_channels,
            p22: sets.iter().map(|c| c.p22).collect(),
            p20: sets.iter().map(|c| c.p20).collect(),
            e_l: sets.iter().map(|c| c.e_l).collect(),
            theta: sets.iter().map(|c| c.theta).collect(),
            reset: sets.iter().map(|c| c.reset).collect(),
            i_e: sets.iter().map(|c| c.i_e).collect(),
            refractory_steps: sets.iter().map(|c| c.refractory_steps).collect(),
            keep_refractory_input: sets.iter().map(|c| c.keep_refractory_input).collect(),
        }
    }
}

impl IzhikevichTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[izhikevich::Compiled]) -> Self {
        Self {
            n_channels,
            a: sets.iter().map(|c| c.a).collect(),
            b: sets.iter().map(|c| c.b).collect(),
            c: sets.iter().map(|c| c.c).collect(),
            d: sets.iter().map(|c| c.d).collect(),
            v_peak: sets.iter().map(|c| c.v_peak).collect(),
            i_e: sets.iter().map(|c| c.i_e).collect(),
            n_sub: sets.iter().map(|c| c.n_sub).collect(),
            h_sub: sets.iter().map(|c| c.h_sub).collect(),
        }
    }
}

impl AdexTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[adex::Compiled]) -> Self {
        Self {
            n_channels,
            e_l: sets.iter().map(|c| c.e_l).collect(),
            g_l: sets.iter().map(|c| c.g_l).collect(),
            inv_c: sets.iter().map(|c| c.inv_c).collect(),
            v_th: sets.iter().map(|c| c.v_th).collect(),
            g_l_delta_t: sets.iter().map(|c| c.g_l_delta_t).collect(),
            inv_delta_t: sets.iter().map(|c| c.inv_delta_t).collect(),
            a: sets.iter().map(|c| c.a).collect(),
            inv_tau_w: sets.iter().map(|c| c.inv_tau_w).collect(),
            b: sets.iter().map(|c| c.b).collect(),
            v_reset: sets.iter().map(|c| c.v_reset).collect(),
            v_peak: sets.iter().map(|c| c.v_peak).collect(),
            i_e: sets.iter().map(|c| c.i_e).collect(),
            refractory_start: sets.iter().map(|c| c.refractory_start).collect(),
            n_sub: sets.iter().map(|c| c.n_sub).collect(),
            h_sub: sets.iter().map(|c| c.h_sub).collect(),
            half_h_sub: sets.iter().map(|c| c.half_h_sub).collect(),
            decay_sub: sets.iter().flat_map(|c| c.decay_sub.iter().copied()).collect(),
            e_rev: sets.iter().flat_map(|c| c.e_rev.clone().unwrap_or_else(|| vec![0.0; c.decay_sub.len()])).collect(),
            conductance: sets.iter().map(|c| c.e_rev.is_some() as u32).collect(),
        }
    }
}

impl GradedTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[graded::Compiled]) -> Self {
        Self {
            n_channels,
            g_l: sets.iter().map(|c| c.g_l).collect(),
            g_l_e_l: sets.iter().map(|c| c.g_l_e_l).collect(),
            minus_h_over_c: sets.iter().map(|c| c.minus_h_over_c).collect(),
            beta: sets.iter().map(|c| c.beta).collect(),
            v_th: sets.iter().map(|c| c.v_th).collect(),
            i_e: sets.iter().map(|c| c.i_e).collect(),
            e_rev: sets.iter().flat_map(|c| c.e_rev.iter().copied()).collect(),
        }
    }
}

impl LifCondExpTable {
    /// The table of `sets` for `n_channels` channels.
    pub fn from_compiled(n_channels: usize, sets: &[lif_cond_exp::Compiled]) -> Self {
        Self {
            n_channels,
            g_l: sets.iter().map(|c| c.g_l).collect(),
            g_l_e_l_i_e: sets.iter().map(|c| c.g_l_e_l_i_e).collect(),
            minus_h_over_c: sets.iter().map(|c| c.minus_h_over_c).collect(),
            v_th: sets.iter().map(|c| c.v_th).collect(),
            v_reset: sets.iter().map(|c| c.v_reset).collect(),
            refractory_steps: sets.iter().map(|c| c.refractory_steps).collect(),
            p11: sets.iter().flat_map(|c| c.p11.iter().copied()).collect(),
            q_mid: sets.iter().flat_map(|c| c.q_mid.iter().copied()).collect(),
            e_rev: sets.iter().flat_map(|c| c.e_rev.iter().copied()).collect(),
            alpha: sets.iter().map(|c| c.alpha as u32).collect(),
            jump: sets.iter().flat_map(|c| c.jump.iter().copied()).collect(),
            h: sets.iter().map(|c| c.h).collect(),
        }
    }
}
