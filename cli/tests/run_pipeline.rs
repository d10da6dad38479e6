//! `switchyard run` on the pipeline example: end to end, persistence, stdin, requests, and
//! the three ways a run ends.

mod common;

use std::io::{BufRead, BufReader, Read};

use common::*;

#[test]
fn pipeline_runs_end_to_end_and_prints_the_stats_table() {
    let dir = TempDir::new("e2e");
    let ran = run_in(dir.path(), &["run", pipeline_manifest().to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    // The manifest's last message is a request to ingest.
    assert!(ran.stdout.contains(r#""payload":"accepted""#), "{}", ran.stdout);
    // received, handled, failed, dead letters, restarts, fuel used, traps, denied
    let ingest = row(&ran.stderr, "ingest");
    assert_eq!(ingest[..5], [6, 5, 1, 1, 0], "ingest refuses the empty record");
    let transform = row(&ran.stderr, "transform");
    assert_eq!(transform[..5], [5, 4, 1, 1, 1], "transform traps on poison and is restarted");
    assert_eq!(transform[6], 1, "one trap");
    let store = row(&ran.stderr, "store");
    assert_eq!(store[..5], [4, 4, 0, 0, 0]);
    assert!(store[5] > 0, "fuel is metered");
    assert!(ran.stderr.contains("dead letters by reason: handler_failed 1, trapped 1"), "{}", ran.stderr);
    assert!(ran.stderr.contains("(balanced)"), "{}", ran.stderr);
    assert!(ran.stderr.contains("stopped (end of input)"), "{}", ran.stderr);
}

#[test]
fn storage_persists_across_two_runs_in_the_same_directory() {
    let dir = TempDir::new("persist");
    let manifest = pipeline_manifest();
    let first = run_in(dir.path(), &["run", manifest.to_str().unwrap()], "");
    assert_eq!(stored_keys(&first.stderr, "store"), (0, 5), "4 records and the count");
    assert!(dir.path().join("switchyard.redb").exists(), "the default storage file is in the working directory");
    let second = run_in(dir.path(), &["run", manifest.to_str().unwrap()], "");
    assert_eq!(stored_keys(&second.stderr, "store"), (5, 9), "{}", second.stderr);
    // A third run hosts store alone (no initial messages, so nothing races the question).
    let store = repo().join("examples/pipeline/store.wasm");
    let alone = format!("[[component]]\nid = \"store\"\nfile = {store:?}\ncapabilities = {{ storage = \"read\" }}\n");
    let manifest = write(&dir, "store-alone.toml", &alone);
    let asked = run_in(
        dir.path(),
        &["run", "--request", manifest.to_str().unwrap()],
        "{\"to\": \"store\", \"payload\": \"?\"}\n",
    );
    let line = asked.stdout.lines().find(|l| l.contains("stdin:1")).expect("a reply to line 1");
    let reply: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(reply["payload"], "8", "4 records from each of the two runs: {line}");
}

#[test]
fn storage_flag_chooses_the_file() {
    let dir = TempDir::new("storage-flag");
    let ran = run_in(dir.path(), &["run", "--storage", "other.redb", pipeline_manifest().to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(dir.path().join("other.redb").exists());
    assert!(!dir.path().join("switchyard.redb").exists());
}

#[test]
fn stdin_lines_flow_through_the_pipeline_after_the_manifest_messages() {
    let dir = TempDir::new("stdin");
    let input = "{\"to\": \"ingest\", \"payload\": \"from stdin\"}\n\n{\"to\": \"ingest\", \"payload\": [104, 105], \"codec\": \"raw\"}\n";
    let ran = run_in(dir.path(), &["run", pipeline_manifest().to_str().unwrap()], input);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(row(&ran.stderr, "store")[1], 6, "4 manifest records and 2 from stdin (the blank line is skipped)");
}

#[test]
fn request_mode_prints_each_reply_as_a_json_line() {
    let dir = TempDir::new("request");
    let input = "{\"to\": \"transform\", \"payload\": \"shout this\"}\n{\"to\": \"ingest\", \"payload\": \"\"}\n";
    let ran = run_in(dir.path(), &["run", "--request", pipeline_manifest().to_str().unwrap()], input);
    assert_eq!(ran.code, Some(0), "a failed request is an outcome, not bad input: {}", ran.stderr);
    let replies: Vec<serde_json::Value> =
        ran.stdout.lines().map(|l| serde_json::from_str(l).expect("each stdout line is JSON")).collect();
    let of =
        |input: &str| replies.iter().find(|r| r["input"] == input).unwrap_or_else(|| panic!("{input}: {replies:?}"));
    assert_eq!(of("stdin:1")["payload"], "SHOUT THIS");
    assert_eq!(of("stdin:1")["from"], "transform");
    assert!(of("stdin:2")["error"].as_str().unwrap().contains("empty record"), "{replies:?}");
}

#[test]
fn duration_stops_a_run_whose_input_stays_open() {
    let dir = TempDir::new("duration");
    let mut child = spawn_in(dir.path(), &["run", "--duration", "300ms", pipeline_manifest().to_str().unwrap()]);
    let _open_stdin = child.stdin.take();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped (--duration elapsed)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ctrl_c_stops_the_run_and_prints_the_stats_table() {
    let dir = TempDir::new("sigint");
    let mut child = spawn_in(dir.path(), &["run", pipeline_manifest().to_str().unwrap()]);
    let _open_stdin = child.stdin.take();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // The start line is printed once the Ctrl-C handler is installed.
    while !seen.contains("switchyard: hosting") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "exited before starting: {seen}");
    }
    let killed = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    stderr.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}");
    assert!(seen.contains("stopped (interrupted)"), "{seen}");
    assert!(seen.contains("(balanced)"), "{seen}");
}

#[test]
fn more_components_than_the_default_pool_all_start_from_one_shared_file() {
    let dir = TempDir::new("many");
    // One more than the WASM host's default pool of 1000 instances.
    let n = 1001;
    let transform = repo().join("examples/pipeline/transform.wasm");
    let manifest: String =
        (0..n).map(|i| format!("[[component]]\nid = \"c{i}\"\nfile = {:?}\n", transform.to_str().unwrap())).collect();
    let manifest = write(&dir, "many.toml", &manifest);
    let input: String = (0..n).map(|i| format!("{{\"to\": \"c{i}\", \"payload\": \"x\"}}\n")).collect();
    let ran = run_in(dir.path(), &["run", manifest.to_str().unwrap()], input);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    // Each message reached a running instance (transform has no right to send on to
    // store, so each fails in the guest); none found its component unable to start.
    assert!(ran.stderr.contains(&format!("dead letters by reason: handler_failed {n}\n")), "{}", ran.stderr);
    assert_eq!(row(&ran.stderr, &format!("c{}", n - 1))[..5], [1, 0, 1, 1, 0], "no restart");
}
