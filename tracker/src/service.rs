//! The tracker's request logic shared by the HTTP and UDP front ends: access checks, the swarm
//! store, metrics and reply bodies. No sockets here; the front ends bring the bytes and the
//! peer's address.

use std::net::SocketAddr;
use std::time::Instant;

use shoal_torrents::InfoHash;

use crate::access::Access;
use crate::metrics::Metrics;
use crate::query::{self, RequestError};
use crate::reply::{self, ReplyHeader};
use crate::shard::Shard;
use crate::swarm::{
    Announce, AnnounceOutcome, HandedPeer, Membership, ScrapeStats, SwarmError, SwarmLimits, Swarms, Totals,
};

/// Why an announce or scrape is refused; the text is the client's `failure reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("torrent not registered with this tracker")]
    NotAllowed,
    #[error(transparent)]
    Swarm(#[from] SwarmError),
}

impl Refusal {
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Request(e) => e.label(),
            Refusal::NotAllowed => "not_allowed",
            Refusal::Swarm(SwarmError::TooManySwarms) => "too_many_swarms",
            Refusal::Swarm(SwarmError::TooManyNewSwarms) => "too_many_new_swarms",
        }
    }
}

/// Timing the tracker tells clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intervals {
    pub interval_secs: u32,
    pub min_interval_secs: u32,
}

pub struct Tracker {
    swarms: Swarms,
    access: Access,
    metrics: Metrics,
    intervals: Intervals,
    origin: Instant,
    /// The tracker members, when this tracker is one of several (announces counted by role).
    shard: Option<Shard>,
}

impl Tracker {
    pub fn new(limits: SwarmLimits, intervals: Intervals, access: Access) -> Self {
        let (metrics, origin) = (Metrics::new(), Instant::now());
        Self { swarms: Swarms::new(limits), access, metrics, intervals, origin, shard: None }
    }

    /// One of several trackers: each announce is counted as served as the torrent's owner, as
    /// a failover tier, or outside its tiers.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.metrics.members.set(shard.members() as i64);
        self.shard = Some(shard);
        self
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn swarms(&self) -> &Swarms {
        &self.swarms
    }

    pub fn intervals(&self) -> Intervals {
        self.intervals
    }

    /// The store's clock: milliseconds since this tracker started.
    pub fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Serves one validated announce (either front end).
    pub fn announce(&self, req: &Announce, out: &mut Vec<HandedPeer>) -> Result<AnnounceOutcome, Refusal> {
        if !self.access.allows(&req.info_hash) {
            return Err(Refusal::NotAllowed);
        }
        let outcome = self.swarms.announce(req, self.now_ms(), &mut rand::rng(), out)?;
        self.metrics.announced(req.event);
        if let Some(shard) = &self.shard {
            self.metrics.served_as(shard.role(&req.info_hash));
        }
        match outcome.membership {
            Membership::NotStoredSwarmFull => self.metrics.not_stored.with_label_values(&["peers_per_swarm"]).inc(),
            Membership::NotStoredTrackerFull => self.metrics.not_stored.with_label_values(&["peers"]).inc(),
            Membership::Stored | Membership::Left => {}
        }
        Ok(outcome)
    }

    /// Scrape figures of the given torrents; unknown or not-allowed ones read as all zeros.
    pub fn scrape(&self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        self.metrics.scrapes.inc();
        hashes
            .iter()
            .map(|h| {
                let stats = if self.access.allows(h) { self.swarms.scrape(h) } else { None };
                (*h, stats.unwrap_or_default())
            })
            .collect()
    }

    /// Counts an HTTP connection closed for being over the per-address cap.
    pub fn refused_connection(&self) {
        self.metrics.refused_connections.inc();
    }

    /// Counts a refusal and returns its bencoded `failure reason` body.
    pub fn refuse(&self, refusal: Refusal) -> Vec<u8> {
        self.metrics.failed(refusal.label());
        reply::failure(&refusal.to_string())
    }

    /// The body of the reply to an HTTP announce whose raw query is `raw_query` and whose
    /// peer connected from `source`. Always a bencoded dictionary, never an error.
    pub fn http_announce(&self, raw_query: &[u8], source: SocketAddr) -> Vec<u8> {
        let started = Instant::now();
        let body = match self.try_http_announce(raw_query, source) {
            Ok(body) => body,
            Err(refusal) => self.refuse(refusal),
        };
        self.metrics.announce_seconds.observe(started.elapsed().as_secs_f64());
        body
    }

    fn try_http_announce(&self, raw_query: &[u8], source: SocketAddr) -> Result<Vec<u8>, Refusal> {
        let q = query::parse_announce(raw_query)?;
        // The peer is where its connection came from (BEP 3's `ip` is not trusted: it would
        // let anyone point a swarm at a third party); the port is the one it listens on.
        let addr = SocketAddr::new(source.ip().to_canonical(), q.port);
        let req = Announce {
            info_hash: q.info_hash,
            peer_id: q.peer_id,
            addr,
            event: q.event,
            seeding: q.left == Some(0),
            numwant: q.numwant,
        };
        let mut peers = Vec::new();
        let outcome = self.announce(&req, &mut peers)?;
        let header = ReplyHeader {
            interval: self.intervals.interval_secs,
            min_interval: self.intervals.min_interval_secs,
            complete: outcome.complete,
            incomplete: outcome.incomplete,
        };
        Ok(reply::announce(&header, &peers, q.compact, q.no_peer_id))
    }

    /// The body of the reply to an HTTP scrape.
    pub fn http_scrape(&self, raw_query: &[u8]) -> Vec<u8> {
        match query::parse_scrape(raw_query) {
            Ok(hashes) => reply::scrape(&self.scrape(&hashes)),
            Err(e) => self.refuse(e.into()),
        }
    }

    /// Forgets a torrent's swarm (it left the allow-list).
    pub fn forget(&self, info_hash: &InfoHash) {
        self.swarms.remove(info_hash);
    }

    /// Drops expired peers; the server calls this periodically.
    pub fn purge(&self) {
        self.swarms.purge(self.now_ms());
    }

    pub fn totals(&self) -> Totals {
        self.swarms.totals()
    }

    pub fn render_metrics(&self) -> String {
        self.metrics.render(self.swarms.totals())
    }
}
