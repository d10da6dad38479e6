//! What a guest may do with `wasi:sockets`, from its grants (`network`, `listen`,
//! `loopback`), and the counting of every refusal as a capability denial.
//!
//! | use | allowed when |
//! |-----|--------------|
//! | create a TCP or UDP socket | any of the three grants (refused otherwise, before a socket exists) |
//! | connect (TCP), send to or receive from (UDP) an address of another machine | `network` |
//! | the same with an address of this machine | `loopback` |
//! | the implicit bind of a connect or send (the unspecified address, port 0) | `network` or `loopback` |
//! | bind an address or port of its choice, listen, accept | `listen` |
//! | receive datagrams from anyone | `listen` |
//! | name lookup | `network` or `loopback` |
//!
//! "This machine" is wider than loopback: the unspecified address (a connect to `0.0.0.0`
//! reaches the local host), broadcast, and every address assigned to one of this
//! machine's interfaces (a service bound to `0.0.0.0`, such as a NATS server or a metrics
//! endpoint, answers on each of them), read afresh at each check. IPv4 addresses mapped
//! into IPv6 are judged as the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::bindings::sync::sockets::udp_create_socket;
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use super::super::stats::WasmStats;
use crate::sync::Ordering;

/// The three network grants of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NetworkPolicy {
    pub(crate) network: bool,
    pub(crate) listen: bool,
    pub(crate) loopback: bool,
}

impl NetworkPolicy {
    /// True when the guest may have sockets at all.
    pub(crate) fn sockets(self) -> bool {
        self.network || self.listen || self.loopback
    }

    /// True when the guest may look names up.
    pub(crate) fn name_lookup(self) -> bool {
        self.network || self.loopback
    }

    /// Whether `use_` of `addr` is allowed (module doc).
    pub(crate) fn allows(self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let reach = |addr: SocketAddr| if is_this_machine(addr.ip()) { self.loopback } else { self.network };
        match use_ {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                self.listen || (addr.ip().is_unspecified() && addr.port() == 0 && (self.network || self.loopback))
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => self.listen,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => reach(addr),
            SocketAddrUse::UdpReceive => self.listen || reach(addr),
        }
    }
}

/// True for an address that reaches this machine (module doc).
pub(crate) fn is_this_machine(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let special = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.octets()[0] == 0 || v4 == Ipv4Addr::BROADCAST,
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
    };
    special || interface_addresses().contains(&ip)
}

/// The addresses assigned to this machine's interfaces now.
#[cfg(unix)]
fn interface_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `getifaddrs` writes a list head into `list`, to be released with
    // `freeifaddrs`; on failure it returns -1 and writes nothing we read.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list `getifaddrs` returned, not yet freed; its
        // `ifa_addr` is null or points to a `sockaddr` of the family it names, which is
        // read as the matching `sockaddr_in` / `sockaddr_in6`.
        unsafe {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        found.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        found.push(IpAddr::V6(sin6.sin6_addr.s6_addr.into()));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
    }
    // SAFETY: `list` came from a successful `getifaddrs` and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(not(unix))]
fn interface_addresses() -> Vec<IpAddr> {
    Vec::new()
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
    use std::net::Ipv6Addr;

    use super::*;

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("address"), port)
    }

    const OUT: NetworkPolicy = NetworkPolicy { network: true, listen: false, loopback: false };

    #[test]
    fn outbound_reaches_other_machines_only() {
        assert!(OUT.allows(at("192.0.2.7", 80), SocketAddrUse::TcpConnect));
        assert!(OUT.allows(at("0.0.0.0", 0), SocketAddrUse::TcpBind), "the implicit bind of a connect");
        for local in ["127.0.0.1", "127.8.9.1", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "255.255.255.255"] {
            assert!(!OUT.allows(at(local, 4222), SocketAddrUse::TcpConnect), "{local}");
            assert!(!OUT.allows(at(local, 53), SocketAddrUse::UdpSend), "{local}");
        }
        assert!(!OUT.allows(at("0.0.0.0", 8080), SocketAddrUse::TcpBind), "a chosen port needs listen");
        assert!(!OUT.allows(at("192.0.2.7", 0), SocketAddrUse::UdpBind), "a chosen address needs listen");
        assert!(!OUT.allows(at("0.0.0.0", 0), SocketAddrUse::TcpListen));
        assert!(!OUT.allows(at("192.0.2.7", 5555), SocketAddrUse::TcpAccept));
    }

    #[test]
    fn this_machines_own_addresses_count_as_local() {
        for ip in interface_addresses() {
            assert!(is_this_machine(ip), "{ip}");
            assert!(!OUT.allows(SocketAddr::new(ip, 4222), SocketAddrUse::TcpConnect), "{ip}");
        }
        assert!(!is_this_machine(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))));
    }

    #[test]
    fn loopback_and_listen_are_grants_of_their_own() {
        let lo = NetworkPolicy { loopback: true, ..NetworkPolicy::default() };
        assert!(lo.allows(at("127.0.0.1", 4222), SocketAddrUse::TcpConnect));
        assert!(!lo.allows(at("192.0.2.7", 80), SocketAddrUse::TcpConnect));
        let listen = NetworkPolicy { listen: true, ..NetworkPolicy::default() };
        assert!(listen.allows(at("0.0.0.0", 8080), SocketAddrUse::TcpBind));
        assert!(listen.allows(at("0.0.0.0", 8080), SocketAddrUse::TcpListen));
        assert!(listen.allows(at("192.0.2.7", 40000), SocketAddrUse::TcpAccept));
        assert!(!listen.allows(at("192.0.2.7", 80), SocketAddrUse::TcpConnect));
        let none = NetworkPolicy::default();
        assert!(!none.sockets() && !none.name_lookup());
        assert!(listen.sockets() && !listen.name_lookup());
    }
}
