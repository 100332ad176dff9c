//! Simulated spikes (or graded voltage) → simulated calcium imaging: the forward model (indicator kinetics,
//! Hill saturation, frame averaging) applied to each neuron's spike train or voltage trace at a recording's frame rate, as an
//! `imaging::CalciumRecording` of ΔF/F that the comparison can align with the real one.

use neurotwin_imaging::{CalciumRecording, SignalKind};
use neurotwin_models::calcium::{ActivityMapping, Drive, ForwardModel, ImagingParams, IndicatorParams};
use rayon::prelude::*;

/// Time step of the calcium forward model (ms). Spike times enter exactly; 1 ms only sets where the
/// calcium is evaluated within each frame.
pub(crate) const CALCIUM_DT_MS: f64 = 1.0;

/// What the simulation produced for each neuron.
pub enum SimulatedActivity<'a> {
    /// Spike times (ms) per neuron.
    Spikes(&'a [Vec<f64>]),
    /// Membrane potential (mV) per neuron sampled every `dt_ms` from t = 0 (graded models), turned into
    /// calcium influx by `mapping` (threshold: activation voltage of the calcium channels, mV).
    Voltage { v_mv: &'a [Vec<f64>], dt_ms: f64, mapping: ActivityMapping },
}

/// Noise-free ΔF/F frames (frame-averaged over each frame period, starting at t = 0) of the neurons
/// `rows` of `times_ms` (spike times per neuron, ms), labelled with `names[row]`, over `duration_ms`.
pub fn simulated_imaging(
    activity: &SimulatedActivity,
    names: &[String],
    rows: &[usize],
    frame_rate_hz: f64,
    duration_ms: f64,
    indicator: &IndicatorParams,
) -> Result<CalciumRecording, String> {
    let dt = match activity {
        SimulatedActivity::Spikes(_) => CALCIUM_DT_MS,
        SimulatedActivity::Voltage { dt_ms, .. } => *dt_ms,
    };
    let fm = ForwardModel::new(indicator.clone(), ImagingParams::new(frame_rate_hz, 1000.0), dt)
        .map_err(|e| format!("forward model: {e}"))?;
    let n_frames = fm.n_frames(duration_ms).map_err(|e| e.to_string())?;
    let traces: Vec<Vec<f64>> = rows
        .par_iter()
        .map(|&r| {
            let drive = match activity {
                SimulatedActivity::Spikes(t) => Drive::SpikeTimes(&t[r]),
                SimulatedActivity::Voltage { v_mv, mapping, .. } => {
                    Drive::Activity { trace: &v_mv[r], mapping: *mapping }
                }
            };
            fm.dff_frames(&drive, duration_ms).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let time_s: Vec<f64> = (0..n_frames).map(|k| fm.frame_time_ms(k) * 1e-3).collect();
    let flat: Vec<f64> = traces.into_iter().flat_map(|t| t.into_iter().take(n_frames)).collect();
    let labels = rows.iter().map(|&r| names[r].clone()).collect();
    CalciumRecording::new(labels, time_s, flat, SignalKind::DfOverF).map_err(|e| e.to_string())
}
