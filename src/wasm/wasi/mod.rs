//! WASI 0.2 for guests: what a component may reach through it ([`WasiGrants`], deny by
//! default), the `WasiCtx` each instance gets from its grants, where its stdout and stderr
//! go (the host's log sink, line by line, tagged with the component's id), and the refusal
//! of outgoing HTTP.
//!
//! The interfaces themselves are wasmtime-wasi's and wasmtime-wasi-http's (their sync
//! linkers, on our workers). Every component gets them, so that a component built by a real
//! toolchain (componentize-py, componentize-js, wasi-libc through the preview1 adapter),
//! which imports most of WASI whatever it uses, links and instantiates; what it can *do*
//! with them is what its grants allow:
//!
//! | interface | without a grant | with one |
//! |-----------|-----------------|----------|
//! | clocks, random | available | |
//! | `cli/environment` | no variables, no arguments | the granted `env` and `args` |
//! | stdin | empty | |
//! | stdout, stderr | the log sink, as `stdout` / `stderr` lines | |
//! | filesystem | no directory at all (every path fails to open) | the granted `dirs`, each confined to itself, read-only or read-write |
//! | sockets | every address refused (counted as a capability denial); no name lookup | TCP and UDP to any address, name lookup |
//! | outgoing HTTP | refused (`HTTP-request-denied`, counted) | not offered in this version |

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpHooks;

use super::imports::logging::LogSink;
use super::stats::WasmStats;
use crate::id::ComponentId;
use crate::sync::{Arc, Mutex, Ordering};

/// What a component may reach through WASI beyond the basics every component gets (clocks,
/// random, an empty stdin, stdout and stderr into the log sink). Nothing by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WasiGrants {
    /// Environment variables the guest sees (`wasi:cli/environment`). Default: none.
    pub env: Vec<(String, String)>,
    /// Arguments the guest sees. Default: none.
    pub args: Vec<String>,
    /// Host directories the guest may open, each under a path of its own choosing inside
    /// the guest and confined to itself (no `..` out of it, no symlink out of it).
    pub dirs: Vec<DirGrant>,
    /// Outbound network: TCP and UDP to any address, and name lookups. Default: off (every
    /// socket address is refused, and the refusal counted as a capability denial).
    pub network: bool,
}

/// A host directory granted to a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it (`"/data"`, `"."`).
    pub guest: String,
    /// False: the guest may read and list it, not change it.
    pub writable: bool,
}

impl WasiGrants {
    /// Checks what can be checked before any instance is made: every granted directory
    /// exists and is a directory.
    ///
    /// # Errors
    /// A sentence naming the directory and what is wrong with it.
    pub(crate) fn check(&self) -> Result<(), String> {
        for dir in &self.dirs {
            match std::fs::metadata(&dir.host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("granted directory {} is not a directory", dir.host.display())),
                Err(e) => return Err(format!("granted directory {}: {e}", dir.host.display())),
            }
            if dir.guest.is_empty() {
                return Err(format!("granted directory {} has an empty guest path", dir.host.display()));
            }
        }
        Ok(())
    }

    /// The WASI context of one instance of component `id`.
    ///
    /// # Errors
    /// A granted directory that cannot be opened (it was checked at registration, but may
    /// have gone since): the instance is not made.
    pub(crate) fn context(&self, stdio: &GuestStdio, stats: &Arc<WasmStats>) -> Result<WasiCtx, String> {
        let mut b = WasiCtxBuilder::new();
        b.envs(&self.env);
        b.args(&self.args);
        b.stdout(stdio.stdout.clone());
        b.stderr(stdio.stderr.clone());
        for dir in &self.dirs {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            b.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| format!("cannot open granted directory {}: {e:#}", dir.host.display()))?;
        }
        // The socket interfaces are on so that a refusal is a clear error (and is counted),
        // not an unsupported operation; every address is then checked.
        b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(self.network);
        let network = self.network;
        let stats = stats.clone();
        b.socket_addr_check(move |_addr, _use| {
            if !network {
                stats.capability_denials.fetch_add(1, Ordering::Relaxed);
            }
            Box::pin(async move { network })
        });
        Ok(b.build())
    }
}

/// The longest line a guest's stdout or stderr emits, in bytes; a longer one is split.
const MAX_LINE_BYTES: usize = 4096;

/// An instance's stdout and stderr.
pub(crate) struct GuestStdio {
    stdout: GuestOutput,
    stderr: GuestOutput,
}

impl GuestStdio {
    pub(crate) fn new(id: &ComponentId, log: &LogSink) -> Self {
        Self {
            stdout: GuestOutput::new(id.clone(), "stdout", log.clone()),
            stderr: GuestOutput::new(id.clone(), "stderr", log.clone()),
        }
    }

    /// Emits the unfinished line of each stream, if any (at the end of a guest call).
    pub(crate) fn flush(&self) {
        self.stdout.flush_partial();
        self.stderr.flush_partial();
    }
}

/// A guest's stdout or stderr: bytes gathered into lines, each handed to the log sink as
/// `(component, "stdout" | "stderr", line)`. Lines are capped; an unfinished line is
/// emitted when the guest call that wrote it ends (not at the guest's flushes: runtimes
/// flush after every write, mid-line).
#[derive(Clone)]
struct GuestOutput {
    id: ComponentId,
    stream: &'static str,
    sink: LogSink,
    /// Bytes of the current, unfinished line (shared by every handle the guest opens).
    pending: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    fn new(id: ComponentId, stream: &'static str, sink: LogSink) -> Self {
        Self { id, stream, sink, pending: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Appends `bytes`, emitting every complete (or over-long) line.
    fn take(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock();
        for &b in bytes {
            if b == b'\n' {
                self.emit(&mut pending);
            } else {
                pending.push(b);
                if pending.len() >= MAX_LINE_BYTES {
                    self.emit(&mut pending);
                }
            }
        }
    }

    /// Emits the pending bytes as one line (if any).
    fn flush_partial(&self) {
        let mut pending = self.pending.lock();
        if !pending.is_empty() {
            self.emit(&mut pending);
        }
    }

    fn emit(&self, pending: &mut Vec<u8>) {
        let line = String::from_utf8_lossy(pending);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        (self.sink)(&self.id, self.stream, line);
        pending.clear();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Always writable; every write lands at once (the sink is called synchronously).
#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Nothing is buffered but the current line, which waits for its newline.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE_BYTES)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }
}

/// The `wasi:http` hooks of every instance: outgoing requests are refused with
/// `HTTP-request-denied`, and the refusal is counted as a capability denial.
pub(crate) struct DenyHttp {
    pub(crate) stats: Arc<WasmStats>,
}

impl WasiHttpHooks for DenyHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
