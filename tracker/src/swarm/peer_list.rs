//! One list of stored peers (seeders or leechers of one address family) in the compact wire form,
//! with its optional hash index and its uniform random sampling.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;

use rand::Rng;

use super::{HandedPeer, INDEX_ABOVE};

/// Lists up to this size are sampled with a stack bitset (see `PeerList::sample_into`).
const SMALL_SAMPLE_BITS: usize = 4096;
/// The index is dropped again below this size (hysteresis, so a list near the edge does not
/// rebuild its index on every join and leave).
const INDEX_DROP_BELOW: usize = 8;
/// A zero-sized hasher builder sharing one process-wide random SipHash key, so that a peer
/// index costs no per-map key bytes and remote peers cannot aim for hash collisions.
#[derive(Clone, Copy, Default)]
pub(super) struct KeyedHasher;

impl BuildHasher for KeyedHasher {
    type Hasher = std::collections::hash_map::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        KEYS.get_or_init(RandomState::new).build_hasher()
    }
}

/// One stored peer; `N` is 6 (IPv4) or 18 (IPv6): the BEP 23 / BEP 7 compact form.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer<const N: usize> {
    pub(super) addr: [u8; N],
    /// Whole seconds since the clock's origin after which the peer is stale.
    pub(super) expires: u32,
    pub(super) id: [u8; 20],
}

/// Peers of one kind (seeders or leechers) and one address family.
#[derive(Default)]
pub(super) struct PeerList<const N: usize> {
    pub(super) peers: Vec<Peer<N>>,
    /// Address -> position in `peers`; empty unless the list is large (see [`INDEX_ABOVE`]).
    index: HashMap<[u8; N], u32, KeyedHasher>,
}

impl<const N: usize> PeerList<N> {
    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(super) fn find(&self, addr: &[u8; N]) -> Option<usize> {
        if self.index.is_empty() {
            self.peers.iter().position(|p| &p.addr == addr)
        } else {
            self.index.get(addr).map(|&i| i as usize)
        }
    }

    pub(super) fn push(&mut self, peer: Peer<N>) -> usize {
        let at = self.peers.len();
        self.peers.push(peer);
        if !self.index.is_empty() {
            self.index.insert(peer.addr, at as u32);
        } else if self.peers.len() > INDEX_ABOVE {
            self.index = self.peers.iter().enumerate().map(|(i, p)| (p.addr, i as u32)).collect();
        }
        at
    }

    pub(super) fn remove(&mut self, at: usize) -> Peer<N> {
        let gone = self.peers.swap_remove(at);
        if !self.index.is_empty() {
            if self.peers.len() < INDEX_DROP_BELOW {
                self.index = HashMap::default();
            } else {
                self.index.remove(&gone.addr);
                if let Some(moved) = self.peers.get(at) {
                    self.index.insert(moved.addr, at as u32);
                }
            }
        }
        self.shrink_if_sparse();
        gone
    }

    /// Drops expired peers; returns how many.
    pub(super) fn purge(&mut self, now_secs: u32) -> usize {
        let before = self.peers.len();
        self.peers.retain(|p| p.expires > now_secs);
        let removed = before - self.peers.len();
        if removed > 0 {
            self.index = if self.peers.len() > INDEX_ABOVE {
                self.peers.iter().enumerate().map(|(i, p)| (p.addr, i as u32)).collect()
            } else {
                HashMap::default()
            };
            self.shrink_if_sparse();
        }
        removed
    }

    /// Gives memory back after churn so a swarm that was once large does not stay large.
    fn shrink_if_sparse(&mut self) {
        if self.peers.capacity() > 8 && self.peers.len() < self.peers.capacity() / 4 {
            self.peers.shrink_to(self.peers.len() * 2);
        }
    }

    /// Appends `want` peers chosen uniformly at random, never the one at `skip`.
    pub(super) fn sample_into(&self, want: usize, skip: Option<usize>, rng: &mut impl Rng, out: &mut Vec<HandedPeer>)
    where
        [u8; N]: CompactAddr,
    {
        let available = self.peers.len() - usize::from(skip.is_some());
        let hand = |p: &Peer<N>| HandedPeer { addr: p.addr.to_socket_addr(), peer_id: p.id };
        if want >= available {
            out.extend(self.peers.iter().enumerate().filter(|(i, _)| Some(*i) != skip).map(|(_, p)| hand(p)));
            return;
        }
        let position = |j: usize| match skip {
            Some(s) if j >= s => j + 1,
            _ => j,
        };
        if available <= SMALL_SAMPLE_BITS {
            // Rejection sampling over a stack bitset: no allocation and no quadratic
            // membership checks, which is most of the cost for the usual 50-of-a-few-hundred.
            // Marks `picks` distinct random positions; when more than half are wanted, the
            // marked ones are the ones left out, so the loop never draws more than 2x.
            let keep_marked = want * 2 <= available;
            let picks = if keep_marked { want } else { available - want };
            let mut marked = [0u64; SMALL_SAMPLE_BITS / 64];
            let mut left = picks;
            while left > 0 {
                let j = rng.random_range(0..available as u32) as usize;
                let (word, bit) = (j / 64, 1u64 << (j % 64));
                if marked[word] & bit == 0 {
                    marked[word] |= bit;
                    left -= 1;
                }
            }
            for (w, &bits) in marked.iter().enumerate().take(available.div_ceil(64)) {
                let in_range = if (w + 1) * 64 <= available { u64::MAX } else { (1u64 << (available % 64)) - 1 };
                let mut chosen = if keep_marked { bits } else { !bits & in_range };
                while chosen != 0 {
                    out.push(hand(&self.peers[position(w * 64 + chosen.trailing_zeros() as usize)]));
                    chosen &= chosen - 1;
                }
            }
            return;
        }
        for j in rand::seq::index::sample(rng, available, want) {
            out.push(hand(&self.peers[position(j)]));
        }
    }
}

/// Conversion between a socket address and its compact (BEP 23 / BEP 7) bytes.
pub trait CompactAddr: Sized {
    fn to_socket_addr(&self) -> SocketAddr;
}

impl CompactAddr for [u8; 6] {
    fn to_socket_addr(&self) -> SocketAddr {
        let ip = Ipv4Addr::new(self[0], self[1], self[2], self[3]);
        SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([self[4], self[5]]))
    }
}

impl CompactAddr for [u8; 18] {
    fn to_socket_addr(&self) -> SocketAddr {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&self[..16]);
        SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), u16::from_be_bytes([self[16], self[17]]))
    }
}

pub(super) fn compact_v4(ip: Ipv4Addr, port: u16) -> [u8; 6] {
    let mut out = [0u8; 6];
    out[..4].copy_from_slice(&ip.octets());
    out[4..].copy_from_slice(&port.to_be_bytes());
    out
}

pub(super) fn compact_v6(ip: Ipv6Addr, port: u16) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&ip.octets());
    out[16..].copy_from_slice(&port.to_be_bytes());
    out
}
