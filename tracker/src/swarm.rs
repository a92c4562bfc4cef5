//! The swarm store: which peers are in which torrent, and which peers each announcer gets.
//!
//! Pure: no I/O, no clock, no global RNG. The caller passes the time (milliseconds since any
//! fixed origin) and the RNG, so the policy is deterministic under test.
//!
//! Layout, chosen for memory (about 200 bytes per peer at most) and speed:
//! - the store is split into [`SHARDS`] mutex-guarded maps from infohash to [`Swarm`], so
//!   concurrent announces for different torrents rarely meet on a lock;
//! - a swarm keeps seeders and leechers of each address family in separate `PeerList`s (see `peer_list.rs`), so a
//!   seeder's hand-out (leechers only) and a leecher's seeder quota are plain random samples;
//! - a peer is keyed by its address (IP + port, as the connection proved it), stored in the
//!   compact wire form (6 or 18 bytes) next to its peer id and a 32-bit expiry in seconds;
//! - small lists are scanned; a hash index is built only once a list grows past
//!   [`INDEX_ABOVE`] peers, since most swarms are small and an index costs more than the peers.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rand::Rng;
use shoal_torrents::InfoHash;

mod new_swarms;
mod peer_list;

use new_swarms::NewSwarmBudget;
pub use peer_list::CompactAddr;
use peer_list::{compact_v4, compact_v6, KeyedHasher, Peer, PeerList};

/// Number of independently locked parts of the store.
pub const SHARDS: usize = 64;
/// A peer list gets a hash index once it holds more peers than this; below, lookups scan.
pub const INDEX_ABOVE: usize = 16;

/// What the store may hold; every cap's behaviour is part of the contract (see README.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmLimits {
    /// A peer not heard from for this long is dropped by [`Swarms::purge`].
    pub peer_ttl_secs: u32,
    /// Peers handed out when the announce does not say (`numwant` absent or negative).
    pub default_numwant: u32,
    /// Upper clamp on `numwant`.
    pub max_numwant: u32,
    /// New peers beyond this many in one swarm are served but not remembered.
    pub max_peers_per_swarm: usize,
    /// New peers beyond this many in the whole store are served but not remembered.
    pub max_peers: usize,
    /// Announces that would create a swarm beyond this many are refused.
    pub max_swarms: usize,
    /// New swarms one address (an IPv6 /64) may create at once, and per second after that;
    /// beyond, its announces for unknown torrents are refused, so one client cannot fill
    /// `max_swarms`. An origin announcing a large store at start needs the burst.
    pub new_swarms_per_address_burst: u32,
    pub new_swarms_per_address_per_sec: u32,
}

impl Default for SwarmLimits {
    fn default() -> Self {
        Self {
            peer_ttl_secs: 2 * 300,
            default_numwant: 50,
            max_numwant: 200,
            max_peers_per_swarm: 50_000,
            max_peers: 4_000_000,
            max_swarms: 1_000_000,
            // In the 10 minutes a swarm without announces lives, one address creates at most
            // 20,000 + 600 x 100 = 80,000 swarms, 8% of the cap.
            new_swarms_per_address_burst: 20_000,
            new_swarms_per_address_per_sec: 100,
        }
    }
}

/// The `event` of an announce. libtorrent's `paused` and anything unknown count as `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    None,
    Started,
    Completed,
    Stopped,
}

impl Event {
    pub fn label(self) -> &'static str {
        match self {
            Event::None => "none",
            Event::Started => "started",
            Event::Completed => "completed",
            Event::Stopped => "stopped",
        }
    }
}

/// One announce, already validated, with the address the peer is reachable at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    pub event: Event,
    /// `left == 0`: the peer has the whole torrent.
    pub seeding: bool,
    /// `None` when the client did not ask; clamped to [`SwarmLimits::max_numwant`].
    pub numwant: Option<u32>,
}

/// A peer handed to an announcer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandedPeer {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
}

/// Whether the announcer is now remembered by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Added or refreshed.
    Stored,
    /// Removed (`stopped`), or was not there.
    Left,
    /// A cap was hit: the peer got its hand-out but is not remembered.
    NotStoredSwarmFull,
    NotStoredTrackerFull,
}

/// The reply to an announce, apart from the peers written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceOutcome {
    /// Seeders in the swarm (all address families), the announcer included.
    pub complete: u32,
    /// Leechers in the swarm (all address families), the announcer included.
    pub incomplete: u32,
    pub membership: Membership,
}

/// BEP 48 scrape figures of one swarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    pub complete: u32,
    pub incomplete: u32,
    /// `completed` events seen since the swarm was created.
    pub downloaded: u32,
}

/// Totals for the metrics gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub swarms: usize,
    pub seeders: usize,
    pub leechers: usize,
}

/// What a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub peers: usize,
    pub swarms: usize,
}

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum SwarmError {
    /// A new swarm would exceed [`SwarmLimits::max_swarms`].
    #[error("the tracker holds its maximum number of torrents; try again later")]
    TooManySwarms,
    /// The announcer's address has used its budget of new swarms for now.
    #[error("this address has started too many new torrents at this tracker lately; try again later")]
    TooManyNewSwarms,
}

/// Seeders and leechers of one address family.
#[derive(Default)]
struct Family<const N: usize> {
    seeders: PeerList<N>,
    leechers: PeerList<N>,
}

impl<const N: usize> Family<N>
where
    [u8; N]: CompactAddr,
{
    fn len(&self) -> usize {
        self.seeders.len() + self.leechers.len()
    }

    /// Adds, refreshes or removes the announcer and writes its hand-out into `out`.
    /// Returns the membership and the change in the number of stored peers (-1, 0 or 1).
    fn announce(
        &mut self,
        addr: [u8; N],
        req: &Announce,
        terms: Terms,
        rng: &mut impl Rng,
        out: &mut Vec<HandedPeer>,
    ) -> (Membership, isize) {
        let Terms { expires, room, want } = terms;
        if req.event == Event::Stopped {
            let gone = if let Some(i) = self.seeders.find(&addr) {
                self.seeders.remove(i);
                true
            } else if let Some(i) = self.leechers.find(&addr) {
                self.leechers.remove(i);
                true
            } else {
                false
            };
            return (Membership::Left, if gone { -1 } else { 0 });
        }
        let peer = Peer { addr, expires, id: req.peer_id };
        let (own, other) =
            if req.seeding { (&mut self.seeders, &mut self.leechers) } else { (&mut self.leechers, &mut self.seeders) };
        let (membership, delta, me) = if let Some(i) = own.find(&addr) {
            own.peers[i] = peer;
            (Membership::Stored, 0, Some(i))
        } else if let Some(i) = other.find(&addr) {
            other.remove(i);
            (Membership::Stored, 0, Some(own.push(peer)))
        } else {
            match room {
                Room::Yes => (Membership::Stored, 1, Some(own.push(peer))),
                Room::SwarmFull => (Membership::NotStoredSwarmFull, 0, None),
                Room::TrackerFull => (Membership::NotStoredTrackerFull, 0, None),
            }
        };
        if req.seeding {
            // Leechers first: they are whom a seeder serves. Other seeders fill the rest, because
            // `left=0` does not prove a client has the data: aria2c announces left=0 while it
            // still fetches a magnet's metadata, and would otherwise hear of nobody.
            let from_leechers = self.leechers.len().min(want);
            self.leechers.sample_into(from_leechers, None, rng, out);
            let other_seeders = self.seeders.len() - usize::from(me.is_some());
            self.seeders.sample_into((want - from_leechers).min(other_seeders), me, rng, out);
        } else {
            let seeders = self.seeders.len();
            let leechers = self.leechers.len() - usize::from(me.is_some());
            let (from_seeders, from_leechers) = split_handout(want, seeders, leechers);
            self.seeders.sample_into(from_seeders, None, rng, out);
            self.leechers.sample_into(from_leechers, me, rng, out);
        }
        (membership, delta)
    }

    fn purge(&mut self, now_secs: u32) -> (usize, usize) {
        (self.seeders.purge(now_secs), self.leechers.purge(now_secs))
    }
}

/// How a leecher's `want` slots split between seeders and other leechers.
///
/// Seeders get up to half the slots (rounded up, so at least one whenever any seeder exists
/// and `want > 0`); leechers get the rest, and whichever side runs short leaves its slots to
/// the other. In a fresh swarm the origin is then always in every hand-out while leechers still
/// meet each other, which is what spreads new pieces fastest.
pub fn split_handout(want: usize, seeders: usize, leechers: usize) -> (usize, usize) {
    let seeder_quota = want.div_ceil(2);
    let from_seeders = seeders.min(seeder_quota);
    let from_leechers = leechers.min(want - from_seeders);
    let from_seeders = seeders.min(want - from_leechers);
    (from_seeders, from_leechers)
}

/// How one announce is to be recorded and answered.
#[derive(Clone, Copy)]
struct Terms {
    expires: u32,
    room: Room,
    want: usize,
}

#[derive(Clone, Copy)]
enum Room {
    Yes,
    SwarmFull,
    TrackerFull,
}

/// One torrent's peers.
#[derive(Default)]
struct Swarm {
    v4: Family<6>,
    /// Boxed: most swarms never see an IPv6 peer, and an empty family still costs 112 bytes.
    v6: Option<Box<Family<18>>>,
    downloaded: u32,
}

impl Swarm {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.as_ref().map_or(0, |f| f.len())
    }

    fn seeders(&self) -> usize {
        self.v4.seeders.len() + self.v6.as_ref().map_or(0, |f| f.seeders.len())
    }

    fn leechers(&self) -> usize {
        self.v4.leechers.len() + self.v6.as_ref().map_or(0, |f| f.leechers.len())
    }

    fn stats(&self) -> ScrapeStats {
        ScrapeStats { complete: sat(self.seeders()), incomplete: sat(self.leechers()), downloaded: self.downloaded }
    }
}

fn sat(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Default)]
struct Shard {
    swarms: HashMap<InfoHash, Swarm, KeyedHasher>,
    seeders: usize,
    leechers: usize,
}

/// All swarms. Shared by the HTTP and UDP front ends.
pub struct Swarms {
    limits: SwarmLimits,
    shards: Box<[Mutex<Shard>]>,
    peers: AtomicUsize,
    swarms: AtomicUsize,
    /// Locked only to create a swarm, after the shard's lock.
    new_swarms: Mutex<NewSwarmBudget>,
}

impl Swarms {
    pub fn new(limits: SwarmLimits) -> Self {
        let budget = NewSwarmBudget::new(limits.new_swarms_per_address_burst, limits.new_swarms_per_address_per_sec);
        Self {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            peers: AtomicUsize::new(0),
            swarms: AtomicUsize::new(0),
            new_swarms: Mutex::new(budget),
        }
    }

    fn new_swarm_budget(&self) -> MutexGuard<'_, NewSwarmBudget> {
        self.new_swarms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limits(&self) -> &SwarmLimits {
        &self.limits
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, Shard> {
        // Infohashes are SHA-1 outputs (or attacker-chosen bytes, which only moves load around
        // between equal shards), so one byte picks a shard well enough.
        let i = usize::from(info_hash.as_bytes()[19]) % SHARDS;
        // A panic while holding a lock leaves plain counters behind, never a broken invariant
        // worth refusing service for.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an announce and appends the announcer's hand-out to `out`.
    ///
    /// `now_ms` is milliseconds since the clock's origin (the same origin for every call).
    pub fn announce(
        &self,
        req: &Announce,
        now_ms: u64,
        rng: &mut impl Rng,
        out: &mut Vec<HandedPeer>,
    ) -> Result<AnnounceOutcome, SwarmError> {
        let now_secs = u32::try_from(now_ms / 1000).unwrap_or(u32::MAX);
        let expires = now_secs.saturating_add(self.limits.peer_ttl_secs);
        let want = req.numwant.unwrap_or(self.limits.default_numwant).min(self.limits.max_numwant) as usize;
        let mut guard = self.shard(&req.info_hash);
        let shard = &mut *guard;
        let swarm = match shard.swarms.get_mut(&req.info_hash) {
            Some(swarm) => swarm,
            None if req.event == Event::Stopped => {
                return Ok(AnnounceOutcome { complete: 0, incomplete: 0, membership: Membership::Left });
            }
            None => {
                if self.swarms.load(Ordering::Relaxed) >= self.limits.max_swarms {
                    return Err(SwarmError::TooManySwarms);
                }
                if !self.new_swarm_budget().take(req.addr.ip(), now_ms) {
                    return Err(SwarmError::TooManyNewSwarms);
                }
                if self.swarms.fetch_add(1, Ordering::Relaxed) >= self.limits.max_swarms {
                    self.swarms.fetch_sub(1, Ordering::Relaxed);
                    return Err(SwarmError::TooManySwarms);
                }
                shard.swarms.entry(req.info_hash).or_default()
            }
        };
        let room = if swarm.len() >= self.limits.max_peers_per_swarm {
            Room::SwarmFull
        } else if self.peers.load(Ordering::Relaxed) >= self.limits.max_peers {
            Room::TrackerFull
        } else {
            Room::Yes
        };
        let terms = Terms { expires, room, want };
        let (seeders_before, leechers_before) = (swarm.seeders(), swarm.leechers());
        let (membership, delta) = match req.addr.ip().to_canonical() {
            IpAddr::V4(ip) => swarm.v4.announce(compact_v4(ip, req.addr.port()), req, terms, rng, out),
            IpAddr::V6(ip) => {
                let family = swarm.v6.get_or_insert_with(Box::default);
                family.announce(compact_v6(ip, req.addr.port()), req, terms, rng, out)
            }
        };
        if swarm.v6.as_ref().is_some_and(|f| f.len() == 0) {
            swarm.v6 = None;
        }
        if req.event == Event::Completed {
            swarm.downloaded = swarm.downloaded.saturating_add(1);
        }
        match delta {
            1 => self.peers.fetch_add(1, Ordering::Relaxed),
            -1 => self.peers.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
        let stats = swarm.stats();
        let (seeders_after, leechers_after) = (swarm.seeders(), swarm.leechers());
        shard.seeders = shard.seeders + seeders_after - seeders_before;
        shard.leechers = shard.leechers + leechers_after - leechers_before;
        if swarm.len() == 0 {
            shard.swarms.remove(&req.info_hash);
            self.swarms.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(AnnounceOutcome { complete: stats.complete, incomplete: stats.incomplete, membership })
    }

    /// Scrape figures of one swarm; `None` when the tracker has no peer for it.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<ScrapeStats> {
        self.shard(info_hash).swarms.get(info_hash).map(Swarm::stats)
    }

    /// Forgets a swarm and all its peers (the torrent left the allow-list).
    pub fn remove(&self, info_hash: &InfoHash) {
        let mut shard = self.shard(info_hash);
        if let Some(swarm) = shard.swarms.remove(info_hash) {
            shard.seeders -= swarm.seeders();
            shard.leechers -= swarm.leechers();
            self.peers.fetch_sub(swarm.len(), Ordering::Relaxed);
            self.swarms.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Drops peers whose expiry has passed, and swarms left empty. Locks one shard at a time.
    pub fn purge(&self, now_ms: u64) -> Purged {
        let now_secs = u32::try_from(now_ms / 1000).unwrap_or(u32::MAX);
        let mut purged = Purged::default();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let (mut seeders, mut leechers, mut swarms_gone) = (0, 0, 0);
            shard.swarms.retain(|_, swarm| {
                let (s, l) = swarm.v4.purge(now_secs);
                let (s6, l6) = swarm.v6.as_mut().map_or((0, 0), |f| f.purge(now_secs));
                if swarm.v6.as_ref().is_some_and(|f| f.len() == 0) {
                    swarm.v6 = None;
                }
                seeders += s + s6;
                leechers += l + l6;
                let keep = swarm.len() > 0;
                swarms_gone += usize::from(!keep);
                keep
            });
            shard.seeders -= seeders;
            shard.leechers -= leechers;
            purged.peers += seeders + leechers;
            purged.swarms += swarms_gone;
        }
        self.peers.fetch_sub(purged.peers, Ordering::Relaxed);
        self.swarms.fetch_sub(purged.swarms, Ordering::Relaxed);
        self.new_swarm_budget().forget_full(now_ms);
        purged
    }

    pub fn totals(&self) -> Totals {
        let mut totals = Totals { swarms: self.swarms.load(Ordering::Relaxed), ..Totals::default() };
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            totals.seeders += shard.seeders;
            totals.leechers += shard.leechers;
        }
        totals
    }
}

#[cfg(test)]
mod tests;
