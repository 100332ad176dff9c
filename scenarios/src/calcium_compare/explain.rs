//! Why a comparison with a recording cannot be made, in the user's terms (the run's duration, the
//! recording's frame rate and length, constant traces, unmatched labels) and what to change. Checked
//! before anything is simulated or written, so that a failed comparison leaves no partial report.

use neurotwin_imaging::compare::{Comparison, SkipCause, SkippedNeuron};
use neurotwin_imaging::{CalciumRecording, suggest_names};

/// Compared neurons the report needs: the correlation matrices (the population comparison) need two.
pub const MIN_COMPARED: usize = 2;

/// `a, b, c` of the first 12 `names`, then `… (N in all)`.
fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
    let more = if names.len() > 12 { format!(", … ({} in all)", names.len()) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

/// Shortest run (ms, whole) that covers `frames` frames at `rate_hz` (tolerating rounding in the rate).
fn run_needed_ms(frames: usize, rate_hz: f64) -> f64 {
    (frames as f64 * 1000.0 / rate_hz - 1e-6).ceil()
}

/// Checks that a run of `duration_ms` and the recording `rec` (first frame at 0 s) can overlap in
/// `min_frames` frames, for the matched neurons `matched`; the error says which is too short and the fix.
pub fn check_length(
    duration_ms: f64,
    rec: &CalciumRecording,
    matched: &[String],
    min_frames: usize,
) -> Result<(), String> {
    let none = format!("none of the {} matched neuron(s) ({}) can be compared", matched.len(), list(matched));
    let Some(rate) = rec.frame_rate_hz() else {
        return Err(format!("{none}: the recording has {} frame(s); at least {min_frames} are needed", rec.n_frames));
    };
    let span_s = rec.n_frames as f64 / rate;
    if rec.n_frames < min_frames {
        return Err(format!(
            "{none}: the recording has only {} frames ({span_s:.1} s at {rate:.3} Hz) and a comparison needs at least \
             {min_frames} per neuron; use a longer recording",
            rec.n_frames
        ));
    }
    let covered = (duration_ms * 1e-3 * rate + 1e-6).floor() as usize;
    if covered < min_frames {
        let need = run_needed_ms(min_frames, rate);
        return Err(format!(
            "{none}: the run is {duration_ms} ms but the recording's shortest usable window is {need} ms ({min_frames} \
             frames where both traces are finite, at {rate:.3} Hz), and the run covers only {covered} frame(s) of \
             the {span_s:.1} s recording; set [run] duration_ms to at least {need} and run again"
        ));
    }
    Ok(())
}

/// Checks that at least [`MIN_COMPARED`] neurons were compared; otherwise says, neuron by neuron, why
/// the others were skipped and what to change.
pub fn check_compared(c: &Comparison, duration_ms: f64) -> Result<(), String> {
    if c.neurons.len() >= MIN_COMPARED {
        return Ok(());
    }
    let total = c.neurons.len() + c.skipped.len();
    let head = format!(
        "only {} of the {total} matched neuron(s) can be compared, and the correlation structure needs at least \
         {MIN_COMPARED}",
        c.neurons.len()
    );
    if c.skipped.is_empty() {
        return Err(format!("{head}; match more recording labels to the network's neuron names"));
    }
    let why: Vec<String> = c.skipped.iter().map(|k| reason(k, c.time_base.n_frames)).collect();
    let mut fixes: Vec<String> = Vec::new();
    for k in &c.skipped {
        let fix = fix(k, c, duration_ms);
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    Err(format!("{head}: {}. To fix: {}", why.join("; "), fixes.join("; ")))
}

fn reason(k: &SkippedNeuron, grid_frames: usize) -> String {
    match k.cause {
        SkipCause::TooFewFrames if k.n_frames < grid_frames => format!(
            "{}: only {} of the {grid_frames} common frames have a finite value in both traces (the recording is NaN \
             in the others)",
            k.name, k.n_frames
        ),
        SkipCause::TooFewFrames => {
            format!("{}: the run and the recording overlap in only {} frame(s)", k.name, k.n_frames)
        }
        SkipCause::ConstantSimulated => format!("the simulated trace of {} is constant", k.name),
        SkipCause::ConstantRecorded => format!("the recorded trace of {} is constant", k.name),
    }
}

fn fix(k: &SkippedNeuron, c: &Comparison, duration_ms: f64) -> String {
    let min = c.options.min_valid_frames;
    match k.cause {
        SkipCause::TooFewFrames if k.n_frames < c.time_base.n_frames => {
            "use a recording with fewer missing (NaN) frames for these neurons".into()
        }
        SkipCause::TooFewFrames => format!(
            "the run is {duration_ms} ms; set [run] duration_ms to at least {} (and use a recording at least that long)",
            run_needed_ms(min, c.time_base.frame_rate_hz)
        ),
        SkipCause::ConstantSimulated => {
            "a constant simulated trace means the neuron's calcium never changed during the run: stimulate it, \
             strengthen its inputs or run longer"
                .into()
        }
        SkipCause::ConstantRecorded => {
            "a constant recorded trace carries no signal: check that column/ROI of the recording".into()
        }
    }
}

/// The recording labels of `unmatched` with the network names they were probably meant as
/// (`AVLA (did you mean AVAL?)`).
pub fn describe_unmatched(unmatched: &[String], names: &[String]) -> Vec<String> {
    unmatched
        .iter()
        .map(|l| {
            let s = suggest_names(l, names);
            if s.is_empty() { l.clone() } else { format!("{l} (did you mean {}?)", s.join(" or ")) }
        })
        .collect()
}

/// The error when no recording label names a neuron of the network.
pub fn nothing_matched(labels: &[String], names: &[String]) -> String {
    let labelled: Vec<String> = labels.iter().filter(|l| !l.trim().is_empty()).cloned().collect();
    if labelled.is_empty() {
        return "the recording's neurons have no labels, so none can be matched to the network: label the ROIs with \
                the network's neuron names (e.g. AVAL)"
            .into();
    }
    let shown = describe_unmatched(&labelled[..labelled.len().min(12)], names);
    let more = if labelled.len() > 12 { ", …" } else { "" };
    format!(
        "none of the recording's {} label(s) is a neuron of the network ({} neurons, e.g. {}): {}{more}; label the \
         ROIs with the network's neuron names",
        labelled.len(),
        names.len(),
        list(&names.iter().take(5).cloned().collect::<Vec<_>>()),
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use neurotwin_imaging::SignalKind;

    /// A recording at 5 Hz whose timestamps carry rounding error (rate 4.999999999999996 Hz).
    fn rec(frames: usize) -> CalciumRecording {
        let time: Vec<f64> = (0..frames).map(|k| k as f64 * 0.2).collect();
        CalciumRecording::new(vec!["A".into()], time, vec![0.0; frames], SignalKind::DfOverF).unwrap()
    }

    #[test]
    fn run_length_check_names_the_needed_duration() {
        let names = ["A".to_string()];
        let e = check_length(1000.0, &rec(300), &names, 20).unwrap_err();
        assert!(e.contains("the run is 1000 ms") && e.contains("duration_ms to at least 4000 "), "{e}");
        check_length(4000.0, &rec(300), &names, 20).unwrap();
        let e = check_length(60000.0, &rec(10), &names, 20).unwrap_err();
        assert!(e.contains("the recording has only 10 frames") && e.contains("longer recording"), "{e}");
    }
}
