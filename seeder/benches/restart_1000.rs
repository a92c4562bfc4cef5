//! Restart with many stored blobs (1,000 by default): time until the seeder is ready to seed
//! and until every torrent is live, on the first start and on a restart. Neither re-hashes:
//! the first start hands librqbit a complete fast-resume bitfield, the restart restores the
//! session from librqbit's own persistence.
//!
//! `cargo bench -p shoal-seeder --bench restart_1000` (SHOAL_BENCH_BLOBS, SHOAL_BENCH_BLOB_KIB
//! change the count and size).

// A benchmark prints its figures.
#![allow(clippy::print_stdout)]

use rand::{RngCore, SeedableRng};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_seeder::metrics::SeederMetrics;
use shoal_seeder::mirror::{Mirror, PlatformFilter};
use shoal_seeder::service::seed_stored_blobs;
use shoal_store::blob_store::BlobStore;
use shoal_store::cache::CachedStore;
use shoal_store::index::BlobIndex;
use shoal_store::seeding::{Seeding, SeedingConfig};
use shoal_tasks::Tasks;
use shoal_torrents::BlobHasher;
use shoal_upstream::{Upstream, UpstreamConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn populate(dir: &Path, blobs: usize, size: usize) {
    let store = BlobStore::open(dir).unwrap();
    let index = BlobIndex::open(&dir.join("index.redb")).unwrap();
    // Seeded, so every run stores the same blobs.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    for _ in 0..blobs {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        let mut h = BlobHasher::new(size as u64);
        h.update(&data);
        let digest = h.finish().digest;
        let hashed = store.ingest(digest, size as u64, std::iter::once(Ok(Bytes::from(data)))).unwrap();
        index.put_blob(&hashed, Some("bench/repo")).unwrap();
    }
}

/// One start: (time to ready-to-seed, time until every torrent is live).
async fn start(dir: &Path, blobs: usize) -> (Duration, Duration) {
    let started = Instant::now();
    let index = Arc::new(BlobIndex::open(&dir.join("index.redb")).unwrap());
    let store = Arc::new(BlobStore::open(dir).unwrap());
    let metrics = Arc::new(SeederMetrics::new());
    let stored = CachedStore { store: Arc::clone(&store), index, usage: Default::default() };
    let (mirror, _stored) = Mirror::new(
        Upstream::new(UpstreamConfig::default()),
        stored,
        metrics,
        PlatformFilter::default(),
        shoal_seeder::MirrorAllowList::new(&["*".to_owned()], &[]).unwrap(),
        Tasks::root("test"),
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = SeedingConfig::tracker_only(SocketAddr::from(([127, 0, 0, 1], port)), Vec::new());
    let seeding = Seeding::start(store.blobs_dir(), &dir.join("bittorrent"), &config).await.unwrap();
    let (count, _) = seed_stored_blobs(&mirror.cached_store(), &seeding, |_| None).await.unwrap();
    assert_eq!(count as usize, blobs);
    let ready = started.elapsed();
    while seeding.live_torrents() < blobs {
        assert!(started.elapsed() < Duration::from_secs(600), "torrents never all went live");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let live = started.elapsed();
    seeding.stop().await;
    (ready, live)
}

fn main() {
    // `cargo test --all-targets` also runs this target (without `--bench`): do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let blobs = env_or("SHOAL_BENCH_BLOBS", 1000);
    let kib = env_or("SHOAL_BENCH_BLOB_KIB", 1024);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    populate(dir.path(), blobs, kib << 10);
    println!("populated {blobs} blobs of {kib} KiB in {:.2?}", t.elapsed());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ready, live) = runtime.block_on(start(dir.path(), blobs));
    println!("first start: ready to seed in {ready:.2?}, all {blobs} torrents live in {live:.2?}");
    let (ready, live) = runtime.block_on(start(dir.path(), blobs));
    println!("restart:     ready to seed in {ready:.2?}, all {blobs} torrents live in {live:.2?}");
}
