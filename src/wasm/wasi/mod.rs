//! WASI 0.2 for guests: what a component may reach through it ([`WasiGrants`], deny by
//! default), the `WasiCtx` each instance gets from its grants, and the linker wiring, in
//! which every call that may wait is bounded by the guest call's deadline.
//!
//! The interfaces are wasmtime-wasi's and wasmtime-wasi-http's (their synchronous bindings,
//! on our workers), with four of them wrapped: `wasi:io/poll` and `wasi:io/streams`
//! (`bounded.rs`) and `wasi:filesystem/types` (`bounded_fs.rs`) end every wait at the
//! deadline, the socket factories (`network.rs`) refuse a component without a network
//! grant, and name lookups run on the host's own bounded resolver under the component's
//! policy (`lookup.rs`). Every component gets all of them, so that a component built by a real toolchain
//! (componentize-py, componentize-js, wasi-libc through the preview1 adapter), which
//! imports most of WASI whatever it uses, links and instantiates; what it can *do* with
//! them is what its grants allow:
//!
//! | interface | without a grant | with one |
//! |-----------|-----------------|----------|
//! | clocks, random | available | |
//! | `cli/environment` | no variables, no arguments | the granted `env` and `args` |
//! | stdin | empty | |
//! | stdout, stderr | the log sink, as escaped `stdout` / `stderr` lines, within the call's output budget (`output.rs`) | |
//! | filesystem | no directory at all (every path fails to open) | the granted `dirs`, each confined to itself, read-only or read-write |
//! | sockets | no socket can be created (`access-denied`, counted as a capability denial) | `network`: connect to public addresses; `outbound`: to the listed hosts and networks; `loopback`: to this machine; `listen`: bind, listen, accept; never multicast, broadcast or link-local (`network.rs`, `address.rs`) |
//! | name lookup | refused (`access-denied`) | `network`: any name; `outbound`: the listed names only; `loopback`: `localhost`; on the host's resolver, bounded per component (`lookup.rs`) |
//! | outgoing HTTP | refused (`HTTP-request-denied`, counted) | not offered in this version |
//!
//! Every instance's resource table (streams, descriptors, sockets, pollables) is capped at
//! [`crate::WasmOptions::max_resources`]: a guest cannot hold more host handles (and so file
//! descriptors) than that.

mod address;
mod bounded;
mod bounded_fs;
mod dirs;
mod lookup;
mod network;
mod outbound;
pub(crate) mod output;

use std::path::{Path, PathBuf};

use wasmtime::component::Linker;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpHooks;

pub(crate) use bounded::BlockedPastDeadline;
pub(crate) use dirs::{ClaimGuard, DirClaims, OpenedDirs};
pub(crate) use lookup::{GuardedLookup, LookupBudget, Resolver};
use network::NetworkPolicy;
pub(crate) use network::Outbound;
pub use outbound::OutboundRule;
use output::GuestStdio;

use super::state::HostState;
use super::stats::WasmStats;
use super::trust;
use crate::sync::{Arc, Ordering};

/// What a component may reach through WASI beyond the basics every component gets (clocks,
/// random, an empty stdin, stdout and stderr into the log sink). Nothing by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WasiGrants {
    /// Environment variables the guest sees (`wasi:cli/environment`). Default: none.
    pub env: Vec<(String, String)>,
    /// Arguments the guest sees. Default: none.
    pub args: Vec<String>,
    /// Host directories the guest may open, each under a path of its own choosing inside
    /// the guest and confined to itself (no `..` out of it, no symlink out of it). No two
    /// may overlap (one inside the other), nor overlap another component's of the same host
    /// unless both are read-only; none may hold the host's storage file, nor, read-write,
    /// its compile cache. Each is opened once, when the component is registered, without
    /// following a symbolic link on any component of its path (a path through a link is
    /// refused), and every instance of the component (after a restart, an upgrade) gets
    /// that same directory, whatever has been renamed or linked in its place since.
    pub dirs: Vec<DirGrant>,
    /// Outbound network: TCP connections and UDP datagrams to public unicast addresses, and
    /// name lookups of any name. Never multicast, broadcast, link-local (where cloud
    /// machines serve their metadata and credentials) or reserved addresses; not private,
    /// shared or documentation ranges (see `outbound`); not this machine (see `loopback`);
    /// not listening (see `listen`). IPv6 forms that carry an IPv4 address are judged as
    /// that address. Default: off.
    pub network: bool,
    /// Exactly where the guest may connect or send, as Spin's `allowed_outbound_hosts`:
    /// `api.example.com:443`, `*.example.com:443`, `203.0.113.9:8080`, `10.1.0.0/16:5432`,
    /// `[2001:db8::/32]:*` ([`OutboundRule`]). Names are resolved by the host, only the ones
    /// listed are looked up, and each address they resolve to is checked as any address is
    /// (a listed name that resolves to a link-local or private address does not reach it).
    /// An address or network entry inside a private (or shared, or documentation) range
    /// reaches that range. Alone, the list is all the guest may reach; with `network`, it
    /// adds its private ranges. Default: empty.
    pub outbound: Vec<OutboundRule>,
    /// Listening: bind an address and port of the guest's choice, listen and accept TCP
    /// connections, receive datagrams from anyone. Default: off.
    pub listen: bool,
    /// Connections and datagrams to this machine: loopback, the unspecified address, and
    /// every address of its interfaces (where local services such as a NATS server or the
    /// metrics endpoint answer). Default: off.
    pub loopback: bool,
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
    /// exists and is a directory, has a guest path, and overlaps no other (a read-only
    /// grant inside a read-write one would be writable through it, and a guest could
    /// replace a nested grant's directory with a link out of its grants).
    ///
    /// # Errors
    /// A sentence naming the directory and what is wrong with it.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut seen: Vec<(PathBuf, &DirGrant)> = Vec::with_capacity(self.dirs.len());
        for dir in &self.dirs {
            match std::fs::metadata(&dir.host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("granted directory {} is not a directory", dir.host.display())),
                Err(e) => return Err(format!("granted directory {}: {e}", dir.host.display())),
            }
            if dir.guest.is_empty() {
                return Err(format!("granted directory {} has an empty guest path", dir.host.display()));
            }
            let canonical = std::fs::canonicalize(&dir.host)
                .map_err(|e| format!("granted directory {}: {e}", dir.host.display()))?;
            for (other, grant) in &seen {
                if trust::covers(other, &canonical) || trust::covers(&canonical, other) {
                    return Err(format!(
                        "granted directories {} and {} overlap (one is inside the other): grant each \
                         directory once, with the widest access it needs",
                        grant.host.display(),
                        dir.host.display()
                    ));
                }
            }
            seen.push((canonical, dir));
        }
        Ok(())
    }

    /// Refuses a granted directory that holds the storage file (a guest could read and
    /// change every namespace in it, not only its own), or, read-write, the compile cache
    /// (a guest could plant native code that the host then runs outside the sandbox).
    ///
    /// # Errors
    /// A sentence naming the grant and what it reaches.
    pub(crate) fn check_reach(&self, cache_dir: Option<&Path>, storage_file: Option<&Path>) -> Result<(), String> {
        let cache = cache_dir.map(trust::canonical);
        let storage = storage_file.map(trust::canonical);
        for dir in &self.dirs {
            let granted = trust::canonical(&dir.host);
            if let Some(storage) = storage.as_deref().filter(|s| trust::covers(&granted, s)) {
                return Err(format!(
                    "granted directory {} holds the storage file {}: a guest may reach storage only \
                     through its own namespace",
                    dir.host.display(),
                    storage.display()
                ));
            }
            if let Some(cache) = cache.as_deref().filter(|c| dir.writable && trust::covers(&granted, c)) {
                return Err(format!(
                    "granted directory {} is read-write and holds the compile cache {}, whose files the \
                     host runs as native code",
                    dir.host.display(),
                    cache.display()
                ));
            }
        }
        Ok(())
    }

    /// True when the component may block on host I/O through WASI (files, sockets).
    pub(crate) fn blocks_on_io(&self) -> bool {
        !self.dirs.is_empty() || self.may_have_sockets()
    }

    /// True when the component may create sockets at all.
    pub(crate) fn may_have_sockets(&self) -> bool {
        self.network || !self.outbound.is_empty() || self.listen || self.loopback
    }

    pub(crate) fn policy(&self) -> NetworkPolicy {
        NetworkPolicy {
            public: self.network,
            rules: self.outbound.clone(),
            listen: self.listen,
            loopback: self.loopback,
        }
    }

    /// The WASI context of one instance, with the directories opened at registration and
    /// the instance's network (its sockets checked against `outbound.policy`).
    ///
    /// # Errors
    /// A granted directory that can no longer be reopened from its handle: the instance is
    /// not made.
    pub(crate) fn context(
        &self,
        dirs: &OpenedDirs,
        stdio: &GuestStdio,
        outbound: &Arc<Outbound>,
    ) -> Result<WasiCtx, String> {
        let mut b = WasiCtxBuilder::new();
        b.envs(&self.env);
        b.args(&self.args);
        b.stdout(stdio.stdout());
        b.stderr(stdio.stderr());
        dirs.preopen(&mut b)?;
        let sockets = outbound.policy.sockets();
        // The factories refuse a component without sockets first (`network.rs`), and count
        // it; these are a second line. Lookups are ours (`lookup.rs`), not wasmtime-wasi's.
        b.allow_tcp(sockets).allow_udp(sockets).allow_ip_name_lookup(false);
        let outbound = outbound.clone();
        b.socket_addr_check(move |addr, use_| {
            let allowed = outbound.allows(addr, use_);
            if !allowed {
                outbound.deny();
            }
            Box::pin(async move { allowed })
        });
        Ok(b.build())
    }
}

/// Defines WASI 0.2 in `linker`: wasmtime-wasi's synchronous bindings, interface by
/// interface as `wasmtime_wasi::p2::add_to_linker_sync` does, with the waiting interfaces
/// bounded by the deadline and the socket factories guarded (module doc).
pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sync as sync_wasi;
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets};

    type S = HostState;
    clocks::wall_clock::add_to_linker::<S, WasiClocks>(l, WasiClocksView::clocks)?;
    clocks::monotonic_clock::add_to_linker::<S, WasiClocks>(l, WasiClocksView::clocks)?;
    filesystem::preopens::add_to_linker::<S, WasiFilesystem>(l, WasiFilesystemView::filesystem)?;
    random::random::add_to_linker::<S, WasiRandom>(l, WasiRandomView::random)?;
    random::insecure::add_to_linker::<S, WasiRandom>(l, WasiRandomView::random)?;
    random::insecure_seed::add_to_linker::<S, WasiRandom>(l, WasiRandomView::random)?;
    cli::exit::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::environment::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::stdin::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::stdout::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::stderr::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::terminal_input::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::terminal_output::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::terminal_stdin::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::terminal_stdout::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    cli::terminal_stderr::add_to_linker::<S, WasiCli>(l, WasiCliView::cli)?;
    sockets::tcp_create_socket::add_to_linker::<S, network::GuardedSocketsData>(l, HostState::guarded_sockets)?;
    sockets::instance_network::add_to_linker::<S, WasiSockets>(l, WasiSocketsView::sockets)?;
    let options = sync_wasi::LinkOptions::default();
    sockets::network::add_to_linker::<S, WasiSockets>(l, &(&options).into(), WasiSocketsView::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<S, lookup::GuardedLookupData>(l, HostState::guarded_lookup)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<S, bounded::TableData>(l, HostState::table)?;
    sync_wasi::io::poll::add_to_linker::<S, bounded::BoundedIoData>(l, HostState::bounded_io)?;
    sync_wasi::io::streams::add_to_linker::<S, bounded::BoundedIoData>(l, HostState::bounded_io)?;
    sync_wasi::filesystem::types::add_to_linker::<S, bounded_fs::BoundedFsData>(l, HostState::bounded_fs)?;
    sync_wasi::sockets::tcp::add_to_linker::<S, WasiSockets>(l, WasiSocketsView::sockets)?;
    sync_wasi::sockets::udp::add_to_linker::<S, WasiSockets>(l, WasiSocketsView::sockets)?;
    sync_wasi::sockets::udp_create_socket::add_to_linker::<S, network::GuardedSocketsData>(
        l,
        HostState::guarded_sockets,
    )?;
    Ok(())
}

pub(crate) use bounded::BoundedIo;
pub(crate) use bounded_fs::BoundedFs;
pub(crate) use network::GuardedSockets;

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
