//! [`OutboundRule`]: one entry of a component's outbound allow list (`host:port`), as
//! Spin's `allowed_outbound_hosts` has them: where exactly a guest may connect or send.
//!
//! | entry | reaches |
//! |-------|---------|
//! | `api.example.com:443` | the public addresses the host resolves that name to, port 443 |
//! | `*.example.com:443` | the same for any name ending in `.example.com` |
//! | `203.0.113.9:8080`, `[2001:db8::1]:8080` | that address, that port |
//! | `10.1.0.0/16:5432`, `[fd00::/8]:*` | the addresses of that network (any port with `*`) |
//! | `0.0.0.0/0:443` | any public address, port 443 |
//!
//! A port is a number, a range `1000-2000`, or `*`. Names are matched without regard to
//! case (and without a trailing dot). A name's addresses are the ones the host resolves it
//! to, each checked as any address is (`address.rs`): a name that resolves to a private,
//! link-local or loopback address does not reach it. An address or network entry reaches a
//! restricted address (private, shared, documentation: `address.rs`) only if the entry lies
//! inside that restricted block, so `10.1.0.0/16:5432` reaches the database network while
//! `0.0.0.0/0:443` reaches public addresses only. An entry naming this machine or an address
//! no guest may reach (link-local, multicast, broadcast) is refused when it is made.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::address::{self, Block};

/// One entry of an outbound allow list (module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboundRule {
    host: RuleHost,
    ports: Ports,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RuleHost {
    /// A name, lowercase, without a trailing dot.
    Name(String),
    /// `*.suffix`: any name ending in `.suffix` (stored with its leading dot).
    Wildcard(String),
    /// An address (a /32 or /128) or a network.
    Net(Block),
}

/// The ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ports {
    Any,
    Range(u16, u16),
}

impl Ports {
    pub(crate) fn contains(self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::Range(low, high) => (low..=high).contains(&port),
        }
    }
}

/// The longest name a rule or a lookup may carry (DNS's limit).
pub(crate) const MAX_NAME_LEN: usize = 253;

impl OutboundRule {
    /// Parses an entry (module doc).
    ///
    /// # Errors
    /// A sentence saying what is wrong: no port, a bad port or range, a bad name, address
    /// or prefix, or an address that is this machine's or that no guest may reach.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(entry)?;
        let ports = parse_ports(port)?;
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            RuleHost::Wildcard(format!(".{}", normalize_name(suffix)?))
        } else if let Some(block) = parse_block(host)? {
            address::check_rule_block(&block)?;
            RuleHost::Net(block)
        } else {
            RuleHost::Name(normalize_name(host)?)
        };
        Ok(Self { host, ports })
    }

    /// True when the entry names hosts by name (their addresses come from a lookup).
    pub(crate) fn is_name(&self) -> bool {
        !matches!(self.host, RuleHost::Net(_))
    }

    /// The ports of an entry whose name matches `name` (already normalized), if it does.
    pub(crate) fn name_ports(&self, name: &str) -> Option<Ports> {
        let matches = match &self.host {
            RuleHost::Name(n) => n == name,
            RuleHost::Wildcard(suffix) => name.len() > suffix.len() && name.ends_with(suffix.as_str()),
            RuleHost::Net(_) => false,
        };
        matches.then_some(self.ports)
    }

    /// True when this is an address or network entry that allows `ip` on `port`: a public
    /// address inside it, or a restricted one when the entry lies inside that restricted
    /// block (module doc). `reach` is what `ip` reaches.
    pub(crate) fn allows_address(&self, ip: IpAddr, port: u16, reach: address::Reach) -> bool {
        let RuleHost::Net(block) = &self.host else { return false };
        if !self.ports.contains(port) || !block.contains(ip) {
            return false;
        }
        match reach {
            address::Reach::Public => true,
            address::Reach::Restricted(restricted) => restricted.covers(block),
            address::Reach::ThisMachine | address::Reach::Never(_) => false,
        }
    }

    /// True when an address or network entry would allow `ip` on some port.
    pub(crate) fn admits_address(&self, ip: IpAddr, reach: address::Reach) -> bool {
        match self.ports {
            Ports::Any => self.allows_address(ip, 0, reach),
            Ports::Range(low, _) => self.allows_address(ip, low, reach),
        }
    }
}

impl FromStr for OutboundRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            RuleHost::Name(n) => f.write_str(n)?,
            RuleHost::Wildcard(suffix) => write!(f, "*{suffix}")?,
            RuleHost::Net(b) => {
                let whole = b.prefix == address::max_prefix(b.addr);
                match (b.addr, whole) {
                    (IpAddr::V4(a), true) => write!(f, "{a}")?,
                    (IpAddr::V4(a), false) => write!(f, "{a}/{}", b.prefix)?,
                    (IpAddr::V6(a), true) => write!(f, "[{a}]")?,
                    (IpAddr::V6(a), false) => write!(f, "[{a}/{}]", b.prefix)?,
                }
            }
        }
        match self.ports {
            Ports::Any => f.write_str(":*"),
            Ports::Range(low, high) if low == high => write!(f, ":{low}"),
            Ports::Range(low, high) => write!(f, ":{low}-{high}"),
        }
    }
}

/// `host:port`, `[v6]:port`, `[v6/len]:port`.
fn split_host_port(entry: &str) -> Result<(&str, &str), String> {
    let missing = || format!("{entry:?} has no port: write host:443, host:1000-2000 or host:*");
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("{entry:?}: an IPv6 address ends with `]`"))?;
        let port = after.strip_prefix(':').ok_or_else(missing)?;
        return Ok((host, port));
    }
    let (host, port) = entry.rsplit_once(':').ok_or_else(missing)?;
    if host.contains(':') {
        return Err(format!("{entry:?}: write an IPv6 address in brackets, as [2001:db8::1]:443"));
    }
    Ok((host, port))
}

fn parse_ports(port: &str) -> Result<Ports, String> {
    let number = |p: &str| p.parse::<u16>().map_err(|_| format!("port {p:?} is not a number from 0 to 65535"));
    if port == "*" {
        return Ok(Ports::Any);
    }
    match port.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (number(low)?, number(high)?);
            if low > high {
                return Err(format!("port range {port:?} runs backwards"));
            }
            Ok(Ports::Range(low, high))
        }
        None => {
            let p = number(port)?;
            Ok(Ports::Range(p, p))
        }
    }
}

/// An address or `address/prefix`, or `None` when `host` is not one (a name).
fn parse_block(host: &str) -> Result<Option<Block>, String> {
    let (addr, prefix) = match host.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (host, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return match prefix {
            Some(_) => Err(format!("{host:?}: a network is an IP address and a prefix length, as 10.1.0.0/16")),
            None => Ok(None),
        };
    };
    let max = address::max_prefix(addr);
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{host:?}: the prefix length is a number from 0 to {max}"))?,
    };
    if network_of(addr, prefix) != addr {
        return Err(format!("{host:?} has bits set past its prefix: write {}/{prefix}", network_of(addr, prefix)));
    }
    Ok(Some(Block { addr, prefix }))
}

/// `addr` with the bits past `prefix` cleared.
fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// A host name, lowercase and without a trailing dot.
///
/// # Errors
/// Not a name: empty, longer than [`MAX_NAME_LEN`], or with a label that is empty, longer
/// than 63 bytes, or holds anything but ASCII letters, digits, `-` and `_`.
pub(crate) fn normalize_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("{name:?} is not a host name (1 to {MAX_NAME_LEN} bytes)"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "{name:?} is not a host name (dot-separated labels of ASCII letters, digits, - and _; \
                 internationalized names in their xn-- form)"
            ));
        }
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use address::Reach;

    fn rule(s: &str) -> OutboundRule {
        OutboundRule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn entries_parse_and_print_back() {
        for s in [
            "api.example.com:443",
            "*.example.com:443",
            "203.0.113.9:8080",
            "10.1.0.0/16:5432",
            "[2001:db8::1]:443",
            "[fd00::/8]:*",
            "0.0.0.0/0:1000-2000",
        ] {
            assert_eq!(rule(s).to_string(), s);
        }
        assert_eq!(rule("API.Example.COM.:443").to_string(), "api.example.com:443");
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        for (s, why) in [
            ("api.example.com", "has no port"),
            ("api.example.com:https", "not a number"),
            ("api.example.com:70000", "not a number"),
            ("a.example:20-10", "backwards"),
            ("2001:db8::1:443", "brackets"),
            ("10.1.2.3/16:80", "bits set past its prefix"),
            ("10.0.0.0/33:80", "prefix length"),
            ("bad name!:80", "not a host name"),
            ("169.254.169.254:80", "link-local"),
            ("127.0.0.1:8080", "grant `loopback`"),
            ("239.1.2.3:5000", "multicast"),
            ("[fe80::1]:80", "link-local"),
        ] {
            let e = OutboundRule::parse(s).expect_err(s);
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn names_match_exactly_or_by_suffix() {
        assert_eq!(rule("api.example.com:443").name_ports("api.example.com"), Some(Ports::Range(443, 443)));
        assert_eq!(rule("api.example.com:443").name_ports("evil.api.example.com"), None);
        let any = rule("*.example.com:*");
        assert_eq!(any.name_ports("a.b.example.com"), Some(Ports::Any));
        assert_eq!(any.name_ports("example.com"), None, "the wildcard needs a label before the suffix");
        assert_eq!(any.name_ports("badexample.com"), None);
    }

    #[test]
    fn a_network_reaches_restricted_addresses_only_from_inside_their_block() {
        let private = "10.1.2.3".parse().unwrap();
        let reach = address::classify(private, &address::Interfaces::default());
        assert!(matches!(reach, Reach::Restricted(_)));
        assert!(rule("10.1.0.0/16:5432").allows_address(private, 5432, reach));
        assert!(!rule("10.1.0.0/16:5432").allows_address(private, 22, reach), "other port");
        assert!(!rule("0.0.0.0/0:5432").allows_address(private, 5432, reach), "wider than the private block");
        let public = "1.1.1.1".parse().unwrap();
        assert!(rule("0.0.0.0/0:443").allows_address(public, 443, Reach::Public));
        assert!(!rule("api.example.com:443").allows_address(public, 443, Reach::Public), "a name is no address");
    }
}
