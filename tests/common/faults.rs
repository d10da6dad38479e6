//! A TCP proxy of the tests' own on loopback, between one node and its NATS server, to cut
//! the node off the ways a network does rather than by killing the server. The node
//! connects to [`FaultProxy::url`]; the test switches the proxy between
//!
//! - [`Fault::Pass`]: bytes flow both ways;
//! - [`Fault::Partition`]: every connection is reset on both sides (closed with `SO_LINGER`
//!   0: the node's next read fails with "connection reset", the server sees the same), and
//!   each new connection is reset as soon as it is accepted, until healed;
//! - [`Fault::HalfOpen`]: every socket stays open and nothing more is forwarded either way,
//!   not even a close (no reset, no FIN): the node notices only through its own ping
//!   timeouts. A connection made meanwhile is accepted and held, never forwarded;
//!
//! and back to `Pass` (heal). A black-holed connection stays dead, as the peers gave up on
//! it: healing resets it, and new connections pass.
//!
//! Nothing is buffered beyond one chunk per direction of a connection: a direction that may
//! not forward stops reading, so the kernel's socket buffers and TCP's flow control hold the
//! rest, and a sender that keeps writing blocks, as on a real network.
//!
//! Threads: one accepting, two per forwarded connection (one per direction), all ended by
//! closing their sockets. Loopback only: the proxy listens on 127.0.0.1 and connects to
//! 127.0.0.1.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// The bytes a direction of a connection reads before it forwards them.
const CHUNK: usize = 16 * 1024;

/// What the proxy does to the node's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes flow both ways.
    Pass,
    /// Every connection reset, new ones reset at once.
    Partition,
    /// Every socket open, nothing forwarded, nothing closed.
    HalfOpen,
}

/// One forwarded connection: the node's side and the server's.
struct Link {
    client: TcpStream,
    server: TcpStream,
    /// Nothing more is forwarded (set under the state's lock, read under it by the pumps).
    stalled: AtomicBool,
    /// Closed by the proxy or by a peer: the pumps end.
    closed: AtomicBool,
}

struct State {
    fault: Fault,
    /// Connections being forwarded (or stalled).
    links: Vec<Arc<Link>>,
    /// Connections accepted while half-open: held open, never forwarded.
    held: Vec<TcpStream>,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    /// Wakes stalled pumps when their link is closed.
    changed: Condvar,
    stopping: AtomicBool,
    accepted: AtomicU64,
    reset_at_accept: AtomicU64,
}

/// A fault-injecting TCP proxy on 127.0.0.1 in front of one upstream port (see the module
/// docs). Dropping it resets every connection it holds.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `127.0.0.1:upstream_port`, passing.
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy on loopback");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port)),
            state: Mutex::new(State { fault: Fault::Pass, links: Vec::new(), held: Vec::new() }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            reset_at_accept: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept(listener, s))
            .expect("spawn the proxy's acceptor");
        FaultProxy { port, shared, acceptor: Some(acceptor) }
    }

    /// The URL a node connects to the server through this proxy with.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Switches to `fault` (see [`Fault`] and the module docs). Returns once every
    /// connection it ends is reset and every one it stalls forwards nothing more (a chunk
    /// already being written is finished).
    pub fn set(&self, fault: Fault) {
        let mut st = self.shared.lock();
        match fault {
            // Healing: a black-holed connection stays dead.
            Fault::Pass => {
                let stalled: Vec<_> = st.links.iter().filter(|l| l.stalled.load(Ordering::Relaxed)).cloned().collect();
                for link in stalled {
                    reset(&mut st, &link);
                }
                for held in st.held.drain(..) {
                    reset_stream(&held);
                }
            }
            Fault::Partition => {
                for link in st.links.clone() {
                    reset(&mut st, &link);
                }
                for held in st.held.drain(..) {
                    reset_stream(&held);
                }
            }
            Fault::HalfOpen => {
                for link in &st.links {
                    link.stalled.store(true, Ordering::Relaxed);
                }
            }
        }
        st.fault = fault;
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Cuts the node off with resets ([`Fault::Partition`]).
    pub fn partition(&self) {
        self.set(Fault::Partition);
    }

    /// Black-holes the node's connections ([`Fault::HalfOpen`]).
    pub fn half_open(&self) {
        self.set(Fault::HalfOpen);
    }

    /// Back to [`Fault::Pass`].
    pub fn heal(&self) {
        self.set(Fault::Pass);
    }

    /// What the proxy does now.
    pub fn fault(&self) -> Fault {
        self.shared.lock().fault
    }

    /// Connections accepted so far (each attempt of the node to connect).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections reset as soon as they were accepted (made during a partition).
    pub fn reset_at_accept(&self) -> u64 {
        self.shared.reset_at_accept.load(Ordering::Relaxed)
    }

    /// Connections open now: forwarded, stalled or held.
    pub fn open(&self) -> usize {
        let st = self.shared.lock();
        st.links.len() + st.held.len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        let mut st = self.shared.lock();
        for link in st.links.clone() {
            reset(&mut st, &link);
        }
        for held in st.held.drain(..) {
            reset_stream(&held);
        }
        drop(st);
        self.shared.changed.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits while `link` is stalled; true if it may forward, false once it is closed.
    fn forwardable(&self, link: &Link) -> bool {
        let mut st = self.lock();
        while link.stalled.load(Ordering::Relaxed) && !link.closed.load(Ordering::Relaxed) {
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        !link.closed.load(Ordering::Relaxed)
    }

    /// A peer closed its side (or a write failed) while passing: the close is passed on
    /// (a FIN to both peers, or what the kernel makes of it).
    fn closed_by_peer(&self, link: &Arc<Link>) {
        let mut st = self.lock();
        if link.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        st.links.retain(|l| !Arc::ptr_eq(l, link));
        let _ = link.client.shutdown(Shutdown::Both);
        let _ = link.server.shutdown(Shutdown::Both);
        drop(st);
        self.changed.notify_all();
    }
}

/// Ends `link` with resets: `SO_LINGER` 0 on both sockets, so that their close (when the
/// last handle goes: the pumps', woken here by a shutdown of the reading side, which sends
/// nothing) is an abortive one.
fn reset(st: &mut State, link: &Arc<Link>) {
    if link.closed.swap(true, Ordering::Relaxed) {
        return;
    }
    st.links.retain(|l| !Arc::ptr_eq(l, link));
    for s in [&link.client, &link.server] {
        let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
        let _ = s.shutdown(Shutdown::Read);
    }
}

/// Prepares `s` to be reset when dropped.
fn reset_stream(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(client) = conn else { continue };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let fault = shared.lock().fault;
        if fault == Fault::Partition {
            shared.reset_at_accept.fetch_add(1, Ordering::Relaxed);
            reset_stream(&client);
            continue;
        }
        if fault == Fault::HalfOpen {
            let mut st = shared.lock();
            if st.fault == Fault::HalfOpen {
                st.held.push(client);
            } else {
                reset_stream(&client);
            }
            continue;
        }
        // The server down (killed by the test): the node sees its connection reset.
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2)) else {
            reset_stream(&client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let mut st = shared.lock();
        match st.fault {
            Fault::Pass => {}
            // Switched while connecting upstream: as if it came a moment later.
            Fault::HalfOpen => {
                st.held.push(client);
                continue;
            }
            Fault::Partition => {
                shared.reset_at_accept.fetch_add(1, Ordering::Relaxed);
                reset_stream(&client);
                reset_stream(&server);
                continue;
            }
        }
        let link = Arc::new(Link { client, server, stalled: AtomicBool::new(false), closed: AtomicBool::new(false) });
        st.links.push(link.clone());
        drop(st);
        for from_client in [true, false] {
            let (shared, link) = (shared.clone(), link.clone());
            std::thread::Builder::new()
                .name("fault-proxy-pump".into())
                .spawn(move || pump(&shared, &link, from_client))
                .expect("spawn a proxy pump");
        }
    }
}

/// Forwards one direction of `link` a chunk at a time, while the link passes.
fn pump(shared: &Shared, link: &Arc<Link>, from_client: bool) {
    let (mut from, mut to) = if from_client { (&link.client, &link.server) } else { (&link.server, &link.client) };
    let mut buf = vec![0; CHUNK];
    loop {
        let read = from.read(&mut buf);
        // Whatever came (bytes, an end, an error), nothing of it goes on while stalled:
        // not even a close.
        if !shared.forwardable(link) {
            return;
        }
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    shared.closed_by_peer(link);
}
