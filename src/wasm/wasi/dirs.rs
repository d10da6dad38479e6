//! A component's granted directories, opened once when it is registered.
//!
//! wasmtime-wasi opens a preopened directory by path when an instance's context is built,
//! and a component gets a new instance after every restart and upgrade. Opening the grant's
//! path anew each time would follow whatever has been put at that path since: a guest (or
//! another component) with write access above a granted directory could replace it with a
//! link to anywhere, and the next instance would be given that. So each granted directory
//! is opened here once, and every instance reopens *the open directory itself*, through
//! `/proc/self/fd/N` (`/dev/fd/N` on other Unix systems): the kernel resolves that name to
//! the directory the handle refers to, wherever it has been moved and whatever now has its
//! old name.
//!
//! The first open follows no symbolic link on any component of the grant's path
//! ([`open_dir`]): a link there was put by someone who can write the directory that holds it,
//! perhaps a guest of an earlier run. And no two components of a host hold grants that
//! overlap unless both are read-only ([`DirClaims`]): a component that can write a directory
//! holding another's grant could swap that grant's directory for a link out of it.

use std::fs::File;
use std::path::{Path, PathBuf};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::DirGrant;
use crate::id::ComponentId;
use crate::sync::{Arc, Mutex};
use crate::wasm::trust;

/// The granted directories of one component, open.
#[derive(Debug, Default)]
pub(crate) struct OpenedDirs {
    dirs: Vec<OpenedDir>,
}

#[derive(Debug)]
struct OpenedDir {
    handle: File,
    /// The grant's path, for errors.
    host: PathBuf,
    /// Where the opened directory really is (no link followed to get there).
    real: PathBuf,
    guest: String,
    writable: bool,
}

impl OpenedDirs {
    /// Opens every granted directory.
    ///
    /// # Errors
    /// A directory that cannot be opened, named.
    pub(crate) fn open(grants: &[DirGrant]) -> Result<Self, String> {
        let dirs = grants
            .iter()
            .map(|g| {
                let handle = open_dir(&g.host)
                    .map_err(|e| format!("cannot open granted directory {}: {e}", g.host.display()))?;
                let real = real_path(&handle, &g.host);
                Ok(OpenedDir { handle, host: g.host.clone(), real, guest: g.guest.clone(), writable: g.writable })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { dirs })
    }

    /// Claims the directories for `owner` in `claims` (refused if they overlap another
    /// component's, unless all of both are read-only); the claim lasts as long as the
    /// returned guard.
    ///
    /// # Errors
    /// The overlap, naming both grants and the other component.
    pub(crate) fn claim(&self, owner: &ComponentId, claims: &Arc<DirClaims>) -> Result<ClaimGuard, String> {
        let mut held = claims.claims.lock();
        for dir in &self.dirs {
            for other in held.iter().filter(|c| c.owner != *owner && (c.writable || dir.writable)) {
                if trust::covers(&other.real, &dir.real) || trust::covers(&dir.real, &other.real) {
                    let mode = |w: bool| if w { "read-write" } else { "read-only" };
                    return Err(format!(
                        "granted directory {} ({}) overlaps {}'s {} ({}): one is inside the other, and a \
                         component that can write a directory holding another's grant could replace that \
                         grant with a link out of it; only read-only grants may overlap",
                        dir.host.display(),
                        mode(dir.writable),
                        other.owner,
                        other.host.display(),
                        mode(other.writable)
                    ));
                }
            }
        }
        let token = claims.next.fetch_add(1, crate::sync::Ordering::Relaxed) as u64;
        held.extend(self.dirs.iter().map(|d| Claim {
            owner: owner.clone(),
            token,
            real: d.real.clone(),
            host: d.host.clone(),
            writable: d.writable,
        }));
        Ok(ClaimGuard { claims: claims.clone(), token })
    }

    /// Gives each directory to an instance's context, reopened from its handle.
    ///
    /// # Errors
    /// A directory that cannot be reopened (the process lost its file descriptors, or the
    /// system has no `/proc/self/fd` or `/dev/fd`).
    pub(crate) fn preopen(&self, b: &mut WasiCtxBuilder) -> Result<(), String> {
        for dir in &self.dirs {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            b.preopened_dir(handle_path(dir), &dir.guest, perms)
                .map_err(|e| format!("cannot reopen granted directory {}: {e:#}", dir.host.display()))?;
        }
        Ok(())
    }
}

/// Opens the directory at `path` without following a symbolic link on any component of
/// it: from `/` (or the working directory, for a relative path), one component at a time,
/// each with `O_NOFOLLOW | O_DIRECTORY`. A path that passes through a link is refused,
/// naming the link: whoever can write the directory holding it (a guest with a grant above
/// it, another run's guest) could have pointed it anywhere.
#[cfg(unix)]
pub(crate) fn open_dir(path: &Path) -> std::io::Result<File> {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::Component;

    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let start = if path.is_absolute() { Path::new("/") } else { Path::new(".") };
    let mut dir =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(start)?;
    let mut walked = start.to_path_buf();
    for component in path.components() {
        let name = match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => std::ffi::OsStr::new(".."),
            Component::Normal(name) => name,
        };
        walked.push(name);
        let c_name = CString::new(name.as_bytes()).map_err(std::io::Error::other)?;
        // SAFETY: `dir` is an open directory and `c_name` a NUL-terminated name; the fd
        // returned (if any) is owned by the `File` made of it below, and only by it.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            // A link refused by `O_NOFOLLOW` is ELOOP, or ENOTDIR with `O_DIRECTORY`.
            let link = std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink());
            if link || e.raw_os_error() == Some(libc::ELOOP) {
                return Err(std::io::Error::other(format!(
                    "{} is a symbolic link: a granted directory's path may not pass through one (grant the \
                     directory it points to, by its own path)",
                    walked.display()
                )));
            }
            if walked == path {
                return Err(e);
            }
            return Err(std::io::Error::new(e.kind(), format!("{}: {e}", walked.display())));
        }
        // SAFETY: `fd` was just returned by `openat` and is owned by nothing else.
        dir = unsafe { File::from_raw_fd(fd) };
    }
    Ok(dir)
}

#[cfg(not(unix))]
pub(crate) fn open_dir(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).open(path)
}

/// Where the directory `handle` refers to is now: its canonical path (what overlap checks
/// compare), or `fallback` canonicalized where the system cannot say.
pub(crate) fn real_path(handle: &File, fallback: &Path) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(p) = std::fs::read_link(format!("/proc/self/fd/{}", handle.as_raw_fd())) {
            return p;
        }
    }
    let _ = handle;
    std::fs::canonicalize(fallback).unwrap_or_else(|_| fallback.to_path_buf())
}

/// The granted directories of every component of a host (module doc).
#[derive(Default)]
pub(crate) struct DirClaims {
    claims: Mutex<Vec<Claim>>,
    next: crate::sync::AtomicUsize,
}

struct Claim {
    owner: ComponentId,
    /// Which [`ClaimGuard`] holds it.
    token: u64,
    real: PathBuf,
    host: PathBuf,
    writable: bool,
}

/// One component's claim on its granted directories, released when dropped (the component
/// unregistered and every instance of it gone).
pub(crate) struct ClaimGuard {
    claims: Arc<DirClaims>,
    token: u64,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.claims.lock().retain(|c| c.token != self.token);
    }
}

/// A name that resolves to the directory `dir`'s handle refers to.
#[cfg(target_os = "linux")]
fn handle_path(dir: &OpenedDir) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", dir.handle.as_raw_fd()))
}

#[cfg(all(unix, not(target_os = "linux")))]
fn handle_path(dir: &OpenedDir) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/dev/fd/{}", dir.handle.as_raw_fd()))
}

/// Without Unix file-descriptor names the grant is reopened by its path (the handle still
/// keeps the directory from being removed while the component is registered).
#[cfg(not(unix))]
fn handle_path(dir: &OpenedDir) -> PathBuf {
    dir.host.clone()
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    #[test]
    fn the_handle_path_names_the_opened_directory_after_it_is_replaced_by_a_link() {
        let base = std::env::temp_dir().join(format!("switchyard-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("granted")).expect("dir");
        std::fs::write(base.join("granted/inside"), b"in").expect("file");
        let opened = OpenedDir {
            handle: open_dir(&base.join("granted")).expect("opens"),
            host: base.join("granted"),
            real: base.join("granted"),
            guest: "/g".into(),
            writable: false,
        };
        std::fs::rename(base.join("granted"), base.join("moved")).expect("moved away");
        std::os::unix::fs::symlink("/", base.join("granted")).expect("a link in its place");
        let through = handle_path(&opened);
        assert!(through.join("inside").exists(), "the handle still names the granted directory");
        assert!(!through.join("etc").exists(), "not what the link points to");
        let _ = std::fs::remove_dir_all(&base);
    }

    fn scratch(label: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("switchyard-dirs-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("data/pub")).expect("dirs");
        base
    }

    #[test]
    fn a_path_through_a_symbolic_link_is_refused_naming_the_link() {
        let base = scratch("nofollow");
        std::os::unix::fs::symlink(base.join("data"), base.join("link")).expect("link");
        assert!(open_dir(&base.join("data/pub")).is_ok());
        for through in [base.join("link/pub"), base.join("link"), base.join("data/../link/pub")] {
            let e = open_dir(&through).expect_err("refused");
            assert!(e.to_string().contains("link is a symbolic link"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    fn grant(host: PathBuf, writable: bool) -> DirGrant {
        DirGrant { host, guest: "/g".into(), writable }
    }

    #[test]
    fn two_components_grants_may_overlap_only_when_both_are_read_only() {
        let base = scratch("claims");
        let claims = Arc::new(DirClaims::default());
        let (a, b) = (ComponentId::new("a").unwrap(), ComponentId::new("b").unwrap());
        let open = |g: DirGrant| OpenedDirs::open(&[g]).expect("opens");
        let writer = open(grant(base.join("data"), true)).claim(&a, &claims).expect("the first claim");
        let e = open(grant(base.join("data/pub"), false)).claim(&b, &claims).err().expect("inside a's read-write");
        assert!(e.contains("overlaps a's") && e.contains("(read-write)"), "{e}");
        assert!(open(grant(base.join("data/pub"), false)).claim(&a, &claims).is_ok(), "the same component");
        drop(writer);
        let reader = open(grant(base.join("data"), false)).claim(&a, &claims).expect("read-only");
        let _also = open(grant(base.join("data/pub"), false)).claim(&b, &claims).expect("read-only over read-only");
        assert!(open(grant(base.join("data/pub"), true)).claim(&b, &claims).is_err(), "read-write under read-only");
        drop(reader);
        let _ = std::fs::remove_dir_all(&base);
    }
}
