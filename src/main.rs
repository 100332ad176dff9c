//! `neurotwin` command-line interface.

use std::process::ExitCode;

use clap::Parser;
use neurotwin::cli;

fn main() -> ExitCode {
    // Like any Unix filter: `neurotwin inspect X | head` ends quietly when the reader closes the pipe
    // (Rust ignores SIGPIPE, so `println!` would panic). Results are printed after outputs are published.
    // SAFETY: restoring a signal's default action at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    // SIGINT/SIGTERM/SIGHUP remove partial outputs (neurotwin_io::signals) instead of leaving them.
    neurotwin_io::signals::install();
    let result = cli::set_limits(&args).and_then(|()| cli::dispatch(args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
