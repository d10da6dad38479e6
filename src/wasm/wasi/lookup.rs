//! `wasi:sockets/ip-name-lookup` on the host's own bounded resolver.
//!
//! wasmtime-wasi runs each lookup as a blocking task on the thread pool that every
//! component's file operations also use, and dropping the lookup's stream does not stop
//! it: a guest looping lookups of a name whose server never answers (each held for the
//! resolver's whole timeout) fills that pool, and another component's `read` waits past its
//! deadline. So lookups run here instead, apart from file I/O:
//!
//! - on [`RESOLVER_THREADS`] threads of the host's own, started at the first lookup, fed by
//!   a queue of [`RESOLVER_QUEUE`] lookups; a lookup that finds the queue full is refused
//!   at once (`temporary-resolver-failure`);
//! - at most [`LOOKUPS_IN_FLIGHT`] of one component's lookups are queued or running at a
//!   time (a lookup is "in flight" until its `getaddrinfo` returns, whether or not the guest
//!   still holds its stream), and at most [`LOOKUPS_PER_SECOND`] start per second; past
//!   either, a lookup is refused at once (`temporary-resolver-failure`, counted as a
//!   capability denial). One component thus holds at most [`LOOKUPS_IN_FLIGHT`] of the
//!   resolver's threads;
//! - what may be looked up, and which of the answers the guest is told, is the component's
//!   network policy (`network.rs`): a name not on its allow list is not looked up at all.
//!
//! The guest waits for an answer through the stream's pollable, like any other wait bounded
//! by its call's deadline (`bounded.rs`).

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host, HostResolveAddressStream, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi_io::poll::{DynPollable, Pollable, subscribe};

use super::network::{LookupPlan, Outbound};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// Threads of a host's resolver.
pub(crate) const RESOLVER_THREADS: usize = 8;
/// Lookups a host's resolver queues before refusing more.
pub(crate) const RESOLVER_QUEUE: usize = 64;
/// Lookups of one component queued or running at a time.
pub(crate) const LOOKUPS_IN_FLIGHT: usize = 2;
/// Lookups one component may start per second.
pub(crate) const LOOKUPS_PER_SECOND: u32 = 20;

/// The answer to one lookup: the addresses the guest may be told of, or why none.
type Answer = Result<Vec<IpAddr>, ErrorCode>;

/// One lookup, for a resolver thread.
struct Job {
    name: String,
    outbound: Arc<Outbound>,
    budget: Arc<LookupBudget>,
    answer: tokio::sync::oneshot::Sender<Answer>,
}

/// A host's resolver: threads started at the first lookup, ending when the host and every
/// instance of its components are gone (the queue's last sender with them).
#[derive(Default)]
pub(crate) struct Resolver {
    queue: OnceLock<crossbeam_channel::Sender<Job>>,
}

impl Resolver {
    fn submit(&self, job: Job) -> Result<(), Job> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::bounded::<Job>(RESOLVER_QUEUE);
            for n in 0..RESOLVER_THREADS {
                let rx = rx.clone();
                // A thread that cannot be started leaves the others to serve the queue; with
                // none, lookups wait in the queue until their guest's deadline.
                let _ = std::thread::Builder::new().name(format!("switchyard-resolver-{n}")).spawn(move || {
                    for job in rx {
                        resolve(job);
                    }
                });
            }
            tx
        });
        queue.try_send(job).map_err(|e| e.into_inner())
    }
}

/// Looks `job.name` up with the system's resolver and answers with what the policy admits.
fn resolve(job: Job) {
    let answer = match (job.name.as_str(), 0).to_socket_addrs() {
        Ok(found) => {
            let mut addrs: Vec<IpAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a.ip()) {
                    addrs.push(a.ip());
                }
            }
            job.outbound.admit(&job.name, addrs)
        }
        Err(_) => Err(ErrorCode::NameUnresolvable),
    };
    job.budget.in_flight.fetch_sub(1, Ordering::Relaxed);
    // The guest may have dropped its stream: then nobody wants the answer.
    let _ = job.answer.send(answer);
}

/// One component's lookups in flight and its rate (module doc); shared by its instances.
pub(crate) struct LookupBudget {
    in_flight: AtomicUsize,
    /// The start of the current one-second window, and lookups started in it.
    window: Mutex<(Instant, u32)>,
}

impl Default for LookupBudget {
    fn default() -> Self {
        Self { in_flight: AtomicUsize::new(0), window: Mutex::new((Instant::now(), 0)) }
    }
}

impl LookupBudget {
    /// Takes one lookup from the budget, or `false` when it is spent.
    fn take(&self) -> bool {
        // Relaxed: a count, read and changed only through these read-modify-writes.
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= LOOKUPS_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let mut window = self.window.lock();
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= LOOKUPS_PER_SECOND {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        window.1 += 1;
        true
    }
}

/// The stream a guest reads a lookup's addresses from (stands in the resource table where
/// wasmtime-wasi's `ResolveAddressStream` would: only this file reads it).
struct LookupStream {
    pending: Option<tokio::sync::oneshot::Receiver<Answer>>,
    answer: Option<Result<std::vec::IntoIter<IpAddr>, ErrorCode>>,
}

impl LookupStream {
    fn answered(answer: Answer) -> Self {
        Self { pending: None, answer: Some(answer.map(Vec::into_iter)) }
    }

    /// The answer if it has come, without waiting.
    fn poll_answer(&mut self) -> Option<&mut Result<std::vec::IntoIter<IpAddr>, ErrorCode>> {
        if self.answer.is_none() {
            let rx = self.pending.as_mut()?;
            let answer = match rx.try_recv() {
                Ok(answer) => answer,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return None,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Err(ErrorCode::TemporaryResolverFailure),
            };
            self.pending = None;
            self.answer = Some(answer.map(Vec::into_iter));
        }
        self.answer.as_mut()
    }
}

#[async_trait::async_trait]
impl Pollable for LookupStream {
    async fn ready(&mut self) {
        if self.answer.is_some() {
            return;
        }
        if let Some(rx) = self.pending.as_mut() {
            let answer = rx.await.unwrap_or(Err(ErrorCode::TemporaryResolverFailure));
            self.pending = None;
            self.answer = Some(answer.map(Vec::into_iter));
        }
    }
}

/// Names [`GuardedLookup`] to the generated `add_to_linker` of `ip-name-lookup`.
pub(crate) struct GuardedLookupData;

impl HasData for GuardedLookupData {
    type Data<'a> = GuardedLookup<'a>;
}

/// The lookup calls' view of an instance: wasmtime-wasi's sockets view (its resource
/// table), network policy, its component's lookup budget and the host's resolver.
pub(crate) struct GuardedLookup<'a> {
    pub(crate) view: WasiSocketsCtxView<'a>,
    pub(crate) outbound: &'a Arc<Outbound>,
    pub(crate) budget: &'a Arc<LookupBudget>,
    pub(crate) resolver: &'a Resolver,
}

/// The table entry behind a guest's `resolve-address-stream` handle.
fn ours(r: &Resource<ResolveAddressStream>) -> Resource<LookupStream> {
    if r.owned() { Resource::new_own(r.rep()) } else { Resource::new_borrow(r.rep()) }
}

/// Required by the lookup's bindings (their types come from `wasi:sockets/network`):
/// passed on to wasmtime-wasi.
impl network::Host for GuardedLookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.view, error)
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.view, err)
    }
}

impl network::HostNetwork for GuardedLookup<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.view, this)
    }
}

impl Host for GuardedLookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        // The network resource is the capability to look up, as in wasmtime-wasi.
        self.view.table.get(&network)?;
        let stream = match self.outbound.plan_lookup(&name)? {
            LookupPlan::Answer(addrs) => LookupStream::answered(Ok(addrs)),
            LookupPlan::Resolve(name) => {
                if !self.budget.take() {
                    self.outbound.deny();
                    return Err(ErrorCode::TemporaryResolverFailure.into());
                }
                let (answer, rx) = tokio::sync::oneshot::channel();
                let job = Job { name, outbound: self.outbound.clone(), budget: self.budget.clone(), answer };
                if let Err(job) = self.resolver.submit(job) {
                    job.budget.in_flight.fetch_sub(1, Ordering::Relaxed);
                    return Err(ErrorCode::TemporaryResolverFailure.into());
                }
                LookupStream { pending: Some(rx), answer: None }
            }
        };
        let ours = self.view.table.push(stream)?;
        Ok(Resource::new_own(ours.rep()))
    }
}

impl HostResolveAddressStream for GuardedLookup<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let stream = self.view.table.get_mut(&ours(&stream))?;
        match stream.poll_answer() {
            None => Err(ErrorCode::WouldBlock.into()),
            Some(Ok(addrs)) => Ok(addrs.next().map(IpAddress::from)),
            Some(Err(e)) => Err((*e).into()),
        }
    }

    fn subscribe(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.view.table, ours(&stream))
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.view.table.delete(ours(&stream))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_has_at_most_its_lookups_in_flight_and_per_second() {
        let budget = LookupBudget::default();
        for _ in 0..LOOKUPS_IN_FLIGHT {
            assert!(budget.take());
        }
        assert!(!budget.take(), "in flight");
        budget.in_flight.store(0, Ordering::Relaxed);
        let mut taken = LOOKUPS_IN_FLIGHT as u32;
        while budget.take() {
            budget.in_flight.fetch_sub(1, Ordering::Relaxed);
            taken += 1;
        }
        assert_eq!(taken, LOOKUPS_PER_SECOND, "per second");
    }
}
