//! Runs a predictive-coding scenario without the `neurotwin` binary:
//! `cargo run --release -p neurotwin-predictive --example pc_run -- SCENARIO [cpu|cuda-host] [BATCHES] [OUT]`.

use std::path::PathBuf;

use neurotwin_predictive::{BackendKind, RunOptions, run_scenario};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: pc_run SCENARIO [cpu|cuda-host] [BATCHES] [OUT]");
        std::process::exit(2);
    };
    let backend: BackendKind = args.get(1).map_or(Ok(BackendKind::Cpu), |s| s.parse()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let batches = args.get(2).map(|b| b.parse().expect("BATCHES must be a number"));
    let out_dir = args.get(3).map(PathBuf::from);
    match run_scenario(path.as_ref(), &RunOptions { out_dir, backend, batches, overwrite: true }) {
        Ok(s) => println!("{}", serde_json::to_string_pretty(&s).unwrap()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
