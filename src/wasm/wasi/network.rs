//! What a guest may do with `wasi:sockets`, from its grants (`network`, `outbound`, `listen`,
//! `loopback`), and the counting of every refusal as a capability denial.
//!
//! | use | allowed when |
//! |-----|--------------|
//! | create a TCP or UDP socket | any of the grants (refused otherwise, before a socket exists) |
//! | connect (TCP), send to or receive from (UDP) a public address | `network`, or an `outbound` entry that matches it (or the name it was looked up by) |
//! | the same with a restricted address (private, shared, documentation ranges) | an `outbound` address or network entry inside that restricted block |
//! | the same with an address of this machine | `loopback` |
//! | the same with multicast, broadcast, link-local or reserved addresses | never |
//! | the implicit bind of a connect or send (the unspecified address, port 0) | `network`, `outbound` or `loopback` |
//! | bind an address or port of its choice, listen, accept | `listen` |
//! | receive datagrams from anyone | `listen` |
//! | name lookup | `network`: any name; `outbound`: the names it lists (others are not looked up); `loopback`: `localhost` (answered without a lookup) |
//!
//! Which addresses are this machine's, public, restricted or never reached is
//! `address.rs`; the `outbound` entries are `outbound.rs`; lookups run on the host's own
//! bounded resolver (`lookup.rs`), and the addresses a listed name resolved to are what the
//! instance may then reach under that entry's ports.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use super::super::stats::WasmStats;
use super::address::{self, Reach};
use super::outbound::{OutboundRule, Ports, normalize_name};
use crate::sync::{Arc, Mutex, Ordering};

/// The network grants of a component.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NetworkPolicy {
    /// `network = true`: any public unicast address.
    pub(crate) public: bool,
    /// The outbound allow list.
    pub(crate) rules: Vec<OutboundRule>,
    pub(crate) listen: bool,
    pub(crate) loopback: bool,
}

impl NetworkPolicy {
    /// True when the guest may have sockets at all.
    pub(crate) fn sockets(&self) -> bool {
        self.reaches_out() || self.listen
    }

    /// True when the guest may connect or send somewhere.
    fn reaches_out(&self) -> bool {
        self.public || !self.rules.is_empty() || self.loopback
    }
}

/// How many addresses learned from lookups an instance remembers (the oldest go first).
const MAX_LEARNED: usize = 256;

/// One instance's network: its component's policy, and the public addresses its lookups of
/// listed names resolved to, with the ports of the entries that listed them.
pub(crate) struct Outbound {
    pub(crate) policy: NetworkPolicy,
    learned: Mutex<VecDeque<(IpAddr, Ports)>>,
    pub(crate) stats: Arc<WasmStats>,
}

/// What a name lookup does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LookupPlan {
    /// Answered without a lookup (an address literal, `localhost` with `loopback`).
    Answer(Vec<IpAddr>),
    /// Look this (normalized) name up.
    Resolve(String),
}

impl Outbound {
    pub(crate) fn new(policy: NetworkPolicy, stats: Arc<WasmStats>) -> Self {
        Self { policy, learned: Mutex::new(VecDeque::new()), stats }
    }

    /// Counts a refusal as a capability denial.
    pub(crate) fn deny(&self) {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `use_` of `addr` is allowed (module doc).
    pub(crate) fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let p = &self.policy;
        match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                p.listen || (addr.ip().is_unspecified() && addr.port() == 0 && p.reaches_out())
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => p.listen,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => self.reaches(addr),
            SocketAddrUse::UdpReceive => p.listen || self.reaches(addr),
        }
    }

    /// Whether the guest may connect or send to `addr`.
    fn reaches(&self, addr: SocketAddr) -> bool {
        let ip = canonical(addr.ip());
        let reach = address::classify(ip, &address::interfaces());
        match reach {
            Reach::ThisMachine => self.policy.loopback,
            Reach::Never(_) => false,
            Reach::Public if self.policy.public => true,
            Reach::Public | Reach::Restricted(_) => {
                self.policy.rules.iter().any(|r| r.allows_address(ip, addr.port(), reach))
                    || self.learned.lock().iter().any(|(known, ports)| *known == ip && ports.contains(addr.port()))
            }
        }
    }

    /// What a lookup of `name` does; `Err` refuses it (an access denial is counted).
    pub(crate) fn plan_lookup(&self, name: &str) -> Result<LookupPlan, ErrorCode> {
        let p = &self.policy;
        if !p.reaches_out() {
            self.deny();
            return Err(ErrorCode::AccessDenied);
        }
        let literal = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(LookupPlan::Answer(vec![ip]));
        }
        let name = normalize_name(name).map_err(|_| ErrorCode::InvalidArgument)?;
        if p.public || p.rules.iter().any(|r| r.name_ports(&name).is_some()) {
            return Ok(LookupPlan::Resolve(name));
        }
        if p.loopback && name == "localhost" {
            return Ok(LookupPlan::Answer(vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)]));
        }
        self.deny();
        Err(ErrorCode::AccessDenied)
    }

    /// The addresses `name` resolved to that the guest may be told of: each checked as an
    /// address the guest connects to would be (a listed name's public addresses are learned
    /// under the entry's ports). `Err(AccessDenied)` (counted) when it resolved only to
    /// addresses the guest may not reach.
    pub(crate) fn admit(&self, name: &str, resolved: Vec<IpAddr>) -> Result<Vec<IpAddr>, ErrorCode> {
        if resolved.is_empty() {
            return Err(ErrorCode::NameUnresolvable);
        }
        let interfaces = address::interfaces();
        let name_ports: Vec<Ports> = self.policy.rules.iter().filter_map(|r| r.name_ports(name)).collect();
        let mut admitted = Vec::with_capacity(resolved.len());
        for ip in resolved {
            let ip = canonical(ip);
            let reach = address::classify(ip, &interfaces);
            let by_address = self.policy.rules.iter().any(|r| !r.is_name() && r.admits_address(ip, reach));
            let public = reach == Reach::Public;
            if public && !self.policy.public && !name_ports.is_empty() {
                let mut learned = self.learned.lock();
                for ports in &name_ports {
                    if !learned.contains(&(ip, *ports)) {
                        if learned.len() == MAX_LEARNED {
                            learned.pop_front();
                        }
                        learned.push_back((ip, *ports));
                    }
                }
            }
            if (public && (self.policy.public || !name_ports.is_empty())) || by_address {
                admitted.push(ip);
            }
        }
        if admitted.is_empty() {
            self.deny();
            return Err(ErrorCode::AccessDenied);
        }
        Ok(admitted)
    }
}

/// `ip` with an IPv4 address carried in IPv6 (mapped, compatible, NAT64, 6to4) as that IPv4
/// address, as `address.rs` judges it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => address::embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Names [`GuardedSockets`] to the generated `add_to_linker` of the socket factories.
pub(crate) struct GuardedSocketsData;

impl HasData for GuardedSocketsData {
    type Data<'a> = GuardedSockets<'a>;
}

/// The socket factories' view of an instance: wasmtime-wasi's, whether the component may
/// have sockets, and the counter its refusals are charged to.
pub(crate) struct GuardedSockets<'a> {
    pub(crate) view: WasiSocketsCtxView<'a>,
    pub(crate) allowed: bool,
    pub(crate) stats: &'a WasmStats,
}

impl GuardedSockets<'_> {
    fn refuse<T>(&self) -> SocketResult<T> {
        self.stats.capability_denials.fetch_add(1, Ordering::Relaxed);
        Err(ErrorCode::AccessDenied.into())
    }
}

/// Required by the factories' bindings (their types come from `wasi:sockets/network`):
/// passed on to wasmtime-wasi.
impl network::Host for GuardedSockets<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.view, error)
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.view, err)
    }
}

impl network::HostNetwork for GuardedSockets<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.view, this)
    }
}

impl tcp_create_socket::Host for GuardedSockets<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        if !self.allowed {
            return self.refuse();
        }
        tcp_create_socket::Host::create_tcp_socket(&mut self.view, family)
    }
}

impl udp_create_socket::Host for GuardedSockets<'_> {
    fn create_udp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        if !self.allowed {
            return self.refuse();
        }
        udp_create_socket::Host::create_udp_socket(&mut self.view, family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("address"), port)
    }

    fn outbound(policy: NetworkPolicy) -> Outbound {
        Outbound::new(policy, Arc::default())
    }

    fn rules(list: &[&str]) -> Vec<OutboundRule> {
        list.iter().map(|r| OutboundRule::parse(r).expect("a rule")).collect()
    }

    const PUBLIC: NetworkPolicy = NetworkPolicy { public: true, rules: Vec::new(), listen: false, loopback: false };

    #[test]
    fn the_network_grant_reaches_public_unicast_addresses_only() {
        let out = outbound(PUBLIC);
        assert!(out.allows(at("1.1.1.1", 80), SocketAddrUse::TcpConnect));
        assert!(out.allows(at("2606:4700::1111", 443), SocketAddrUse::TcpConnect));
        assert!(out.allows(at("0.0.0.0", 0), SocketAddrUse::TcpBind), "the implicit bind of a connect");
        for never in [
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "::ffff:127.0.0.1",
            "255.255.255.255",
            "239.1.2.3",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fe80::1",
            "ff02::1",
            "10.1.2.3",
            "192.168.1.1",
            "fd00::1",
        ] {
            assert!(!out.allows(at(never, 80), SocketAddrUse::TcpConnect), "{never}");
            assert!(!out.allows(at(never, 5000), SocketAddrUse::UdpSend), "{never}");
        }
        assert!(!out.allows(at("0.0.0.0", 8080), SocketAddrUse::TcpBind), "a chosen port needs listen");
        assert!(!out.allows(at("0.0.0.0", 0), SocketAddrUse::TcpListen));
    }

    #[test]
    fn this_machines_own_addresses_need_the_loopback_grant() {
        let out = outbound(PUBLIC);
        for ip in address::interfaces().addresses {
            assert!(!out.allows(SocketAddr::new(ip, 4222), SocketAddrUse::TcpConnect), "{ip}");
        }
        let lo = outbound(NetworkPolicy { loopback: true, ..NetworkPolicy::default() });
        assert!(lo.allows(at("127.0.0.1", 4222), SocketAddrUse::TcpConnect));
        assert!(!lo.allows(at("1.1.1.1", 80), SocketAddrUse::TcpConnect));
        assert!(!lo.allows(at("239.1.2.3", 5000), SocketAddrUse::UdpSend), "loopback is no multicast grant");
    }

    #[test]
    fn an_allow_list_reaches_its_entries_and_nothing_else() {
        let out =
            outbound(NetworkPolicy { rules: rules(&["10.1.0.0/16:5432", "203.0.113.9:8080"]), ..Default::default() });
        assert!(out.allows(at("10.1.2.3", 5432), SocketAddrUse::TcpConnect));
        assert!(!out.allows(at("10.1.2.3", 22), SocketAddrUse::TcpConnect));
        assert!(!out.allows(at("10.2.0.1", 5432), SocketAddrUse::TcpConnect));
        assert!(out.allows(at("203.0.113.9", 8080), SocketAddrUse::TcpConnect));
        assert!(!out.allows(at("1.1.1.1", 443), SocketAddrUse::TcpConnect), "no public address without network");
        assert!(out.allows(at("0.0.0.0", 0), SocketAddrUse::TcpBind));
    }

    #[test]
    fn a_listed_name_is_looked_up_and_its_public_addresses_reached_on_its_ports() {
        let out = outbound(NetworkPolicy { rules: rules(&["api.example.com:443"]), ..Default::default() });
        assert_eq!(out.plan_lookup("API.example.com."), Ok(LookupPlan::Resolve("api.example.com".into())));
        assert_eq!(out.plan_lookup("other.example.com"), Err(ErrorCode::AccessDenied), "not looked up");
        let resolved =
            vec!["1.1.1.1".parse().unwrap(), "169.254.169.254".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        assert_eq!(out.admit("api.example.com", resolved), Ok(vec!["1.1.1.1".parse().unwrap()]));
        assert!(out.allows(at("1.1.1.1", 443), SocketAddrUse::TcpConnect));
        assert!(!out.allows(at("1.1.1.1", 80), SocketAddrUse::TcpConnect), "the entry's port only");
        let rebound = vec!["169.254.169.254".parse().unwrap()];
        assert_eq!(out.admit("api.example.com", rebound), Err(ErrorCode::AccessDenied));
        assert_eq!(out.stats.capability_denials.load(Ordering::Relaxed), 2, "the unlisted name and the rebinding");
    }

    #[test]
    fn lookups_follow_the_grants() {
        assert_eq!(outbound(NetworkPolicy::default()).plan_lookup("example.com"), Err(ErrorCode::AccessDenied));
        let lo = outbound(NetworkPolicy { loopback: true, ..NetworkPolicy::default() });
        assert!(matches!(lo.plan_lookup("localhost"), Ok(LookupPlan::Answer(a)) if a.len() == 2));
        assert_eq!(lo.plan_lookup("example.com"), Err(ErrorCode::AccessDenied), "no lookup leaves the machine");
        assert_eq!(outbound(PUBLIC).plan_lookup("example.com"), Ok(LookupPlan::Resolve("example.com".into())));
        assert_eq!(outbound(PUBLIC).plan_lookup("[::1]"), Ok(LookupPlan::Answer(vec!["::1".parse().unwrap()])));
        assert_eq!(outbound(PUBLIC).plan_lookup("bad name"), Err(ErrorCode::InvalidArgument));
    }
}
