//! What `switchyard run` shows while it runs: `--metrics ADDR` (the Prometheus text format
//! and `/health` over HTTP), `--log-format json` (status lines, engine events and guest log
//! lines as JSON lines on stderr) and `--watch` (a live view on a terminal).

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::http::{HttpServer, Limits, Request, Response};
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

/// A status line: `switchyard: {msg}` on stderr, or a JSON info event. Escaped (it may
/// carry a guest's text, as a failed start's reason does): one line, no terminal sequences.
pub fn note(msg: &str) {
    let msg = switchyard::text::printable(msg);
    if json_logs() {
        tracing::info!(target: "switchyard::run", "{msg}");
    } else {
        eprintln!("switchyard: {msg}");
    }
}

/// A warning line: `switchyard: warning: {msg}`, or a JSON warn event. Escaped as [`note`].
pub fn warn(msg: &str) {
    let msg = switchyard::text::printable(msg);
    if json_logs() {
        tracing::warn!(target: "switchyard::run", "{msg}");
    } else {
        eprintln!("switchyard: warning: {msg}");
    }
}

/// The `--metrics` endpoint: `/metrics` (Prometheus text format, version 0.0.4) and
/// `/health` (the runtime's readiness as JSON: 200 when ready, 503 when not), served by
/// the bounded server of `http.rs`.
pub struct MetricsServer {
    listener: Option<std::net::TcpListener>,
    prometheus: PrometheusHandle,
    server: Option<HttpServer>,
    upkeep: Option<(crossbeam_channel::Sender<()>, JoinHandle<()>)>,
    /// The address it listens on (the port resolved if 0 was asked for).
    pub addr: SocketAddr,
}

/// What `/health?probe=1` tells, and how often it may ask a component.
#[derive(Debug, Clone, Copy)]
pub struct HealthOptions {
    /// Show the components' own reasons for being unhealthy (guest text) in the answer.
    pub details: bool,
    /// A component is asked at most once in this long; a probe sooner gets its last answer.
    pub min_interval: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self { details: false, min_interval: Duration::from_secs(1) }
    }
}

/// Histogram buckets for the `_seconds` metrics: 1 us to 10 s.
const BUCKETS: [f64; 15] = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0, 10.0];

impl MetricsServer {
    /// Binds `addr` and installs the process's `metrics` recorder (before the runtime is
    /// built, so the live metrics reach it). Warns when `addr` is not a loopback address:
    /// the endpoint has no authentication.
    ///
    /// # Errors
    /// When the address cannot be bound or a recorder is installed already.
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, String> {
        let prometheus = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .map_err(|e| e.to_string())?
            .install_recorder()
            .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
        let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        if !addr.ip().is_loopback() {
            warn(&format!(
                "--metrics {addr} is not a loopback address: anyone who can reach it can read the metrics and \
                 ask the components' health (nothing authenticates them)"
            ));
        }
        Ok(MetricsServer { listener: Some(listener), prometheus, server: None, upkeep: None, addr })
    }

    /// Serves requests until [`MetricsServer::stop`], each connection within the limits of
    /// `http.rs`. A thread of its own runs the recorder's upkeep every 5 s, which drains the
    /// histograms' samples into their buckets: without it they would grow with the traffic
    /// until the next scrape.
    pub fn serve(&mut self, rt: RuntimeHandle, health: HealthOptions) {
        let Some(listener) = self.listener.take() else { return };
        let prometheus = self.prometheus.clone();
        let probes = Arc::new(ProbeCache::default());
        let handler = move |request: &Request| respond(&rt, &prometheus, &probes, health, request);
        match HttpServer::serve(listener, Limits::default(), handler) {
            Ok(server) => self.server = Some(server),
            Err(e) => warn(&format!("--metrics: cannot start the server thread: {e}")),
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let prometheus = self.prometheus.clone();
        let upkeep = std::thread::Builder::new().name("switchyard-metrics-upkeep".into()).spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_secs(5)) {
                prometheus.run_upkeep();
            }
        });
        match upkeep {
            Ok(thread) => self.upkeep = Some((stop, thread)),
            Err(e) => warn(&format!("--metrics: cannot start the upkeep thread: {e}")),
        }
    }

    /// Stops serving. Returns at once: requests in progress end on their own threads
    /// within their limits.
    pub fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if let Some((stop, thread)) = self.upkeep.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

fn respond(
    rt: &RuntimeHandle,
    prometheus: &PrometheusHandle,
    probes: &ProbeCache,
    health: HealthOptions,
    request: &Request,
) -> Response {
    let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
    if request.method != "GET" && request.method != "HEAD" {
        let mut r = Response::text(405, "only GET\n");
        r.headers.push(("Allow", "GET, HEAD".into()));
        return r;
    }
    let mut response = match path {
        "/metrics" => {
            rt.record_metrics();
            prometheus.run_upkeep();
            Response::new(200, "text/plain; version=0.0.4; charset=utf-8", prometheus.render())
        }
        "/health" => {
            let probe = query.split('&').any(|kv| kv == "probe=1");
            let (ready, body) = health_json(rt, probe.then_some((probes, health)));
            Response::new(if ready { 200 } else { 503 }, "application/json", body)
        }
        _ => Response::text(404, "not found: try /metrics or /health\n"),
    };
    if request.method == "HEAD" {
        response.body.clear();
    }
    response
}

/// The last answer of each component to a probe of the endpoint, and when it was asked:
/// a component is asked at most once per [`HealthOptions::min_interval`], however often the
/// endpoint is polled (a health check runs the component's own code, a guest's included).
#[derive(Default)]
struct ProbeCache {
    last: std::sync::Mutex<std::collections::HashMap<ComponentId, (std::time::Instant, switchyard::HealthStatus)>>,
    /// The components of other nodes, asked all at once, and when.
    remote: std::sync::Mutex<Option<(std::time::Instant, Vec<switchyard::cluster::RemoteHealth>)>>,
}

impl ProbeCache {
    /// Each of `ids`' status: asked anew (all at once, within one second in all) when its
    /// last answer is older than `interval`, else the last answer.
    fn statuses(
        &self,
        rt: &RuntimeHandle,
        ids: &[ComponentId],
        interval: Duration,
    ) -> Vec<(ComponentId, switchyard::HealthStatus)> {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.retain(|id, _| ids.contains(id));
        let now = std::time::Instant::now();
        let stale: Vec<ComponentId> = ids
            .iter()
            .filter(|id| last.get(*id).is_none_or(|(at, _)| now.duration_since(*at) >= interval))
            .cloned()
            .collect();
        let answers = rt.health_all(&stale, Duration::from_secs(1));
        for (id, status) in stale.into_iter().zip(answers) {
            last.insert(id, (now, status));
        }
        ids.iter().filter_map(|id| last.get(id).map(|(_, s)| (id.clone(), s.clone()))).collect()
    }

    /// The components other nodes of the cluster serve, with the node that answered:
    /// asked anew (of their nodes, all at once, within one second) when the last answers
    /// are older than `interval`.
    fn remote(&self, rt: &RuntimeHandle, interval: Duration) -> Vec<switchyard::cluster::RemoteHealth> {
        let mut remote = self.remote.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if remote.as_ref().is_none_or(|(at, _)| now.duration_since(*at) >= interval) {
            *remote = Some((now, rt.cluster_health(Duration::from_secs(1))));
        }
        remote.as_ref().map(|(_, r)| r.clone()).unwrap_or_default()
    }
}

/// The readiness summary as JSON (`RuntimeHandle::readiness`), and whether the runtime is
/// ready. With a probe, each component is also asked for its health (at most once per
/// interval, see [`ProbeCache`]); any answer but healthy makes the runtime not ready.
fn health_json(rt: &RuntimeHandle, probe: Option<(&ProbeCache, HealthOptions)>) -> (bool, String) {
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
    if let Some((cache, options)) = probe {
        let mut checks = serde_json::Map::new();
        for (id, status) in cache.statuses(rt, &rt.component_ids(), options.min_interval) {
            ready &= status.is_healthy();
            checks.insert(id.as_str().to_string(), status_json(&status, options.details));
        }
        body["components"] = serde_json::Value::Object(checks);
        body["ready"] = serde_json::Value::Bool(ready);
        // Those of other nodes, with the node that answered: shown, not counted in this
        // node's readiness.
        let remote = cache.remote(rt, options.min_interval);
        if !remote.is_empty() {
            let mut others = serde_json::Map::new();
            for h in remote {
                let mut entry = status_json(&h.status, options.details);
                entry["node"] = h.node.map_or(serde_json::Value::Null, serde_json::Value::String);
                others.insert(h.id.as_str().to_string(), entry);
            }
            body["remote"] = serde_json::Value::Object(others);
        }
    }
    (ready, format!("{body}\n"))
}

/// A health status as JSON: `{"status": NAME}`, with the component's `"reason"` when it is
/// unhealthy and `details` asks for it (the reason is the component's own text).
fn status_json(status: &switchyard::HealthStatus, details: bool) -> serde_json::Value {
    use switchyard::HealthStatus as S;
    match status {
        S::Healthy => serde_json::json!({"status": "healthy"}),
        S::Unhealthy { reason } if details => serde_json::json!({"status": "unhealthy", "reason": reason}),
        S::Unhealthy { .. } => serde_json::json!({"status": "unhealthy"}),
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

// The core crate's real nats-server helper, for the tests (they use only part of it).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/common/nats.rs"]
mod test_nats;

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use switchyard::{ComponentSpec, Context, Handler, HandlerError, Health, HealthStatus, MessageEnvelope, Runtime};

    use super::test_nats as nats;
    use super::*;

    /// Unhealthy, with a reason of its own; reports every check it runs.
    struct Checked(mpsc::Sender<()>);

    impl Handler for Checked {
        fn handle(&mut self, _: &mut Context<'_>, _: &MessageEnvelope) -> Result<Option<Vec<u8>>, HandlerError> {
            Ok(None)
        }

        fn health(&mut self, _: &mut Context<'_>) -> Health {
            let _ = self.0.send(());
            Health::unhealthy("secret detail from the guest")
        }
    }

    #[test]
    fn probes_ask_each_component_at_most_once_per_interval_and_hide_reasons_unless_asked() {
        let rt = Runtime::builder().workers(1).build().expect("runtime");
        let (checks, checked) = mpsc::channel();
        rt.register(ComponentId::new("c").unwrap(), ComponentSpec::new(move || Checked(checks.clone()))).unwrap();
        let cache = ProbeCache::default();
        let hourly = HealthOptions { details: false, min_interval: Duration::from_secs(3600) };
        for _ in 0..10 {
            let (ready, body) = health_json(&rt.handle(), Some((&cache, hourly)));
            assert!(!ready);
            assert!(body.contains(r#""c":{"status":"unhealthy"}"#), "{body}");
            assert!(!body.contains("secret"), "the component's text is not shown: {body}");
        }
        assert_eq!(checked.try_iter().count(), 1, "asked once in the interval, however often polled");
        let detailed = HealthOptions { details: true, min_interval: Duration::ZERO };
        let (_, body) = health_json(&rt.handle(), Some((&cache, detailed)));
        assert!(body.contains("secret detail from the guest"), "{body}");
        assert_eq!(checked.try_iter().count(), 1, "asked again once the interval passed");
        assert_eq!(
            status_json(&HealthStatus::Unhealthy { reason: "x".into() }, false),
            serde_json::json!({"status": "unhealthy"})
        );
        rt.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn a_probe_lists_the_components_of_other_nodes_with_their_node_apart_from_readiness() {
        let Some(server) = nats::NatsServer::start() else { return };
        let join = |node: &str| {
            let config = switchyard::cluster::ClusterConfig {
                node: Some(node.into()),
                ..switchyard::cluster::ClusterConfig::new(server.url(), "t-http-health")
            };
            Runtime::builder().workers(1).cluster(config).build().expect("joins")
        };
        let (a, b) = (join("a"), join("b"));
        let (checks, _checked) = mpsc::channel();
        b.register(ComponentId::new("far").unwrap(), ComponentSpec::new(move || Checked(checks.clone()))).unwrap();
        assert!(a.wait_for_component(&ComponentId::new("far").unwrap(), Duration::from_secs(20)));
        let cache = ProbeCache::default();
        let options = HealthOptions { details: false, min_interval: Duration::from_secs(3600) };
        let (ready, body) = health_json(&a.handle(), Some((&cache, options)));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["remote"]["far"], serde_json::json!({"status": "unhealthy", "node": "b"}), "{body}");
        assert!(ready, "another node's component does not make this one unready: {body}");
        assert_eq!(json["components"], serde_json::json!({}), "{body}");
    }
}
