//! What `switchyard run` shows while it runs: `--metrics ADDR` (the Prometheus text format
//! and `/health` over HTTP), `--log-format json` (status lines, engine events and guest log
//! lines as JSON lines on stderr) and `--watch` (a live view on a terminal).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use switchyard::{ComponentId, RuntimeHandle};

/// How `run` writes its status lines and the engine's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines on stderr (`switchyard: ...`); engine events are not printed.
    #[default]
    Text,
    /// One JSON object per line on stderr: status lines, the engine's `tracing` events
    /// (dead letters, traps, restarts, ...) at info and above, guest log lines.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the log format for the process (JSON: a `tracing` subscriber writing JSON
/// lines to stderr). Call once, before anything logs.
pub fn init_logs(format: LogFormat) {
    if format == LogFormat::Json {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
            .with_current_span(false)
            .finish();
        if tracing::subscriber::set_global_default(subscriber).is_ok() {
            JSON.store(true, Ordering::Relaxed);
        }
    }
}

/// True when logs are JSON lines.
pub fn json_logs() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A status line: `switchyard: {msg}` on stderr, or a JSON info event.
pub fn note(msg: &str) {
    if json_logs() {
        tracing::info!(target: "switchyard::run", "{msg}");
    } else {
        eprintln!("switchyard: {msg}");
    }
}

/// A warning line: `switchyard: warning: {msg}`, or a JSON warn event.
pub fn warn(msg: &str) {
    if json_logs() {
        tracing::warn!(target: "switchyard::run", "{msg}");
    } else {
        eprintln!("switchyard: warning: {msg}");
    }
}

/// The `--metrics` endpoint: `/metrics` (Prometheus text format, version 0.0.4) and
/// `/health` (the runtime's readiness as JSON: 200 when ready, 503 when not).
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    prometheus: PrometheusHandle,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The address it listens on (the port resolved if 0 was asked for).
    pub addr: SocketAddr,
}

/// Histogram buckets for the `_seconds` metrics: 1 us to 10 s.
const BUCKETS: [f64; 15] = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 10.0];

impl MetricsServer {
    /// Binds `addr` and installs the process's `metrics` recorder (before the runtime is
    /// built, so the live metrics reach it).
    ///
    /// # Errors
    /// When the address cannot be bound or a recorder is installed already.
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, String> {
        let prometheus = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .map_err(|e| e.to_string())?
            .install_recorder()
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        let server = tiny_http::Server::http(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        Ok(MetricsServer { server: Arc::new(server), prometheus, thread: None, stop: Arc::default(), addr })
    }

    /// Serves requests on a thread of its own until [`MetricsServer::stop`]. Between
    /// requests (at least every 5 s) it runs the recorder's upkeep, which drains the
    /// histograms' samples into their buckets: without it they would grow with the traffic
    /// until the next scrape.
    pub fn serve(&mut self, rt: RuntimeHandle) {
        let (server, prometheus, stop) = (self.server.clone(), self.prometheus.clone(), self.stop.clone());
        let thread = std::thread::Builder::new().name("switchyard-metrics".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match server.recv_timeout(Duration::from_secs(5)) {
                    Ok(Some(request)) => {
                        let response = respond(&rt, &prometheus, request.method(), request.url());
                        let _ = request.respond(response);
                    }
                    Ok(None) => prometheus.run_upkeep(),
                    Err(_) => break,
                }
            }
        });
        match thread {
            Ok(t) => self.thread = Some(t),
            Err(e) => warn(&format!("--metrics: cannot start the server thread: {e}")),
        }
    }

    /// Stops serving (a request in progress finishes).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn respond(rt: &RuntimeHandle, prometheus: &PrometheusHandle, method: &tiny_http::Method, url: &str) -> Response {
    let path = url.split('?').next().unwrap_or("");
    if *method != tiny_http::Method::Get && *method != tiny_http::Method::Head {
        return Response::from_string("only GET\n").with_status_code(405).with_header(header("Allow", "GET, HEAD"));
    }
    match path {
        "/metrics" => {
            rt.record_metrics();
            prometheus.run_upkeep();
            Response::from_string(prometheus.render())
                .with_header(header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"))
        }
        "/health" => {
            let probe = url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv == "probe=1"));
            let (ready, body) = health_json(rt, probe);
            Response::from_string(body)
                .with_status_code(if ready { 200 } else { 503 })
                .with_header(header("Content-Type", "application/json"))
        }
        _ => Response::from_string("not found: try /metrics or /health\n").with_status_code(404),
    }
}

/// The readiness summary as JSON (`RuntimeHandle::readiness`), and whether the runtime is
/// ready. With `?probe=1` each component is also asked for its health: every probe is
/// placed first, then all are awaited within one second in all (a probe goes through the
/// component's outcome lane, so a full mailbox does not delay it); any answer but healthy
/// makes the runtime not ready.
fn health_json(rt: &RuntimeHandle, probe: bool) -> (bool, String) {
    let r = rt.readiness();
    let ids = |v: &[ComponentId]| v.iter().map(|id| id.as_str().to_string()).collect::<Vec<_>>();
    let mut ready = r.ready;
    let mut body = serde_json::json!({
        "ready": r.ready,
        "registered": r.registered,
        "running": r.running,
        "restarting": ids(&r.restarting),
        "stopped": ids(&r.stopped),
        "mailboxes_full": ids(&r.full),
        "shutting_down": r.shutting_down,
    });
    if probe {
        let all = rt.component_ids();
        for id in &all {
            let _ = rt.health(id, Duration::ZERO); // placed; answered in the lane
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut checks = serde_json::Map::new();
        for id in all {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let status = rt.health(&id, left);
            ready &= status.is_healthy();
            checks.insert(id.as_str().to_string(), status_json(&status));
        }
        body["components"] = serde_json::Value::Object(checks);
        body["ready"] = serde_json::Value::Bool(ready);
    }
    (ready, format!("{body}\n"))
}

/// A health status as JSON: `{"status": NAME}`, with `"reason"` when unhealthy.
fn status_json(status: &switchyard::HealthStatus) -> serde_json::Value {
    use switchyard::HealthStatus as S;
    match status {
        S::Healthy => serde_json::json!({"status": "healthy"}),
        S::Unhealthy { reason } => serde_json::json!({"status": "unhealthy", "reason": reason}),
        S::Restarting => serde_json::json!({"status": "restarting"}),
        S::Stopped => serde_json::json!({"status": "stopped"}),
        S::NoAnswer => serde_json::json!({"status": "no_answer"}),
        S::NoSuchComponent => serde_json::json!({"status": "no_such_component"}),
        _ => serde_json::json!({"status": format!("{status:?}")}),
    }
}

/// Lines of the `--watch` view on the terminal now (0: none drawn), under the lock every
/// stdout writer takes: a reply erases the view, is printed, and the view is drawn again
/// below it at its next refresh.
static VIEW: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

/// Prints one line on stdout (a reply), erasing the `--watch` view first if one is drawn.
pub fn print_line(line: &str) {
    let mut drawn = VIEW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = std::io::stdout().lock();
    if *drawn > 0 {
        let _ = write!(out, "\x1b[{}A\r\x1b[J", *drawn);
        *drawn = 0;
    }
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The `--watch` view: a few lines redrawn in place on stdout every half second, while
/// stdout is a terminal (otherwise nothing is drawn).
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Starts the view if stdout is a terminal.
    pub fn start(rt: RuntimeHandle, ids: Vec<ComponentId>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stdout().is_terminal().then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let view = render_view(&rt, &ids, started.elapsed());
                    let mut drawn = VIEW.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let mut out = std::io::stdout().lock();
                    // Back to the top of the last view, then draw over it.
                    if *drawn > 0 {
                        let _ = write!(out, "\x1b[{}A", *drawn);
                    }
                    for line in view.lines() {
                        let _ = writeln!(out, "\r\x1b[2K{line}");
                    }
                    let _ = out.flush();
                    *drawn = view.lines().count();
                    drop((out, drawn));
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        });
        Watch { stop, thread }
    }

    /// Stops the view (its last drawing stays on the terminal).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The text of one drawing of the watch view.
pub fn render_view(rt: &RuntimeHandle, ids: &[ComponentId], elapsed: Duration) -> String {
    let s = rt.stats();
    let mut v = String::new();
    let _ = writeln!(
        v,
        "switchyard {:>6.1}s  sent {}  handled {}  dead-lettered {}  rejected {}  pending requests {}",
        elapsed.as_secs_f64(),
        s.messages_sent,
        s.messages_handled,
        s.messages_dead_lettered,
        s.routing_failures,
        rt.pending_requests()
    );
    for id in ids {
        let Some(c) = rt.component_stats(id) else { continue };
        let state = if c.closed { "stopped" } else { "running" };
        let _ = writeln!(
            v,
            "  {:<24} {state:<8} mailbox {:>5}/{:<5} handled {:>8} failed {:>5} restarts {:>3}",
            id.as_str(),
            c.mailbox_len,
            c.mailbox_capacity,
            c.handled,
            c.failed,
            c.restarts
        );
    }
    v
}
