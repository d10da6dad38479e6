//! Guests built from source by their real toolchain for the tests: the hostile Rust guest
//! of `tests/guests/hostile`, built by cargo for `wasm32-wasip2` once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The hostile guest's component file, or `None` when the `wasm32-wasip2` target is not
/// installed (and `SWITCHYARD_REQUIRE_TOOLCHAINS` is not `1`, which CI sets: then it fails).
pub fn hostile() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let installed = Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-wasip2"))
                .unwrap_or(false);
            if !installed {
                assert!(
                    std::env::var("SWITCHYARD_REQUIRE_TOOLCHAINS").as_deref() != Ok("1"),
                    "SWITCHYARD_REQUIRE_TOOLCHAINS=1, but the wasm32-wasip2 target is missing \
                     (rustup target add wasm32-wasip2)"
                );
                eprintln!("skipped: the wasm32-wasip2 target is missing (rustup target add wasm32-wasip2)");
                return None;
            }
            // Beside the test's target directory, where examples/guests/build.sh builds the
            // other Rust guests (a directory of its own: the outer cargo holds the other's lock).
            let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("wasm-guests");
            // The core crate's tests and the CLI's (cli/, which includes this file) both.
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|dir| dir.join("tests/guests/hostile/Cargo.toml"))
                .find(|m| m.exists())
                .expect("tests/guests/hostile in the repository");
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .output()
                .expect("cargo runs");
            assert!(
                out.status.success(),
                "building the hostile guest failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(target.join("wasm32-wasip2/release/hostile_guest.wasm"))
        })
        .clone()
}
