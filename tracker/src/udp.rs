//! The UDP tracker protocol (BEP 15): packet handling over the shared [`Tracker`].
//!
//! Connection IDs are never stored: an ID is a keyed SipHash of the client's address and the
//! current two-minute window, so a client cannot forge one for an address it does not own, and
//! the server checks one by recomputing it for this window and the previous one.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use shoal_torrents::InfoHash;
use tokio::net::UdpSocket;

use crate::service::{Refusal, Tracker};
use crate::swarm::{Announce, Event};

const PROTOCOL_ID: u64 = 0x0417_2710_1980;
const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;
/// A connection ID is accepted for one to two of these windows (BEP 15 asks for one minute).
const WINDOW_MS: u64 = 120_000;

/// Makes and checks connection IDs with a random key chosen at start.
pub struct ConnectionIds {
    key: std::collections::hash_map::RandomState,
}

impl Default for ConnectionIds {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionIds {
    pub fn new() -> Self {
        Self { key: std::collections::hash_map::RandomState::new() }
    }

    fn id(&self, addr: SocketAddr, window: u64) -> u64 {
        self.key.hash_one((addr.ip().to_canonical(), addr.port(), window))
    }

    pub fn issue(&self, addr: SocketAddr, now_ms: u64) -> u64 {
        self.id(addr, now_ms / WINDOW_MS)
    }

    pub fn check(&self, id: u64, addr: SocketAddr, now_ms: u64) -> bool {
        let window = now_ms / WINDOW_MS;
        id == self.id(addr, window) || (window > 0 && id == self.id(addr, window - 1))
    }
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(p[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(p: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(p[at..at + 8].try_into().expect("8 bytes"))
}

fn error_reply(transaction: u32, message: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// Handles one datagram from `from`, writing the reply (if any) into `out`.
pub fn handle_packet(tracker: &Tracker, ids: &ConnectionIds, packet: &[u8], from: SocketAddr, out: &mut Vec<u8>) {
    out.clear();
    if packet.len() < 16 {
        return; // Too short to carry a transaction ID to answer to.
    }
    let connection = u64_at(packet, 0);
    let action = u32_at(packet, 8);
    let transaction = u32_at(packet, 12);
    let now_ms = tracker.now_ms();
    if action == ACTION_CONNECT {
        if connection != PROTOCOL_ID {
            return;
        }
        out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
        out.extend_from_slice(&transaction.to_be_bytes());
        out.extend_from_slice(&ids.issue(from, now_ms).to_be_bytes());
        return;
    }
    if !ids.check(connection, from, now_ms) {
        error_reply(transaction, "connection id expired or invalid", out);
        return;
    }
    match action {
        ACTION_ANNOUNCE if packet.len() >= 98 => announce(tracker, packet, from, transaction, out),
        ACTION_SCRAPE => {
            let hashes: Vec<InfoHash> = packet[16..]
                .chunks_exact(20)
                .take(crate::query::MAX_SCRAPE_HASHES)
                .filter_map(InfoHash::from_slice)
                .collect();
            out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
            out.extend_from_slice(&transaction.to_be_bytes());
            for (_, s) in tracker.scrape(&hashes) {
                out.extend_from_slice(&s.complete.to_be_bytes());
                out.extend_from_slice(&s.downloaded.to_be_bytes());
                out.extend_from_slice(&s.incomplete.to_be_bytes());
            }
        }
        _ => error_reply(transaction, "malformed request", out),
    }
}

fn announce(tracker: &Tracker, p: &[u8], from: SocketAddr, transaction: u32, out: &mut Vec<u8>) {
    let info_hash = InfoHash::from_slice(&p[16..36]).expect("20 bytes");
    let peer_id: [u8; 20] = p[36..56].try_into().expect("20 bytes");
    let left = u64_at(p, 64);
    let event = match u32_at(p, 80) {
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        _ => Event::None,
    };
    let numwant = i32::from_be_bytes(p[92..96].try_into().expect("4 bytes"));
    let port = u16::from_be_bytes([p[96], p[97]]);
    if port == 0 {
        let refusal = Refusal::Request(crate::query::RequestError::InvalidPort);
        tracker.refuse(refusal);
        error_reply(transaction, &refusal.to_string(), out);
        return;
    }
    let ip = from.ip().to_canonical();
    let req = Announce {
        info_hash,
        peer_id,
        addr: SocketAddr::new(ip, port),
        event,
        seeding: left == 0,
        numwant: u32::try_from(numwant).ok(),
    };
    let mut peers = Vec::new();
    match tracker.announce(&req, &mut peers) {
        Ok(outcome) => {
            out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
            out.extend_from_slice(&transaction.to_be_bytes());
            out.extend_from_slice(&tracker.intervals().interval_secs.to_be_bytes());
            out.extend_from_slice(&outcome.incomplete.to_be_bytes());
            out.extend_from_slice(&outcome.complete.to_be_bytes());
            // A UDP reply carries one address family: the one the request came over.
            for peer in &peers {
                match (peer.addr.ip(), ip) {
                    (IpAddr::V4(a), IpAddr::V4(_)) => out.extend_from_slice(&a.octets()),
                    (IpAddr::V6(a), IpAddr::V6(_)) => out.extend_from_slice(&a.octets()),
                    _ => continue,
                }
                out.extend_from_slice(&peer.addr.port().to_be_bytes());
            }
        }
        Err(refusal) => {
            tracker.refuse(refusal);
            error_reply(transaction, &refusal.to_string(), out);
        }
    }
}

/// Serves datagrams on `socket` until the task is dropped.
pub async fn serve(socket: UdpSocket, tracker: Arc<Tracker>) {
    let ids = ConnectionIds::new();
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(1500);
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!("udp receive: {e}");
                continue;
            }
        };
        handle_packet(&tracker, &ids, &buf[..n], from, &mut out);
        if !out.is_empty() {
            if let Err(e) = socket.send_to(&out, from).await {
                tracing::debug!("udp send to {from}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Access;
    use crate::service::Intervals;
    use crate::swarm::SwarmLimits;

    fn tracker() -> Tracker {
        Tracker::new(SwarmLimits::default(), Intervals { interval_secs: 300, min_interval_secs: 60 }, Access::open())
    }

    fn connect(t: &Tracker, ids: &ConnectionIds, from: SocketAddr) -> u64 {
        let mut p = PROTOCOL_ID.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&7u32.to_be_bytes());
        let mut out = Vec::new();
        handle_packet(t, ids, &p, from, &mut out);
        assert_eq!(out.len(), 16);
        assert_eq!(u32_at(&out, 4), 7);
        u64_at(&out, 8)
    }

    fn announce_packet(conn: u64, hash: [u8; 20], left: u64, event: u32, port: u16) -> Vec<u8> {
        let mut p = conn.to_be_bytes().to_vec();
        p.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        p.extend_from_slice(&9u32.to_be_bytes());
        p.extend_from_slice(&hash);
        p.extend_from_slice(&[b'p'; 20]);
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&left.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
        p.extend_from_slice(&event.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&(-1i32).to_be_bytes());
        p.extend_from_slice(&port.to_be_bytes());
        p
    }

    #[test]
    fn connect_announce_scrape() {
        let t = tracker();
        let ids = ConnectionIds::new();
        let seeder: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let leecher: SocketAddr = "10.0.0.2:5001".parse().unwrap();
        let c1 = connect(&t, &ids, seeder);
        let mut out = Vec::new();
        handle_packet(&t, &ids, &announce_packet(c1, [1; 20], 0, 2, 6881), seeder, &mut out);
        assert_eq!((u32_at(&out, 0), u32_at(&out, 4), u32_at(&out, 8)), (1, 9, 300));
        let c2 = connect(&t, &ids, leecher);
        handle_packet(&t, &ids, &announce_packet(c2, [1; 20], 10, 2, 6882), leecher, &mut out);
        assert_eq!((u32_at(&out, 12), u32_at(&out, 16)), (1, 1), "leechers, seeders");
        assert_eq!(&out[20..], &[10, 0, 0, 1, 0x1a, 0xe1]);
        let mut scrape = c2.to_be_bytes().to_vec();
        scrape.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
        scrape.extend_from_slice(&3u32.to_be_bytes());
        scrape.extend_from_slice(&[1; 20]);
        scrape.extend_from_slice(&[2; 20]);
        handle_packet(&t, &ids, &scrape, leecher, &mut out);
        assert_eq!(out.len(), 8 + 24);
        assert_eq!((u32_at(&out, 8), u32_at(&out, 12), u32_at(&out, 16)), (1, 0, 1));
    }

    #[test]
    fn connection_ids_are_bound_to_the_address_and_expire() {
        let ids = ConnectionIds::new();
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:5001".parse().unwrap();
        let id = ids.issue(a, 1_000);
        assert!(ids.check(id, a, 1_000 + WINDOW_MS));
        assert!(!ids.check(id, b, 1_000));
        assert!(!ids.check(id, a, 1_000 + 2 * WINDOW_MS));
        let t = tracker();
        let mut out = Vec::new();
        handle_packet(&t, &ids, &announce_packet(12345, [1; 20], 0, 2, 6881), a, &mut out);
        assert_eq!(u32_at(&out, 0), ACTION_ERROR);
    }

    #[test]
    fn short_and_odd_packets_never_panic() {
        let t = tracker();
        let ids = ConnectionIds::new();
        let from: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let conn = connect(&t, &ids, from);
        let mut out = Vec::new();
        for len in 0..120 {
            let mut p = announce_packet(conn, [1; 20], 0, 2, 6881);
            p.resize(len, 0xff);
            handle_packet(&t, &ids, &p, from, &mut out);
        }
        handle_packet(&t, &ids, &announce_packet(conn, [1; 20], 0, 2, 0), from, &mut out);
        assert_eq!(u32_at(&out, 0), ACTION_ERROR);
    }
}
