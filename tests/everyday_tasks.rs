//! The four everyday tasks of the typed layer, written as examples (`examples/counter.rs`,
//! `forward.rs`, `pubsub.rs`, and the Rust plugin: `examples/guests/rust/greeter` hosted by
//! `examples/plugin.rs`), are no longer than the best peer's, counted as the README's table
//! counts them: lines that are neither blank nor comments, imports included, as formatted
//! by the project's rustfmt.toml. The table states these very counts.

use std::path::Path;

/// Lines that are neither blank nor a comment.
fn lines_of(files: &[&str]) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//")).count()
        })
        .sum()
}

#[test]
fn each_everyday_task_is_no_longer_than_the_best_peers_and_the_readme_says_how_long() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let tasks: [(&[&str], usize, &str); 4] = [
        (&["examples/counter.rs"], 25, "kameo 25"),
        (&["examples/forward.rs"], 36, "kameo 36"),
        (&["examples/pubsub.rs"], 32, "kameo + kameo_actors 32"),
        (&["examples/guests/rust/greeter/src/lib.rs", "examples/plugin.rs"], 20, "Extism 20"),
    ];
    for (files, peer, peer_cell) in tasks {
        let ours = lines_of(files);
        assert!(ours <= peer, "{files:?}: {ours} lines, the best peer's {peer}");
        let cell = if files.len() == 1 {
            format!("| {ours} | {peer_cell}")
        } else {
            let parts: Vec<String> = files.iter().map(|f| lines_of(&[f]).to_string()).collect();
            format!("| {ours} ({}) | {peer_cell}", parts.join(" + "))
        };
        let row =
            readme.lines().find(|l| l.contains(files[0])).unwrap_or_else(|| panic!("no README row for {files:?}"));
        assert!(row.contains(&cell), "the README row for {files:?} should say `{cell}`:\n{row}");
    }
}
