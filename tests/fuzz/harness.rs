//! Running fuzz targets: in-process cases under `catch_unwind` with a hang watchdog, command-line cases as
//! subprocesses with a timeout. A panic, an abort, a death by signal or a hang is a failure: its input is
//! saved under `target/fuzz-failures/` with a note (mutations, message, backtrace) and the target fails
//! naming the files. An `Err` returned by the code under test is the expected outcome, never a failure.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use super::engine::{Mutated, Rng, budget, case_rng, fuzz_seed};

/// Longest one case may take before it counts as a hang.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A target stops after this many new failures (the first ones are the useful ones).
const MAX_FAILURES: usize = 10;

/// Known-issue inputs saved per target (more are only counted).
const MAX_KNOWN_SAVED: usize = 20;

/// A crash we know about and have not fixed: the target, a text its panic message or stderr contains,
/// and what it is. Matching failures are listed (with their saved input) but do not fail the target.
pub struct Known {
    pub target: &'static str,
    pub needle: &'static str,
    pub note: &'static str,
}

/// Marker added to a failure note when gdb's backtrace has its innermost frame (outside libc) in libhdf5.
const IN_LIBHDF5: &str = "innermost frame outside libc: libhdf5";

/// Marker for a SIGSEGV/SIGBUS with no Rust message when gdb is not installed: Rust code reached by these
/// commands has no `unsafe` of its own, so the fault is in libhdf5 (or its bindings) — unconfirmed.
const PRESUMED_LIBHDF5: &str = "no gdb: SIGSEGV/SIGBUS without a Rust message";

/// Known, unfixed crash classes (see the README's *Fuzzing*).
pub const KNOWN: &[Known] = &[
    Known {
        target: "hdf5_cli",
        needle: IN_LIBHDF5,
        note: "libhdf5 (1.10) segfaults or loops forever on a damaged file (seen in H5HG_read and H5T__conv_vlen \
               reading variable-length strings, H5A__close iterating attributes); not fixable in our code",
    },
    Known {
        target: "hdf5_cli",
        needle: PRESUMED_LIBHDF5,
        note: "presumably the libhdf5 crash above; install gdb to confirm with a backtrace",
    },
];

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/fuzz-failures/` (under `CARGO_TARGET_DIR` when set), created.
pub fn failure_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let d = if target.is_absolute() { target } else { repo().join(target) }.join("fuzz-failures");
    std::fs::create_dir_all(&d).expect("create target/fuzz-failures");
    d
}

/// `NEUROTWIN_FUZZ_CASE=k` replays only case `k` (with the failure's `NEUROTWIN_FUZZ_SEED`).
fn only_case() -> Option<u64> {
    std::env::var("NEUROTWIN_FUZZ_CASE").ok().and_then(|s| s.trim().parse().ok())
}

/// What one target found.
struct Report {
    target: &'static str,
    start: Instant,
    failures: Vec<PathBuf>,
    known: Vec<(PathBuf, &'static str)>,
    /// Known-issue cases, saved or not.
    known_cases: u64,
    /// How the other cases ended (e.g. "parse error", "prepared"), counted.
    outcomes: std::collections::BTreeMap<&'static str, u64>,
}

impl Report {
    fn new(target: &'static str) -> Self {
        Self {
            target,
            start: Instant::now(),
            failures: Vec::new(),
            known: Vec::new(),
            known_cases: 0,
            outcomes: Default::default(),
        }
    }

    /// Saves a failing input (`bytes` as `<target>-seed<S>-case<K>.<ext>`) and its note; sorts it into known
    /// or new failures.
    fn record(&mut self, case: u64, ext: &str, bytes: &[u8], note: &str) {
        let known = KNOWN.iter().find(|k| k.target == self.target && note.contains(k.needle));
        if known.is_some() {
            self.known_cases += 1;
            if self.known.len() >= MAX_KNOWN_SAVED {
                return;
            }
        }
        let stem = format!("{}-seed{}-case{case}", self.target, fuzz_seed());
        let dir = failure_dir();
        let input = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&input, bytes).expect("save failing input");
        std::fs::write(dir.join(format!("{stem}.txt")), note).expect("save failure note");
        match known {
            Some(k) => {
                eprintln!("fuzz {}: known issue, case {case}, input {}: {}", self.target, input.display(), k.note);
                self.known.push((input, k.note));
            }
            None => {
                eprintln!("fuzz {}: FAILURE case {case}, input {}:\n{note}", self.target, input.display());
                self.failures.push(input);
            }
        }
    }

    fn full(&self) -> bool {
        self.failures.len() >= MAX_FAILURES
    }

    /// Prints the case count and fails on any new failure.
    fn finish(self, cases: u64) {
        println!(
            "fuzz {}: {cases} cases in {:.1} s (seed {}), {} failures, {} known issues",
            self.target,
            self.start.elapsed().as_secs_f64(),
            fuzz_seed(),
            self.failures.len(),
            self.known_cases
        );
        let outcomes: Vec<String> = self.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("fuzz {}: outcomes: {}", self.target, outcomes.join(", "));
        for (p, note) in &self.known {
            println!("fuzz {}: known issue ({note}): {}", self.target, p.display());
        }
        let list: Vec<String> = self.failures.iter().map(|p| p.display().to_string()).collect();
        assert!(
            self.failures.is_empty(),
            "fuzz {}: {} inputs crashed or hung; inputs and notes (message, backtrace) saved: {}",
            self.target,
            list.len(),
            list.join(", ")
        );
    }
}

/// The note of a failure: mutations, what the input is, what happened.
fn note(m: &Mutated, what: &str, outcome: &str) -> String {
    format!("input: {what}; {}\nmutations: {}\n{outcome}\n", m.note, m.ops.join(", "))
}

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Panics inside a case are recorded (message, location, backtrace) instead of printed; others go to
/// the default hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(Cell::get) {
                let text = format!("{info}\nbacktrace:\n{}", Backtrace::force_capture());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                default(info);
            }
        }));
    });
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}

/// Watches the running case; one running longer than [`CASE_TIMEOUT`] is a hang: its input (already
/// written to `current`) is reported and the test process exits with an error.
struct Watchdog {
    running: Arc<Mutex<Option<(u64, Instant)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(target: &'static str, current: PathBuf) -> Self {
        let running: Arc<Mutex<Option<(u64, Instant)>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (running.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let now = *r.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((case, t)) = now
                    && t.elapsed() > CASE_TIMEOUT
                {
                    eprintln!(
                        "fuzz {target}: FAILURE case {case} (seed {}) hangs (> {} s); its input is {}",
                        fuzz_seed(),
                        CASE_TIMEOUT.as_secs(),
                        current.display()
                    );
                    std::process::exit(1);
                }
            }
        });
        Self { running, stop, thread: Some(thread) }
    }

    fn set(&self, v: Option<u64>) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = v.map(|c| (c, Instant::now()));
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `target` in this process for the time budget: `make` makes case `k`'s input from its generator,
/// `exec` runs it (it may draw further choices from the same generator). The input is written to
/// `target/fuzz-failures/<target>-current.<ext>` before each case, so an abort or a hang leaves it
/// behind. `what` describes the input for the failure note.
pub fn fuzz_in_process(
    target: &'static str,
    ext: &str,
    what: &str,
    mut make: impl FnMut(&mut Rng) -> Mutated,
    mut exec: impl FnMut(&mut Rng, &[u8]) -> &'static str,
) {
    install_hook();
    let current = failure_dir().join(format!("{target}-current.{ext}"));
    let watchdog = Watchdog::start(target, current.clone());
    let mut report = Report::new(target);
    let deadline = Instant::now() + budget();
    let one = only_case().is_some();
    let mut case = only_case().unwrap_or(0);
    let mut cases = 0;
    // At least one case (a budget of 0 still checks the seeds); exactly one when replaying.
    while cases == 0 || !one && Instant::now() < deadline && !report.full() {
        let mut rng = case_rng(target, case);
        let m = make(&mut rng);
        // Best effort: only needed when the case takes the process down.
        let _ = std::fs::write(&current, &m.bytes);
        watchdog.set(Some(case));
        IN_CASE.with(|c| c.set(true));
        let r = panic::catch_unwind(AssertUnwindSafe(|| exec(&mut rng, &m.bytes)));
        IN_CASE.with(|c| c.set(false));
        watchdog.set(None);
        match r {
            Ok(outcome) => *report.outcomes.entry(outcome).or_default() += 1,
            Err(payload) => {
                let msg = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| payload_text(payload.as_ref()));
                report.record(case, ext, &m.bytes, &note(&m, what, &format!("panic: {msg}")));
            }
        }
        case += 1;
        cases += 1;
    }
    drop(watchdog);
    let _ = std::fs::remove_file(&current);
    report.finish(cases);
}

/// One command-line case: the input file's bytes and name (in a scratch folder), and the arguments, where
/// `{FILE}` is the input's path and `{OUT}` an output folder that does not exist yet.
pub struct CliCase {
    pub input: Mutated,
    pub file_name: String,
    pub args: Vec<String>,
    pub what: String,
}

/// How a subprocess ended.
enum Outcome {
    /// Exit status 0 or an error exit (not a panic): "exit 0" or "error exit".
    Fine(&'static str),
    Failed(String),
}

/// Runs the `neurotwin` binary on one case in `dir`, killing it after [`CASE_TIMEOUT`].
fn run_cli(dir: &Path, c: &CliCase) -> Outcome {
    let file = dir.join(&c.file_name);
    std::fs::write(&file, &c.input.bytes).expect("write case input");
    let out_dir = dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.replace("{FILE}", &file.to_string_lossy()).replace("{OUT}", &out_dir.to_string_lossy()))
        .collect();
    let err_path = dir.join("stderr.txt");
    let mut child = crate::common::command(env!("CARGO_BIN_EXE_neurotwin"))
        .args(&args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("create stderr file"))
        .spawn()
        .expect("start neurotwin");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for neurotwin") {
            break st;
        }
        if start.elapsed() > CASE_TIMEOUT {
            let bt = gdb(&["-p", &child.id().to_string()], dir);
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Failed(format!("hang: killed after {} s\nargs: {args:?}\n{bt}", CASE_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let tail: String = stderr.chars().rev().take(6000).collect::<Vec<_>>().into_iter().rev().collect();
    match status.code() {
        None => {
            let mut gdb_args = vec!["--args".to_string(), env!("CARGO_BIN_EXE_neurotwin").to_string()];
            gdb_args.extend(args.iter().cloned());
            let mut bt = gdb(&gdb_args.iter().map(String::as_str).collect::<Vec<_>>(), dir);
            let rust_message = tail.contains("panicked") || tail.contains("memory allocation");
            if !have_gdb() && matches!(status.signal(), Some(7 | 11)) && !rust_message {
                bt = format!("{PRESUMED_LIBHDF5}\n{bt}");
            }
            Outcome::Failed(format!(
                "crash: killed by signal {:?}\nargs: {args:?}\nstderr:\n{tail}\n{bt}",
                status.signal()
            ))
        }
        Some(101) => Outcome::Failed(format!("panic (exit status 101)\nargs: {args:?}\nstderr:\n{tail}")),
        Some(0) => Outcome::Fine("exit 0"),
        Some(_) => Outcome::Fine("error exit"),
    }
}

/// Whether `gdb` is installed (for backtraces of crashes and hangs inside libhdf5).
fn have_gdb() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        crate::common::command("gdb")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// gdb's backtrace of a process: attached (`-p PID`) or re-run (`--args BIN ARGS…`), for at most 60 s;
/// marked with [`IN_LIBHDF5`] when the innermost frame outside libc is in libhdf5.
fn gdb(target: &[&str], dir: &Path) -> String {
    if !have_gdb() {
        return "(no gdb: no backtrace)".into();
    }
    let run: &[&str] = if target[0] == "-p" { &[] } else { &["-ex", "run"] };
    let out = crate::common::command("timeout")
        .args(["60", "gdb", "-q", "-batch", "-nx"])
        .args(run)
        .args(["-ex", "bt 40"])
        .args(target)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let bt: Vec<&str> = text.lines().filter(|l| l.starts_with('#') || l.contains("received signal")).collect();
    // The innermost frame that is not libc's (memcpy, memset called by the library).
    let libc = |l: &&&str| l.contains("/sysdeps/") || l.contains("libc.so");
    let innermost_in_hdf5 =
        bt.iter().filter(|l| l.starts_with('#')).find(|l| !libc(l)).is_some_and(|l| l.contains("libhdf5"));
    let marker = if innermost_in_hdf5 { IN_LIBHDF5 } else { "" };
    format!("gdb backtrace: {marker}\n{}", bt.join("\n"))
}

/// Runs `target` as subprocess cases on `threads` threads for the time budget; `make` makes case `k`.
pub fn fuzz_cli(target: &'static str, threads: usize, make: impl Fn(&mut Rng) -> CliCase + Sync) {
    let report = Mutex::new(Report::new(target));
    let next = AtomicU64::new(only_case().unwrap_or(0));
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + budget();
    let one = only_case().is_some();
    let scratch = tempfile::tempdir().expect("scratch folder");
    std::thread::scope(|s| {
        for t in 0..if one { 1 } else { threads } {
            let dir = scratch.path().join(format!("t{t}"));
            std::fs::create_dir_all(&dir).expect("thread scratch folder");
            let (report, next, done, make) = (&report, &next, &done, &make);
            s.spawn(move || {
                // Every thread runs at least one case (a budget of 0 still checks the seeds).
                loop {
                    let case = next.fetch_add(1, Ordering::SeqCst);
                    let c = make(&mut case_rng(target, case));
                    let outcome = run_cli(&dir, &c);
                    done.fetch_add(1, Ordering::SeqCst);
                    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Outcome::Fine(o) => *r.outcomes.entry(o).or_default() += 1,
                        Outcome::Failed(msg) => {
                            let ext = Path::new(&c.file_name).extension().map_or("bin".into(), |e| e.to_string_lossy());
                            r.record(case, &ext, &c.input.bytes, &note(&c.input, &c.what, &msg));
                        }
                    }
                    if one || Instant::now() >= deadline || r.full() {
                        break;
                    }
                }
            });
        }
    });
    report.into_inner().unwrap_or_else(|e| e.into_inner()).finish(done.load(Ordering::SeqCst));
}
