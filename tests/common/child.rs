//! Child processes (Python checkers, the neurotwin binary) that do not inherit the test process's open HDF5
//! files. One copy, included by tests/common/mod.rs and by the connectome and imaging test binaries.

use std::process::Command;

/// A [`Command`] for `program` whose child does not inherit this process's open files: every descriptor
/// above stderr is marked close-on-exec in the child. libhdf5 opens files without `O_CLOEXEC` and `flock`s
/// them, so a child spawned while another test of this process has an HDF5 file open would keep that file
/// and its lock for its whole life, and the other test's next open of the file would fail with "unable to
/// lock file" (all tests of a crate run as threads of one test binary).
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and makes only system calls
        // (async-signal-safe): no allocation, no locks.
        unsafe {
            cmd.pre_exec(|| {
                // close_range(3, ~0U, CLOSE_RANGE_CLOEXEC)
                let (first, last, cloexec): (libc::c_long, libc::c_long, libc::c_long) = (3, u32::MAX.into(), 1 << 2);
                if libc::syscall(libc::SYS_close_range, first, last, cloexec) != 0 {
                    // Linux before 5.11: mark each possible descriptor (up to the soft limit, at most 65536).
                    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                        lim.rlim_cur.min(65536)
                    } else {
                        1024
                    };
                    for fd in 3..max as libc::c_int {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                }
                Ok(())
            });
        }
    }
    cmd
}
