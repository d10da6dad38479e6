//! `switchyard run --metrics`, `--log-format json` and `--watch`, on the pipeline example:
//! the scrape's figures match the traffic (and `promtool` accepts the scrape), `/health`
//! answers, every stderr line is JSON, and `--watch` adds nothing when stdout is not a
//! terminal.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `GET path` over plain HTTP/1.1: the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("the metrics endpoint accepts connections");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete response");
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    (status, body.to_string())
}

/// The value of one series (`name{labels}` exactly as rendered).
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' '))).and_then(|v| v.parse().ok())
}

/// The sum of a family's series whose labels contain `with`.
fn sum(scrape: &str, family: &str, with: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn promtool_installed() -> bool {
    let installed = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_TOOLCHAINS").is_none(),
            "promtool is not installed (Debian: apt-get install prometheus)"
        );
        eprintln!("skipped: promtool is not installed (Debian: apt-get install prometheus)");
    }
    installed
}

#[test]
fn a_scrape_of_a_running_pipeline_matches_its_traffic_and_promtool_accepts_it() {
    if !promtool_installed() {
        return;
    }
    let dir = TempDir::new("metrics");
    let manifest = pipeline_manifest();
    let mut child = spawn_in(dir.path(), &["run", "--metrics", "127.0.0.1:0", manifest.to_str().unwrap()]);
    let stdin = child.stdin.take();
    let (addr, mut stderr) = metrics_addr(&mut child);
    // The manifest's messages flow through three components: scrape until the last one
    // handled its four records.
    let deadline = Instant::now() + Duration::from_secs(20);
    let scrape = loop {
        let (status, body) = get(&addr, "/metrics");
        assert_eq!(status, 200);
        let ended = ["handled", "dead_lettered", "forwarded"]
            .iter()
            .filter_map(|k| value(&body, &format!("switchyard_messages_{k}_total")))
            .sum::<f64>()
            + sum(&body, "switchyard_send_rejections_total", "");
        // Store handled its four records, and nothing is in flight any more.
        if value(&body, r#"switchyard_component_handled_total{component="store"}"#) == Some(4.0)
            && value(&body, "switchyard_messages_sent_total") == Some(ended)
        {
            break body;
        }
        assert!(Instant::now() < deadline, "store never handled its 4 records:\n{body}");
        std::thread::yield_now();
    };
    // The figures the stats table shows for this manifest (see run_pipeline.rs).
    let of = |series: &str| value(&scrape, series).unwrap_or_else(|| panic!("{series} missing:\n{scrape}"));
    assert_eq!(of(r#"switchyard_component_received_total{component="ingest"}"#), 6.0);
    assert_eq!(of(r#"switchyard_component_handled_total{component="ingest"}"#), 5.0);
    assert_eq!(of(r#"switchyard_component_failed_total{component="ingest"}"#), 1.0);
    assert_eq!(of(r#"switchyard_component_restarts_total{component="transform"}"#), 1.0);
    assert_eq!(sum(&scrape, "switchyard_component_traps_total", r#"component="transform""#), 1.0);
    assert_eq!(of(r#"switchyard_dead_letters_total{reason="handler_failed"}"#), 1.0);
    assert_eq!(of(r#"switchyard_dead_letters_total{reason="trapped"}"#), 1.0);
    assert!(of(r#"switchyard_component_fuel_consumed_total{component="store"}"#) > 0.0, "fuel is metered");
    assert_eq!(of(r#"switchyard_component_handler_seconds_count{component="store"}"#), 4.0);
    // The accounting identity, from the scrape alone.
    let sent = of("switchyard_messages_sent_total");
    let ended = of("switchyard_messages_handled_total")
        + of("switchyard_messages_dead_lettered_total")
        + sum(&scrape, "switchyard_send_rejections_total", "")
        + of("switchyard_messages_forwarded_total");
    assert_eq!(sent, ended, "{scrape}");

    // The real promtool lints the exposition.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let (status, health) = get(&addr, "/health");
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!((health["ready"].as_bool(), health["registered"].as_u64()), (Some(true), Some(3)), "{health}");
    let (status, probed) = get(&addr, "/health?probe=1");
    assert_eq!(status, 200, "{probed}");
    let probed: serde_json::Value = serde_json::from_str(&probed).unwrap();
    for id in ["ingest", "transform", "store"] {
        assert_eq!(probed["components"][id]["status"], "healthy", "guests without a health export run: {probed}");
    }
    assert_eq!(get(&addr, "/nothing").0, 404);

    drop(stdin);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("(balanced)"), "{rest}");
}

#[test]
fn json_logs_are_json_lines_and_watch_adds_nothing_when_stdout_is_not_a_terminal() {
    let dir = TempDir::new("json-logs");
    let ran =
        run_in(dir.path(), &["run", "--log-format", "json", "--watch", pipeline_manifest().to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let events: Vec<serde_json::Value> = ran
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let dead: Vec<_> = events.iter().filter(|e| e["fields"]["message"] == "dead letter").collect();
    assert_eq!(dead.len(), 2, "{}", ran.stderr);
    assert!(dead.iter().any(|e| e["fields"]["component"] == "transform" && e["fields"]["reason"] == "trapped"));
    let summary = events.iter().find(|e| e["fields"]["message"] == "run ended").expect("a summary record");
    let summary: serde_json::Value = serde_json::from_str(summary["fields"]["summary"].as_str().unwrap()).unwrap();
    assert_eq!(summary["balanced"], true, "{summary}");
    assert_eq!(summary["stats"]["messages_dead_lettered"], 2, "{summary}");
    // stdout holds the replies (the manifest ends with a request) and nothing else.
    for l in ran.stdout.lines() {
        let reply: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not a reply: {l:?}"));
        assert!(reply.get("payload").is_some(), "{l}");
    }
    assert!(!ran.stdout.contains('\x1b'), "no terminal drawing: {:?}", ran.stdout);
}

#[test]
fn watch_redraws_its_view_in_place_on_a_terminal() {
    // `script` runs the command on a pseudo-terminal and copies what it draws.
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_TOOLCHAINS").is_none(),
            "script is not installed (Debian: apt-get install bsdutils)"
        );
        eprintln!("skipped: script (util-linux) is not installed");
        return;
    }
    let dir = TempDir::new("watch");
    let command = format!(
        "{} run --watch --duration 2500ms {}",
        env!("CARGO_BIN_EXE_switchyard"),
        pipeline_manifest().to_str().unwrap()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join("xdg-cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let drawn = String::from_utf8_lossy(&out.stdout);
    // At least two drawings (one every 500 ms over 2.5 s), the later ones moving the cursor
    // back up over the earlier one: redrawn in place, not scrolled.
    assert!(drawn.matches("switchyard ").count() >= 2, "{drawn:?}");
    let cursor_up = drawn.split("\x1b[").skip(1).any(|rest| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest.as_bytes().get(digits) == Some(&b'A')
    });
    assert!(cursor_up, "the view moves the cursor up to redraw: {drawn:?}");
    for id in ["ingest", "transform", "store"] {
        assert!(drawn.contains(id), "{id} in the view: {drawn:?}");
    }
}
