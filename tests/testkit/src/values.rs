//! Valid values of every type a test needs, distinct per `n` where tests need many.

use std::net::{IpAddr, Ipv4Addr};

use commands::secrets::Keyring;
use commands::{Actor, CommandContext};
use domain::password::{Password, PasswordPolicy};
use domain::values::{AccountId, Email, Mobile, ServerIp};

/// A password every default policy accepts.
pub const PASSWORD: &str = "Tq7#vLm2!x";

pub fn password() -> Password {
    Password::parse(PASSWORD, &PasswordPolicy::default()).expect("the test password is valid")
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("a valid test email")
}

/// A distinct Chinese mobile number for each `n` below 10^8.
pub fn mobile(n: u32) -> Mobile {
    Mobile::parse(&format!("+86138{n:08}")).expect("138 numbers are mobile numbers")
}

/// A distinct unicast IPv4 address for each `n` below 250^3.
pub fn server_ip(n: u32) -> ServerIp {
    let octet = |x: u32| u8::try_from(x).expect("below 256");
    let ip = Ipv4Addr::new(
        10,
        octet(n / 62_500 % 250),
        octet(n / 250 % 250),
        octet(n % 250 + 1),
    );
    ServerIp::parse(&IpAddr::V4(ip).to_string()).expect("10/8 addresses are unicast")
}

pub fn instance_id(n: u32) -> String {
    format!("i-{n:06}")
}

/// The keyring of every test.
pub fn keyring() -> Keyring {
    Keyring::new([7; 32], [])
}

/// The account holder's context, with the request details a gateway would pass on.
pub fn request_context(id: &AccountId) -> CommandContext {
    CommandContext {
        actor: Actor::Account(id.as_str().to_owned()),
        request_id: Some("req-7f3a".to_owned()),
        ip: Some("203.0.113.9".parse().expect("a valid IP")),
        user_agent: Some("accountd-tests/1.0".to_owned()),
    }
}
