//! Whether a place on disk may be trusted with what the host reads from it as native code
//! (the compile cache), and whether a directory granted to a guest reaches the host's own
//! files (the cache, the storage file).
//!
//! # The rule for native code
//!
//! A compile-cache entry is machine code that wasmtime maps executable, outside the
//! sandbox: whoever can write it can run code as this process. So the host reads entries
//! only from a directory that nobody else can change, as OpenSSH does with its `StrictModes`:
//!
//! - the directory is owned by the effective user of this process and is writable by
//!   nobody else (no group or other write bit);
//! - every directory above it is owned by that user or by root, and is writable by nobody
//!   else or has the sticky bit (as `/tmp` has: others cannot rename or replace what they
//!   do not own in it), so nobody else can swap the directory for another;
//! - each entry is a regular file (not a symbolic link) owned by that user and writable by
//!   nobody else.
//!
//! A directory that fails is refused as a whole with the reason; an entry that fails is
//! refused, compiled anew and replaced. On systems other than Unix there are no owners and
//! modes to read: the checks pass, and the directory must be protected by other means.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a directory may not hold native code, or `Ok` when it may. `dir` must exist.
///
/// # Errors
/// A sentence naming the directory (or the directory above it) at fault and what is wrong.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    private(&meta).map_err(|why| format!("{} {why}", dir.display()))?;
    let canonical = fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for above in canonical.ancestors().skip(1) {
        let meta = fs::metadata(above).map_err(|e| format!("{}: {e}", above.display()))?;
        guarded_ancestor(&meta).map_err(|why| {
            format!("{} {why}, so others could replace {} with a directory of theirs", above.display(), dir.display())
        })?;
    }
    Ok(())
}

/// Why an opened cache entry may not be trusted, or `Ok` when it may.
pub(crate) fn check_private_file(meta: &fs::Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    private(meta)
}

/// Owned by this process's effective user and writable by nobody else.
#[cfg(unix)]
fn private(meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!("is owned by user {}, not by this process's user {me}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("is writable by others (mode {:o})", meta.mode() & 0o7777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private(_meta: &fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// A directory above a private one: owned by this user or root, and not writable by others
/// unless sticky.
#[cfg(unix)]
fn guarded_ancestor(meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: as in `private`.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!("is owned by user {}, neither this process's user {me} nor root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
        return Err(format!("is writable by others without the sticky bit (mode {:o})", meta.mode() & 0o7777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn guarded_ancestor(_meta: &fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Creates `dir` (and its missing parents) readable and writable by its owner only.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// True when `inner` is `outer` or lies inside it. Both are canonical paths.
pub(crate) fn covers(outer: &Path, inner: &Path) -> bool {
    inner.starts_with(outer)
}

/// The canonical form of `path`, or of its nearest existing ancestor joined with the rest
/// (a file that does not exist yet is still placed where it will be).
pub(crate) fn canonical(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if let Ok(found) = fs::canonicalize(at) {
            return missing.iter().rev().fold(found, |p, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                at = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("switchyard-trust-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            create_private_dir(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_private_directory_is_trusted_and_one_writable_by_others_is_not() {
        let s = Scratch::new("modes");
        let dir = s.0.join("cache");
        create_private_dir(&dir).expect("created");
        assert_eq!(check_private_dir(&dir), Ok(()));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let why = check_private_dir(&dir).expect_err("world-writable");
        assert!(why.contains("writable by others (mode 777)"), "{why}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).expect("chmod");
        assert!(check_private_dir(&dir).is_err(), "group-writable");
    }

    #[test]
    fn a_directory_under_one_others_can_write_is_not_trusted() {
        let s = Scratch::new("ancestor");
        let open = s.0.join("open");
        create_private_dir(&open.join("cache")).expect("created");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        let why = check_private_dir(&open.join("cache")).expect_err("replaceable");
        assert!(why.contains("without the sticky bit"), "{why}");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).expect("chmod");
        assert_eq!(check_private_dir(&open.join("cache")), Ok(()), "sticky, like /tmp");
    }

    #[test]
    fn a_file_writable_by_others_is_not_trusted() {
        let s = Scratch::new("file");
        let f = s.0.join("e");
        fs::write(&f, b"x").expect("written");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(check_private_file(&fs::metadata(&f).expect("meta")), Ok(()));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(check_private_file(&fs::metadata(&f).expect("meta")).is_err());
        assert!(check_private_file(&fs::metadata(&s.0).expect("meta")).is_err(), "a directory");
    }

    #[test]
    fn covering_is_by_whole_components_and_missing_files_are_placed() {
        assert!(covers(Path::new("/a/b"), Path::new("/a/b/c")));
        assert!(covers(Path::new("/a/b"), Path::new("/a/b")));
        assert!(!covers(Path::new("/a/b"), Path::new("/a/bc")));
        let s = Scratch::new("canonical");
        let real = fs::canonicalize(&s.0).expect("canonical");
        assert_eq!(canonical(&s.0.join("not/yet.redb")), real.join("not/yet.redb"));
    }
}
