//! Bencoded tracker replies, written straight into a byte buffer in sorted-key order.
//!
//! Hand-written rather than built as a generic dictionary: announces are the hot path and a
//! 50-peer compact reply is a few hundred bytes that need no intermediate tree.

use std::io::Write;
use std::net::SocketAddr;

use shoal_torrents::InfoHash;

use crate::swarm::{HandedPeer, ScrapeStats};

/// What an announce reply says besides the peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    pub interval: u32,
    pub min_interval: u32,
    pub complete: u32,
    pub incomplete: u32,
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "{}:", b.len());
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, key: &[u8], v: u64) {
    out.extend_from_slice(key);
    let _ = write!(out, "i{v}e");
}

/// The announce reply. `compact` gives BEP 23 `peers` (IPv4) and BEP 7 `peers6` (IPv6);
/// otherwise the BEP 3 list of dictionaries, without `peer id` when `no_peer_id`.
pub fn announce(header: &ReplyHeader, peers: &[HandedPeer], compact: bool, no_peer_id: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + peers.len() * if compact { 6 } else { 64 });
    out.push(b'd');
    int(&mut out, b"8:complete", header.complete.into());
    int(&mut out, b"10:incomplete", header.incomplete.into());
    int(&mut out, b"8:interval", header.interval.into());
    int(&mut out, b"12:min interval", header.min_interval.into());
    if compact {
        let v4 = peers.iter().filter(|p| p.addr.is_ipv4()).count();
        let v6 = peers.len() - v4;
        let _ = write!(out, "5:peers{}:", v4 * 6);
        for p in peers {
            if let SocketAddr::V4(a) = p.addr {
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.port().to_be_bytes());
            }
        }
        if v6 > 0 {
            let _ = write!(out, "6:peers6{}:", v6 * 18);
            for p in peers {
                if let SocketAddr::V6(a) = p.addr {
                    out.extend_from_slice(&a.ip().octets());
                    out.extend_from_slice(&a.port().to_be_bytes());
                }
            }
        }
    } else {
        out.extend_from_slice(b"5:peersl");
        for p in peers {
            out.push(b'd');
            bytes(&mut out, b"ip");
            bytes(&mut out, p.addr.ip().to_string().as_bytes());
            if !no_peer_id {
                bytes(&mut out, b"peer id");
                bytes(&mut out, &p.peer_id);
            }
            int(&mut out, b"4:port", p.addr.port().into());
            out.push(b'e');
        }
        out.push(b'e');
    }
    out.push(b'e');
    out
}

/// A BEP 48 scrape reply: `files` maps each raw infohash to its figures.
pub fn scrape(files: &[(InfoHash, ScrapeStats)]) -> Vec<u8> {
    let mut sorted: Vec<_> = files.to_vec();
    sorted.sort_by_key(|a| a.0);
    let mut out = Vec::with_capacity(16 + sorted.len() * 80);
    out.extend_from_slice(b"d5:filesd");
    for (hash, stats) in &sorted {
        bytes(&mut out, hash.as_bytes());
        out.push(b'd');
        int(&mut out, b"8:complete", stats.complete.into());
        int(&mut out, b"10:downloaded", stats.downloaded.into());
        int(&mut out, b"10:incomplete", stats.incomplete.into());
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// `d14:failure reason<len>:<text>e`, what clients show the user.
pub fn failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + reason.len());
    out.extend_from_slice(b"d14:failure reason");
    bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_torrents::bencode::{decode, Encode};
    use std::collections::BTreeMap;

    const HEADER: ReplyHeader = ReplyHeader { interval: 300, min_interval: 60, complete: 2, incomplete: 3 };

    fn peer(addr: &str, id: u8) -> HandedPeer {
        HandedPeer { addr: addr.parse().unwrap(), peer_id: [id; 20] }
    }

    #[test]
    fn compact_matches_the_generic_encoder() {
        let peers = [peer("1.2.3.4:6881", 1), peer("[::1]:80", 2), peer("5.6.7.8:258", 3)];
        let mut want = BTreeMap::new();
        want.insert(b"complete".to_vec(), Encode::Int(2));
        want.insert(b"incomplete".to_vec(), Encode::Int(3));
        want.insert(b"interval".to_vec(), Encode::Int(300));
        want.insert(b"min interval".to_vec(), Encode::Int(60));
        want.insert(b"peers".to_vec(), Encode::Bytes(vec![1, 2, 3, 4, 0x1a, 0xe1, 5, 6, 7, 8, 1, 2]));
        let mut v6 = vec![0u8; 15];
        v6.extend_from_slice(&[1, 0, 80]);
        want.insert(b"peers6".to_vec(), Encode::Bytes(v6));
        assert_eq!(announce(&HEADER, &peers, true, false), Encode::Dict(want).to_bytes());
    }

    #[test]
    fn dictionary_form_honours_no_peer_id() {
        let peers = [peer("1.2.3.4:6881", b'a')];
        let with = announce(&HEADER, &peers, false, false);
        let list = decode(&with).unwrap().get("peers").unwrap().0.as_list().unwrap().to_vec();
        assert_eq!(list[0].get("ip").unwrap().0.as_bytes(), Some(&b"1.2.3.4"[..]));
        assert_eq!(list[0].get("port").unwrap().0.as_int(), Some(6881));
        assert_eq!(list[0].get("peer id").unwrap().0.as_bytes(), Some(&[b'a'; 20][..]));
        let without = announce(&HEADER, &peers, false, true);
        let list = decode(&without).unwrap().get("peers").unwrap().0.as_list().unwrap().to_vec();
        assert!(list[0].get("peer id").is_none());
    }

    #[test]
    fn fifty_peer_compact_body_is_small() {
        let peers: Vec<_> = (0..50).map(|i| peer(&format!("10.0.0.{i}:6881"), 0)).collect();
        let body = announce(
            &ReplyHeader { interval: 1800, min_interval: 900, complete: 9999, incomplete: 99999 },
            &peers,
            true,
            true,
        );
        // With the 40-byte status line and content-length header this stays under 450 on the wire.
        assert!(body.len() <= 400, "{}", body.len());
    }

    #[test]
    fn scrape_and_failure_decode() {
        let a = InfoHash::from_bytes([2; 20]);
        let b = InfoHash::from_bytes([1; 20]);
        let s = ScrapeStats { complete: 1, incomplete: 2, downloaded: 3 };
        let body = scrape(&[(a, s), (b, ScrapeStats::default())]);
        let v = decode(&body).unwrap();
        let files = v.get("files").unwrap().0;
        let bytes_key = String::from_utf8(vec![2; 20]).unwrap();
        assert_eq!(files.get(&bytes_key).unwrap().0.get("downloaded").unwrap().0.as_int(), Some(3));
        assert_eq!(failure("nope"), b"d14:failure reason4:nopee");
    }
}
