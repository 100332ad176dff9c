//! The child-process helper (tests/common/child.rs) checked once, here: its control spawns a plain `Command`,
//! which passes every open descriptor on, so it must not run in a binary whose other tests hold HDF5 files
//! open at the same time as often as the CLI and fuzz binaries do.

use std::process::Command;

use super::child::command;

#[cfg(target_os = "linux")]
#[test]
fn children_do_not_inherit_open_files() {
    use std::os::fd::AsRawFd;
    let file = tempfile::tempfile().unwrap();
    let fd = file.as_raw_fd();
    // Without close-on-exec, as libhdf5 opens its files.
    // SAFETY: fcntl on a descriptor this function owns.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }, 0);
    let open_in_child =
        |mut cmd: Command| cmd.arg("-c").arg(format!("test -e /proc/self/fd/{fd}")).status().unwrap().success();
    assert!(open_in_child(Command::new("sh")), "control: a plain Command passes the descriptor on");
    assert!(!open_in_child(command("sh")), "the child of `command` has descriptor {fd} open");
}
