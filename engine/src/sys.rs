//! Small facts about the running system, as restic records them.

// The user and group databases (NSS) have no safe wrapper in the crates used here.
#![allow(unsafe_code, reason = "getpwuid_r and getgrgid_r")]

use std::ffi::CStr;

/// The host's name, as `uname` gives it.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The name of the user running this process (`$USER` when the database has none).
pub fn username() -> String {
    user_name(uid()).unwrap_or_else(|| std::env::var("USER").unwrap_or_default())
}

/// The name of user `uid` in the user database.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data (integers and pointers); all zeroes is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; getpwuid_r writes into buf.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside buf, alive here.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The name of group `gid` in the group database.
pub fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: group is plain data (integers and pointers); all zeroes is a valid value.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: as above, for getgrgid_r.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points at a NUL-terminated string inside buf, alive here.
    let name = unsafe { CStr::from_ptr(grp.gr_name) };
    Some(name.to_string_lossy().into_owned())
}

pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

pub fn gid() -> u32 {
    rustix::process::getgid().as_raw()
}

pub fn pid() -> i64 {
    std::process::id() as i64
}

/// Whether a process with this PID exists on this host (signal 0, as restic checks).
pub fn process_exists(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks for existence and permission.
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Whether this process runs as root (effective user 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The names in the open folder `dir`, without `.` and `..`. The folder is read through a
/// handle of its own (`Dir::read_from` opens it again), so `dir`'s position is not moved.
pub fn entry_names(dir: impl std::os::fd::AsFd) -> std::io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStringExt;
    let mut names = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let name = e?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsString::from_vec(name));
        }
    }
    Ok(names)
}
