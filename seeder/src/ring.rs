//! This seeder's place in the seeders' ring (issue 19): which blobs it owns, and how it reaches
//! the owners of the ones it does not: for their torrent (a non-owner never mirrors a blob
//! itself) and to hand them a blob to replicate.
//!
//! Who owns what is [`SeederRing`]'s pure rendezvous order over the blob digest; this module is
//! the HTTP around it. A request one seeder forwards to another carries [`FORWARDED`], and a
//! seeder answers such a request itself, never forwarding again: two seeders configured with
//! different member lists cannot bounce a request between them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use prometheus::IntCounterVec;
use shoal_torrents::{BlobDigest, Distribution, InfoHash, MemberLiveness, ParsedTorrent, SeederRing};

/// The header a seeder sets on a request it forwards to an owner.
pub(crate) const FORWARDED: &str = "shoal-ring-forwarded";

/// How long an owner may take to answer a request that does not wait for a fetch.
const QUICK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an owner may take to fetch a blob a mirror job waits for: the owner's own
/// upstream deadlines end a stalled fetch long before; this only bounds an owner that went
/// silent mid-request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Remote torrents remembered for image views; past this the memo starts over.
const REMEMBERED_TORRENTS: usize = 100_000;

/// What a blob's torrent tells a view: enough for its magnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TorrentFacts {
    pub info_hash: InfoHash,
    pub size: u64,
}

impl TorrentFacts {
    /// A blob stored here.
    pub(crate) fn of(blob: &shoal_torrents::HashedBlob) -> Self {
        Self { info_hash: shoal_torrents::BlobTorrent::from_hashed(blob).info_hash(), size: blob.size }
    }
}

/// What an owner said about a blob.
pub(crate) enum OwnerAnswer {
    /// Its torrent's bytes.
    Torrent { bytes: Bytes, facts: TorrentFacts },
    /// It is fetching the blob and answered without waiting.
    Fetching,
}

/// Why no owner gave a blob's torrent.
#[derive(Clone, Debug, thiserror::Error)]
pub enum OwnersError {
    /// An owner answered with a client error (no such blob or repository, not allowed): the
    /// status is passed on.
    #[error("{owner} answered {status}: {message}")]
    Refused { owner: String, status: u16, message: String },
    #[error("no owner of {digest} could be reached: {tried}")]
    Unreachable { digest: BlobDigest, tried: String },
}

/// Where a blob comes from upstream, as a forwarded request names it.
pub(crate) struct UpstreamName<'a> {
    pub repo: Option<&'a str>,
    pub ns: Option<&'a str>,
}

/// This seeder among its ring's members.
pub(crate) struct Ring {
    ring: SeederRing,
    me: String,
    trackers: Vec<String>,
    http: reqwest::Client,
    remembered: Mutex<HashMap<BlobDigest, TorrentFacts>>,
    /// Which other members answered last time (logged once per change).
    liveness: MemberLiveness,
    /// Requests forwarded to owners, by `outcome`.
    forwarded: IntCounterVec,
    /// Blobs handed to the other owners after a fetch here, by `outcome`.
    replications: IntCounterVec,
}

impl Ring {
    /// `me` must be one of `ring`'s members (checked by the caller at start).
    pub(crate) fn new(
        ring: SeederRing,
        me: String,
        trackers: Vec<String>,
        forwarded: IntCounterVec,
        replications: IntCounterVec,
    ) -> Self {
        // reqwest's default client trusts the web roots only: a ring of seeders behind a
        // private CA is not supported yet (ARCHITECTURE.md, "Seeders on a ring").
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client without custom TLS builds");
        Self {
            ring,
            me,
            trackers,
            http,
            remembered: Mutex::default(),
            liveness: MemberLiveness::default(),
            forwarded,
            replications,
        }
    }

    /// A seeder alone, which owns every blob and names no trackers (a mirror outside a
    /// service: tests, benches).
    pub(crate) fn alone() -> Self {
        let unregistered = |name: &str| {
            IntCounterVec::new(prometheus::Opts::new(name, "unregistered"), &["outcome"]).expect("valid metric")
        };
        let me = "http://127.0.0.1";
        let ring = SeederRing::alone(me).expect("a valid URL");
        Self::new(ring, me.to_owned(), Vec::new(), unregistered("forwarded"), unregistered("replications"))
    }

    /// The ring and the trackers, for the live page's magnets.
    pub(crate) fn links<'a>(&'a self, public_url: &'a str) -> crate::ui::Links<'a> {
        crate::ui::Links { trackers: &self.trackers, ring: &self.ring, public_url }
    }

    /// Whether this seeder owns the blob (mirrors and seeds it).
    pub(crate) fn owns(&self, digest: &BlobDigest) -> bool {
        self.ring.owns(digest, &self.me)
    }

    /// How this seeder seeds a blob ([`SeederRing::super_seed`]).
    pub(crate) fn super_seed(&self, digest: &BlobDigest) -> Option<bool> {
        self.ring.super_seed(digest, &self.me)
    }

    /// The blob's owners other than this seeder, primary first.
    fn other_owners(&self, digest: &BlobDigest) -> Vec<&str> {
        self.ring.owners(digest).into_iter().filter(|m| *m != self.me).collect()
    }

    /// What the blob's torrent and magnet name: the trackers and its owners' webseeds.
    pub(crate) fn distribution(&self, digest: &BlobDigest) -> Distribution {
        self.ring.distribution(&self.trackers, digest)
    }

    /// The blob's torrent from its owners, primary first, the next when one cannot be reached
    /// or has nothing. `wait`: let the owner finish a fetch before answering.
    pub(crate) async fn owner_torrent(
        &self,
        digest: &BlobDigest,
        name: &UpstreamName<'_>,
        wait: bool,
    ) -> Result<OwnerAnswer, OwnersError> {
        let (mut tried, mut refused) = (Vec::new(), None);
        for owner in self.liveness.reorder(self.other_owners(digest), std::time::Instant::now()) {
            let asked = self.ask(owner, digest, name, wait).await;
            self.note_liveness(owner, !matches!(asked, Err(Asked::Failed(_))));
            match asked {
                Ok(answer) => {
                    self.forwarded.with_label_values(&["answered"]).inc();
                    if let OwnerAnswer::Torrent { facts, .. } = &answer {
                        self.remember(*digest, *facts);
                    }
                    return Ok(answer);
                }
                Err(Asked::Refused { status, message }) => {
                    self.forwarded.with_label_values(&["refused"]).inc();
                    refused = Some(OwnersError::Refused { owner: owner.to_owned(), status, message });
                }
                Err(Asked::Failed(why)) => {
                    self.forwarded.with_label_values(&["unreachable"]).inc();
                    tracing::debug!(%digest, %owner, error = %why, "a blob's owner did not answer; asking the next");
                    tried.push(format!("{owner}: {why}"));
                }
            }
        }
        Err(refused.unwrap_or_else(|| OwnersError::Unreachable { digest: *digest, tried: tried.join("; ") }))
    }

    /// Logs a member going down or coming back, once per change.
    fn note_liveness(&self, member: &str, up: bool) {
        match self.liveness.record(member, up, std::time::Instant::now()) {
            Some(false) => {
                tracing::warn!(%member, "a seeder of the ring stopped answering; asking the next owner meanwhile")
            }
            Some(true) => tracing::info!(%member, "a seeder of the ring answers again"),
            None => {}
        }
    }

    /// The facts of a blob stored at its owners, for a view: remembered, or asked for without
    /// making anyone fetch. `None` when no owner holds it.
    pub(crate) async fn remote_facts(&self, digest: &BlobDigest) -> Option<TorrentFacts> {
        if let Some(facts) = self.remembered.lock().expect("not poisoned").get(digest) {
            return Some(*facts);
        }
        match self.owner_torrent(digest, &UpstreamName { repo: None, ns: None }, false).await {
            Ok(OwnerAnswer::Torrent { facts, .. }) => Some(facts),
            _ => None,
        }
    }

    fn remember(&self, digest: BlobDigest, facts: TorrentFacts) {
        let mut memo = self.remembered.lock().expect("not poisoned");
        if memo.len() >= REMEMBERED_TORRENTS {
            memo.clear();
        }
        memo.insert(digest, facts);
    }

    /// After this seeder fetched a blob from upstream: asks every other owner to fetch it too
    /// (without waiting), so the blob survives the loss of any one of them. An owner that holds
    /// it already just answers; one that fetches hands it back here, which holds it: the
    /// exchange ends there.
    pub(crate) async fn replicate(&self, digest: BlobDigest, registry: &str, repository: &str) {
        for owner in self.other_owners(&digest) {
            let name = UpstreamName { repo: Some(repository), ns: Some(registry) };
            let asked = self.ask(owner, &digest, &name, false).await;
            self.note_liveness(owner, !matches!(asked, Err(Asked::Failed(_))));
            let outcome = match asked {
                Ok(OwnerAnswer::Torrent { .. }) => "held",
                Ok(OwnerAnswer::Fetching) => "fetching",
                Err(e) => {
                    tracing::warn!(%digest, %owner, error = %e, "could not hand a blob to its replica");
                    "failed"
                }
            };
            tracing::info!(%digest, %owner, outcome, "handed a blob to its replica");
            self.replications.with_label_values(&[outcome]).inc();
        }
    }

    async fn ask(
        &self,
        owner: &str,
        digest: &BlobDigest,
        name: &UpstreamName<'_>,
        wait: bool,
    ) -> Result<OwnerAnswer, Asked> {
        let mut query = vec![("wait", if wait { "true" } else { "false" })];
        query.extend(name.repo.map(|r| ("repo", r)));
        query.extend(name.ns.map(|n| ("ns", n)));
        let timeout = if wait { FETCH_TIMEOUT } else { QUICK_TIMEOUT };
        let request = self
            .http
            .get(format!("{owner}/v1/blobs/{digest}/torrent"))
            .query(&query)
            .header(FORWARDED, "1")
            .timeout(timeout);
        let response = request.send().await.map_err(|e| Asked::Failed(shoal_upstream::causes(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Asked::Failed(shoal_upstream::causes(&e)))?;
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(OwnerAnswer::Fetching);
        }
        if status.is_client_error() {
            // The seeder's error envelope, {"error": ...}; anything else as text.
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            return Err(Asked::Refused { status: status.as_u16(), message });
        }
        if !status.is_success() {
            return Err(Asked::Failed(format!("{status}: {}", String::from_utf8_lossy(&body).trim())));
        }
        let parsed =
            ParsedTorrent::parse(&body).map_err(|e| Asked::Failed(format!("its torrent does not parse: {e}")))?;
        if parsed.name.as_deref() != Some(digest.torrent_name().as_str()) {
            return Err(Asked::Failed("its torrent names another blob".into()));
        }
        let size = parsed.size.ok_or_else(|| Asked::Failed("its torrent has no length".into()))?;
        let facts = TorrentFacts { info_hash: parsed.info_hash, size };
        Ok(OwnerAnswer::Torrent { bytes: body, facts })
    }
}

/// One owner's failure to answer.
#[derive(Debug, thiserror::Error)]
enum Asked {
    #[error("answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("{0}")]
    Failed(String),
}
