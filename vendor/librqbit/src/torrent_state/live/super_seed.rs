//! Shoal patch: which pieces a super-seeding origin shows each peer (after BEP 16).
//!
//! Hosts that start one blob together cannot see which pieces the origin is already sending to
//! the others, so with a full bitfield they ask it for the same pieces and the origin's link
//! carries about two copies of the blob. A super-seeding origin instead shows each peer only a
//! few pieces, the ones fewest peers hold or have been shown, so each piece leaves the origin
//! about once and the hosts trade the rest among themselves. Until every piece has left the
//! origin once, a peer is shown only pieces that have not (none, if all those are shown to
//! others already): a second copy then would slow down how fast new pieces enter the swarm,
//! which is what limits the whole swarm (the lab's origin sent 1.27 copies before, 1.04 after).
//!
//! A peer counts as holding a shown piece once it has asked for the piece's last chunk
//! ("given"), not only once it sends a HAVE: librqbit sends no HAVE to a peer whose bitfield
//! already has the piece, and the origin showed it, so a librqbit host never tells the origin.
//!
//! This is the pure core: no I/O, no clock. The live torrent feeds it the peers' bitfields and
//! requests, and sends the HAVEs it returns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::type_aliases::{BF, PeerHandle};

/// What the origin has shown each connected peer and the peer does not hold yet.
#[derive(Debug)]
pub(crate) struct SuperSeed {
    /// Per piece: to how many connected peers it is shown and not yet held by them.
    shown: Vec<u16>,
    /// Per peer: the pieces shown to it that it does not hold yet.
    per_peer: HashMap<PeerHandle, Vec<usize>>,
    /// Per piece: to how many connected peers it was given and not announced by them (so
    /// their bitfields do not count it yet).
    given: Vec<u16>,
    /// Per peer: the pieces it was given and has not announced.
    given_to: HashMap<PeerHandle, Vec<usize>>,
    /// Peers shown every piece: they have been the only downloader for [`Self::LONE_AFTER`],
    /// and with one downloader there is nothing to share out (showing a lone docker pull a
    /// few pieces at a time made it 1.5x slower).
    shown_all: std::collections::HashSet<PeerHandle>,
    /// Peers that connected while no other peer was downloading, and since when: super-seeded
    /// until they have been alone for [`Self::LONE_AFTER`].
    lone_since: HashMap<PeerHandle, Instant>,
    /// How many unheld pieces a peer is shown at once (`SHOWN_BYTES`).
    per_peer_limit: usize,
}

impl SuperSeed {
    /// Bytes a peer is shown ahead (at least 2 pieces). Few, so the origin sends few pieces at
    /// once and each reaches its host soon, ready to trade: with 2 MiB the origin's link
    /// carried a slice of every host's 2 MiB at the same time, and the last new pieces arrived
    /// together at the very end (swarm lab N=16, 50 mbit: p50 1.34-1.36x ideal against
    /// 1.27-1.29x with 256 KiB; docs/benchmarks.md).
    const SHOWN_BYTES: u64 = 256 * 1024;

    /// How long a peer must be the only downloader before it is shown every piece. Hosts of a
    /// burst connect within tens of milliseconds of each other, and the first one used to be
    /// shown everything at once: its stream then asked the origin for the pieces the origin
    /// was just sending to the others (the lab's origin sent 25 pieces twice, 0.6 s of its
    /// link). A lone pull loses no more than this at super-seeding's pace.
    const LONE_AFTER: Duration = Duration::from_millis(200);

    pub fn new(total_pieces: usize, piece_length: u32) -> Self {
        let per_peer_limit = Self::SHOWN_BYTES.div_ceil(u64::from(piece_length.max(1))).max(2);
        Self {
            shown: vec![0; total_pieces],
            per_peer: HashMap::new(),
            given: vec![0; total_pieces],
            given_to: HashMap::new(),
            shown_all: std::collections::HashSet::new(),
            lone_since: HashMap::new(),
            per_peer_limit: usize::try_from(per_peer_limit).unwrap_or(usize::MAX),
        }
    }

    /// Brings what `peer` is shown up to date with what it holds (`peer_has`, empty if its
    /// bitfield has not come yet) and returns the pieces to show it now (send as HAVE, or in
    /// the first bitfield). `holders[i]` is how many connected peers hold piece `i`.
    ///
    /// Picks pieces no one holds or is shown, lowest index first, so hosts that start together
    /// are each shown different pieces (and in about the order their streams read). Once
    /// every piece has left the origin, picks those with the fewest holders, then those shown
    /// to others too. A peer seen first while `others_downloading` is false, and still the
    /// only downloader [`Self::LONE_AFTER`] later (`now` is the time of this call), is shown
    /// every piece at once, and from then on nothing more is needed.
    pub fn refill(
        &mut self,
        peer: PeerHandle,
        peer_has: &BF,
        holders: &[u16],
        others_downloading: bool,
        now: Instant,
    ) -> Vec<usize> {
        let announced = |piece: usize| peer_has.get(piece).is_some_and(|b| *b);
        if self.shown_all.contains(&peer) {
            return Vec::new();
        }
        if others_downloading {
            self.lone_since.remove(&peer);
        } else if !self.per_peer.contains_key(&peer) {
            self.lone_since.insert(peer, now);
        } else if self
            .lone_since
            .get(&peer)
            .is_some_and(|since| now.saturating_duration_since(*since) >= Self::LONE_AFTER)
        {
            self.lone_since.remove(&peer);
            self.shown_all.insert(peer);
            let pending = self.unshow(peer);
            // The pieces it was shown already went out as HAVEs.
            return (0..self.shown.len()).filter(|&p| !announced(p) && !pending.contains(&p)).collect();
        }
        // A given piece the peer announces is counted by `holders` from now on.
        let given = &mut self.given;
        let given_to = self.given_to.entry(peer).or_default();
        drop_where(given_to, given, announced);
        let mut has: Vec<bool> = (0..self.shown.len()).map(announced).collect();
        for &piece in given_to.iter() {
            has[piece] = true;
        }
        let shown = &mut self.shown;
        let pending = self.per_peer.entry(peer).or_default();
        drop_where(pending, shown, |piece| has[piece]);
        let wanted = self.per_peer_limit.saturating_sub(pending.len());
        if wanted == 0 {
            return Vec::new();
        }
        for &piece in pending.iter() {
            has[piece] = true;
        }
        let held = |piece: usize| u32::from(holders.get(piece).copied().unwrap_or(0)) + u32::from(given[piece]);
        // Until every piece has left the origin once, only pieces that have not are shown: a
        // piece some host holds or is shown already would be sent twice, and the origin's link
        // is what limits how fast new pieces enter the swarm.
        let first_pass_done = (0..shown.len()).all(|piece| held(piece) > 0);
        let mut candidates: Vec<(u8, u32, usize)> = (0..shown.len())
            .filter(|&piece| !has[piece])
            .filter_map(|piece| {
                let (held, showings) = (held(piece), u32::from(shown[piece]));
                match (held, showings) {
                    (0, 0) => Some((0, 0, piece)),
                    _ if !first_pass_done => None,
                    (_, 0) => Some((1, held, piece)),
                    _ => Some((2, held + showings, piece)),
                }
            })
            .collect();
        let wanted = wanted.min(candidates.len());
        if wanted == 0 {
            return Vec::new();
        }
        candidates.select_nth_unstable(wanted - 1);
        let mut picked: Vec<usize> = candidates[..wanted].iter().map(|&(_, _, p)| p).collect();
        picked.sort_unstable();
        for &piece in &picked {
            shown[piece] = shown[piece].saturating_add(1);
        }
        pending.extend_from_slice(&picked);
        picked
    }

    /// Records that `peer` asked for the last chunk of `piece`: the piece counts as the peer's
    /// from now on (also for a peer shown every piece, so no one else is shown it), and if it
    /// was one the peer was shown, the peer should be shown another (returns true).
    pub fn give(&mut self, peer: PeerHandle, piece: usize) -> bool {
        let given_to = self.given_to.entry(peer).or_default();
        if piece >= self.given.len() || given_to.contains(&piece) {
            return false;
        }
        given_to.push(piece);
        self.given[piece] = self.given[piece].saturating_add(1);
        let Some(pending) = self.per_peer.get_mut(&peer) else {
            return false;
        };
        let Some(at) = pending.iter().position(|&p| p == piece) else {
            return false;
        };
        pending.swap_remove(at);
        self.shown[piece] = self.shown[piece].saturating_sub(1);
        true
    }

    /// Forgets a peer that left: its pieces count as shown to nobody, and what it was given
    /// leaves with it.
    pub fn forget(&mut self, peer: PeerHandle) {
        self.unshow(peer);
        for piece in self.given_to.remove(&peer).unwrap_or_default() {
            self.given[piece] = self.given[piece].saturating_sub(1);
        }
        self.shown_all.remove(&peer);
        self.lone_since.remove(&peer);
    }

    /// Stops counting the pieces shown to `peer` as shown; returns them.
    fn unshow(&mut self, peer: PeerHandle) -> Vec<usize> {
        let pending = self.per_peer.remove(&peer).unwrap_or_default();
        for &piece in &pending {
            self.shown[piece] = self.shown[piece].saturating_sub(1);
        }
        pending
    }

    /// Whether `piece` is shown to `peer` and the peer did not hold it yet.
    pub fn is_shown(&self, peer: PeerHandle, piece: usize) -> bool {
        self.per_peer.get(&peer).is_some_and(|p| p.contains(&piece))
    }
}

/// Removes the pieces `held` says from `list`, uncounting each in `counts`.
fn drop_where(list: &mut Vec<usize>, counts: &mut [u16], held: impl Fn(usize) -> bool) {
    list.retain(|&piece| {
        let keep = !held(piece);
        if !keep {
            counts[piece] = counts[piece].saturating_sub(1);
        }
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u16) -> PeerHandle {
        std::net::SocketAddr::from(([127, 0, 0, 1], n))
    }

    fn bitfield(total: usize, held: &[usize]) -> BF {
        let mut bf = BF::from_boxed_slice(vec![0u8; total.div_ceil(8)].into_boxed_slice());
        for &p in held {
            bf.set(p, true);
        }
        bf
    }

    const KIB: u32 = 1024;

    /// One instant for the tests that do not care about time.
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    #[test]
    fn a_peer_is_shown_the_blob_in_order_as_it_completes_pieces() {
        let mut seed = SuperSeed::new(32, 32 * KIB);
        let none = vec![0u16; 32];
        assert_eq!(seed.refill(peer(1), &bitfield(32, &[]), &none, true, t0()), (0..8).collect::<Vec<_>>());
        assert!(seed.refill(peer(1), &bitfield(32, &[]), &none, true, t0()).is_empty());
        let mut holders = none.clone();
        holders[0] = 1;
        holders[1] = 1;
        assert_eq!(seed.refill(peer(1), &bitfield(32, &[0, 1]), &holders, true, t0()), vec![8, 9]);
    }

    #[test]
    fn peers_that_start_together_are_shown_different_pieces() {
        let mut seed = SuperSeed::new(64, 32 * KIB);
        let none = vec![0u16; 64];
        let empty = bitfield(64, &[]);
        let mut seen = std::collections::HashSet::new();
        for n in 1..=8 {
            for piece in seed.refill(peer(n), &empty, &none, true, t0()) {
                assert!(seen.insert(piece), "piece {piece} shown twice");
            }
        }
        assert_eq!(seen.len(), 64);
        // Everything is shown once now: a ninth peer is shown nothing until every piece has
        // left the origin once, since any piece would be sent twice.
        let ninth = bitfield(64, &[0, 1, 2]);
        assert!(seed.refill(peer(9), &ninth, &none, true, t0()).is_empty());
        for n in 1..=8u16 {
            for piece in (usize::from(n) - 1) * 8..usize::from(n) * 8 {
                seed.give(peer(n), piece);
            }
        }
        // Then it is shown pieces that have left once, never one it holds.
        let shown = seed.refill(peer(9), &ninth, &none, true, t0());
        assert_eq!(shown.len(), 8);
        assert!(shown.iter().all(|p| *p > 2));
    }

    #[test]
    fn a_piece_is_not_shown_twice_while_some_piece_has_not_left_once() {
        let mut seed = SuperSeed::new(16, 1024 * KIB);
        let none = vec![0u16; 16];
        let empty = bitfield(16, &[]);
        assert_eq!(seed.refill(peer(1), &empty, &none, true, t0()), vec![0, 1]);
        // Pieces 2..15 are held by a host; piece 0 and 1 are still only shown to peer 1.
        let mut holders = vec![1u16; 16];
        holders[0] = 0;
        holders[1] = 0;
        assert!(seed.refill(peer(2), &empty, &holders, true, t0()).is_empty());
        // Once peer 1 has asked for piece 0, only piece 1 has not left: still nothing.
        assert!(seed.give(peer(1), 0));
        assert!(seed.refill(peer(2), &empty, &holders, true, t0()).is_empty());
        // Once it has asked for both, peer 2 is shown the least held pieces.
        assert!(seed.give(peer(1), 1));
        assert_eq!(seed.refill(peer(2), &empty, &holders, true, t0()), vec![0, 1]);
    }

    #[test]
    fn pieces_held_by_other_peers_come_after_pieces_no_one_holds() {
        let mut seed = SuperSeed::new(16, 1024 * KIB);
        let mut holders = vec![0u16; 16];
        for h in holders.iter_mut().take(12) {
            *h = 3;
        }
        let shown = seed.refill(peer(1), &bitfield(16, &[]), &holders, true, t0());
        assert_eq!(shown, vec![12, 13]);
    }

    #[test]
    fn a_peer_that_leaves_frees_its_pieces_for_others() {
        let mut seed = SuperSeed::new(4, 1024 * KIB);
        let none = vec![0u16; 4];
        let empty = bitfield(4, &[]);
        assert_eq!(seed.refill(peer(1), &empty, &none, true, t0()), vec![0, 1]);
        assert_eq!(seed.refill(peer(2), &empty, &none, true, t0()), vec![2, 3]);
        seed.forget(peer(1));
        assert!(!seed.is_shown(peer(1), 0));
        assert_eq!(seed.refill(peer(3), &empty, &none, true, t0()), vec![0, 1]);
    }

    #[test]
    fn a_piece_given_counts_as_held_by_the_peer_that_never_announces_it() {
        let mut seed = SuperSeed::new(32, 32 * KIB);
        let none = vec![0u16; 32];
        let empty = bitfield(32, &[]);
        assert_eq!(seed.refill(peer(1), &empty, &none, true, t0()), (0..8).collect::<Vec<_>>());
        assert!(seed.give(peer(1), 0));
        assert!(!seed.give(peer(1), 0), "given once");
        // Peer 2 asks for piece 1 it was never shown: it counts as peer 2's, no more shown.
        assert!(!seed.give(peer(2), 1), "never shown to peer 2");
        // Peer 1 is shown a ninth piece, never piece 0 again though it did not announce it.
        assert_eq!(seed.refill(peer(1), &empty, &none, true, t0()), vec![8]);
        // Piece 0 now ranks like a held piece: a second peer is shown pieces no one has first.
        let second = seed.refill(peer(2), &empty, &none, true, t0());
        assert_eq!(second, (9..17).collect::<Vec<_>>());
        // Once peer 1 announces piece 0 it is counted by the bitfields, not twice.
        let mut holders = none.clone();
        holders[0] = 1;
        assert!(seed.refill(peer(1), &bitfield(32, &[0]), &holders, true, t0()).is_empty());
        assert_eq!(seed.given[0], 0);
        seed.forget(peer(1));
        seed.forget(peer(2));
        assert!(seed.given.iter().all(|g| *g == 0));
    }

    #[test]
    fn a_lone_downloader_is_shown_everything_and_later_peers_are_super_seeded() {
        let mut seed = SuperSeed::new(32, 32 * KIB);
        let none = vec![0u16; 32];
        let has3 = bitfield(32, &[3]);
        // Alone, it is super-seeded at first, like any peer...
        assert_eq!(seed.refill(peer(1), &has3, &none, false, t0()), (0..9).filter(|&p| p != 3).collect::<Vec<_>>());
        assert!(seed.give(peer(1), 0));
        assert!(seed.refill(peer(1), &has3, &none, false, t0() + Duration::from_millis(100)).len() <= 1);
        // ...and shown the rest once it has been alone for LONE_AFTER.
        let rest = seed.refill(peer(1), &has3, &none, false, t0() + SuperSeed::LONE_AFTER);
        assert!(!rest.is_empty() && rest.iter().all(|&p| p >= 8 || p == 0), "{rest:?}");
        assert!(seed.shown.iter().all(|&n| n == 0), "a peer shown everything is not counted as shown");
        assert!(seed.refill(peer(1), &has3, &none, true, t0()).is_empty());
        assert!(!seed.give(peer(1), 9));
        assert_eq!(seed.refill(peer(2), &bitfield(32, &[]), &none, true, t0()).len(), 8);
        // A peer already super-seeded stays so when the others leave.
        assert!(seed.refill(peer(2), &bitfield(32, &[]), &none, false, t0() + Duration::from_secs(9)).is_empty());
        seed.forget(peer(1));
        assert!(seed.shown_all.is_empty());
    }

    #[test]
    fn a_peer_joined_within_lone_after_keeps_the_first_super_seeded() {
        let mut seed = SuperSeed::new(32, 32 * KIB);
        let none = vec![0u16; 32];
        let empty = bitfield(32, &[]);
        assert_eq!(seed.refill(peer(1), &empty, &none, false, t0()), (0..8).collect::<Vec<_>>());
        // A second host of the burst arrives 20 ms later: both are super-seeded from then on.
        assert_eq!(
            seed.refill(peer(2), &empty, &none, true, t0() + Duration::from_millis(20)),
            (8..16).collect::<Vec<_>>()
        );
        assert!(seed.give(peer(1), 0));
        let later = t0() + Duration::from_secs(1);
        assert_eq!(seed.refill(peer(1), &empty, &none, true, later), vec![16]);
        // Even if it is alone again later (the other finished), it is not shown everything.
        assert!(seed.give(peer(1), 1));
        assert_eq!(seed.refill(peer(1), &empty, &none, false, later + SuperSeed::LONE_AFTER), vec![17]);
    }

    #[test]
    fn a_peer_with_every_piece_is_shown_nothing() {
        let mut seed = SuperSeed::new(4, 1024 * KIB);
        assert!(seed.refill(peer(1), &bitfield(4, &[0, 1, 2, 3]), &[1, 1, 1, 1], true, t0()).is_empty());
    }

    #[test]
    fn the_last_pieces_a_peer_lacks_are_shown_to_it() {
        let mut seed = SuperSeed::new(8, 1024 * KIB);
        let holders = vec![5u16; 8];
        let shown = seed.refill(peer(1), &bitfield(8, &[0, 1, 2, 3, 4, 5, 7]), &holders, true, t0());
        assert_eq!(shown, vec![6]);
    }
}
