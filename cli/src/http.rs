//! A small HTTP/1.1 server for `run --metrics`, bounded in everything a client controls.
//!
//! The endpoint answers whoever can reach it, so each connection gets at most
//! [`Limits::head_bytes`] of request head (a longer one is answered `431` and closed), at
//! most [`Limits::read_time`] to send it (then `408`) and [`Limits::write_time`] to take the
//! response (then it is dropped), one request per connection (`Connection: close`), and at
//! most [`Limits::connections`] connections are served at once (one more is closed at once
//! without a reply). A slow client, one that streams a header forever, or one that never
//! reads, costs one bounded thread for a bounded time; none of them can hold the server,
//! grow its memory, or keep [`HttpServer::stop`] from returning.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one client may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes of request line and headers.
    pub head_bytes: usize,
    /// Most time to send the request head, from the connection's accept.
    pub read_time: Duration,
    /// Most time to take the response, once it is ready.
    pub write_time: Duration,
    /// Most connections served at once.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head_bytes: 8 << 10,
            read_time: Duration::from_secs(2),
            write_time: Duration::from_secs(5),
            connections: 32,
        }
    }
}

/// A parsed request: only what the endpoint routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target: path and query.
    pub target: String,
}

/// A response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (`Content-Length` and `Connection` are added).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of type `content_type`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: vec![("Content-Type", content_type.to_string())], body: body.into() }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A listening server; [`HttpServer::stop`] ends it.
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `listener` with `handler` on a thread of its own, one thread per connection
    /// within `limits`.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn serve(
        listener: TcpListener,
        limits: Limits,
        handler: impl Fn(&Request) -> Response + Send + Sync + 'static,
    ) -> std::io::Result<HttpServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let active = Arc::new(AtomicUsize::new(0));
        let stopping = stop.clone();
        let acceptor = std::thread::Builder::new().name("switchyard-http".into()).spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                // Relaxed: a count, not a lock; a few more than the limit for an instant
                // is harmless, the limit is what bounds the threads.
                if active.fetch_add(1, Ordering::Relaxed) >= limits.connections {
                    active.fetch_sub(1, Ordering::Relaxed);
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                let (handler, serving) = (handler.clone(), active.clone());
                let spawned = std::thread::Builder::new().name("switchyard-http-conn".into()).spawn(move || {
                    serve_one(conn, limits, &*handler);
                    serving.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })?;
        Ok(HttpServer { addr, stop, acceptor: Some(acceptor) })
    }

    /// Stops accepting and returns once the acceptor has ended. Connections in progress
    /// finish on their own threads within their limits.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head within the limits, answers it, closes.
fn serve_one(mut conn: TcpStream, limits: Limits, handler: &Handler) {
    let response = match read_head(&mut conn, limits) {
        Ok(head) => match parse(&head) {
            Some(request) => handler(&request),
            None => Response::text(400, "bad request\n"),
        },
        Err(status) => Response::text(status, if status == 431 { "request head too large\n" } else { "too slow\n" }),
    };
    let _ = conn.set_write_timeout(Some(limits.write_time));
    let deadline = Instant::now() + limits.write_time;
    let bytes = encode(&response);
    let mut sent = 0;
    // A write timeout bounds each write; the deadline bounds them all.
    while sent < bytes.len() && Instant::now() < deadline {
        match conn.write(&bytes[sent..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n,
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

/// The request head (up to the blank line), or the status to refuse it with.
fn read_head(conn: &mut TcpStream, limits: Limits) -> Result<Vec<u8>, u16> {
    let deadline = Instant::now() + limits.read_time;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return Err(408);
        }
        let n = match conn.read(&mut buf) {
            Ok(0) => return Err(400),
            Ok(n) => n,
            Err(_) => return Err(408),
        };
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > limits.head_bytes {
            return Err(431);
        }
    }
}

/// The method and target of a request head; `None` when its first line is not HTTP.
fn parse(head: &[u8]) -> Option<Request> {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    Some(Request { method: method.to_string(), target: target.to_string() })
}

fn encode(r: &Response) -> Vec<u8> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", r.body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&r.body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_is_parsed_and_anything_else_is_not() {
        let r = parse(b"GET /health?probe=1 HTTP/1.1\r\nHost: x").expect("parsed");
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/health?probe=1"));
        assert_eq!(parse(b"GET /x"), None);
        assert_eq!(parse(b"GET x HTTP/1.1"), None);
        assert_eq!(parse(b"\xff\xfe"), None);
        assert_eq!(parse(b"GET / HTTP/1.1 extra"), None);
    }

    #[test]
    fn a_response_says_its_length_and_closes() {
        let bytes = encode(&Response::text(404, "nope\n"));
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 5\r\nConnection: close\r\n\r\nnope\n"), "{text}");
    }
}
