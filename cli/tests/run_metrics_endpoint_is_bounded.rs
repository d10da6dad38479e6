//! The `run --metrics` endpoint answers whoever reaches it, so what a client can take is
//! bounded: an endless header line is cut off, a client that sends nothing is dropped, and
//! one that never reads its responses cannot keep the run from ending on Ctrl-C.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use common::*;

/// A run of the pipeline with the endpoint on a free loopback port, reading a stdin that
/// stays open: the run goes on until it is interrupted. Returns it and the address.
fn serving(dir: &TempDir) -> (Child, String) {
    let manifest = pipeline_manifest();
    let mut child = spawn_in(dir.path(), &["run", "--metrics", "127.0.0.1:0", manifest.to_str().unwrap()]);
    let (addr, mut stderr) = metrics_addr(&mut child);
    // Keep draining stderr so the run never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

/// Interrupts the run (Ctrl-C) and returns how long it took to end; fails the test (and
/// kills the run) if that is more than `limit`.
fn interrupt_and_wait(mut child: Child, limit: Duration) -> Duration {
    let started = Instant::now();
    let pid = child.id();
    let sent = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(sent.success());
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    if rx.recv_timeout(limit).is_err() {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("the run did not end within {limit:?} of Ctrl-C");
    }
    started.elapsed()
}

fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text:?}"))
}

#[test]
fn a_header_line_that_never_ends_is_cut_off_with_431() {
    let dir = TempDir::new("metrics-long-header");
    let (child, addr) = serving(&dir);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Long: ").unwrap();
    // Stream the header on a thread until the server hangs up.
    let mut writer = s.try_clone().unwrap();
    let streamer = std::thread::spawn(move || {
        let chunk = [b'a'; 4096];
        let mut sent = 0usize;
        while sent < (64 << 20) && writer.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    assert_eq!(status_of(&response), 431, "{}", String::from_utf8_lossy(&response));
    let sent = streamer.join().unwrap();
    assert!(sent < (64 << 20), "the server stopped reading: {sent} bytes sent before it hung up");
    interrupt_and_wait(child, Duration::from_secs(20));
}

#[test]
fn a_client_that_sends_nothing_is_dropped_and_others_are_served() {
    let dir = TempDir::new("metrics-silent");
    let (child, addr) = serving(&dir);
    let mut silent = TcpStream::connect(&addr).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // Meanwhile a real scrape is answered.
    let mut scrape = TcpStream::connect(&addr).unwrap();
    scrape.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = Vec::new();
    scrape.read_to_end(&mut response).unwrap();
    assert_eq!(status_of(&response), 200);
    // The silent one is answered 408 and closed once its time to send a request is up.
    let started = Instant::now();
    let mut response = Vec::new();
    silent.read_to_end(&mut response).expect("closed by the server, not left open");
    assert_eq!(status_of(&response), 408);
    assert!(started.elapsed() < Duration::from_secs(15));
    interrupt_and_wait(child, Duration::from_secs(20));
}

#[test]
fn a_client_that_never_reads_cannot_keep_the_run_from_ending_on_ctrl_c() {
    let dir = TempDir::new("metrics-never-reads");
    let (child, addr) = serving(&dir);
    let mut greedy = TcpStream::connect(&addr).unwrap();
    greedy.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // Thousands of pipelined scrapes, and never a read: their answers would fill the
    // socket buffers of a server that kept answering.
    let many = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let _ = greedy.write_all(many.as_bytes());
    // Let the server start on them, then interrupt the run.
    let mut probe = TcpStream::connect(&addr).unwrap();
    probe.write_all(b"GET /health HTTP/1.1\r\n\r\n").unwrap();
    let mut response = Vec::new();
    probe.read_to_end(&mut response).unwrap();
    assert!(matches!(status_of(&response), 200 | 503), "still serving others");
    let took = interrupt_and_wait(child, Duration::from_secs(30));
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(greedy);
}

/// A guest whose health check answers unhealthy with a text of its own ("backend secret"),
/// and echoes requests. A core module, made a component by `switchyard component new`.
const UNHEALTHY_GUEST: &str = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ret i32)
    (local.set $ret (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (i32.and (i32.add (local.get 3) (i32.const 7)) (i32.const -8))))
    (local.get $ret))
  (data (i32.const 96) "backend secret")
  (func (export "switchyard:component/lifecycle@0.1.0#health") (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store8 (i32.const 20) (i32.const 9))
    (i32.store (i32.const 24) (i32.const 96))
    (i32.store (i32.const 28) (i32.const 14))
    (i32.const 16))
  (func (export "switchyard:component/handler@0.1.0#handle-message") (param i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store8 (i32.const 20) (i32.const 0))
    (i32.const 16))
  (func (export "switchyard:component/handler@0.1.0#handle-callback") (param i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
)"#;

/// `GET path`: status and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status_of(&response), body)
}

fn guest_calls(addr: &str) -> f64 {
    let (_, scrape) = get(addr, "/metrics");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(r#"switchyard_component_wasm_calls_total{component="sick"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `/health?probe=1` runs guest code for whoever asks: each component is asked at most once
/// a second however often it is polled, and the guest's own words are shown only when the
/// operator asks for them.
#[test]
fn health_probes_are_rate_limited_and_hide_the_guests_reasons_unless_asked() {
    let dir = TempDir::new("metrics-health");
    write(&dir, "sick.wat", UNHEALTHY_GUEST);
    let made = run_in(dir.path(), &["component", "new", "sick.wat", "-o", "sick.wasm"], "");
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    let manifest = write(&dir, "sick.toml", "[[component]]\nid = \"sick\"\nfile = \"sick.wasm\"\n");
    for details in [false, true] {
        let mut args = vec!["run", "--metrics", "127.0.0.1:0", manifest.to_str().unwrap()];
        if details {
            args.insert(3, "--health-details");
        }
        let mut child = spawn_in(dir.path(), &args);
        let (addr, mut stderr) = metrics_addr(&mut child);
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let before = guest_calls(&addr);
        let started = Instant::now();
        for _ in 0..20 {
            let (status, body) = get(&addr, "/health?probe=1");
            assert_eq!(status, 503, "{body}");
            assert!(body.contains(r#""sick":{"#) && body.contains("unhealthy"), "{body}");
            assert_eq!(body.contains("backend secret"), details, "{body}");
        }
        let seconds = started.elapsed().as_secs_f64().ceil();
        let checks = guest_calls(&addr) - before;
        assert!(checks >= 1.0 && checks <= seconds + 1.0, "{checks} checks in {seconds} s of polling");
        interrupt_and_wait(child, Duration::from_secs(20));
    }
}
