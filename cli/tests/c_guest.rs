//! The C guest (examples/guests/transform.c): built by Debian's clang-19 and
//! `switchyard component new`, then run in the pipeline in place of the WAT transform.
//! Skipped (with a note) when clang-19 or lld-19 is absent, unless
//! `SWITCHYARD_REQUIRE_TOOLCHAINS=1` (`.ci/run` installs them and sets it).

mod common;

use std::process::Command;

use common::*;

#[test]
fn c_guest_builds_with_clang_19_and_runs_in_the_pipeline() {
    let check = Command::new(repo().join("examples/guests/build.sh"))
        .args(["--check", "c-nolibc"])
        .output()
        .expect("run build.sh --check");
    if !check.status.success() {
        let missing = String::from_utf8_lossy(&check.stderr);
        // CI installs the tools and sets this: there a missing tool fails the test.
        assert!(
            std::env::var("SWITCHYARD_REQUIRE_TOOLCHAINS").as_deref() != Ok("1"),
            "SWITCHYARD_REQUIRE_TOOLCHAINS=1, but {missing}"
        );
        eprintln!("skipped: {missing}");
        return;
    }
    let build = Command::new(repo().join("examples/guests/build.sh"))
        .arg("c-nolibc")
        .env("SWITCHYARD", env!("CARGO_BIN_EXE_switchyard"))
        .output()
        .expect("run build.sh");
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
    assert!(String::from_utf8_lossy(&build.stdout).contains("satisfies switchyard:component@0.1.0"));

    let dir = TempDir::new("c-guest");
    let manifest = repo().join("examples/guests/pipeline-c.toml");
    let ran =
        run_in(dir.path(), &["run", manifest.to_str().unwrap()], "{\"to\": \"ingest\", \"payload\": \"piped\"}\n");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.contains(r#""payload":"ASKED DIRECTLY""#), "{}", ran.stdout);
    assert!(ran.stderr.contains("[error] transform: poisoned record: aborting"), "the C guest logs: {}", ran.stderr);
    // received, handled, failed, dead letters, restarts, fuel used, traps
    let transform = row(&ran.stderr, "transform");
    assert_eq!(transform[..5], [4, 3, 1, 1, 1], "{}", ran.stderr);
    assert_eq!(transform[6], 1);
    assert_eq!(stored_keys(&ran.stderr, "store"), (0, 4), "three records (the request's too) and the count");
}
