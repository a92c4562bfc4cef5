//! The cache's I/O side in one process, with a real librqbit session: eviction takes a blob out
//! of the session, the store and the index; the states a crash mid-eviction (or mid-ingest)
//! can leave are repaired by the start-up pass; a leased blob is kept.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use shoal_seeder::metrics::SeederMetrics;
use shoal_seeder::mirror::{Mirror, PlatformFilter};
use shoal_seeder::service::seed_stored_blobs;
use shoal_store::blob_store::BlobStore;
use shoal_store::cache::{CachedStore, StoreCache};
use shoal_store::eviction::StoreLimit;
use shoal_store::index::BlobIndex;
use shoal_store::seeding::{Seeding, SeedingConfig};
use shoal_tasks::Tasks;
use shoal_torrents::{BlobHasher, BlobTorrent, HashedBlob};
use shoal_upstream::{Upstream, UpstreamConfig};

const REPO: &str = "127.0.0.1:5000/team/app";

fn blob(seed: u8, len: usize) -> (Vec<u8>, HashedBlob) {
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)).collect();
    let mut h = BlobHasher::new(len as u64);
    h.update(&data);
    let hashed = h.finish();
    (data, hashed)
}

fn ingest(store: &BlobStore, data: &[u8], hashed: &HashedBlob) {
    store.ingest(hashed.digest, data.len() as u64, std::iter::once(Ok(Bytes::copy_from_slice(data)))).unwrap();
}

fn seeding_config() -> SeedingConfig {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    SeedingConfig::tracker_only(SocketAddr::from(([127, 0, 0, 1], port)), Vec::new())
}

fn bitv(dir: &Path, hashed: &HashedBlob) -> std::path::PathBuf {
    dir.join("bittorrent").join(format!("{}.bitv", BlobTorrent::from_hashed(hashed).info_hash().hex()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_states_are_repaired_at_start_and_eviction_clears_session_store_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let index = Arc::new(BlobIndex::open(&dir.join("index.redb")).unwrap());
    let store = Arc::new(BlobStore::open(dir).unwrap());
    let (old_data, old) = blob(3, 300_000);
    let (mid_data, mid) = blob(5, 200_000);
    let (gone_data, gone) = blob(7, 100_000);
    let (orphan_data, orphan) = blob(11, 100_000);
    for (data, hashed) in [(&old_data, &old), (&mid_data, &mid), (&gone_data, &gone)] {
        ingest(&store, data, hashed);
        index.put_blob(hashed, Some(REPO)).unwrap();
    }
    // Recency is the order of the index writes: `old`, `mid`, then the orphan (at start).
    // A crash after an eviction deleted the file, before it dropped the record.
    store.remove(&gone.digest).unwrap();
    // A crash between an ingest's rename and its index write.
    ingest(&store, &orphan_data, &orphan);

    let metrics = Arc::new(SeederMetrics::new());
    let stored = CachedStore { store: Arc::clone(&store), index: Arc::clone(&index), usage: Default::default() };
    let (mirror, _stored) = Mirror::new(
        Upstream::new(UpstreamConfig::default()),
        stored,
        Arc::clone(&metrics),
        PlatformFilter::default(),
        shoal_seeder::MirrorAllowList::new(&["*".to_owned()], &[]).unwrap(),
        Tasks::root("test"),
    );
    let seeding =
        Arc::new(Seeding::start(store.blobs_dir(), &dir.join("bittorrent"), &seeding_config()).await.unwrap());
    let (count, bytes) = seed_stored_blobs(&mirror.cached_store(), &seeding, |_| None).await.unwrap();
    assert_eq!((count, bytes), (3, 600_000), "old, mid and the orphan are stored");
    assert!(index.blob(&gone.digest).unwrap().is_none(), "a record without its file survived the start");
    assert_eq!(index.evicted_repos(&gone.digest).unwrap().unwrap().into_iter().collect::<Vec<_>>(), [REPO]);
    assert!(index.blob(&orphan.digest).unwrap().is_some(), "the verified orphan was not recorded");
    assert_eq!(seeding.torrent_count(), 3);
    metrics.blobs.set(count as i64);
    metrics.bytes_stored.set(bytes as i64);

    // 600,000 stored; limit 600,000 * (0.95, 0.85): above 570,000, down to 510,000.
    let limit = StoreLimit::new(600_000, 0.95, 0.85).unwrap();
    let cache = StoreCache::new(mirror.cached_store(), Some(Arc::clone(&seeding)), metrics.cache(), Some(limit));

    // Leased, `old` is skipped: `mid` (the next least recently used) goes instead.
    let lease = mirror.usage().lease(old.digest).await;
    let evicted = cache.enforce().await.unwrap();
    assert_eq!((evicted.blobs, evicted.bytes, evicted.stored_bytes), (1, 200_000, 400_000));
    assert!(store.stored_size(&old.digest).is_some());
    assert!(store.stored_size(&mid.digest).is_none(), "mid's file is still there");
    assert!(index.blob(&mid.digest).unwrap().is_none(), "mid's record is still there");
    assert!(!bitv(dir, &mid).exists(), "mid's fast-resume bitfield is still there");
    assert_eq!(seeding.torrent_count(), 2, "mid is still in the session");
    assert_eq!(index.evicted_repos(&mid.digest).unwrap().unwrap().into_iter().collect::<Vec<_>>(), [REPO]);
    assert_eq!(metrics.evicted_blobs.get(), 1);
    assert_eq!(metrics.evicted_bytes.get(), 200_000);
    assert_eq!(metrics.bytes_stored.get(), 400_000);
    drop(lease);
    // Under the high watermark now: nothing more goes, lease or not.
    assert_eq!(cache.enforce().await.unwrap().blobs, 0);

    // A use recorded in memory counts before it reaches the index: touched, `old` is newer
    // than the orphan, which goes first once the store is over the limit again.
    mirror.usage().touch(old.digest, shoal_store::usage::now_ms() + 60_000);
    ingest(&store, &mid_data, &mid);
    index.put_blob(&mid, Some(REPO)).unwrap();
    seeding.seed(&mid).await.unwrap();
    index.record_accesses(&[(mid.digest, shoal_store::usage::now_ms() + 120_000)]).unwrap();
    let evicted = cache.enforce().await.unwrap();
    assert_eq!((evicted.blobs, evicted.stored_bytes), (1, 500_000), "{evicted:?}");
    assert!(store.stored_size(&orphan.digest).is_none(), "the least recently used blob is still stored");
    assert!(store.stored_size(&old.digest).is_some() && store.stored_size(&mid.digest).is_some());
    // The in-memory use is written to the index in one batch.
    cache.record_uses().unwrap();
    assert!(index.blob(&old.digest).unwrap().unwrap().last_access_ms > shoal_store::usage::now_ms());
    seeding.stop().await;
}
