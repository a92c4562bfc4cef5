//! Registry hosts as image references name them: the check every `ns` goes through before a
//! request is made.

/// Whether `host` is a registry host as an image reference names it: a domain of
/// `[A-Za-z0-9]`/`-` components joined by `.` (a component neither starts nor ends with `-`),
/// or a bracketed IPv6 address, then an optional `:port` (1-65535). No scheme, path, user or
/// query: `?ns=` and the seeder's `ns` pass through this before any request is made.
pub fn is_registry_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, tail)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => match tail {
                "" => return true,
                t => match t.strip_prefix(':') {
                    Some(port) => ("", Some(port)),
                    None => return false,
                },
            },
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.len() <= 63
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    let name_ok = host.starts_with('[') || name.split('.').all(component_ok);
    port_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_the_reference_grammar() {
        for ok in ["docker.io", "ghcr.io", "127.0.0.1:5000", "localhost", "reg-1.lan:443", "[::1]", "[::1]:5000", "a"] {
            assert!(is_registry_host(ok), "{ok}");
        }
        let bad = [
            "",
            "a/b",
            "http://x",
            "x:",
            "x:0",
            "x:65536",
            "x:1a",
            "-a.io",
            "a-.io",
            "a..b",
            "a_b.io",
            "user@host",
            "[zz]",
            "[::1]x",
            "x?y",
            "x y",
            "..",
            "a:1:2",
        ];
        for no in bad {
            assert!(!is_registry_host(no), "{no}");
        }
        assert!(!is_registry_host(&"a".repeat(256)));
    }
}
