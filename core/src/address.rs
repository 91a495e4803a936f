//! Where the X-Ray daemon listens: `AWS_XRAY_DAEMON_ADDRESS`.
//!
//! Lambda sets a link-local address, never the loopback default, so the
//! variable must always be read. Both forms the official SDKs accept are
//! accepted here: `host:port` (UDP and TCP alike) and
//! `tcp:host:port udp:host:port` in either order.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// The environment variable the daemon address is read from.
pub const ENV_VAR: &str = "AWS_XRAY_DAEMON_ADDRESS";

/// The address used when the variable is not set.
pub const DEFAULT: &str = "127.0.0.1:2000";

const EXPECTED: &str = "expected \"host:port\" or \"tcp:host:port udp:host:port\" (either order)";

/// A host name or IP literal with a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host part (an IPv6 literal keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resolves the address; a host name may give several addresses, the first is used.
    pub fn resolve(&self) -> io::Result<SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}:{} resolved to no address", self.host, self.port),
            )
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The daemon's UDP address (segments) and TCP address (sampling proxy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonAddress {
    /// Where segment documents are sent.
    pub udp: HostPort,
    /// Where the sampling proxy listens.
    pub tcp: HostPort,
}

/// An `AWS_XRAY_DAEMON_ADDRESS` value that is not one of the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    value: String,
    reason: &'static str,
}

impl AddressError {
    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {ENV_VAR} {:?}: {}; {EXPECTED}",
            self.value, self.reason
        )
    }
}

impl std::error::Error for AddressError {}

impl Default for DaemonAddress {
    fn default() -> Self {
        DaemonAddress::parse(DEFAULT).unwrap_or_else(|_| unreachable!("the default address parses"))
    }
}

impl DaemonAddress {
    /// Reads [`ENV_VAR`]; unset or blank means the default `127.0.0.1:2000`.
    pub fn from_env() -> Result<Self, AddressError> {
        match std::env::var(ENV_VAR) {
            Ok(v) if !v.trim().is_empty() => DaemonAddress::parse(&v),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(DaemonAddress::default()),
            Err(std::env::VarError::NotUnicode(raw)) => Err(AddressError {
                value: raw.to_string_lossy().into_owned(),
                reason: "not valid UTF-8",
            }),
        }
    }

    /// Parses either accepted form.
    pub fn parse(value: &str) -> Result<Self, AddressError> {
        let fail = |reason| AddressError {
            value: value.to_string(),
            reason,
        };
        let mut tokens = value.split_ascii_whitespace();
        let first = tokens.next().ok_or_else(|| fail("empty"))?;
        let second = tokens.next();
        if tokens.next().is_some() {
            return Err(fail("more than two addresses"));
        }
        let Some(second) = second else {
            if has_protocol(first) {
                return Err(fail("a single address must not name a protocol"));
            }
            let hp = parse_host_port(first).map_err(fail)?;
            return Ok(DaemonAddress {
                udp: hp.clone(),
                tcp: hp,
            });
        };
        let (mut udp, mut tcp) = (None, None);
        for token in [first, second] {
            let (proto, rest) = token
                .split_once(':')
                .ok_or_else(|| fail("missing protocol"))?;
            let slot = if proto.eq_ignore_ascii_case("udp") {
                &mut udp
            } else if proto.eq_ignore_ascii_case("tcp") {
                &mut tcp
            } else {
                return Err(fail("protocol must be udp or tcp"));
            };
            if slot.is_some() {
                return Err(fail("protocol given twice"));
            }
            *slot = Some(parse_host_port(rest).map_err(fail)?);
        }
        match (udp, tcp) {
            (Some(udp), Some(tcp)) => Ok(DaemonAddress { udp, tcp }),
            _ => Err(fail("both udp and tcp are required")),
        }
    }
}

fn has_protocol(token: &str) -> bool {
    let lower = token.get(..4).map(str::to_ascii_lowercase);
    matches!(lower.as_deref(), Some("udp:") | Some("tcp:"))
}

fn parse_host_port(text: &str) -> Result<HostPort, &'static str> {
    let (host, port) = text.rsplit_once(':').ok_or("missing port")?;
    if host.is_empty() {
        return Err("missing host");
    }
    let port: u16 = port
        .parse()
        .map_err(|_| "port is not a number from 1 to 65535")?;
    if port == 0 {
        return Err("port is not a number from 1 to 65535");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("unclosed [ in IPv6 address")?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| "invalid IPv6 address")?;
    } else if host.contains(':') {
        return Err("an IPv6 address must be in brackets");
    } else if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err("invalid character in host");
    }
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_form() {
        let a = DaemonAddress::parse("169.254.79.129:2000").unwrap();
        assert_eq!(a.udp.host(), "169.254.79.129");
        assert_eq!(a.udp.port(), 2000);
        assert_eq!(a.udp, a.tcp);
        assert_eq!(
            a.udp.resolve().unwrap(),
            "169.254.79.129:2000".parse().unwrap()
        );
    }

    #[test]
    fn double_form_either_order() {
        let a = DaemonAddress::parse("tcp:127.0.0.1:2000 udp:127.0.0.2:2001").unwrap();
        let b = DaemonAddress::parse("  udp:127.0.0.2:2001\ttcp:127.0.0.1:2000 ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.udp.to_string(), "127.0.0.2:2001");
        assert_eq!(a.tcp.to_string(), "127.0.0.1:2000");
    }

    #[test]
    fn names_and_ipv6() {
        let a = DaemonAddress::parse("xray-daemon.local:2000").unwrap();
        assert_eq!(a.udp.host(), "xray-daemon.local");
        let v6 = DaemonAddress::parse("[::1]:2000").unwrap();
        assert_eq!(v6.udp.resolve().unwrap(), "[::1]:2000".parse().unwrap());
    }

    #[test]
    fn errors_name_the_variable_value_and_forms() {
        for bad in [
            "",
            "localhost",
            "127.0.0.1:",
            ":2000",
            "127.0.0.1:http",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "udp:127.0.0.1:2000",
            "udp:127.0.0.1:2000 udp:127.0.0.1:2001",
            "tcp:127.0.0.1:2000",
            "a:1 b:2",
            "udp:a:1 tcp:b:2 udp:c:3",
            "::1:2000",
            "[::1:2000",
            "host name:2000",
            "h\u{0}st:2000",
        ] {
            let err = DaemonAddress::parse(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.contains("AWS_XRAY_DAEMON_ADDRESS"), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
            assert!(text.contains("tcp:host:port udp:host:port"), "{text}");
        }
    }
}
