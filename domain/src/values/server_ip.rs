//! [`ServerIp`]: the public IP address the compute service reports for a server.
//!
//! Guarantees: an IPv4 or IPv6 address that can name one host, i.e. not unspecified
//! (`0.0.0.0`, `::`), not multicast, and not the IPv4 broadcast address `255.255.255.255`.
//! The canonical string is std's `Display`: dotted quad for IPv4, RFC 5952 compressed
//! lower-case for IPv6, so `2001:DB8::1` and `2001:db8:0::1` are the same value.
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 address it maps, so recovery
//! by IP finds the server whichever way the address was written.
//! Input is taken exactly: no surrounding spaces, no zone (`%eth0`), no port.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// A unicast IP address; see the module docs for what it guarantees.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerIp {
    /// The address; first so that the derived order is the address order.
    addr: IpAddr,
    /// `addr` as std displays it, kept so `as_str` can lend it.
    text: String,
}

impl ServerIp {
    /// Parses an IPv4 or IPv6 address and refuses those that cannot name one host.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let addr = input
            .parse::<IpAddr>()
            .map_err(|_| ValueError::InvalidServerIp)?
            .to_canonical();
        let unicast = match addr {
            IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
            IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
        };
        if unicast {
            Ok(Self {
                addr,
                text: addr.to_string(),
            })
        } else {
            Err(ValueError::InvalidServerIp)
        }
    }

    /// The canonical text of the address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address itself.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

impl fmt::Display for ServerIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for ServerIp {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ServerIp> for String {
    fn from(ip: ServerIp) -> Self {
        ip.text
    }
}

impl AsRef<str> for ServerIp {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_public_ipv4_address_is_accepted() {
        let ip = ServerIp::parse("203.0.113.7").unwrap();
        assert_eq!(ip.as_str(), "203.0.113.7");
        assert_eq!(ip.addr(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(ip.to_string(), "203.0.113.7");
    }

    #[test]
    fn ipv6_is_compressed_and_lower_cased() {
        let upper = ServerIp::parse("2001:DB8::1").unwrap();
        let long = ServerIp::parse("2001:db8:0::1").unwrap();
        let full = ServerIp::parse("2001:0db8:0000:0000:0000:0000:0000:0001").unwrap();
        assert_eq!(upper.as_str(), "2001:db8::1");
        assert_eq!(upper, long);
        assert_eq!(upper, full);
    }

    #[test]
    fn an_ipv4_mapped_ipv6_address_is_the_ipv4_address() {
        assert_eq!(
            ServerIp::parse("::ffff:198.51.100.4").unwrap(),
            ServerIp::parse("198.51.100.4").unwrap()
        );
        assert_eq!(
            ServerIp::parse("::FFFF:c633:6404").unwrap().as_str(),
            "198.51.100.4"
        );
    }

    #[test]
    fn unspecified_multicast_and_broadcast_addresses_are_refused() {
        for input in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "224.0.0.1",
            "239.255.255.250",
            "ff02::1",
            "FF05::2",
            "255.255.255.255",
            "::ffff:255.255.255.255",
        ] {
            assert_eq!(
                ServerIp::parse(input),
                Err(ValueError::InvalidServerIp),
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_input_is_refused() {
        for input in [
            "",
            "203.0.113",
            "203.0.113.256",
            "203.0.113.7 ",
            " 203.0.113.7",
            "203.0.113.7:22",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "2001:db8::1::2",
            "example.com",
            "0x7f.0.0.1",
            "010.0.0.1",
        ] {
            assert_eq!(
                ServerIp::parse(input),
                Err(ValueError::InvalidServerIp),
                "{input:?}"
            );
        }
    }

    #[test]
    fn it_serializes_as_its_canonical_string() {
        let ip = ServerIp::parse("2001:DB8::A").unwrap();
        assert_eq!(serde_json::to_string(&ip).unwrap(), r#""2001:db8::a""#);
        assert_eq!(
            serde_json::from_str::<ServerIp>(r#""2001:DB8::A""#).unwrap(),
            ip
        );
        assert!(serde_json::from_str::<ServerIp>(r#""0.0.0.0""#).is_err());
    }

    fn is_refused(addr: IpAddr) -> bool {
        match addr.to_canonical() {
            IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
        }
    }

    proptest! {
        #[test]
        fn any_address_round_trips_or_is_refused_by_rule(bits in any::<u32>(), bits6 in any::<u128>()) {
            for addr in [IpAddr::V4(Ipv4Addr::from(bits)), IpAddr::V6(Ipv6Addr::from(bits6))] {
                match ServerIp::parse(&addr.to_string()) {
                    Ok(ip) => {
                        prop_assert!(!is_refused(addr));
                        prop_assert_eq!(ip.addr(), addr.to_canonical());
                        prop_assert_eq!(ServerIp::parse(ip.as_str()).unwrap(), ip.clone());
                        let json = serde_json::to_string(&ip).unwrap();
                        prop_assert_eq!(serde_json::from_str::<ServerIp>(&json).unwrap(), ip);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, ValueError::InvalidServerIp);
                        prop_assert!(is_refused(addr));
                    }
                }
            }
        }

        #[test]
        fn upper_case_ipv6_equals_lower_case(bits6 in any::<u128>()) {
            let text = Ipv6Addr::from(bits6).to_string();
            prop_assert_eq!(ServerIp::parse(&text.to_uppercase()), ServerIp::parse(&text));
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC*") {
            let _ = ServerIp::parse(&s);
        }
    }
}
