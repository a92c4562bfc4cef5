//! Fuzz targets (proptest, stable) for the upstream crate's parsers of names that arrive from
//! clients: `ns` registry hosts (checked before anything is asked of them) and image
//! references. Never a panic; an accepted host has no path, user, query or whitespace, so it
//! cannot steer a request anywhere but that host.

use proptest::prelude::*;

use crate::{is_registry_host, Upstream};

const CORPUS: &[&str] = &[
    "",
    ":",
    ":80",
    "a:",
    "a:0",
    "a:65536",
    "a:99999999999",
    "[::1]",
    "[::1]:5000",
    "[::1",
    "::1",
    "a b",
    "user@host",
    "host/path",
    "host?x",
    "host#x",
    "http://host",
    "höst",
    "a..b",
    "-a",
    "a-",
    "a.b.c:5000",
];

fn check(host: &str) {
    if is_registry_host(host) {
        assert!(!host.contains(['/', '@', '?', '#', ' ', '\\']) && !host.is_empty(), "accepted {host:?}");
    }
    let _ = Upstream::parse_reference(host);
    let _ = Upstream::parse_reference(&format!("{host}/team/app:v1"));
}

#[test]
fn the_corpus_is_accepted_or_refused_cleanly() {
    for host in CORPUS {
        check(host);
    }
    assert!(is_registry_host("[::1]:5000") && is_registry_host("registry.lan:5000"));
}

proptest! {
    #[test]
    fn arbitrary_hosts_and_references_never_panic(host in "\\PC{0,80}") {
        check(&host);
    }

    #[test]
    fn host_like_strings_are_judged_safely(host in "[a-z0-9.:\\[\\]@/?#-]{0,40}") {
        check(&host);
    }
}
