//! The commands the Python package runs (`neurotwin.compare`, `neurotwin.fit`, `neurotwin.segment`): the argument
//! list of the CLI, parsed by the same clap definitions (so the same flags, defaults and messages), run by the same
//! functions, with the outputs published the same way; instead of printing tables they return the report as JSON.

use std::path::PathBuf;

use clap::Parser;

use super::{Cli, Command, compare, fit, segment};

/// A finished command: its report, the output folder and the files written there.
#[derive(Debug)]
pub struct CommandOutput {
    /// `compare`, `fit`, `segment`, `segment train` or `segment synthetic`.
    pub command: &'static str,
    pub out_dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// The report: for `fit` what `summary.json` (and `--json`) holds, for `segment` what `report.json` holds (for
    /// `segment train` what `training.json` holds), for
    /// `compare` the atlas report (`atlas_summary.json`) or one entry per recording with its comparison.
    pub report: serde_json::Value,
}

/// Why a command did not finish.
#[derive(Debug)]
pub enum CommandError {
    /// The arguments are not what the CLI accepts (clap's message, naming the flag), or name a command the
    /// library does not run.
    Usage(String),
    /// The command ran and failed (the CLI's message: the file, line or field and the fix).
    Failed(anyhow::Error),
}

/// The commands [`run_command`] runs.
pub const LIBRARY_COMMANDS: [&str; 3] = ["compare", "fit", "segment"];

/// Runs `neurotwin ARGS...` for the commands in [`LIBRARY_COMMANDS`] (`args[0]` is the command, without the program
/// name), with `--max-memory` / `--force` applied as the CLI does. Progress and notes go to stderr; nothing is
/// printed on stdout. `fit --threads N` runs on a pool of N threads of its own (the CLI sets the global pool).
pub fn run_command(args: &[String]) -> Result<CommandOutput, CommandError> {
    let argv = std::iter::once("neurotwin".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| CommandError::Usage(e.render().to_string().trim().to_string()))?;
    super::set_limits(&cli).map_err(CommandError::Failed)?;
    let done = match cli.command {
        Command::Compare(a) => compare_output(&a),
        Command::Fit(a) => fit_output(&a),
        Command::Segment(a) => segment_output(&a),
        _ => {
            return Err(CommandError::Usage(format!(
                "`{}` is not run through the library: use one of {} (runs: neurotwin.run)",
                args.first().map_or("", String::as_str),
                LIBRARY_COMMANDS.join(", ")
            )));
        }
    };
    done.map_err(CommandError::Failed)
}

fn compare_output(a: &compare::CompareArgs) -> anyhow::Result<CommandOutput> {
    let o = compare::compare_outcome(a)?;
    Ok(CommandOutput { command: "compare", report: o.compared.to_json(), out_dir: o.out_dir, files: o.files })
}

fn fit_output(a: &fit::FitArgs) -> anyhow::Result<CommandOutput> {
    let o = match a.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| anyhow::anyhow!("--threads {n}: {e}"))?
            .install(|| fit::fit_outcome(a, true))?,
        None => fit::fit_outcome(a, true)?,
    };
    let report = serde_json::to_value(&o.report)?;
    Ok(CommandOutput { command: "fit", report, out_dir: o.out_dir, files: o.files })
}

fn segment_output(a: &segment::SegmentArgs) -> anyhow::Result<CommandOutput> {
    if let Some(segment::SegmentAction::Train(t)) = &a.action {
        let o = super::segment_train::train_outcome(t)?;
        return Ok(CommandOutput { command: "segment train", report: o.json, out_dir: o.out_dir, files: o.files });
    }
    if let Some(segment::SegmentAction::Synthetic(s)) = &a.action {
        let (cfg, store) = super::segment_ooc::synthetic_outcome(s)?;
        let report = serde_json::json!({ "config": cfg, "store": store });
        return Ok(CommandOutput { command: "segment synthetic", report, out_dir: s.out.clone(), files: vec![store] });
    }
    let o = segment::segment_outcome(a)?;
    Ok(CommandOutput { command: "segment", report: o.json, out_dir: o.out_dir, files: o.files })
}
