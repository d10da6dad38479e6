//! `switchyard run` on bad input: every case is a clear error and a non-zero exit, never a
//! panic (`Ran` asserts that stderr has no "panicked").

mod common;

use std::time::Duration;

use common::*;

fn manifest_with(dir: &TempDir, component: &str) -> String {
    write(dir, "m.toml", &format!("[[component]]\nid = \"c\"\n{component}\n")).to_str().unwrap().to_string()
}

#[test]
fn malformed_stdin_lines_are_reported_by_line_number_and_exit_3() {
    let dir = TempDir::new("bad-lines");
    let input = "not json\n{\"to\": \"ingest\"}\n{\"to\": \"ghost\", \"payload\": \"x\"}\n\
                 {\"to\": \"bad id!\", \"payload\": \"x\"}\n{\"to\": \"ingest\", \"payload\": 5, \"codec\": \"raw\"}\n\
                 {\"to\": \"ingest\", \"payload\": \"still handled\"}\n";
    let ran = run_in(dir.path(), &["run", pipeline_manifest().to_str().unwrap()], input);
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("stdin line 1: expected {\"to\""), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(
            "stdin line 2: expected {\"to\": ..., \"payload\": ..., \"codec\": ...}: missing field `payload`"
        ),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("stdin line 3: not sent: no component is registered as ghost"), "{}", ran.stderr);
    assert!(ran.stderr.contains("stdin line 4: \"to\":"), "{}", ran.stderr);
    assert!(ran.stderr.contains("stdin line 5: with codec raw the payload must be a string"), "{}", ran.stderr);
    assert!(ran.stderr.contains("rejected inputs: 5"), "{}", ran.stderr);
    assert_eq!(row(&ran.stderr, "store")[1], 5, "the good line after the bad ones still flows");
}

#[test]
fn invalid_utf8_line_is_rejected_and_reading_goes_on() {
    let dir = TempDir::new("utf8");
    let input = b"{\"to\": \"ingest\", \"payload\": \"\xff\"}\n{\"to\": \"ingest\", \"payload\": \"ok\"}\n";
    let ran = run_in(dir.path(), &["run", pipeline_manifest().to_str().unwrap()], input);
    assert_eq!(ran.code, Some(3));
    assert!(ran.stderr.contains("stdin line 1: the line is not valid UTF-8"), "{}", ran.stderr);
    assert_eq!(row(&ran.stderr, "store")[1], 5);
}

#[test]
fn missing_manifest_is_a_clear_error() {
    let dir = TempDir::new("no-manifest");
    let ran = run_in(dir.path(), &["run", "nowhere.toml"], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("nowhere.toml: cannot read the manifest"), "{}", ran.stderr);
}

#[test]
fn manifest_that_never_ends_is_refused_after_a_bounded_read() {
    let dir = TempDir::new("endless-manifest");
    let out = run_within(dir.path(), &["run", "/dev/zero"], Duration::from_secs(10))
        .expect("`switchyard run /dev/zero` ends");
    let ran = Ran::from(out);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("/dev/zero: the manifest is larger than 16MiB"), "{}", ran.stderr);
}

#[test]
fn manifest_that_is_not_utf8_names_the_line() {
    let dir = TempDir::new("not-utf8");
    let m = dir.path().join("m.toml");
    std::fs::write(&m, b"[[component]]\nid = \"c\xff\"\n").unwrap();
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("m.toml:2:8: the manifest is not valid UTF-8"), "{}", ran.stderr);
}

#[test]
fn manifest_type_error_names_file_line_and_field() {
    let dir = TempDir::new("bad-type");
    let m = manifest_with(&dir, "file = \"c.wasm\"\nfuel_per_message = \"plenty\"");
    let ran = run_in(dir.path(), &["run", &m], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("m.toml:4:20: component[0].fuel_per_message: invalid type"), "{}", ran.stderr);
}

#[test]
fn manifest_syntax_error_names_file_and_line() {
    let dir = TempDir::new("bad-syntax");
    let m = write(&dir, "m.toml", "[[component]\nid = \"c\"\n");
    let ran = run_in(dir.path(), &["run", m.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("m.toml:1:"), "{}", ran.stderr);
}

#[test]
fn missing_component_file_names_the_manifest_field() {
    let dir = TempDir::new("no-file");
    let m = manifest_with(&dir, "file = \"absent.wasm\"");
    let ran = run_in(dir.path(), &["run", &m], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("m.toml:3:8: component[0].file: cannot read"), "{}", ran.stderr);
    assert!(ran.stderr.contains("absent.wasm"), "{}", ran.stderr);
}

#[test]
fn core_module_passed_to_run_is_refused_with_the_conversion_hint() {
    let dir = TempDir::new("core");
    let core = repo().join("examples/pipeline/ingest.wat");
    let m = manifest_with(&dir, &format!("file = {:?}", core.to_str().unwrap()));
    let ran = run_in(dir.path(), &["run", &m], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("component[0].file"), "{}", ran.stderr);
    assert!(ran.stderr.contains("core WebAssembly module, not a component"), "{}", ran.stderr);
    assert!(ran.stderr.contains("switchyard component new"), "{}", ran.stderr);
}

/// Runs a manifest whose component file is `file`: it must end at once (a correct run takes
/// well under a second; 10 s bounds what a run reading `/dev/zero` can allocate) with
/// exit 1 and an error at the `file` field that names the path and what it is.
fn refused_as_not_a_regular_file(dir: &TempDir, file: &str, kind: &str) {
    let m = manifest_with(dir, &format!("file = {file:?}"));
    let out = run_within(dir.path(), &["run", &m], Duration::from_secs(10))
        .unwrap_or_else(|| panic!("file = {file:?}: still running after 10 s"));
    let ran = Ran::from(out);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let expected = format!("m.toml:3:8: component[0].file: {file} is {kind}, not a regular file");
    assert!(ran.stderr.contains(&expected), "expected {expected:?} in:\n{}", ran.stderr);
}

#[test]
fn component_file_dev_zero_is_refused_at_once_with_a_located_error() {
    let dir = TempDir::new("dev-zero");
    refused_as_not_a_regular_file(&dir, "/dev/zero", "a character device");
}

#[test]
fn component_file_that_is_a_fifo_is_refused_at_once_with_a_located_error() {
    let dir = TempDir::new("fifo");
    let fifo = dir.path().join("c.wasm");
    mkfifo(&fifo);
    refused_as_not_a_regular_file(&dir, fifo.to_str().unwrap(), "a FIFO");
}

#[test]
fn component_file_that_is_a_directory_is_refused_with_a_located_error() {
    let dir = TempDir::new("directory");
    refused_as_not_a_regular_file(&dir, dir.path().to_str().unwrap(), "a directory");
}

#[test]
fn file_that_is_not_wasm_is_refused() {
    let dir = TempDir::new("not-wasm");
    write(&dir, "c.wasm", "hello");
    let m = manifest_with(&dir, "file = \"c.wasm\"");
    let ran = run_in(dir.path(), &["run", &m], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("not WebAssembly"), "{}", ran.stderr);
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = TempDir::new("usage");
    let ran = run_in(dir.path(), &["run", "--bogus", "m.toml"], "");
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
}

#[test]
fn storage_file_that_cannot_be_opened_is_a_clear_error() {
    let dir = TempDir::new("bad-storage");
    let storage = dir.path().join("no-such-dir/switchyard.redb");
    let ran =
        run_in(dir.path(), &["run", "--storage", storage.to_str().unwrap(), pipeline_manifest().to_str().unwrap()], "");
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("cannot open storage"), "{}", ran.stderr);
    assert!(ran.stderr.contains("no-such-dir"), "{}", ran.stderr);
}

#[test]
fn a_component_whose_memory_cap_is_too_low_to_start_is_refused_at_start_saying_what_it_needs() {
    let dir = TempDir::new("memory-too-low");
    // The pipeline's ingest, asking for 40 pages (2.5 MiB) of initial memory.
    let wat = std::fs::read_to_string(repo().join("examples/pipeline/ingest.wat")).unwrap();
    let big = wat.replacen("(memory (export \"memory\") 1)", "(memory (export \"memory\") 40)", 1);
    assert_ne!(big, wat, "the module declares its memory as expected");
    let core = write(&dir, "big.wat", &big);
    let component = dir.path().join("big.wasm");
    let made = run_in(dir.path(), &["component", "new", core.to_str().unwrap(), "-o", component.to_str().unwrap()], "");
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let manifest = manifest_with(&dir, "file = \"big.wasm\"\nmemory_limit = \"1MiB\"");
    let ran = run_in(dir.path(), &["run", &manifest], "");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("m.toml:2:6: component[0].id: c cannot start"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("refused to grow memory to 2621440 bytes: the cap is 1048576 bytes"),
        "the error says how much it needed: {}",
        ran.stderr
    );
}
