//! docs/manifest.md's table of manifest keys, held against the real parser through the
//! `switchyard` binary:
//!
//! - every documented key, set to its example (with the keys its table requires and the keys
//!   the row says it needs), is accepted: the run gets past the parser and stops where every
//!   run of these tests stops, at the component file, which does not exist;
//! - every value a row lists as "one of" is accepted, and the parser's own list of values
//!   for that key (from its `unknown variant` error) is exactly that list;
//! - the keys of every table (the top level, each section, each nested table) are exactly
//!   the ones the parser lists in its `unknown field` error for that table, so a key added
//!   to the parser without a row here fails.

mod common;

use std::collections::BTreeSet;

use common::*;

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    /// `runtime`, `cluster`, `component` or `message`.
    section: String,
    /// The path inside the section: `workers`, `restart.policy`, `capabilities.dirs[].host`.
    key: String,
    ty: String,
    default: String,
    allowed: String,
    /// A TOML value.
    example: String,
}

impl Row {
    /// The table the key is in, inside its section (`""`, `restart`, `capabilities.dirs[]`).
    fn parent(&self) -> &str {
        self.key.rsplit_once('.').map_or("", |(parent, _)| parent)
    }

    /// The key's own name (`host` for `capabilities.dirs[].host`).
    fn name(&self) -> &str {
        self.key.rsplit_once('.').map_or(self.key.as_str(), |(_, name)| name)
    }

    fn required(&self) -> bool {
        self.default == "required"
    }
}

/// The rows of docs/manifest.md's table of keys.
fn rows() -> Vec<Row> {
    let doc = std::fs::read_to_string(repo().join("docs/manifest.md")).expect("docs/manifest.md reads");
    let header = "| section | key | type | default | allowed values | example | meaning |";
    let mut lines = doc.lines().skip_while(|l| *l != header);
    assert_eq!(lines.next(), Some(header), "docs/manifest.md has no table of keys with the header {header}");
    let unquote = |cell: &str| cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).unwrap_or(cell).to_string();
    let mut rows: Vec<Row> = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 9, "a row of seven cells (no `|` inside one): {line}");
        let section = unquote(cells[1]);
        let name = section.trim_start_matches('[').trim_end_matches(']').to_string();
        let arrays = ["component", "message"];
        let expected = if arrays.contains(&name.as_str()) { format!("[[{name}]]") } else { format!("[{name}]") };
        assert_eq!(section, expected, "the section of: {line}");
        let row = Row {
            section: name,
            key: unquote(cells[2]),
            ty: cells[3].to_string(),
            default: cells[4].to_string(),
            allowed: cells[5].to_string(),
            example: unquote(cells[6]),
        };
        assert!(row.example != row.key && !row.example.is_empty(), "an example value: {line}");
        assert!(!rows.iter().any(|r| r.section == row.section && r.key == row.key), "documented twice: {line}");
        rows.push(row);
    }
    assert!(rows.len() > 20, "the table of keys was found ({} rows)", rows.len());
    rows
}

/// A manifest under construction: the assignments of each section, in order.
#[derive(Default)]
struct Manifest {
    /// `(section, key, value)`; section `""` is the top level.
    lines: Vec<(String, String, String)>,
}

impl Manifest {
    /// Sets `key` of `section` to `value`, replacing an earlier value.
    fn set(&mut self, section: &str, key: &str, value: &str) {
        self.lines.retain(|(s, k, _)| !(s == section && k == key));
        self.lines.push((section.to_string(), key.to_string(), value.to_string()));
    }

    /// Sets a row's key to `value`, with the keys it cannot go without: its section's
    /// required keys (a component's, always), the required keys beside it in its table, and
    /// the keys its "allowed values" cell says it needs (the first of "needs `a` or `b`").
    fn with(rows: &[Row], row: &Row, value: &str) -> Manifest {
        let mut m = Manifest::default();
        let required = |section: &str, parent: &str| -> Vec<Row> {
            rows.iter().filter(|r| r.section == section && r.parent() == parent && r.required()).cloned().collect()
        };
        let sections = ["component".to_string(), row.section.clone()];
        for r in sections.iter().flat_map(|s| required(s, "")) {
            m.set(&r.section, &r.key, &r.example);
        }
        for r in required(&row.section, row.parent()) {
            m.set(&r.section, &r.key, &r.example);
        }
        if let Some((_, rest)) = row.allowed.split_once("needs `") {
            let needed = rest.split('`').next().expect("a key after needs");
            let key = if row.parent().is_empty() { needed.to_string() } else { format!("{}.{needed}", row.parent()) };
            let r = rows
                .iter()
                .find(|r| r.section == row.section && r.key == key)
                .unwrap_or_else(|| panic!("{}.{} needs `{key}`, which has no row", row.section, row.key));
            m.set(&r.section, &r.key, &r.example);
        }
        m.set(&row.section, &row.key, value);
        m
    }

    /// The TOML text: top-level keys, then a component, then the other sections. Keys of an
    /// array of tables (`capabilities.dirs[].host`) become one inline table in an array.
    fn text(&self) -> String {
        let mut text = String::new();
        let mut sections: Vec<&str> = vec!["", "component"];
        for (s, _, _) in &self.lines {
            if !sections.contains(&s.as_str()) {
                sections.push(s);
            }
        }
        for section in sections {
            text.push_str(match section {
                "" => "",
                "component" | "message" => "\n[[",
                _ => "\n[",
            });
            if !section.is_empty() {
                text.push_str(section);
                text.push_str(if section == "component" || section == "message" { "]]\n" } else { "]\n" });
            }
            let lines = self.lines.iter().filter(|(s, _, _)| s == section);
            let mut arrays: Vec<(String, Vec<String>)> = Vec::new();
            for (_, key, value) in lines {
                match key.split_once("[].") {
                    None => text.push_str(&format!("{key} = {value}\n")),
                    Some((array, inner)) => match arrays.iter_mut().find(|(a, _)| a == array) {
                        Some((_, items)) => items.push(format!("{inner} = {value}")),
                        None => arrays.push((array.to_string(), vec![format!("{inner} = {value}")])),
                    },
                }
            }
            for (array, items) in arrays {
                text.push_str(&format!("{array} = [{{ {} }}]\n", items.join(", ")));
            }
        }
        text
    }
}

/// What `switchyard run` said about a manifest.
struct Said {
    text: String,
    code: Option<i32>,
    stderr: String,
}

/// Runs `switchyard run` on `m` in a fresh directory of `scratch` holding every file and
/// directory the table's examples name (except the component file: its absence ends each
/// run once the manifest is parsed), with every environment variable they name set.
fn run(scratch: &TempDir, n: usize, rows: &[Row], m: &Manifest) -> Said {
    let dir = scratch.path().join(format!("case-{n}"));
    std::fs::create_dir_all(&dir).expect("case directory");
    let mut cmd = switchyard_in(&dir, &["run", "--no-cache", "m.toml"]);
    for r in rows {
        let Ok(value) = serde_json::from_str::<String>(&r.example) else { continue };
        if r.ty.contains("(file path)") && !(r.section == "component" && r.key == "file") {
            std::fs::write(dir.join(&value), "s3cret\n").expect("example file");
        } else if r.ty.contains("(directory path)") {
            std::fs::create_dir_all(dir.join(&value)).expect("example directory");
        } else if r.ty.contains("(environment variable)") {
            cmd.env(&value, "s3cret");
        }
    }
    let text = m.text();
    std::fs::write(dir.join("m.toml"), &text).expect("manifest");
    let ran = Ran::from(cmd.stdin(std::process::Stdio::null()).output().expect("switchyard runs"));
    Said { text, code: ran.code, stderr: ran.stderr }
}

impl Said {
    /// Empty when the parser accepted the manifest: the run stopped at the missing component
    /// file, which is loaded after the whole manifest is parsed and checked.
    fn refusal(&self) -> String {
        if self.code == Some(1) && self.stderr.contains(": component[0].file: cannot read ") {
            return String::new();
        }
        format!("exit {:?}\n--- manifest:\n{}--- stderr:\n{}", self.code, self.text, self.stderr)
    }

    /// The names the parser listed after `what` (`unknown field `zz``) in its error.
    fn listed_after(&self, what: &str) -> BTreeSet<String> {
        let Some((_, rest)) = self.stderr.split_once(what) else {
            panic!(
                "no {what:?} in the error (exit {:?})\n--- manifest:\n{}--- stderr:\n{}",
                self.code, self.text, self.stderr
            )
        };
        let rest = rest.lines().next().unwrap_or("");
        let rest = rest.split_once("expected").map_or("", |(_, listed)| listed);
        rest.split('`').skip(1).step_by(2).map(str::to_string).collect()
    }
}

/// The values a row lists as "one of `"a"`, `"b"`".
fn choices(row: &Row) -> Option<Vec<String>> {
    let listed = row.allowed.strip_prefix("one of ")?;
    Some(listed.split('`').skip(1).step_by(2).map(|v| serde_json::from_str::<String>(v).expect("a string")).collect())
}

#[test]
fn every_documented_key_is_accepted_with_its_example() {
    let rows = rows();
    let scratch = TempDir::new("manifest-reference-examples");
    let mut refused = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        let said = run(&scratch, n, &rows, &Manifest::with(&rows, row, &row.example));
        let why = said.refusal();
        if !why.is_empty() {
            refused.push(format!("{}.{} = {}:\n{why}", row.section, row.key, row.example));
        }
    }
    assert!(refused.is_empty(), "documented keys the parser refused:\n\n{}", refused.join("\n\n"));
}

#[test]
fn the_documented_choices_of_a_key_are_exactly_the_parsers() {
    let rows = rows();
    let scratch = TempDir::new("manifest-reference-choices");
    let mut n = 0;
    let mut wrong = Vec::new();
    let with_choices: Vec<(&Row, Vec<String>)> = rows.iter().filter_map(|r| choices(r).map(|c| (r, c))).collect();
    assert!(with_choices.len() >= 4, "idle, restart.policy, capabilities.storage and dirs[].mode list their choices");
    for (row, values) in with_choices {
        for value in &values {
            n += 1;
            let said = run(&scratch, n, &rows, &Manifest::with(&rows, row, &format!("{value:?}")));
            let why = said.refusal();
            if !why.is_empty() {
                wrong.push(format!("{}.{} = {value:?} refused:\n{why}", row.section, row.key));
            }
        }
        n += 1;
        let said = run(&scratch, n, &rows, &Manifest::with(&rows, row, "\"zz-not-a-choice\""));
        let parsers = said.listed_after("unknown variant `zz-not-a-choice`");
        let documented: BTreeSet<String> = values.into_iter().collect();
        if parsers != documented {
            wrong.push(format!("{}.{}: documented {documented:?}, the parser takes {parsers:?}", row.section, row.key));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn every_key_the_parser_knows_is_documented_and_no_other() {
    let rows = rows();
    let scratch = TempDir::new("manifest-reference-keys");
    let mut wrong = Vec::new();
    // The top level: its keys are the sections.
    let mut m = Manifest::with(&rows, &rows[0], &rows[0].example);
    m.set("", "zz_not_a_key", "1");
    let parsers = run(&scratch, 0, &rows, &m).listed_after("unknown field `zz_not_a_key`");
    let documented: BTreeSet<String> = rows.iter().map(|r| r.section.clone()).collect();
    if parsers != documented {
        wrong.push(format!("sections: documented {documented:?}, the parser takes {parsers:?}"));
    }
    // Each section, and each table in one.
    let mut tables: Vec<(String, String)> = documented.iter().map(|s| (s.clone(), String::new())).collect();
    for r in &rows {
        match r.ty.as_str() {
            "table" => tables.push((r.section.clone(), r.key.clone())),
            "array of tables" => tables.push((r.section.clone(), format!("{}[]", r.key))),
            _ => {}
        }
    }
    for (n, (section, table)) in tables.iter().enumerate() {
        let anchor = rows.iter().find(|r| &r.section == section).expect("a row of the section");
        let mut m = Manifest::with(&rows, anchor, &anchor.example);
        let probe = if table.is_empty() { "zz_not_a_key".to_string() } else { format!("{table}.zz_not_a_key") };
        m.set(section, &probe, "1");
        let parsers = run(&scratch, n + 1, &rows, &m).listed_after("unknown field `zz_not_a_key`");
        let documented: BTreeSet<String> = rows
            .iter()
            .filter(|r| &r.section == section && r.parent() == table)
            .map(|r| r.name().to_string())
            .collect();
        if parsers != documented {
            let missing: Vec<_> = parsers.difference(&documented).collect();
            let extra: Vec<_> = documented.difference(&parsers).collect();
            let place = if table.is_empty() { section.clone() } else { format!("{section}.{table}") };
            wrong.push(format!(
                "{place}: keys the parser takes and docs/manifest.md lacks: {missing:?}; \
                 documented keys the parser does not take: {extra:?}"
            ));
        }
    }
    assert!(tables.len() >= 8, "sections and nested tables probed: {tables:?}");
    assert!(wrong.is_empty(), "docs/manifest.md and the parser differ:\n{}", wrong.join("\n"));
}
