//! The shim's live page (`GET /ui`) and the JSON it polls (`GET /v1/pulls`): what this host
//! pulled lately and from where (peers, webseed, upstream: per download and in total), and what
//! it seeds onward (per stored blob: its torrent's peers and the bytes sent to them).
//!
//! [`host_view`] is pure; [`sample`] reads the index, the librqbit session, the pull log and the
//! metrics. The page is `ui/index.html` in [`shoal_telemetry::page`]'s frame.

use std::collections::HashMap;

use serde::Serialize;
use shoal_store::index::BlobRecord;
use shoal_store::seeding::{PeerSample, TorrentSample};
use shoal_store::usage::now_ms;
use shoal_torrents::BlobDigest;

use crate::cache::ShimCache;
use crate::metrics::{ShimCounts, ShimMetrics};
use crate::pulls::{PullLog, PullRecord};
use crate::swarm::Swarm;

const TEMPLATE: &str = include_str!("ui/index.html");

/// The page as served: the template with the frame and `view` inlined.
pub(crate) fn page(view: &HostView) -> String {
    shoal_telemetry::page::render(TEMPLATE, &serde_json::to_string(view).expect("the view serializes"))
}

/// What `GET /v1/pulls` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct HostView {
    /// When this was sampled, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub totals: HostTotals,
    /// The newest downloads first.
    pub pulls: Vec<PullRecord>,
    /// Every stored blob, busiest first (most peers, most sent, then by digest).
    pub seeding: Vec<SeededBlob>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct HostTotals {
    pub blobs: usize,
    pub stored_bytes: u64,
    /// Peers connected now, over every torrent.
    pub peers: u64,
    #[serde(flatten)]
    pub counts: ShimCounts,
}

/// A stored blob and what this host seeds of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SeededBlob {
    pub digest: String,
    pub size: u64,
    pub repositories: Vec<String>,
    /// librqbit's state, or `not seeded` (a private blob, or no swarm configured).
    pub state: String,
    pub peers: u32,
    pub uploaded_bytes: u64,
    pub peer_list: Vec<PeerSample>,
}

pub(crate) fn host_view(
    at_ms: u64,
    blobs: &[(BlobDigest, BlobRecord)],
    torrents: &[TorrentSample],
    counts: ShimCounts,
    pulls: Vec<PullRecord>,
) -> HostView {
    let by_hash: HashMap<String, &TorrentSample> = torrents.iter().map(|t| (t.info_hash.hex(), t)).collect();
    let mut seeding: Vec<SeededBlob> = blobs
        .iter()
        .map(|(digest, record)| {
            let torrent = by_hash.get(&record.info_hash);
            SeededBlob {
                digest: digest.to_string(),
                size: record.size,
                repositories: record.repos.iter().cloned().collect(),
                state: torrent.map_or_else(|| "not seeded".to_owned(), |t| t.state.clone()),
                peers: torrent.map_or(0, |t| t.peers_live),
                uploaded_bytes: torrent.map_or(0, |t| t.uploaded_bytes),
                peer_list: torrent.map_or_else(Vec::new, |t| t.peers.clone()),
            }
        })
        .collect();
    seeding.sort_by(|a, b| {
        b.peers.cmp(&a.peers).then(b.uploaded_bytes.cmp(&a.uploaded_bytes)).then_with(|| a.digest.cmp(&b.digest))
    });
    let totals = HostTotals {
        blobs: blobs.len(),
        stored_bytes: blobs.iter().map(|(_, r)| r.size).sum(),
        peers: seeding.iter().map(|s| u64::from(s.peers)).sum(),
        counts,
    };
    HostView { at_ms, totals, pulls, seeding }
}

/// Samples everything the view shows, now.
pub(crate) fn sample(
    cache: &ShimCache,
    swarm: Option<&Swarm>,
    metrics: &ShimMetrics,
    pulls: &PullLog,
) -> Result<HostView, shoal_store::index::IndexError> {
    let blobs = cache.blobs()?;
    let torrents = swarm.map_or_else(Vec::new, |s| s.seeding().torrent_samples());
    if let Some(swarm) = swarm {
        shoal_telemetry::catch_up(&metrics.bittorrent_uploaded_bytes, swarm.uploaded_bytes());
    }
    Ok(host_view(now_ms(), &blobs, &torrents, metrics.counts(), pulls.records()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_torrents::InfoHash;

    fn record(n: u8, size: u64) -> (BlobDigest, BlobRecord) {
        let json = serde_json::json!({
            "size": size,
            "piece_length": 262144,
            "info_hash": format!("{n:02x}").repeat(20),
            "repos": ["127.0.0.1:5000/team/app"],
            "last_access_ms": 0,
        });
        (BlobDigest::from_bytes([n; 32]), serde_json::from_value(json).unwrap())
    }

    fn torrent(n: u8, peers: u32, uploaded_bytes: u64) -> TorrentSample {
        TorrentSample {
            info_hash: InfoHash::from_bytes([n; 20]),
            state: "live".into(),
            peers_live: peers,
            peers_seen: peers,
            uploaded_bytes,
            upload_bytes_per_s: 0,
            peers: Vec::new(),
        }
    }

    #[test]
    fn stored_blobs_join_their_torrents_and_total() {
        let blobs = [record(1, 10), record(2, 20), record(3, 30)];
        let counts = ShimCounts { from_peers: 5, ..Default::default() };
        let view = host_view(7, &blobs, &[torrent(2, 2, 100), torrent(1, 0, 50)], counts.clone(), Vec::new());
        let order: Vec<_> = view.seeding.iter().map(|s| (s.size, s.state.as_str(), s.uploaded_bytes)).collect();
        assert_eq!(order, [(20, "live", 100), (10, "live", 50), (30, "not seeded", 0)]);
        assert_eq!((view.totals.blobs, view.totals.stored_bytes, view.totals.peers), (3, 60, 2));
        assert_eq!(view.totals.counts, counts);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["totals"]["from_peers"], 5, "the counts sit in the totals");
        for field in
            ["t.from_peers", "t.from_webseed", "t.from_upstream", "t.bittorrent_uploaded_bytes", "p.from_peers"]
        {
            assert!(TEMPLATE.contains(field), "the page reads {field}");
        }
        assert!(page(&view).contains(r#""stored_bytes":60"#), "the first view is inlined");
    }
}
