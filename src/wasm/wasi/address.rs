//! What an IP address reaches, for the network grants: this machine, a public host, a
//! restricted network (private, shared, documentation ranges), or something a guest may
//! never address (multicast, broadcast, link-local, reserved).
//!
//! | class | IPv4 | IPv6 | reachable with |
//! |-------|------|------|----------------|
//! | this machine | `127.0.0.0/8`, `0.0.0.0`, every address of this machine's interfaces | `::1`, `::`, the interfaces' addresses | `loopback` |
//! | never | multicast `224.0.0.0/4`, broadcast (`255.255.255.255` and each interface's), link-local `169.254.0.0/16` (where cloud machines serve their metadata and credentials), `0.0.0.0/8` but `0.0.0.0`, reserved `240.0.0.0/4` | multicast `ff00::/8`, link-local `fe80::/10`, site-local `fec0::/10`, discard `100::/64`, Teredo `2001::/32`, anything outside global unicast `2000::/3` | nothing |
//! | restricted | private `10/8`, `172.16/12`, `192.168/16`; shared `100.64/10`; `192.0.0/24`; documentation `192.0.2/24`, `198.51.100/24`, `203.0.113/24`; benchmarking `198.18/15`; 6to4 relay `192.88.99/24` | unique local `fc00::/7`, documentation `2001:db8::/32`, local-use NAT64 `64:ff9b:1::/48` | an allow-list entry naming an address or network inside the restricted block |
//! | public | the rest | the rest of `2000::/3` | `network = true`, or an allow-list entry that matches it |
//!
//! An IPv6 address that carries an IPv4 address is judged as that IPv4 address: mapped
//! (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
//! (`2002:wwxx:yyzz::/48`). So `::ffff:169.254.169.254` is link-local, and
//! `64:ff9b::7f00:1` is loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address reaches (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// This machine: only with the `loopback` grant.
    ThisMachine,
    /// Never reachable from a guest; the text says what the address is.
    Never(&'static str),
    /// Inside a restricted block (private, shared, documentation, ...): only through an
    /// allow-list entry inside that same block.
    Restricted(Block),
    /// A public unicast address.
    Public,
}

/// A network block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Block {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

impl Block {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Block {
        Block { addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Block {
        let [a, b, c, d, e, f, g, h] = segments;
        Block { addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)), prefix }
    }

    /// True when `ip` lies inside the block (an address of the other family never does).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }

    /// True when the whole of `other` lies inside this block.
    pub(crate) fn covers(&self, other: &Block) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

/// True when the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let whole = bits / 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// The restricted blocks (module doc). An allow-list entry reaches a restricted address
/// only if the entry lies inside one of these, the one holding the address.
pub(crate) const RESTRICTED: [Block; 13] = [
    Block::v4(10, 0, 0, 0, 8),
    Block::v4(172, 16, 0, 0, 12),
    Block::v4(192, 168, 0, 0, 16),
    Block::v4(100, 64, 0, 0, 10),
    Block::v4(192, 0, 0, 0, 24),
    Block::v4(192, 0, 2, 0, 24),
    Block::v4(198, 51, 100, 0, 24),
    Block::v4(203, 0, 113, 0, 24),
    Block::v4(198, 18, 0, 0, 15),
    Block::v4(192, 88, 99, 0, 24),
    Block::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
    Block::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    Block::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
];

/// The blocks no guest may address, with what each is.
const NEVER: [(Block, &str); 9] = [
    (Block::v4(224, 0, 0, 0, 4), "multicast"),
    (Block::v4(169, 254, 0, 0, 16), "link-local"),
    (Block::v4(240, 0, 0, 0, 4), "reserved (including broadcast)"),
    (Block::v4(0, 0, 0, 0, 8), "\"this network\" (0.0.0.0/8)"),
    (Block::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    (Block::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (Block::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (Block::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "a discard address"),
    (Block::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "a Teredo tunnel address"),
];

/// IPv6 global unicast: `2000::/3`.
const GLOBAL_UNICAST_V6: Block = Block::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The IPv4 address an IPv6 address carries, if it carries one (module doc).
pub(crate) fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    let s = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible `::a.b.c.d` (deprecated): not `::` and `::1`, which are IPv6's own.
    if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // NAT64's well-known prefix `64:ff9b::/96`.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 6to4 `2002:wwxx:yyzz::/48`.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The addresses of this machine's interfaces, and their broadcast addresses.
#[derive(Debug, Default, Clone)]
pub(crate) struct Interfaces {
    pub(crate) addresses: Vec<IpAddr>,
    pub(crate) broadcasts: Vec<IpAddr>,
}

/// What `ip` reaches (module doc), with this machine's interfaces as `interfaces`.
pub(crate) fn classify(ip: IpAddr, interfaces: &Interfaces) -> Reach {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let this_machine = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
    };
    if this_machine || interfaces.addresses.contains(&ip) {
        return Reach::ThisMachine;
    }
    if ip == IpAddr::V4(Ipv4Addr::BROADCAST) || interfaces.broadcasts.contains(&ip) {
        return Reach::Never("broadcast");
    }
    if let Some((_, what)) = NEVER.iter().find(|(block, _)| block.contains(ip)) {
        return Reach::Never(what);
    }
    if let Some(block) = RESTRICTED.iter().find(|block| block.contains(ip)) {
        return Reach::Restricted(*block);
    }
    if ip.is_ipv6() && !GLOBAL_UNICAST_V6.contains(ip) {
        return Reach::Never("not a global unicast address");
    }
    Reach::Public
}

/// What `block` (an allow-list entry's network) may reach at most: `Err` with what it is
/// when it lies inside this machine's addresses or a block no guest may address.
pub(crate) fn check_rule_block(block: &Block) -> Result<(), String> {
    let ip = block.addr;
    let loopback = [Block::v4(127, 0, 0, 0, 8), Block::v6([0, 0, 0, 0, 0, 0, 0, 1], 128)];
    if loopback.iter().any(|l| l.covers(block)) || (ip.is_unspecified() && block.prefix == max_prefix(ip)) {
        return Err(format!("{ip} is this machine: grant `loopback` to reach it"));
    }
    if block.prefix == max_prefix(ip) && ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Err(format!("{ip} is broadcast: no guest may address it"));
    }
    if let Some((_, what)) = NEVER.iter().find(|(never, _)| never.covers(block)) {
        return Err(format!("{ip}/{} is {what}: no guest may address it", block.prefix));
    }
    Ok(())
}

/// 32 or 128.
pub(crate) fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// The addresses (and broadcast addresses) of this machine's interfaces now.
#[cfg(unix)]
pub(crate) fn interfaces() -> Interfaces {
    let mut found = Interfaces::default();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `getifaddrs` writes a list head into `list`, to be released with
    // `freeifaddrs`; on failure it returns -1 and writes nothing we read.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list `getifaddrs` returned, not yet freed; its
        // `ifa_addr` (and, with IFF_BROADCAST, `ifa_ifu`, the broadcast address) is null or
        // points to a `sockaddr` of the family it names, read as the matching
        // `sockaddr_in` / `sockaddr_in6`.
        unsafe {
            if let Some(ip) = sockaddr_ip((*at).ifa_addr) {
                found.addresses.push(ip);
            }
            if (*at).ifa_flags & (libc::IFF_BROADCAST as libc::c_uint) != 0
                && let Some(ip) = sockaddr_ip((*at).ifa_ifu)
            {
                found.broadcasts.push(ip);
            }
            at = (*at).ifa_next;
        }
    }
    // SAFETY: `list` came from a successful `getifaddrs` and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The address of a `sockaddr` of family `AF_INET` or `AF_INET6`.
///
/// # Safety
/// `addr` is null or points to a valid `sockaddr` of the size its family says.
#[cfg(unix)]
unsafe fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller's contract; the family decides which struct is read.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET => {
                let sin = &*(addr as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(addr as *const libc::sockaddr_in6);
                Some(IpAddr::V6(sin6.sin6_addr.s6_addr.into()))
            }
            _ => None,
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn interfaces() -> Interfaces {
    Interfaces::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(ip: &str) -> Reach {
        classify(ip.parse().expect("an address"), &Interfaces::default())
    }

    #[test]
    fn loopback_unspecified_and_the_interfaces_are_this_machine() {
        for ip in
            ["127.0.0.1", "127.8.9.1", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1"]
        {
            assert_eq!(of(ip), Reach::ThisMachine, "{ip}");
        }
        let own = Interfaces { addresses: vec!["10.99.0.1".parse().unwrap()], broadcasts: Vec::new() };
        assert_eq!(classify("10.99.0.1".parse().unwrap(), &own), Reach::ThisMachine);
        assert_eq!(classify("::ffff:10.99.0.1".parse().unwrap(), &own), Reach::ThisMachine);
    }

    #[test]
    fn multicast_broadcast_link_local_and_reserved_are_never_reached() {
        for ip in [
            "239.1.2.3",
            "224.0.0.251",
            "255.255.255.255",
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "240.1.2.3",
            "0.1.2.3",
            "ff02::fb",
            "fe80::1",
            "fec0::1",
            "100::1",
            "2001::1",
            "4000::1",
        ] {
            assert!(matches!(of(ip), Reach::Never(_)), "{ip}: {:?}", of(ip));
        }
        let lan = Interfaces { addresses: Vec::new(), broadcasts: vec!["192.168.7.255".parse().unwrap()] };
        assert_eq!(classify("192.168.7.255".parse().unwrap(), &lan), Reach::Never("broadcast"));
    }

    #[test]
    fn private_shared_and_documentation_ranges_are_restricted() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.1.1",
            "100.64.0.1",
            "192.0.2.7",
            "fd00::1",
            "2001:db8::1",
        ] {
            assert!(matches!(of(ip), Reach::Restricted(_)), "{ip}: {:?}", of(ip));
        }
        for ip in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "2002:101:101::1"] {
            assert_eq!(of(ip), Reach::Public, "{ip}");
        }
    }

    #[test]
    fn blocks_contain_and_cover_by_prefix() {
        let ten = Block::v4(10, 0, 0, 0, 8);
        assert!(ten.contains("10.255.0.1".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        assert!(ten.covers(&Block::v4(10, 1, 0, 0, 16)));
        assert!(!ten.covers(&Block::v4(10, 0, 0, 0, 7)));
        assert!(!ten.contains("::ffff:10.0.0.1".parse().unwrap()), "families are told apart");
    }

    #[test]
    fn allow_list_networks_may_not_name_this_machine_or_what_is_never_reached() {
        assert!(check_rule_block(&Block::v4(10, 1, 0, 0, 16)).is_ok());
        assert!(check_rule_block(&Block::v4(0, 0, 0, 0, 0)).is_ok(), "everything: public addresses only");
        for (block, why) in [
            (Block::v4(169, 254, 169, 254, 32), "link-local"),
            (Block::v4(239, 0, 0, 0, 8), "multicast"),
            (Block::v4(127, 0, 0, 1, 32), "loopback"),
            (Block::v4(0, 0, 0, 0, 32), "loopback"),
            (Block::v4(255, 255, 255, 255, 32), "broadcast"),
            (Block::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 64), "link-local"),
        ] {
            let e = check_rule_block(&block).expect_err("refused");
            assert!(e.contains(why), "{e}");
        }
    }
}
