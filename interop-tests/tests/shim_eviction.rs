//! `shoal shim --max-store-bytes`: the shim's cache against a real upstream (Debian's
//! `docker-registry`, an image pushed by skopeo). Pulling more than the limit evicts the
//! least-recently-used blobs (a blob read again recently is kept, the newest is kept), an
//! evicted blob pulls again byte for byte, and a restart keeps the index, drops records whose
//! file is gone and re-indexes files that have no record. With a swarm (tracker, seeder), an
//! evicted blob is out of the shim's librqbit session and comes back into it when pulled again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_interop_tests::registry::{curl, skopeo_push, start_registry, write_oci_layout, LayoutBlob};
use shoal_interop_tests::stack::{seeding, start_seeder, start_tracker};
use shoal_interop_tests::{blob_path, eventually, sha256_file, stored_blob};
use shoal_registry_shim::SwarmConfig;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_store::eviction::StoreLimit;
use shoal_store::index::BlobIndex;
use shoal_tasks::Tasks;
use shoal_torrents::{BlobHasher, BlobTorrent};

/// One layer is a little over 300,000 bytes (random data, gzip -1); three fit under the high
/// watermark (950,000), four do not, and eviction stops at the low one (850,000).
const MAX: u64 = 1_000_000;
const LAYER: usize = 300_000;

fn is_stored(data: &Path, blob: &LayoutBlob) -> bool {
    blob_path(data, &blob.digest).exists()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

struct Running {
    addr: std::net::SocketAddr,
    metrics: std::sync::Arc<shoal_registry_shim::ShimMetrics>,
    tasks: Tasks,
    task: tokio::task::JoinHandle<Result<(), shoal_registry_shim::ShimError>>,
}

impl Running {
    /// Stops the shim and waits until it has: its index (and the redb lock) is closed then,
    /// so a new shim opens the data directory at once.
    async fn stop(self) {
        self.tasks.cancel();
        let served = tokio::time::timeout(Duration::from_secs(30), self.task).await.expect("the shim stopped in time");
        served.unwrap().expect("the shim served without failing");
    }
}

/// Binds a shim over `data`.
async fn start(data: &Path, port: u16) -> Running {
    start_with(data, port, None).await
}

async fn start_with(data: &Path, port: u16, swarm: Option<SwarmConfig>) -> Running {
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: format!("127.0.0.1:{port}"),
        tag_ttl: Duration::from_secs(30),
        stale_tag_max_age: shoal_registry_shim::DEFAULT_STALE_TAG_MAX_AGE,
        mirror_miss_timeout: shoal_registry_shim::DEFAULT_MIRROR_MISS_TIMEOUT,
        upstream: Default::default(),
        swarm,
        store_limit: Some(StoreLimit::new(MAX, 0.95, 0.85).unwrap()),
        tls: None,
    })
    .await
    .unwrap_or_else(|e| panic!("the shim did not start: {e:?}"));
    let (addr, metrics) = (shim.local_addr(), shim.metrics());
    let tasks = Tasks::root("test-shim");
    let task = tokio::spawn(shim.serve(tasks.clone()));
    Running { addr, metrics, tasks, task }
}

/// A registry holding `team/app:v1`, an image of four layers a little over [`LAYER`] bytes
/// each; returns its guard, port and blobs (config first). Lengths differ so that the layers do
/// (write_blob's seeds 2n and 2n+1 give the same bytes).
fn four_layers(dir: &Path, seed: u64) -> (shoal_interop_tests::ChildGuard, u16, Vec<LayoutBlob>) {
    let (registry, port) = start_registry(&dir.join("registry"), "");
    let layout = dir.join("layout");
    let (blobs, _) = write_oci_layout(&layout, "v1", &[LAYER, LAYER + 1000, LAYER + 2000, LAYER + 3000], seed);
    skopeo_push(&layout, "v1", port, "team/app");
    (registry, port, blobs)
}

async fn pull(shim: std::net::SocketAddr, blob: &LayoutBlob) {
    let url = format!("http://{shim}/v2/team/app/blobs/{}", blob.digest);
    let expected = std::fs::read(&blob.path).unwrap();
    let (status, body, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
    assert_eq!(status, 200);
    assert!(body == expected, "{} arrived changed", blob.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_evicts_least_recently_used_blobs_and_keeps_its_index_across_restarts() {
    shoal_interop_tests::stack::init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port, blobs) = four_layers(tmp.path(), 41);
    let layers: Vec<&LayoutBlob> = blobs[1..].iter().collect();
    let (l1, l2, l3, l4) = (layers[0], layers[1], layers[2], layers[3]);
    let sum = |bs: &[&LayoutBlob]| bs.iter().map(|b| b.size).sum::<u64>();
    assert!(layers.iter().all(|b| b.size > LAYER as u64 && b.size < LAYER as u64 + 5_000));
    assert!(sum(&[l1, l2, l3]) <= MAX * 95 / 100 && sum(&layers) > MAX * 95 / 100);
    assert!(sum(&[l1, l3, l4]) > MAX * 85 / 100, "one eviction would be enough");

    let data = tmp.path().join("shim");
    let shim = start(&data, port).await;
    for layer in [l1, l2, l3] {
        pull(shim.addr, layer).await;
    }
    // Indexed just after the client has its last byte, and indexing stamps the blob's last
    // use: wait for it, or l3's stamp could come after l1's re-read below.
    let three = sum(&[l1, l2, l3]);
    eventually("three blobs indexed", || shim.metrics.bytes_stored.get() as u64 == three).await;
    // Read again: l1 is now more recent than l2 and l3.
    pull(shim.addr, l1).await;
    assert_eq!(shim.metrics.evicted_blobs.get(), 0, "evicted under the high watermark");

    // The fourth goes over the high watermark: l2 then l3 (least recently used) go, down to
    // two blobs (below the low watermark); l1 (read again) and l4 (newest) stay.
    pull(shim.addr, l4).await;
    eventually("the shim to evict", || shim.metrics.evicted_blobs.get() == 2).await;
    assert!(!is_stored(&data, l2) && !is_stored(&data, l3), "the least recently used blobs are still stored");
    assert!(is_stored(&data, l1) && is_stored(&data, l4), "a recently used blob was evicted");
    let text = shim.metrics.render();
    assert_eq!(metric(&text, "shoal_shim_evicted_blobs_total"), 2);
    assert_eq!(metric(&text, "shoal_shim_evicted_bytes_total"), sum(&[l2, l3]));
    assert_eq!(metric(&text, "shoal_shim_stored_bytes"), sum(&[l1, l4]));
    assert_eq!(metric(&text, "shoal_shim_blobs"), 2);

    // An evicted blob pulls again, from upstream, byte for byte (and fits: no eviction).
    pull(shim.addr, l2).await;
    assert_eq!(sha256_file(&stored_blob(&data, &l2.digest).await), l2.digest);
    let again = sum(&[l1, l2, l4]);
    eventually("l2 indexed again", || shim.metrics.bytes_stored.get() as u64 == again).await;
    assert_eq!(shim.metrics.evicted_blobs.get(), 2);

    // Restart. Meanwhile l1's file vanishes and l3's appears without a record.
    shim.stop().await;
    std::fs::remove_file(blob_path(&data, &l1.digest)).unwrap();
    std::fs::copy(&l3.path, blob_path(&data, &l3.digest)).unwrap();
    let shim = start(&data, port).await;
    let text = shim.metrics.render();
    assert_eq!(metric(&text, "shoal_shim_blobs"), 3, "{text}");
    assert_eq!(metric(&text, "shoal_shim_stored_bytes"), sum(&[l2, l3, l4]));
    pull(shim.addr, l3).await;
    assert_eq!(shim.metrics.evicted_blobs.get(), 0);
    shim.stop().await;

    // Stopped means stopped: nothing of the shim holds the index any more.
    let index = BlobIndex::open(&data.join("index.redb")).expect("the stopped shim let go of its index");
    let digest = |b: &LayoutBlob| b.digest.parse().unwrap();
    assert!(index.blob(&digest(l1)).unwrap().is_none(), "a record without its file survived the restart");
    for kept in [l2, l3, l4] {
        let record = index.blob(&digest(kept)).unwrap().expect("a stored blob has no record");
        assert_eq!(record.size, kept.size);
    }
    // Recorded where it came from (the re-indexed one could not know).
    assert!(index.blob(&digest(l4)).unwrap().unwrap().repos.contains(&format!("127.0.0.1:{port}/team/app")));
}

/// librqbit's fast-resume bitfield of a blob the shim seeds (`DATA/bittorrent/<infohash>.bitv`):
/// there exactly while the blob is in the session.
fn bitv(data: &Path, blob: &LayoutBlob) -> PathBuf {
    let bytes = std::fs::read(&blob.path).unwrap();
    let mut hasher = BlobHasher::new(bytes.len() as u64);
    hasher.update(&bytes);
    let info_hash = BlobTorrent::from_hashed(&hasher.finish()).info_hash();
    data.join("bittorrent").join(format!("{}.bitv", info_hash.hex()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evicted_blob_leaves_the_shims_librqbit_session_before_its_file_goes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port, blobs) = four_layers(tmp.path(), 43);
    let layers: Vec<&LayoutBlob> = blobs[1..].iter().collect();
    let (l1, l2, l3, l4) = (layers[0], layers[1], layers[2], layers[3]);

    let trackers = vec![start_tracker().await];
    let seeder = start_seeder(&tmp.path().join("seeder"), &format!("127.0.0.1:{port}"), &trackers).await;
    let data = tmp.path().join("shim");
    let swarm = SwarmConfig {
        seeders: vec![seeder.url.clone()],
        seeding: seeding(&trackers),
        stall_timeout: Duration::from_secs(20),
        unchoke_wait: shoal_registry_shim::DEFAULT_UNCHOKE_WAIT,
        torrent_timeout: Duration::from_secs(20),
        peer_request_window: shoal_registry_shim::DEFAULT_PEER_REQUEST_WINDOW,
        seeder_trust: Default::default(),
    };
    let shim = start_with(&data, port, Some(swarm)).await;
    for layer in [l1, l2, l3] {
        pull(shim.addr, layer).await;
        eventually("the blob seeded onward", || bitv(&data, layer).exists()).await;
    }
    pull(shim.addr, l1).await;
    pull(shim.addr, l4).await;
    eventually("the shim to evict", || shim.metrics.evicted_blobs.get() == 2).await;
    eventually("l4 seeded onward", || bitv(&data, l4).exists()).await;
    for gone in [l2, l3] {
        assert!(!is_stored(&data, gone), "an evicted blob's file is still there");
        assert!(!bitv(&data, gone).exists(), "an evicted blob is still in the librqbit session");
    }
    for kept in [l1, l4] {
        assert!(is_stored(&data, kept) && bitv(&data, kept).exists(), "a kept blob is not seeded");
    }
    // The evicted blob comes back (through the swarm again) and is seeded again.
    pull(shim.addr, l2).await;
    eventually("l2 seeded again", || bitv(&data, l2).exists()).await;
}
