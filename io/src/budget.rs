//! Resource guards: every command estimates the memory (bytes) and time (seconds) a request needs *before*
//! allocating or looping, and refuses beyond a limit with a message that states the estimate and how to
//! raise the limit.
//!
//! The limits are process-wide (set once by the command line from `--max-memory` / `--force`, or by a
//! library caller with [`set_limits`]):
//! - memory: by default 80 % of the memory this process may use — the smaller of `MemTotal` in
//!   `/proc/meminfo` and the cgroup limit (`/sys/fs/cgroup/memory.max`); 16 GiB where neither is readable;
//! - time: by default 24 h of estimated work; `--force` lifts it (the estimate is still printed).
//!
//! Estimates are deliberately rough (within a factor of a few): they exist to turn "memory allocation of
//! 8000000000000 bytes failed" (an abort) and a silent week-long loop into a clear refusal.

use std::sync::RwLock;

use crate::IoError;

/// The process-wide limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Largest estimated allocation a request may make (bytes).
    pub max_memory_bytes: u64,
    /// Longest estimated run time a request may take (s), unless `force`.
    pub max_seconds: f64,
    /// `--force`: run whatever the time estimate says.
    pub force: bool,
    /// Where `max_memory_bytes` came from, for the message ("80 % of this machine's 31.3 GiB", "--max-memory").
    pub memory_source: &'static str,
}

/// Default time limit: 24 h (s).
pub const DEFAULT_MAX_SECONDS: f64 = 24.0 * 3600.0;

static LIMITS: RwLock<Option<Limits>> = RwLock::new(None);

/// The memory this process may use (bytes): the smaller of physical memory and the cgroup limit.
pub fn available_memory_bytes() -> u64 {
    let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).map(|kb| kb * 1024))
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|s| s.trim().parse::<u64>().ok());
    match (mem_total, cgroup) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => 16 << 30,
    }
}

/// The default limits: 80 % of [`available_memory_bytes`], 24 h, no force.
pub fn default_limits() -> Limits {
    Limits {
        max_memory_bytes: (available_memory_bytes() as f64 * 0.8) as u64,
        max_seconds: DEFAULT_MAX_SECONDS,
        force: false,
        memory_source: "80 % of the memory available to this process",
    }
}

/// The current limits (the defaults until [`set_limits`] is called).
pub fn limits() -> Limits {
    if let Some(l) = *LIMITS.read().unwrap_or_else(|e| e.into_inner()) {
        return l;
    }
    default_limits()
}

/// Sets the process-wide limits (the command line calls this once, before any work).
pub fn set_limits(l: Limits) {
    *LIMITS.write().unwrap_or_else(|e| e.into_inner()) = Some(l);
}

/// Parses a memory size as given to `--max-memory`: `64G`, `512M`, `1.5T`, `2GiB`, `1000000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.trim().parse().map_err(|_| format!("`{s}` is not a size; write e.g. 64G, 512M or 1.5T"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        u => return Err(format!("`{s}`: unknown unit `{u}`; write e.g. 64G, 512M or 1.5T")),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || !(1.0..=1.0e18).contains(&bytes) {
        return Err(format!("`{s}` is not a usable memory size; write e.g. 64G"));
    }
    Ok(bytes as u64)
}

/// `bytes` for people: "3.2 GiB".
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut k = 0;
    while v >= 1024.0 && k + 1 < units.len() {
        v /= 1024.0;
        k += 1;
    }
    if k == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", units[k]) }
}

/// `seconds` for people: "3.2 s", "4.1 min", "2.5 h", "12 days", "3.1e6 years".
pub fn human_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "forever".into();
    }
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 86400.0 * 2.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 86400.0 * 365.0 * 2.0 {
        format!("{:.0} days", s / 86400.0)
    } else {
        format!("{:.2e} years", s / (86400.0 * 365.25))
    }
}

/// Refuses `what` if it needs more than the memory limit. `bytes` may be a float so that absurd requests
/// (1e30 bytes) are stated rather than overflowing; `fix` says how to shrink the request.
pub fn check_memory(what: &str, bytes: f64, fix: &str) -> Result<(), IoError> {
    let l = limits();
    if bytes.is_nan() || bytes > l.max_memory_bytes as f64 {
        return Err(IoError::Budget(format!(
            "{what} needs about {} of memory, more than the limit of {} ({}); {fix}, or raise the limit with \
             --max-memory SIZE (e.g. --max-memory 256G) if this machine really has it",
            human_bytes(bytes),
            human_bytes(l.max_memory_bytes as f64),
            l.memory_source
        )));
    }
    Ok(())
}

/// Refuses `what` if its estimated run time exceeds the time limit, unless `--force`.
pub fn check_time(what: &str, seconds: f64, fix: &str) -> Result<(), IoError> {
    let l = limits();
    if (seconds.is_nan() || seconds > l.max_seconds) && !l.force {
        return Err(IoError::Budget(format!(
            "{what} would take about {} (estimated), more than the limit of {}; {fix}, or pass --force to run \
             it anyway",
            human_seconds(seconds),
            human_seconds(l.max_seconds)
        )));
    }
    Ok(())
}

/// Peak resident memory of this process so far (bytes), from `/proc/self/status` (`VmHWM`, Linux); 0 where
/// unavailable. What runs report next to their memory estimate.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Counts for estimates: `a × b × …` in f64 so that no product overflows.
pub fn product(xs: &[f64]) -> f64 {
    xs.iter().product()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5T").unwrap(), (1.5 * (1u64 << 40) as f64) as u64);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("-3G").is_err());
    }

    #[test]
    fn absurd_requests_are_refused_with_the_estimate() {
        let e = check_memory("a run of 1e12 ms", 8.0e15, "shorten duration_ms").unwrap_err().to_string();
        assert!(e.contains("7.1 PiB"), "{e}");
        assert!(e.contains("--max-memory"), "{e}");
        assert!(check_memory("small", 1024.0, "").is_ok());
        let e = check_time("a run", 1.0e9, "shorten it").unwrap_err().to_string();
        assert!(e.contains("years") && e.contains("--force"), "{e}");
        assert!(check_time("a run", 10.0, "").is_ok());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_seconds(90.0), "1.5 min");
    }
}
