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

use std::fs::File;
use std::path::PathBuf;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::DirGrant;

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
                Ok(OpenedDir { handle, host: g.host.clone(), guest: g.guest.clone(), writable: g.writable })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { dirs })
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

fn open_dir(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC);
    }
    options.open(path)
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
}
