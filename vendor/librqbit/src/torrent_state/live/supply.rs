//! Shoal patch: who in the swarm could send a downloader what it lacks, and since when.
//!
//! A downloader that has received nothing for a while must tell a swarm that will deliver
//! from one that will not. Stock clients unchoke new peers only at their next rechoke
//! (Transmission's cycle is 10 s), so "nothing for 3 s" while a peer that holds the pieces
//! has not unchoked us yet is not a stall; with no such peer at all, it is. This module counts
//! the live peers that hold a piece we lack, which of them have unchoked us, and how recently,
//! without deciding anything (the decision is the caller's policy).
//!
//! Pure: the caller passes the time and each peer's view.

use std::time::{Duration, Instant};

/// The live peers that could send us something, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmSupply {
    /// Live peers that hold at least one piece we lack.
    pub holders: usize,
    /// Of those, the ones that have unchoked us.
    pub unchoked_holders: usize,
    /// How long the most recently connected holder that still chokes us has been connected.
    pub newest_choked_holder: Option<Duration>,
    /// How long ago the most recent unchoke by a holder was.
    pub newest_unchoke: Option<Duration>,
}

/// One live peer as [`SwarmSupply`] sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerSupply {
    pub holds_needed: bool,
    pub live_since: Instant,
    pub unchoked_at: Option<Instant>,
}

impl SwarmSupply {
    pub(crate) fn of(now: Instant, peers: impl IntoIterator<Item = PeerSupply>) -> Self {
        let mut supply = Self::default();
        let newest = |slot: &mut Option<Duration>, since: Instant| {
            let age = now.saturating_duration_since(since);
            *slot = Some(slot.map_or(age, |s| s.min(age)));
        };
        for peer in peers.into_iter().filter(|p| p.holds_needed) {
            supply.holders += 1;
            match peer.unchoked_at {
                Some(at) => {
                    supply.unchoked_holders += 1;
                    newest(&mut supply.newest_unchoke, at);
                }
                None => newest(&mut supply.newest_choked_holder, peer.live_since),
            }
        }
        supply
    }
}

impl super::TorrentStateLive {
    /// Who could send us what we lack, now. Costs a pass over the live peers' bitfields: for
    /// a caller that asks when its download has gone quiet, not on every chunk.
    pub fn supply(&self) -> SwarmSupply {
        let now = Instant::now();
        // A copy, so the torrent's lock is not held while the peers' map is read (other code
        // takes them the other way round).
        let have: crate::type_aliases::BF = {
            let locked = self.lock_read("supply");
            let Ok(chunks) = locked.get_chunks() else {
                return SwarmSupply::default();
            };
            chunks.get_have_pieces().as_slice().to_bitvec().into_boxed_bitslice()
        };
        let mut peers = Vec::new();
        for entry in self.peers.states.iter() {
            if let Some(live) = entry.value().get_live() {
                let holds_needed = live.bitfield.iter_ones().any(|i| have.get(i).is_some_and(|b| !*b));
                peers.push(PeerSupply { holds_needed, live_since: live.live_since, unchoked_at: live.unchoked_at });
            }
        }
        SwarmSupply::of(now, peers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_holders_of_needed_pieces_count() {
        let now = Instant::now();
        let ago = |ms| now - Duration::from_millis(ms);
        let peers = [
            PeerSupply { holds_needed: true, live_since: ago(9000), unchoked_at: None },
            PeerSupply { holds_needed: true, live_since: ago(4000), unchoked_at: None },
            PeerSupply { holds_needed: true, live_since: ago(8000), unchoked_at: Some(ago(700)) },
            PeerSupply { holds_needed: false, live_since: ago(10), unchoked_at: Some(ago(5)) },
        ];
        let supply = SwarmSupply::of(now, peers);
        assert_eq!(supply.holders, 3);
        assert_eq!(supply.unchoked_holders, 1);
        assert_eq!(supply.newest_choked_holder, Some(Duration::from_millis(4000)));
        assert_eq!(supply.newest_unchoke, Some(Duration::from_millis(700)));
        assert_eq!(SwarmSupply::of(now, []), SwarmSupply::default());
    }
}
