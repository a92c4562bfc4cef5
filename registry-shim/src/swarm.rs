//! The shim's BitTorrent side: one librqbit session that downloads missing blobs from the swarm
//! and seeds every verified blob onward, read-only, straight from the shim's store.
//!
//! A download goes into `DATA/partial/` through librqbit's own filesystem storage (librqbit
//! checks every piece's SHA-1 before a stream sees it). The bytes the client gets are also
//! written to the store by the shim's own verified ingest, so once the blob's SHA-256 matches,
//! the partial copy is dropped and the blob is re-added for seeding from the store, read-only
//! (the seeder's [`Seeding`], with a complete fast-resume bitfield: no re-hashing).
//!
//! Tuned for hosts that pull one blob at once (issue 7's swarm lab): a shallow per-peer request
//! window and a second "scatter" stream from a random offset, so hosts fetch different pieces
//! from the origin and trade them ([`PEER_REQUEST_WINDOW`], [`Swarm::scatter`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use librqbit::api::TorrentIdOrHash;
use librqbit::storage::filesystem::FilesystemStorageFactory;
use librqbit::storage::StorageFactoryExt;
use librqbit::{AddTorrent, AddTorrentOptions, AddTorrentResponse, PeerConnectionOptions};
use shoal_seeder::seeding::{Seeding, SeedingConfig, SeedingError};
use shoal_torrents::{BlobDigest, HashedBlob, ParsedTorrent};

use crate::blobs::BlobOrigin;

/// Where a blob's bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Peers,
    Webseed,
    Upstream,
}

/// How the shim reaches the seeder and the swarm.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The seeder's HTTP base (`http://host:port`), asked for each missing blob's torrent.
    pub seeder_url: Option<String>,
    pub seeding: SeedingConfig,
    /// With no new byte from the swarm for this long, the rest comes over HTTP.
    pub stall_timeout: Duration,
    /// How long to wait for the seeder's torrent before going to upstream directly (a blob the
    /// seeder does not hold yet takes it a whole mirror; the client should not wait for that).
    pub torrent_timeout: Duration,
}

/// A blob's torrent as the seeder served it.
pub struct BlobTorrentFile {
    pub bytes: Bytes,
    pub parsed: ParsedTorrent,
}

/// A download running in the session.
pub struct Download {
    pub id: usize,
    /// librqbit's stream over the file: yields bytes only of pieces whose SHA-1 matched. It
    /// holds one of the session's blocking permits until dropped (see `runtime_worker_threads`).
    pub stream: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    /// One of the shim's stream slots, released with the stream.
    pub _slot: tokio::sync::OwnedSemaphorePermit,
    /// The scatter reader (see [`Swarm::scatter`]), stopped with the download.
    pub _scatter: Option<AbortOnDrop>,
}

/// Aborts a background task when dropped.
pub struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Chunk requests kept outstanding per peer (librqbit's default: 128, i.e. 2 MiB). librqbit
/// reserves each piece for one peer, and the origin always has every piece, so a deep window
/// towards the origin reserves megabytes that other hosts are about to hold and could serve; a
/// shallow one leaves those pieces to the hosts. Swarm lab, N=8, 64 MiB: 7.3x ideal with the
/// default, 3.0x with 8 and a scatter stream (docs/benchmarks.md).
const PEER_REQUEST_WINDOW: usize = 8;

/// Concurrent swarm streams. librqbit's session has 8 blocking permits (its default
/// `runtime_worker_threads`) shared by open streams and disk writes: as many open streams as
/// permits deadlocks the session, so streams get at most half of them.
const MAX_STREAMS: usize = 4;

pub struct Swarm {
    seeding: Arc<Seeding>,
    partial_dir: PathBuf,
    http: reqwest::Client,
    config: SwarmConfig,
    streams: Arc<tokio::sync::Semaphore>,
}

impl Swarm {
    pub async fn start(
        data_dir: &std::path::Path,
        blobs_dir: &std::path::Path,
        config: SwarmConfig,
    ) -> Result<Self, SeedingError> {
        let partial_dir = data_dir.join("partial");
        // Partial downloads of a killed process are worthless: the store holds only verified
        // blobs, and a restarted download starts from the swarm again.
        let _ = std::fs::remove_dir_all(&partial_dir);
        std::fs::create_dir_all(&partial_dir)
            .map_err(|e| SeedingError::Start(format!("{}: {e}", partial_dir.display())))?;
        let seeding = Arc::new(Seeding::start(blobs_dir, &data_dir.join("bittorrent"), &config.seeding).await?);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| SeedingError::Start(e.to_string()))?;
        let streams = Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS));
        Ok(Self { seeding, partial_dir, http, config, streams })
    }

    /// The session, for the cache policy (it takes evicted blobs out of it).
    pub fn seeding(&self) -> &Arc<Seeding> {
        &self.seeding
    }

    pub fn stall_timeout(&self) -> Duration {
        self.config.stall_timeout
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Asks the seeder for the blob's torrent (it fetches the blob from upstream first if it
    /// must). `None` when there is no seeder, it fails, or it is slower than the timeout.
    pub async fn torrent(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Option<BlobTorrentFile> {
        let base = self.config.seeder_url.as_deref()?;
        let url = format!("{}/v1/blobs/{digest}/torrent", base.trim_end_matches('/'));
        let request =
            self.http.get(&url).query(&[("repo", origin.repository.as_str()), ("ns", origin.registry.as_str())]);
        let response = match tokio::time::timeout(self.config.torrent_timeout, request.send()).await {
            Ok(Ok(r)) if r.status().is_success() => r,
            Ok(Ok(r)) => {
                tracing::warn!(%digest, status = %r.status(), "seeder has no torrent; going upstream");
                return None;
            }
            Ok(Err(e)) => {
                tracing::warn!(%digest, error = %e, "seeder unreachable; going upstream");
                return None;
            }
            Err(_) => {
                tracing::info!(%digest, "seeder is still mirroring this blob; streaming from upstream meanwhile");
                return None;
            }
        };
        let bytes = tokio::time::timeout(self.config.torrent_timeout * 4, response.bytes()).await.ok()?.ok()?;
        match ParsedTorrent::parse(&bytes) {
            Ok(parsed) if parsed.name.as_deref() == Some(digest.torrent_name().as_str()) => {
                Some(BlobTorrentFile { bytes, parsed })
            }
            Ok(_) => {
                tracing::error!(%digest, "the seeder's torrent names another blob; ignoring it");
                None
            }
            Err(e) => {
                tracing::error!(%digest, error = %e, "the seeder's torrent does not parse; ignoring it");
                None
            }
        }
    }

    /// Starts downloading a torrent into the partial directory and opens a stream over it.
    pub async fn download(&self, torrent: &BlobTorrentFile) -> Result<Download, String> {
        let slot = Arc::clone(&self.streams).acquire_owned().await.map_err(|e| e.to_string())?;
        let session = self.seeding.session();
        let add = || async {
            let options = AddTorrentOptions {
                peer_opts: Some(PeerConnectionOptions {
                    max_request_window: Some(PEER_REQUEST_WINDOW),
                    ..Default::default()
                }),
                overwrite: true,
                preferred_id: Some(self.seeding.next_torrent_id()),
                output_folder: Some(self.partial_dir.to_string_lossy().into_owned()),
                storage_factory: Some(FilesystemStorageFactory::default().boxed()),
                ..Default::default()
            };
            session
                .add_torrent(AddTorrent::from_bytes(torrent.bytes.clone()), Some(options))
                .await
                .map_err(|e| format!("{e:#}"))
        };
        let handle = match add().await? {
            AddTorrentResponse::Added(_, handle) => handle,
            AddTorrentResponse::AlreadyManaged(id, _) => {
                // Left over from a run that died mid-download (restored by persistence, but its
                // storage is gone): start it over.
                session.delete(TorrentIdOrHash::Id(id), true).await.map_err(|e| format!("{e:#}"))?;
                match add().await? {
                    AddTorrentResponse::Added(_, handle) => handle,
                    _ => return Err("librqbit would not add the torrent".into()),
                }
            }
            AddTorrentResponse::ListOnly(_) => return Err("librqbit listed the torrent instead of adding it".into()),
        };
        let id = handle.id();
        let stream = handle.clone().stream(0).await.map_err(|e| format!("{e:#}"))?;
        let scatter = self.scatter(&handle, torrent).await;
        Ok(Download { id, stream: Box::pin(stream), _slot: slot, _scatter: scatter })
    }

    /// librqbit picks pieces strictly in order, after the ones its streams are about to read.
    /// Hosts that start one blob together would all ask the origin for the same pieces at the
    /// same time and have nothing to trade. A second stream, read (and discarded) from a random
    /// offset on, makes each host fetch another region too, so hosts hold pieces the others
    /// lack. It uses a spare stream slot only, and gives it back as soon as every slot is taken
    /// (another blob may be waiting for one).
    async fn scatter(&self, handle: &Arc<librqbit::ManagedTorrent>, torrent: &BlobTorrentFile) -> Option<AbortOnDrop> {
        use std::hash::{BuildHasher, Hasher};
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let size = torrent.parsed.size.filter(|&s| s > 0)?;
        let spare = Arc::clone(&self.streams).try_acquire_owned().ok()?;
        let mut stream = handle.clone().stream(0).await.ok()?;
        let mut random = std::collections::hash_map::RandomState::new().build_hasher();
        random.write_u64(size);
        stream.seek(std::io::SeekFrom::Start(random.finish() % size)).await.ok()?;
        let slots = Arc::clone(&self.streams);
        let task = tokio::spawn(async move {
            let _spare = spare;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                if slots.available_permits() == 0 {
                    break;
                }
                match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) | Err(_) => {}
                }
            }
        });
        Some(AbortOnDrop(task))
    }

    /// Drops a download's partial copy (after success, or when falling back to HTTP).
    pub async fn drop_download(&self, id: usize) {
        if let Err(e) = self.seeding.session().delete(TorrentIdOrHash::Id(id), true).await {
            tracing::warn!(id, error = %e, "could not remove a finished download from the session");
        }
    }

    /// Seeds a verified, stored blob onward.
    pub async fn seed(&self, blob: &HashedBlob) {
        if blob.size == 0 {
            return; // nothing to swarm; libtorrent cannot even load a zero-length torrent
        }
        if let Err(e) = self.seeding.seed(blob).await {
            tracing::warn!(digest = %blob.digest, error = %e, "could not seed a stored blob");
        }
    }

    pub fn uploaded_bytes(&self) -> u64 {
        self.seeding.uploaded_bytes()
    }
}
