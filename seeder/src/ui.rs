//! The seeder's live page (`GET /ui`) and the JSON it polls (`GET /v1/swarms`): the images
//! mirrored (`image:tag`, config and layers), one swarm per stored blob with its magnet, its
//! connected peers and what the tracker counts for it, bytes sent by channel (BitTorrent vs
//! webseed), mirrors, evictions and a recent upload-rate history.
//!
//! The view is a pure function of plain samples ([`swarms_view`], [`ThroughputHistory`]); reading
//! librqbit, the index, the tracker view and the metrics happens in [`sample_view`] and
//! [`record_throughput`]; the handlers are in `api.rs`. The page is `ui/index.html` in
//! [`shoal_telemetry::page`]'s frame, with the first view inlined ([`page`]).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use shoal_store::index::{BlobIndex, ImageRecord, IndexError};
use shoal_store::seeding::{PeerSample, Seeding, TorrentSample};
use shoal_store::usage::now_ms;
use shoal_torrents::{BlobDigest, InfoHash, SeederRing};

use crate::metrics::SeederMetrics;
use crate::scrape::{TrackerCounts, TrackerSwarms, TrackerView};

mod throughput;

pub(crate) use throughput::{record_throughput, RateSample, Throughput};

/// The page template: HTML and the page's own script, in the shared frame.
const TEMPLATE: &str = include_str!("ui/index.html");

/// The page as served: the template with the frame and `view` inlined.
pub(crate) fn page(view: &SwarmsView) -> String {
    shoal_telemetry::page::render(TEMPLATE, &serde_json::to_string(view).expect("the view serializes"))
}

/// A stored blob, as the index records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredBlob {
    pub digest: String,
    pub size: u64,
    pub info_hash: String,
    pub repositories: Vec<String>,
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

/// What `GET /v1/swarms` answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SwarmsView {
    /// When this was sampled, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub totals: Totals,
    /// Mirrored images, one per top manifest digest, by first reference.
    pub images: Vec<ImageView>,
    /// Busiest first: most peers, then most uploaded, then by digest.
    pub swarms: Vec<SwarmView>,
    /// Where the per-swarm `tracker` counts come from.
    pub tracker: TrackerView,
    /// Oldest first, one a second.
    pub rates: Vec<RateSample>,
}

/// One mirrored image: the references that name it (tags first) and its manifests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ImageView {
    pub references: Vec<String>,
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<ManifestView>,
    /// Bytes of every distinct blob the image names.
    pub size: u64,
}

/// One single-platform manifest of an image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ManifestView {
    pub digest: String,
    pub platform: Option<String>,
    pub config: String,
    pub layers: Vec<String>,
}

/// What a blob is to the images that name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BlobRole {
    Config,
    Layer,
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
    /// `config` or `layer` in the images that name it; `None` when no mirrored image does
    /// (a blob fetched alone, by a shim's request).
    pub role: Option<BlobRole>,
    /// The references of the images that name it (tags where there are any).
    pub images: Vec<String>,
    /// The blob's magnet (trackers, webseed, `.torrent` URL), and its `.torrent`.
    pub magnet: String,
    pub torrent: String,
    /// librqbit's state, or `not seeded` when the session has no torrent for the blob (yet).
    pub state: String,
    pub peers: u32,
    pub peers_seen: u32,
    pub uploaded_bytes: u64,
    pub upload_bytes_per_s: u64,
    /// The peers connected now, most uploaded-to first.
    pub peer_list: Vec<PeerSample>,
    /// What the tracker counted at its last scrape; `None` when it did not list the swarm.
    pub tracker: Option<TrackerCounts>,
}

/// How the seeder hands out a blob: the trackers, the seeders' ring (whose owners' webseeds a
/// torrent names) and its own public URL.
#[derive(Clone, Debug)]
pub(crate) struct Links<'a> {
    pub trackers: &'a [String],
    pub ring: &'a SeederRing,
    pub public_url: &'a str,
}

impl Links<'_> {
    fn torrent(&self, digest: &str) -> String {
        format!("{}/v1/blobs/{digest}/torrent", self.public_url)
    }

    fn magnet(&self, blob: &StoredBlob) -> String {
        let (Ok(info_hash), Ok(digest)) = (blob.info_hash.parse::<InfoHash>(), blob.digest.parse::<BlobDigest>())
        else {
            return String::new();
        };
        let distribution = self.ring.distribution(self.trackers, &digest);
        let mut magnet = distribution.magnet(info_hash, digest.torrent_name(), blob.size);
        magnet.torrent_url = Some(self.torrent(&blob.digest));
        magnet.to_string()
    }
}

/// Everything [`swarms_view`] joins, sampled.
pub(crate) struct Samples<'a> {
    pub at_ms: u64,
    pub blobs: &'a [StoredBlob],
    pub images: &'a [ImageRecord],
    pub torrents: &'a [TorrentSample],
    pub tracker: TrackerView,
    pub counters: &'a Counters,
    pub rates: Vec<RateSample>,
}

/// The view of every stored blob's swarm, joined with the session's torrents and the tracker's
/// counts by infohash and with the images that name it. Torrents without a stored blob
/// (mid-eviction) are left out.
pub(crate) fn swarms_view(samples: Samples<'_>, links: &Links<'_>) -> SwarmsView {
    let Samples { at_ms, blobs, images, torrents, tracker, counters, rates } = samples;
    let by_hash: HashMap<String, &TorrentSample> = torrents.iter().map(|t| (t.info_hash.hex(), t)).collect();
    let images = image_views(images, blobs);
    let mut named: HashMap<&str, (BlobRole, Vec<String>)> = HashMap::new();
    for image in &images {
        let name = image.references[0].clone();
        for m in &image.manifests {
            let roles =
                std::iter::once((&m.config, BlobRole::Config)).chain(m.layers.iter().map(|l| (l, BlobRole::Layer)));
            for (digest, role) in roles {
                let entry = named.entry(digest.as_str()).or_insert((role, Vec::new()));
                if !entry.1.contains(&name) {
                    entry.1.push(name.clone());
                }
            }
        }
    }
    let mut swarms: Vec<SwarmView> = blobs
        .iter()
        .map(|b| {
            let torrent = by_hash.get(b.info_hash.as_str());
            let (role, images) =
                named.get(b.digest.as_str()).cloned().map_or((None, Vec::new()), |(r, i)| (Some(r), i));
            SwarmView {
                digest: b.digest.clone(),
                size: b.size,
                info_hash: b.info_hash.clone(),
                repositories: b.repositories.clone(),
                role,
                images,
                magnet: links.magnet(b),
                torrent: links.torrent(&b.digest),
                state: torrent.map_or_else(|| "not seeded".to_owned(), |t| t.state.clone()),
                peers: torrent.map_or(0, |t| t.peers_live),
                peers_seen: torrent.map_or(0, |t| t.peers_seen),
                uploaded_bytes: torrent.map_or(0, |t| t.uploaded_bytes),
                upload_bytes_per_s: torrent.map_or(0, |t| t.upload_bytes_per_s),
                peer_list: torrent.map_or_else(Vec::new, |t| t.peers.clone()),
                tracker: b.info_hash.parse::<InfoHash>().ok().and_then(|h| tracker.swarms.get(&h).copied()),
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
    SwarmsView { at_ms, totals, images, swarms, tracker, rates }
}

/// One view per top manifest digest: a tag and its `@digest` twin are one image. Tags come
/// before digest references; images by their first reference.
fn image_views(records: &[ImageRecord], blobs: &[StoredBlob]) -> Vec<ImageView> {
    let mut by_digest: BTreeMap<&str, Vec<&ImageRecord>> = BTreeMap::new();
    for r in records {
        by_digest.entry(r.digest.as_str()).or_default().push(r);
    }
    let sizes: HashMap<&str, u64> = blobs.iter().map(|b| (b.digest.as_str(), b.size)).collect();
    let mut views: Vec<ImageView> = by_digest
        .into_values()
        .map(|group| {
            let mut references: Vec<String> = group.iter().map(|r| r.reference.clone()).collect();
            references.sort_by_key(|r| (r.contains('@'), r.clone()));
            let first = group[0];
            let manifests: Vec<ManifestView> = first
                .manifests
                .iter()
                .map(|m| ManifestView {
                    digest: m.digest.clone(),
                    platform: m.platform.clone(),
                    config: m.config.digest.clone(),
                    layers: m.layers.iter().map(|l| l.digest.clone()).collect(),
                })
                .collect();
            let mut distinct: HashMap<&str, u64> = HashMap::new();
            for m in &first.manifests {
                for b in std::iter::once(&m.config).chain(&m.layers) {
                    distinct.insert(b.digest.as_str(), sizes.get(b.digest.as_str()).copied().unwrap_or(b.size));
                }
            }
            ImageView {
                references,
                digest: first.digest.clone(),
                media_type: first.media_type.clone(),
                manifests,
                size: distinct.values().sum(),
            }
        })
        .collect();
    views.sort_by(|a, b| a.references[0].cmp(&b.references[0]));
    views
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
    tracker: &TrackerSwarms,
    links: &Links<'_>,
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
    let images = index.images()?;
    let torrents = seeding.torrent_samples();
    let counters = counters(seeding, metrics);
    let samples = Samples {
        at_ms: now_ms(),
        blobs: &blobs,
        images: &images,
        torrents: &torrents,
        tracker: tracker.view(),
        counters: &counters,
        rates: throughput.rates(),
    };
    Ok(swarms_view(samples, links))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::index::{ImageBlob, ManifestRecord};

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    fn blob(n: u8, size: u64) -> StoredBlob {
        StoredBlob {
            digest: digest(n),
            size,
            info_hash: format!("{n:02x}").repeat(20),
            repositories: vec!["127.0.0.1:5000/team/app".into()],
        }
    }

    fn torrent(n: u8, peers_live: u32, uploaded_bytes: u64) -> TorrentSample {
        TorrentSample {
            info_hash: InfoHash::from_bytes([n; 20]),
            state: "live".into(),
            peers_live,
            peers_seen: peers_live + 1,
            uploaded_bytes,
            upload_bytes_per_s: uploaded_bytes / 10,
            peers: (0..peers_live)
                .map(|p| PeerSample {
                    addr: format!("10.0.0.{p}:6881"),
                    client: None,
                    uploaded_bytes: u64::from(p),
                    downloaded_bytes: 0,
                })
                .collect(),
        }
    }

    /// `reference` naming manifest `top` with config `config` and these layers.
    fn image(reference: &str, top: u8, config: u8, layers: &[u8]) -> ImageRecord {
        let b = |n: u8| ImageBlob { digest: digest(n), size: 1, media_type: "m".into() };
        ImageRecord {
            reference: reference.into(),
            digest: digest(top),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifests: vec![ManifestRecord {
                digest: digest(top),
                platform: None,
                config: b(config),
                layers: layers.iter().map(|&n| b(n)).collect(),
            }],
        }
    }

    fn view(
        blobs: &[StoredBlob],
        images: &[ImageRecord],
        torrents: &[TorrentSample],
        tracker: TrackerView,
    ) -> SwarmsView {
        let (trackers, ring) = (["http://t:6969/announce".to_owned()], SeederRing::alone("http://s:7000").unwrap());
        let links = Links { trackers: &trackers, ring: &ring, public_url: "http://s:7000" };
        let counters = Counters { mirrors: 2, mirror_seconds_sum: 3.0, ..Default::default() };
        let rates = vec![RateSample { at_ms: 5, bittorrent_bytes_per_s: 10, webseed_bytes_per_s: 0 }];
        swarms_view(Samples { at_ms: 1234, blobs, images, torrents, tracker, counters: &counters, rates }, &links)
    }

    #[test]
    fn swarms_join_blobs_with_torrents_by_infohash_and_total_them() {
        let blobs = [blob(1, 100), blob(2, 2000), blob(3, 30)];
        // Blob 3 is stored but not seeded yet; torrent 9 has no blob (mid-eviction).
        let torrents = [torrent(2, 3, 5000), torrent(1, 0, 700), torrent(9, 4, 1)];
        let view = view(&blobs, &[], &torrents, TrackerView::default());

        assert_eq!(view.at_ms, 1234);
        assert_eq!(view.rates.len(), 1);
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
        assert_eq!(busiest.peer_list.len(), 3);
        let unseeded = &view.swarms[2];
        assert_eq!((unseeded.peers, unseeded.uploaded_bytes, unseeded.peer_list.len()), (0, 0, 0));

        let t = &view.totals;
        assert_eq!((t.swarms, t.blobs, t.bytes_stored, t.peers), (2, 3, 2130, 3));
        assert_eq!(t.mirror_mean_seconds, Some(1.5));
    }

    #[test]
    fn each_swarm_carries_its_magnet_and_torrent_link() {
        let view = view(&[blob(1, 100)], &[], &[], TrackerView::default());
        let s = &view.swarms[0];
        assert_eq!(s.torrent, format!("http://s:7000/v1/blobs/{}/torrent", digest(1)));
        assert!(s.magnet.starts_with(&format!("magnet:?xt=urn:btih:{}&dn=sha256-", "01".repeat(20))), "{}", s.magnet);
        for part in
            ["&xl=100", "&tr=http%3A%2F%2Ft%3A6969%2Fannounce", "&ws=", "&xs=http%3A%2F%2Fs%3A7000%2Fv1%2Fblobs"]
        {
            assert!(s.magnet.contains(part), "{part} in {}", s.magnet);
        }
    }

    #[test]
    fn images_group_a_tag_with_its_digest_and_name_each_blobs_role() {
        let blobs = [blob(1, 10), blob(2, 20), blob(3, 30), blob(4, 40)];
        let pinned = format!("r/app@{}", digest(9));
        let images = [image("r/app:1", 9, 1, &[2, 3]), image(&pinned, 9, 1, &[2, 3]), image("r/base:1", 8, 4, &[2])];
        let view = view(&blobs, &images, &[], TrackerView::default());
        assert_eq!(view.images.len(), 2);
        assert_eq!(view.images[0].references, vec!["r/app:1".to_owned(), pinned]);
        assert_eq!(view.images[0].size, 60, "the stored sizes of config and layers");
        assert_eq!(view.images[0].manifests[0].config, digest(1));
        assert_eq!(view.images[1].references, vec!["r/base:1".to_owned()]);
        let swarm = |n: u8| view.swarms.iter().find(|s| s.digest == digest(n)).unwrap();
        assert_eq!((swarm(1).role, swarm(1).images.clone()), (Some(BlobRole::Config), vec!["r/app:1".to_owned()]));
        assert_eq!(swarm(2).role, Some(BlobRole::Layer));
        assert_eq!(swarm(2).images, vec!["r/app:1".to_owned(), "r/base:1".to_owned()], "a shared layer names both");
        assert_eq!(swarm(4).role, Some(BlobRole::Config));
        let json = serde_json::to_value(swarm(1)).unwrap();
        assert_eq!(json["role"], "config");
    }

    #[test]
    fn the_trackers_counts_join_by_infohash() {
        let mut tracker = TrackerView { url: Some("http://t/scrape".into()), at_ms: Some(1), ..Default::default() };
        tracker.swarms.insert(InfoHash::from_bytes([2; 20]), TrackerCounts { seeders: 3, leechers: 1, completed: 7 });
        let view = view(&[blob(1, 1), blob(2, 1)], &[], &[], tracker);
        let by = |n: u8| view.swarms.iter().find(|s| s.digest == digest(n)).unwrap().tracker;
        assert_eq!(by(2), Some(TrackerCounts { seeders: 3, leechers: 1, completed: 7 }));
        assert_eq!(by(1), None);
        assert_eq!(view.tracker.url.as_deref(), Some("http://t/scrape"));
    }

    #[test]
    fn an_empty_seeder_has_no_swarms_and_no_mirror_latency() {
        let view = swarms_view(
            Samples {
                at_ms: 0,
                blobs: &[],
                images: &[],
                torrents: &[],
                tracker: TrackerView::default(),
                counters: &Counters::default(),
                rates: Vec::new(),
            },
            &Links { trackers: &[], ring: &SeederRing::alone("http://s:7000").unwrap(), public_url: "" },
        );
        assert!(view.swarms.is_empty() && view.images.is_empty());
        assert_eq!((view.totals.swarms, view.totals.blobs, view.totals.peers), (0, 0, 0));
        assert_eq!(view.totals.mirror_mean_seconds, None);
    }

    #[test]
    fn swarms_with_equal_peers_and_uploads_sort_by_digest() {
        let blobs = [blob(3, 1), blob(1, 1), blob(2, 1)];
        let view = view(&blobs, &[], &[], TrackerView::default());
        let digests: Vec<_> = view.swarms.iter().map(|s| s.digest.clone()).collect();
        assert_eq!(digests, vec![blobs[1].digest.clone(), blobs[2].digest.clone(), blobs[0].digest.clone()]);
    }

    #[test]
    fn the_view_serializes_to_the_json_the_page_reads_and_is_inlined_in_it() {
        let view = view(&[blob(1, 10)], &[image("r/app:1", 9, 1, &[])], &[torrent(1, 2, 20)], TrackerView::default());
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["totals"]["swarms"], 1);
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
        assert_eq!(json["swarms"][0]["peer_list"][1]["addr"], "10.0.0.1:6881");
        assert_eq!(json["swarms"][0]["info_hash"], "01".repeat(20));
        // Every field the page's script reads.
        for field in
            ["t.swarms", "t.blobs", "t.bytes_stored", "t.peers", "s.magnet", "s.torrent", "s.role", "s.tracker"]
        {
            assert!(TEMPLATE.contains(field), "the page reads {field}");
        }
        let page = page(&view);
        assert!(page.contains(r#""references":["r/app:1"]"#), "the first view is in the page");
        assert!(!page.contains("FIRST_VIEW_JSON") && !page.contains("/*FRAME_SCRIPT*/"));
    }
}
