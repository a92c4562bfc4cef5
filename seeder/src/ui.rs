//! The seeder's live page (`GET /ui`) and the JSON it polls (`GET /v1/swarms`): one swarm per
//! stored blob with its peers and uploads, bytes by source (BitTorrent vs webseed), mirrors,
//! evictions and a recent upload-rate history.
//!
//! The view is a pure function of plain samples ([`swarms_view`], [`ThroughputHistory`]); reading
//! librqbit, the index and the metrics happens in [`sample_view`] and [`record_throughput`]; the
//! handlers are in `api.rs`.
//! The page itself is a static, dependency-free HTML file (`ui/index.html`): it must work on a
//! machine with no internet, so nothing is fetched from a CDN.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use shoal_torrents::InfoHash;

use crate::metrics::SeederMetrics;
use shoal_store::index::{BlobIndex, IndexError};
use shoal_store::seeding::Seeding;
use shoal_store::usage::now_ms;

/// The page: HTML, CSS and JS in one file, served as is.
pub(crate) const PAGE: &str = include_str!("ui/index.html");

/// How many rate samples (one a second) the history keeps: two minutes.
pub(crate) const HISTORY_SAMPLES: usize = 120;

/// A stored blob, as the index records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredBlob {
    pub digest: String,
    pub size: u64,
    pub info_hash: String,
    pub repositories: Vec<String>,
}

/// One torrent of the librqbit session, sampled.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TorrentSample {
    pub info_hash: String,
    /// librqbit's state: `initializing`, `live`, `paused` or `error`.
    pub state: String,
    /// Peers connected now.
    pub peers_live: u32,
    /// Distinct peers this torrent has seen since it was added.
    pub peers_seen: u32,
    /// Bytes uploaded to peers since the torrent was added to the session.
    pub uploaded_bytes: u64,
    /// librqbit's current upload-speed estimate.
    pub upload_bytes_per_s: u64,
}

/// The seeder's counters since start (shown in the totals as they are, but for the sum).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Counters {
    pub bittorrent_uploaded_bytes: u64,
    pub webseed_uploaded_bytes: u64,
    pub evicted_blobs: u64,
    pub evicted_bytes: u64,
    pub upstream_fetches: u64,
    /// Images mirrored since start.
    pub mirrors: u64,
    #[serde(skip)]
    pub mirror_seconds_sum: f64,
}

/// Upload rates over one sampling interval, ending at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RateSample {
    pub at_ms: u64,
    pub bittorrent_bytes_per_s: u64,
    pub webseed_bytes_per_s: u64,
}

/// What `GET /v1/swarms` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SwarmsView {
    /// When this was sampled, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub totals: Totals,
    /// Busiest first: most peers, then most uploaded, then by digest.
    pub swarms: Vec<SwarmView>,
    /// Oldest first, one a second.
    pub rates: Vec<RateSample>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Totals {
    /// Stored blobs the BitTorrent session holds a torrent for.
    pub swarms: usize,
    /// Stored blobs.
    pub blobs: usize,
    pub bytes_stored: u64,
    /// Peers connected now, over all swarms.
    pub peers: u64,
    #[serde(flatten)]
    pub counters: Counters,
    /// The mean time of a mirror since start (manifests and blobs).
    pub mirror_mean_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SwarmView {
    pub digest: String,
    pub size: u64,
    pub info_hash: String,
    pub repositories: Vec<String>,
    /// librqbit's state, or `not seeded` when the session has no torrent for the blob (yet).
    pub state: String,
    pub peers: u32,
    pub peers_seen: u32,
    pub uploaded_bytes: u64,
    pub upload_bytes_per_s: u64,
}

/// The view of every stored blob's swarm, joined with the session's torrents by infohash.
/// Torrents without a stored blob (mid-eviction) are left out.
pub(crate) fn swarms_view(
    at_ms: u64,
    blobs: &[StoredBlob],
    torrents: &[TorrentSample],
    counters: &Counters,
    rates: Vec<RateSample>,
) -> SwarmsView {
    let by_hash: HashMap<&str, &TorrentSample> = torrents.iter().map(|t| (t.info_hash.as_str(), t)).collect();
    let mut swarms: Vec<SwarmView> = blobs
        .iter()
        .map(|b| {
            let torrent = by_hash.get(b.info_hash.as_str());
            SwarmView {
                digest: b.digest.clone(),
                size: b.size,
                info_hash: b.info_hash.clone(),
                repositories: b.repositories.clone(),
                state: torrent.map_or_else(|| "not seeded".to_owned(), |t| t.state.clone()),
                peers: torrent.map_or(0, |t| t.peers_live),
                peers_seen: torrent.map_or(0, |t| t.peers_seen),
                uploaded_bytes: torrent.map_or(0, |t| t.uploaded_bytes),
                upload_bytes_per_s: torrent.map_or(0, |t| t.upload_bytes_per_s),
            }
        })
        .collect();
    swarms.sort_by(|a, b| {
        b.peers.cmp(&a.peers).then(b.uploaded_bytes.cmp(&a.uploaded_bytes)).then_with(|| a.digest.cmp(&b.digest))
    });
    let totals = Totals {
        swarms: blobs.iter().filter(|b| by_hash.contains_key(b.info_hash.as_str())).count(),
        blobs: blobs.len(),
        bytes_stored: blobs.iter().map(|b| b.size).sum(),
        peers: swarms.iter().map(|s| u64::from(s.peers)).sum(),
        counters: counters.clone(),
        mirror_mean_seconds: (counters.mirrors > 0).then(|| counters.mirror_seconds_sum / counters.mirrors as f64),
    };
    SwarmsView { at_ms, totals, swarms, rates }
}

/// Upload rates from successive samples of the two upload counters; keeps the last `capacity`.
#[derive(Debug)]
pub(crate) struct ThroughputHistory {
    capacity: usize,
    /// The previous sample: (at_ms, BitTorrent total, webseed total).
    last: Option<(u64, u64, u64)>,
    rates: VecDeque<RateSample>,
}

impl ThroughputHistory {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, last: None, rates: VecDeque::with_capacity(capacity) }
    }

    /// Records the counters' totals at `at_ms`. A counter that went down (a restarted session)
    /// counts as no upload for that interval; a sample not later than the previous one is
    /// ignored.
    pub(crate) fn record(&mut self, at_ms: u64, bittorrent_total: u64, webseed_total: u64) {
        if let Some((last_ms, last_bt, last_ws)) = self.last {
            if at_ms <= last_ms {
                return;
            }
            let elapsed = at_ms - last_ms;
            let rate = |now: u64, before: u64| now.saturating_sub(before).saturating_mul(1000) / elapsed;
            if self.rates.len() == self.capacity {
                self.rates.pop_front();
            }
            if self.capacity > 0 {
                self.rates.push_back(RateSample {
                    at_ms,
                    bittorrent_bytes_per_s: rate(bittorrent_total, last_bt),
                    webseed_bytes_per_s: rate(webseed_total, last_ws),
                });
            }
        }
        self.last = Some((at_ms, bittorrent_total, webseed_total));
    }

    /// Oldest first.
    pub(crate) fn rates(&self) -> Vec<RateSample> {
        self.rates.iter().copied().collect()
    }
}

/// The history shared by the sampling task and the API.
#[derive(Debug)]
pub(crate) struct Throughput(Mutex<ThroughputHistory>);

impl Throughput {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(ThroughputHistory::new(HISTORY_SAMPLES)))
    }

    fn history(&self) -> std::sync::MutexGuard<'_, ThroughputHistory> {
        // The history is plain numbers; a panic mid-update leaves nothing inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Throughput {
    fn default() -> Self {
        Self::new()
    }
}

/// Samples the upload counters once a second, forever (spawn it; it ends with the runtime).
pub(crate) async fn record_throughput(seeding: Arc<Seeding>, metrics: Arc<SeederMetrics>, throughput: Arc<Throughput>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (bt, ws) = (seeding.uploaded_bytes(), metrics.webseed_uploaded_bytes.get());
        throughput.history().record(now_ms(), bt, ws);
    }
}

/// Every torrent of the session, sampled from librqbit's stats.
fn torrent_samples(seeding: &Seeding) -> Vec<TorrentSample> {
    seeding.session().with_torrents(|torrents| {
        torrents
            .map(|(_, t)| {
                let stats = t.stats();
                let peers = stats.live.as_ref().map(|l| &l.snapshot.peer_stats);
                TorrentSample {
                    info_hash: InfoHash::from_bytes(t.info_hash().0).hex(),
                    state: stats.state.to_string(),
                    peers_live: peers.map_or(0, |p| p.live),
                    peers_seen: peers.map_or(0, |p| p.seen),
                    uploaded_bytes: stats.uploaded_bytes,
                    upload_bytes_per_s: stats.live.as_ref().map_or(0, |l| l.upload_speed.as_bytes()),
                }
            })
            .collect()
    })
}

fn counters(seeding: &Seeding, metrics: &SeederMetrics) -> Counters {
    Counters {
        bittorrent_uploaded_bytes: seeding.uploaded_bytes(),
        webseed_uploaded_bytes: metrics.webseed_uploaded_bytes.get(),
        evicted_blobs: metrics.evicted_blobs.get(),
        evicted_bytes: metrics.evicted_bytes.get(),
        upstream_fetches: metrics.upstream_fetches.get(),
        mirrors: metrics.mirror_seconds.get_sample_count(),
        mirror_seconds_sum: metrics.mirror_seconds.get_sample_sum(),
    }
}

/// Samples everything the view shows, now.
pub(crate) fn sample_view(
    index: &BlobIndex,
    seeding: &Seeding,
    metrics: &SeederMetrics,
    throughput: &Throughput,
) -> Result<SwarmsView, IndexError> {
    let blobs: Vec<StoredBlob> = index
        .blobs()?
        .into_iter()
        .map(|(digest, record)| StoredBlob {
            digest: digest.to_string(),
            size: record.size,
            info_hash: record.info_hash,
            repositories: record.repos.into_iter().collect(),
        })
        .collect();
    let torrents = torrent_samples(seeding);
    let counters = counters(seeding, metrics);
    let rates = throughput.history().rates();
    Ok(swarms_view(now_ms(), &blobs, &torrents, &counters, rates))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8, size: u64) -> StoredBlob {
        StoredBlob {
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size,
            info_hash: format!("{n:02x}").repeat(20),
            repositories: vec!["127.0.0.1:5000/team/app".into()],
        }
    }

    fn torrent(n: u8, peers_live: u32, uploaded_bytes: u64) -> TorrentSample {
        TorrentSample {
            info_hash: format!("{n:02x}").repeat(20),
            state: "live".into(),
            peers_live,
            peers_seen: peers_live + 1,
            uploaded_bytes,
            upload_bytes_per_s: uploaded_bytes / 10,
        }
    }

    #[test]
    fn swarms_join_blobs_with_torrents_by_infohash_and_total_them() {
        let blobs = [blob(1, 100), blob(2, 2000), blob(3, 30)];
        // Blob 3 is stored but not seeded yet; torrent 9 has no blob (mid-eviction).
        let torrents = [torrent(2, 3, 5000), torrent(1, 0, 700), torrent(9, 4, 1)];
        let counters = Counters {
            bittorrent_uploaded_bytes: 5701,
            webseed_uploaded_bytes: 42,
            evicted_blobs: 1,
            evicted_bytes: 64,
            upstream_fetches: 3,
            mirrors: 2,
            mirror_seconds_sum: 3.0,
        };
        let rates = vec![RateSample { at_ms: 5, bittorrent_bytes_per_s: 10, webseed_bytes_per_s: 0 }];
        let view = swarms_view(1234, &blobs, &torrents, &counters, rates.clone());

        assert_eq!(view.at_ms, 1234);
        assert_eq!(view.rates, rates);
        let order: Vec<_> = view.swarms.iter().map(|s| (s.digest.clone(), s.state.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (blobs[1].digest.clone(), "live"),
                (blobs[0].digest.clone(), "live"),
                (blobs[2].digest.clone(), "not seeded")
            ]
        );
        let busiest = &view.swarms[0];
        assert_eq!((busiest.size, busiest.peers, busiest.peers_seen), (2000, 3, 4));
        assert_eq!((busiest.uploaded_bytes, busiest.upload_bytes_per_s), (5000, 500));
        assert_eq!(busiest.repositories, vec!["127.0.0.1:5000/team/app".to_owned()]);
        let unseeded = &view.swarms[2];
        assert_eq!((unseeded.peers, unseeded.uploaded_bytes), (0, 0));

        let t = &view.totals;
        assert_eq!((t.swarms, t.blobs, t.bytes_stored, t.peers), (2, 3, 2130, 3));
        assert_eq!(t.counters, counters);
        assert_eq!(t.mirror_mean_seconds, Some(1.5));
    }

    #[test]
    fn an_empty_seeder_has_no_swarms_and_no_mirror_latency() {
        let view = swarms_view(0, &[], &[], &Counters::default(), Vec::new());
        assert!(view.swarms.is_empty());
        assert_eq!((view.totals.swarms, view.totals.blobs, view.totals.peers), (0, 0, 0));
        assert_eq!(view.totals.mirror_mean_seconds, None);
    }

    #[test]
    fn swarms_with_equal_peers_and_uploads_sort_by_digest() {
        let blobs = [blob(3, 1), blob(1, 1), blob(2, 1)];
        let view = swarms_view(0, &blobs, &[], &Counters::default(), Vec::new());
        let digests: Vec<_> = view.swarms.iter().map(|s| s.digest.clone()).collect();
        assert_eq!(digests, vec![blobs[1].digest.clone(), blobs[2].digest.clone(), blobs[0].digest.clone()]);
    }

    #[test]
    fn the_view_serializes_to_the_json_the_page_reads() {
        let view = swarms_view(7, &[blob(1, 10)], &[torrent(1, 2, 20)], &Counters::default(), Vec::new());
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["totals"]["swarms"], 1);
        assert_eq!(json["totals"]["mirror_mean_seconds"], serde_json::Value::Null);
        // The counters sit in the totals themselves, as the page and scripts read them.
        let mut keys: Vec<_> = json["totals"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let expected = [
            "bittorrent_uploaded_bytes",
            "blobs",
            "bytes_stored",
            "evicted_blobs",
            "evicted_bytes",
            "mirror_mean_seconds",
            "mirrors",
            "peers",
            "swarms",
            "upstream_fetches",
            "webseed_uploaded_bytes",
        ];
        assert_eq!(keys, expected);
        assert_eq!(json["swarms"][0]["peers"], 2);
        assert_eq!(json["swarms"][0]["uploaded_bytes"], 20);
        assert_eq!(json["swarms"][0]["info_hash"], "01".repeat(20));
        // Every field the page's script reads.
        for field in ["swarms", "blobs", "bytes_stored", "peers", "bittorrent_uploaded_bytes", "webseed_uploaded_bytes"]
        {
            assert!(PAGE.contains(&format!("t.{field}")), "the page reads totals.{field}");
        }
    }

    /// The rates a 10-sample history gives after `samples` of (at_ms, BitTorrent total, webseed
    /// total), as (at_ms, BitTorrent bytes/s, webseed bytes/s).
    fn rates_after(samples: &[(u64, u64, u64)]) -> Vec<(u64, u64, u64)> {
        let mut h = ThroughputHistory::new(10);
        for &(at_ms, bittorrent, webseed) in samples {
            h.record(at_ms, bittorrent, webseed);
        }
        h.rates().iter().map(|r| (r.at_ms, r.bittorrent_bytes_per_s, r.webseed_bytes_per_s)).collect()
    }

    #[test]
    fn rates_are_deltas_per_second_between_samples() {
        assert!(rates_after(&[(1_000, 0, 0)]).is_empty(), "one sample is no interval");
        let samples = [(1_000, 0, 0), (2_000, 4096, 100), (2_500, 4096 + 1000, 100)];
        assert_eq!(rates_after(&samples), [(2_000, 4096, 100), (2_500, 2000, 0)]);
    }

    #[test]
    fn rates_survive_counter_resets_and_clock_steps_back() {
        // The third sample is not later than the second: ignored.
        let samples = [(1_000, 5000, 5000), (2_000, 10, 6000), (1_500, 999_999, 999_999), (3_000, 1010, 6000)];
        assert_eq!(rates_after(&samples), [(2_000, 0, 1000), (3_000, 1000, 0)]);
    }

    #[test]
    fn the_history_keeps_the_newest_samples() {
        let mut h = ThroughputHistory::new(3);
        for i in 0..=5u64 {
            h.record(i * 1000, i * 10, 0);
        }
        let at: Vec<_> = h.rates().iter().map(|r| r.at_ms).collect();
        assert_eq!(at, vec![3000, 4000, 5000]);
        assert!(h.rates().iter().all(|r| r.bittorrent_bytes_per_s == 10));

        let mut none = ThroughputHistory::new(0);
        none.record(0, 0, 0);
        none.record(1000, 5, 5);
        assert!(none.rates().is_empty());
    }
}
