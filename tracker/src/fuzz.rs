//! Fuzz targets (proptest, stable) for the tracker's parsers of what anyone on the network
//! sends: HTTP announce and scrape queries (raw bytes, as the socket gave them) and UDP
//! datagrams (BEP 15, past a valid connect, so the announce and scrape parsers are reached).
//! Each input gives a reply or a refusal, never a panic; a UDP reply is one of the protocol's
//! shapes. `CORPUS` holds edge cases run first; proptest keeps failures in
//! `proptest-regressions/` (checked in).

use std::net::SocketAddr;

use proptest::prelude::*;

use crate::access::Access;
use crate::query::{parse_announce, parse_scrape};
use crate::service::{Intervals, Tracker};
use crate::swarm::SwarmLimits;
use crate::udp::{handle_packet, ConnectionIds};

const CORPUS: &[&[u8]] = &[
    b"",
    b"&&&",
    b"info_hash",
    b"info_hash=",
    b"info_hash=%",
    b"info_hash=%zz",
    b"info_hash=%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00",
    b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=0",
    b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=65536&left=-1",
    b"info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=6881&numwant=99999999999999999999",
    b"info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=bbbbbbbbbbbbbbbbbbbb&port=1&event=%FF",
];

/// Query-like bytes: keys and values the parsers know, joined with `&` and `=`, some escaped.
fn query_like() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("info_hash"),
        Just("peer_id"),
        Just("port"),
        Just("left"),
        Just("uploaded"),
        Just("downloaded"),
        Just("event"),
        Just("numwant"),
        Just("compact"),
        Just("ip"),
        Just("key"),
        Just("x"),
    ];
    let value = proptest::collection::vec(any::<u8>(), 0..24).prop_map(|bytes| {
        let mut out = Vec::new();
        for b in bytes {
            if b.is_ascii_alphanumeric() {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
        out
    });
    proptest::collection::vec((key, value), 0..10).prop_map(|pairs| {
        let mut q = Vec::new();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                q.push(b'&');
            }
            q.extend_from_slice(k.as_bytes());
            q.push(b'=');
            q.extend_from_slice(&v);
        }
        q
    })
}

fn tracker() -> Tracker {
    Tracker::new(SwarmLimits::default(), Intervals { interval_secs: 60, min_interval_secs: 30 }, Access::open())
}

#[test]
fn the_corpus_is_answered_or_refused_cleanly() {
    let tracker = tracker();
    let from: SocketAddr = "127.0.0.1:6881".parse().unwrap();
    for query in CORPUS {
        let _ = parse_announce(query);
        let _ = parse_scrape(query);
        let body = tracker.http_announce(query, from);
        assert!(body.starts_with(b"d") && body.ends_with(b"e"), "not bencode: {body:?}");
    }
}

/// A connection ID the tracker issued to `from`.
fn connect(tracker: &Tracker, ids: &ConnectionIds, from: SocketAddr) -> u64 {
    let mut connect = 0x0417_2710_1980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&0u32.to_be_bytes());
    connect.extend_from_slice(&7u32.to_be_bytes());
    let mut out = Vec::new();
    handle_packet(tracker, ids, &connect, from, &mut out);
    u64::from_be_bytes(out[8..16].try_into().unwrap())
}

proptest! {
    #[test]
    fn arbitrary_queries_never_panic(query in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_announce(&query);
        let _ = parse_scrape(&query);
    }

    #[test]
    fn query_like_bytes_get_a_bencoded_answer(query in query_like()) {
        let tracker = tracker();
        let body = tracker.http_announce(&query, "10.0.0.1:6881".parse().unwrap());
        prop_assert!(body.starts_with(b"d") && body.ends_with(b"e"));
    }

    #[test]
    fn udp_datagrams_get_a_protocol_reply_or_none(
        action in 0u32..5,
        tail in proptest::collection::vec(any::<u8>(), 0..200),
        raw in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let (tracker, ids) = (tracker(), ConnectionIds::new());
        let from: SocketAddr = "10.0.0.2:6881".parse().unwrap();
        let mut out = Vec::new();
        // Bytes as they come.
        handle_packet(&tracker, &ids, &raw, from, &mut out);
        // Past a valid connect: the announce and scrape parsers get the tail.
        let mut packet = connect(&tracker, &ids, from).to_be_bytes().to_vec();
        packet.extend_from_slice(&action.to_be_bytes());
        packet.extend_from_slice(&9u32.to_be_bytes());
        packet.extend_from_slice(&tail);
        handle_packet(&tracker, &ids, &packet, from, &mut out);
        if !out.is_empty() {
            prop_assert!(out.len() >= 8, "a reply shorter than action + transaction");
            prop_assert_eq!(&out[4..8], &9u32.to_be_bytes(), "the reply names another transaction");
        }
    }
}
