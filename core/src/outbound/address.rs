//! Address classes of outbound destinations, and the allow-list (`outbound_allow`) that opens
//! some of them.
//!
//! Public addresses are always allowed. Link-local and cloud metadata addresses are never
//! allowed, whatever the list says: they hand out credentials of the machine the product runs
//! on. Everything in between (loopback, private networks, shared CGNAT space, unspecified,
//! multicast, broadcast, reserved) is refused unless the allow-list names it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address points at, as far as the outbound policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the internet; always allowed.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 (and the old site-local fec0::/10).
    Private,
    /// 100.64.0.0/10, carrier-grade NAT space.
    SharedCgnat,
    /// 0.0.0.0/8, :: (connecting to them reaches the local host).
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4 and IPv4-compatible IPv6 addresses.
    Reserved,
    /// 169.254.0.0/16, fe80::/10 and cloud metadata addresses (fd00:ec2::254,
    /// 100.100.100.200); never allowed.
    LinkLocalOrMetadata,
}

impl AddressClass {
    /// The class of `ip`. IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`)
    /// addresses are classified by the IPv4 address they carry.
    pub fn of(ip: IpAddr) -> AddressClass {
        match effective_ip(ip) {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        }
    }

    /// True for classes no configuration can open.
    pub fn never_allowed(self) -> bool {
        self == AddressClass::LinkLocalOrMetadata
    }

    /// The class with an article, for messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::SharedCgnat => "a shared (CGNAT, 100.64.0.0/10) address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved address",
            AddressClass::LinkLocalOrMetadata => "a link-local/metadata address",
        }
    }
}

/// `ip`, with an IPv4 address carried inside an IPv6 one taken out of it.
pub fn effective_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return IpAddr::V4(embedded_v4(v6));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, _, _] = ip.octets();
    if ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200) {
        AddressClass::LinkLocalOrMetadata
    } else if a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() {
        AddressClass::Private
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedCgnat
    } else if ip.is_broadcast() {
        AddressClass::Broadcast
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if a >= 240 {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) || (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::LinkLocalOrMetadata
    } else if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
        AddressClass::Private
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if s[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d), deprecated; never a real destination.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// A network in CIDR notation (`10.1.0.0/16`, `fd12::/16`); a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.1.0.0/16`, `fd12::/16` or a single address. Host bits are ignored.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    /// True when `ip` lies in this network (an IPv4 network also holds the IPv6 forms that
    /// carry one of its addresses).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, effective_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Which process the guard serves; decides the allow-list when `outbound_allow` is not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMode {
    /// API and workers in one process, usually on someone's machine: local services
    /// (loopback) may be adopted and registered.
    Standalone,
    /// API-only process of a scaled deployment: public addresses only.
    Api,
    /// Worker-only process of a scaled deployment: public addresses only.
    Worker,
}

/// The address classes and networks user-given URLs may reach beyond public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    loopback: bool,
    private: bool,
    networks: Vec<Cidr>,
}

impl AllowList {
    /// Public addresses only.
    pub fn none() -> AllowList {
        AllowList::default()
    }

    /// Public and loopback addresses.
    pub fn loopback() -> AllowList {
        AllowList {
            loopback: true,
            ..AllowList::default()
        }
    }

    /// The list a process of `mode` uses when `outbound_allow` is not configured.
    pub fn default_for(mode: ProcessMode) -> AllowList {
        match mode {
            ProcessMode::Standalone => AllowList::loopback(),
            ProcessMode::Api | ProcessMode::Worker => AllowList::none(),
        }
    }

    /// Parses the entries of `outbound_allow`: `loopback`, `private`, CIDRs, or `none` alone.
    /// The error says which entry is wrong and what is expected.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        let mut list = AllowList::none();
        let entries: Vec<&str> = entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .collect();
        if entries.len() == 1 && entries[0].eq_ignore_ascii_case("none") {
            return Ok(list);
        }
        for entry in entries {
            match entry.to_ascii_lowercase().as_str() {
                "loopback" => list.loopback = true,
                "private" => list.private = true,
                _ => match Cidr::parse(entry) {
                    Some(cidr) => list.networks.push(cidr),
                    None => {
                        return Err(format!(
                            "{entry:?} is not `loopback`, `private`, `none` or a CIDR like 10.1.0.0/16"
                        ));
                    }
                },
            }
        }
        Ok(list)
    }

    /// True when `ip` (of class `class`) may be contacted. Never true for link-local and
    /// metadata addresses.
    pub fn allows(&self, ip: IpAddr, class: AddressClass) -> bool {
        match class {
            AddressClass::LinkLocalOrMetadata => false,
            AddressClass::Public => true,
            AddressClass::Loopback if self.loopback => true,
            AddressClass::Private if self.private => true,
            _ => self.networks.iter().any(|n| n.contains(ip)),
        }
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.loopback {
            parts.push("loopback".into());
        }
        if self.private {
            parts.push("private".into());
        }
        parts.extend(self.networks.iter().map(Cidr::to_string));
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> AddressClass {
        AddressClass::of(text.parse().unwrap())
    }

    #[test]
    fn classes_of_well_known_addresses() {
        use AddressClass::*;
        for (ip, want) in [
            ("8.8.8.8", Public),
            ("2606:4700::1111", Public),
            ("127.0.0.1", Loopback),
            ("127.200.0.9", Loopback),
            ("::1", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.0.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.254", SharedCgnat),
            ("100.128.0.1", Public),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("224.0.0.1", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("::7f00:1", Reserved),
            ("169.254.169.254", LinkLocalOrMetadata),
            ("169.254.0.1", LinkLocalOrMetadata),
            ("fe80::1", LinkLocalOrMetadata),
            ("febf::1", LinkLocalOrMetadata),
            ("fd00:ec2::254", LinkLocalOrMetadata),
            ("100.100.100.200", LinkLocalOrMetadata),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_carried_in_ipv6_is_classified_as_ipv4() {
        assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:10.0.0.1"), AddressClass::Private);
        assert_eq!(
            class("::ffff:169.254.169.254"),
            AddressClass::LinkLocalOrMetadata
        );
        assert_eq!(class("64:ff9b::a00:1"), AddressClass::Private);
        assert_eq!(class("::ffff:8.8.8.8"), AddressClass::Public);
    }

    #[test]
    fn cidrs_contain_their_addresses() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let host = Cidr::parse("127.0.0.1").unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("10.0.0.1".parse().unwrap()));
        let v6 = Cidr::parse("fd12::/16").unwrap();
        assert!(v6.contains("fd12:1::5".parse().unwrap()));
        assert!(!v6.contains("fd13::5".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd::/129", "ten/8", "", "10.0.0.0/"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn allow_list_words_networks_and_the_never_rule() {
        let list = AllowList::parse(&["loopback", "100.64.0.0/10", "0.0.0.0/0"]).unwrap();
        let allows = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            list.allows(ip, AddressClass::of(ip))
        };
        assert!(allows("127.0.0.1"));
        assert!(allows("100.70.0.1"));
        assert!(allows("10.0.0.1"), "0.0.0.0/0 opens private IPv4");
        assert!(!allows("fc00::1"), "but not IPv6");
        assert!(!allows("169.254.169.254"), "never, whatever the list says");
        assert!(!allows("100.100.100.200"));
        assert_eq!(list.to_string(), "loopback,100.64.0.0/10,0.0.0.0/0");

        let private = AllowList::parse(&["private"]).unwrap();
        assert!(private.allows("192.168.1.1".parse().unwrap(), AddressClass::Private));
        assert!(!private.allows("127.0.0.1".parse().unwrap(), AddressClass::Loopback));

        assert_eq!(AllowList::parse(&["none"]).unwrap(), AllowList::none());
        let err = AllowList::parse(&["loopback", "intranet"]).unwrap_err();
        assert!(err.contains("\"intranet\""), "{err}");
    }

    #[test]
    fn defaults_follow_the_process_mode() {
        assert_eq!(
            AllowList::default_for(ProcessMode::Standalone),
            AllowList::loopback()
        );
        assert_eq!(AllowList::default_for(ProcessMode::Api), AllowList::none());
        assert_eq!(
            AllowList::default_for(ProcessMode::Worker),
            AllowList::none()
        );
    }
}
