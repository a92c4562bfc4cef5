//! The shim's BitTorrent side: one librqbit session that downloads missing blobs from the swarm
//! and seeds every verified blob onward, read-only, straight from the shim's store.
//!
//! A download goes into `DATA/partial/` through librqbit's own filesystem storage (librqbit
//! checks every piece's SHA-1 before a stream sees it). That file is the only copy written: the
//! shim hashes the SHA-256 of what the stream hands its client, and when it matches, the torrent
//! leaves the session (its file kept) and the store adopts the file by renaming it
//! (`fetch.rs`, `landing.rs`). The blob is then re-added for seeding from the store, read-only (the
//! seeder's [`Seeding`], with a complete fast-resume bitfield: no re-hashing).
//!
//! Hosts that pull one blob at once (issue 7's swarm lab) must fetch different pieces from the
//! origin to have something to trade: the vendored librqbit picks pieces at random past the
//! 1 MiB a stream is about to read (vendor/librqbit/SHOAL-PATCHES.md).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use librqbit::api::TorrentIdOrHash;
use librqbit::storage::filesystem::FilesystemStorageFactory;
use librqbit::storage::StorageFactoryExt;
use librqbit::{AddTorrent, AddTorrentOptions, AddTorrentResponse, PeerConnectionOptions};
use shoal_store::seeding::{Seeding, SeedingConfig, SeedingError};
use shoal_torrents::{BlobDigest, HashedBlob, MemberLiveness, ParsedTorrent, SeederRing};

use crate::origin::BlobOrigin;
use crate::stall::StallPolicy;

/// How the shim reaches the seeder and the swarm.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The seeders' HTTP bases (`http://host:port`), asked for each missing blob's torrent in
    /// the blob's ring order (its owners first, the next when one fails); none: upstream only.
    pub seeders: Vec<String>,
    pub seeding: SeedingConfig,
    /// With neither the stream's next bytes nor any other verified piece from the swarm for
    /// this long, the rest comes over HTTP, unless a peer that holds what is missing is about
    /// to send it (`stall.rs`; [`DEFAULT_STALL_TIMEOUT`]).
    pub stall_timeout: Duration,
    /// How long after connecting a peer that holds what is missing, but chokes us, may take to
    /// unchoke us before the download stops waiting for it ([`DEFAULT_UNCHOKE_WAIT`]).
    pub unchoke_wait: Duration,
    /// How long to wait for the seeder's answer before going to upstream directly. A seeder
    /// that must fetch the blob answers 202 at once (the client should not wait for a whole
    /// mirror); a seeder that holds it may be slow when many hosts ask together.
    pub torrent_timeout: Duration,
    /// At most this many 16 KiB chunk requests kept outstanding per peer
    /// ([`DEFAULT_PEER_REQUEST_WINDOW`]); within it, each peer's window covers 300 ms of its
    /// measured rate (vendor/librqbit, patch 5).
    pub peer_request_window: usize,
    /// How the seeder's HTTPS is trusted (and this shim known to it), beyond the web roots.
    pub seeder_trust: SeederTrust,
}

/// TLS towards a seeder served with a private CA, or one that requires client certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeederTrust {
    /// PEM CA bundle the seeder's certificate may chain to, besides the public web roots.
    pub ca: Option<std::path::PathBuf>,
    /// PEM certificate and key this shim presents (a seeder with `--tls-client-ca`).
    pub identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl SeederTrust {
    /// The shim's HTTP client of the seeder (torrents, webseeds) with this trust.
    fn client(&self) -> Result<reqwest::Client, String> {
        let builder = self.configure(reqwest::Client::builder().connect_timeout(Duration::from_secs(2)))?;
        builder.build().map_err(|e| e.to_string())
    }

    /// `builder` with this trust's CA and identity (for every client of a seeder: the shim,
    /// `shoal magnets`, `shoal jobs`).
    pub fn configure(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        if let Some(ca) = &self.ca {
            let certs = reqwest::Certificate::from_pem_bundle(&read(ca)?)
                .map_err(|e| format!("{} is not a PEM CA bundle: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no certificate", ca.display()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &self.identity {
            let pem = [read(cert)?, b"\n".to_vec(), read(key)?].concat();
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                format!("{} and {} are not a PEM certificate and key: {e}", cert.display(), key.display())
            })?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

/// The most chunk requests kept outstanding at one peer by default (librqbit's own: 128). One
/// seeder on loopback needs a deep window (a 1 GiB cold blob: 12.1 s at 8, 7.9 s at 32,
/// 5.4-5.9 s at 64); in the swarm lab a deep window at every peer commits a host to pieces
/// seconds ahead (N=16, 50 mbit: 1.35x ideal at a fixed 64, 1.2x at a fixed 8). So each peer's
/// window follows its rate (300 ms of it, at least 8), up to this.
pub const DEFAULT_PEER_REQUEST_WINDOW: usize = 64;
/// `--stall-timeout-ms`: a swarm download quiet this long, with no peer about to send, falls
/// back to HTTP.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(3);
/// `--torrent-timeout-ms`: how long the seeder may take to answer for a blob's torrent.
pub const DEFAULT_TORRENT_TIMEOUT: Duration = Duration::from_secs(3);
/// `--unchoke-wait-ms`: Transmission unchokes a new peer at its next rechoke, every 10 s; its
/// first bytes came 9-11 s after it connected.
pub const DEFAULT_UNCHOKE_WAIT: Duration = Duration::from_secs(15);

/// A blob's torrent as the seeder served it.
pub(crate) struct BlobTorrentFile {
    pub bytes: Bytes,
    pub parsed: ParsedTorrent,
}

/// What one seeder said about a blob's torrent.
enum Asked {
    Torrent(BlobTorrentFile),
    /// It is fetching the blob: stream from upstream meanwhile.
    Fetching,
    /// Not found or not allowed: the other seeders would say the same.
    Refused,
    /// Unreachable, slow, or a bad answer (why): ask the next.
    Failed(String),
}

/// A download running in the session.
pub(crate) struct Download {
    pub id: usize,
    /// librqbit's stream over the file: yields bytes only of pieces whose SHA-1 matched. It
    /// holds one of the session's blocking permits until dropped (see `runtime_worker_threads`).
    pub stream: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    /// Bytes of verified pieces the download holds, wherever in the blob: the stream waits
    /// for the next piece in order, and a swarm still delivering other pieces has not stalled.
    pub progress: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Who in the swarm could send what the download lacks (for [`crate::stall`]).
    pub supply: Box<dyn Fn() -> librqbit::SwarmSupply + Send + Sync>,
    /// One of the shim's stream slots, released with the stream.
    pub _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Concurrent swarm streams. librqbit's session has 8 blocking permits (its default
/// `runtime_worker_threads`): each open stream holds one, and its other blocking work (checking
/// files when a torrent starts, flushing bitfields) waits for one. As many open streams as
/// permits deadlocks the session, so streams get at most half of them. (Chunk writes took a
/// permit too before the vendored patch; they now run inline.)
const MAX_STREAMS: usize = 4;

pub(crate) struct Swarm {
    seeding: Arc<Seeding>,
    /// The seeders, ordered per blob (`None`: no seeder).
    seeders: Option<SeederRing>,
    /// Which seeders answered last time (a dead one is logged once, not once per blob).
    liveness: MemberLiveness,
    partial_dir: PathBuf,
    http: reqwest::Client,
    config: SwarmConfig,
    streams: Arc<tokio::sync::Semaphore>,
}

impl Swarm {
    pub(crate) async fn start(
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
        let http = config.seeder_trust.client().map_err(|e| SeedingError::Start(format!("the seeder's TLS: {e}")))?;
        let streams = Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS));
        // The replica count does not matter here: every seeder is asked, in the blob's order.
        let seeders = match config.seeders.is_empty() {
            true => None,
            false => Some(
                SeederRing::new(&config.seeders, 1).map_err(|e| SeedingError::Start(format!("the seeders: {e}")))?,
            ),
        };
        Ok(Self { seeding, seeders, liveness: MemberLiveness::default(), partial_dir, http, config, streams })
    }

    /// The session, for the cache policy (it takes evicted blobs out of it).
    pub(crate) fn seeding(&self) -> &Arc<Seeding> {
        &self.seeding
    }

    pub(crate) fn stall_policy(&self) -> StallPolicy {
        StallPolicy { quiet: self.config.stall_timeout, unchoke_wait: self.config.unchoke_wait }
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Asks the seeders for the blob's torrent without waiting for a fetch, in the blob's ring
    /// order: its owner first, the next when one fails or does not answer in time. A seeder
    /// that must fetch the blob first answers 202 at once and fetches it meanwhile. `None`
    /// when there is no seeder, one is fetching the blob, the blob is refused (not found, not
    /// allowed: every seeder would say the same), or none answers (a seeder that holds the blob
    /// can be slow to answer when many hosts ask at once, so the timeout is not what tells a
    /// fetch in progress).
    pub(crate) async fn torrent(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Option<BlobTorrentFile> {
        let order = self.liveness.reorder(self.seeders.as_ref()?.order(digest), std::time::Instant::now());
        for base in order {
            let asked = self.ask_seeder(base, origin, digest).await;
            let failed = match &asked {
                Asked::Failed(why) => Some(why.as_str()),
                _ => None,
            };
            match self.liveness.record(base, failed.is_none(), std::time::Instant::now()) {
                Some(false) => tracing::warn!(
                    seeder = base,
                    error = failed.unwrap_or_default(),
                    "a seeder stopped answering; asking the next for each blob meanwhile"
                ),
                Some(true) => tracing::info!(seeder = base, "a seeder answers again"),
                None => {}
            }
            match asked {
                Asked::Torrent(torrent) => return Some(torrent),
                Asked::Fetching | Asked::Refused => return None,
                Asked::Failed(_) => continue,
            }
        }
        tracing::warn!(%digest, "no seeder gave this blob's torrent; going upstream");
        None
    }

    async fn ask_seeder(&self, base: &str, origin: &BlobOrigin, digest: &BlobDigest) -> Asked {
        let url = format!("{base}/v1/blobs/{digest}/torrent");
        let request = self.http.get(&url).query(&[
            ("repo", origin.repository.as_str()),
            ("ns", origin.registry.as_str()),
            ("wait", "false"),
        ]);
        let response = match tokio::time::timeout(self.config.torrent_timeout, request.send()).await {
            Ok(Ok(r)) if r.status() == reqwest::StatusCode::ACCEPTED => {
                tracing::info!(%digest, seeder = base, "seeder is fetching this blob; streaming from upstream meanwhile");
                return Asked::Fetching;
            }
            Ok(Ok(r)) if r.status().is_success() => r,
            Ok(Ok(r)) if r.status() == reqwest::StatusCode::FORBIDDEN => {
                tracing::info!(%digest, registry = %origin.registry, repository = %origin.repository,
                    "the seeder does not mirror this repository (its --mirror-allow); streaming from upstream");
                return Asked::Refused;
            }
            Ok(Ok(r)) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                tracing::warn!(%digest, seeder = base, "seeder has no such blob; going upstream");
                return Asked::Refused;
            }
            Ok(Ok(r)) => {
                tracing::debug!(%digest, seeder = base, status = %r.status(), "seeder has no torrent; asking the next");
                return Asked::Failed(format!("answered {}", r.status()));
            }
            Ok(Err(e)) => {
                tracing::debug!(%digest, seeder = base, error = %e, "seeder unreachable; asking the next");
                return Asked::Failed(shoal_upstream::causes(&e));
            }
            Err(_) => {
                tracing::debug!(%digest, seeder = base, timeout = ?self.config.torrent_timeout,
                    "seeder did not answer in time; asking the next");
                return Asked::Failed(format!("no answer within {:?}", self.config.torrent_timeout));
            }
        };
        let Some(bytes) =
            tokio::time::timeout(self.config.torrent_timeout * 4, response.bytes()).await.ok().and_then(Result::ok)
        else {
            return Asked::Failed("its torrent did not arrive in time".into());
        };
        match ParsedTorrent::parse(&bytes) {
            Ok(parsed) if parsed.name.as_deref() == Some(digest.torrent_name().as_str()) => {
                Asked::Torrent(BlobTorrentFile { bytes, parsed })
            }
            Ok(_) => {
                tracing::error!(%digest, seeder = base, "the seeder's torrent names another blob; ignoring it");
                Asked::Failed("its torrent names another blob".into())
            }
            Err(e) => {
                tracing::error!(%digest, seeder = base, error = %e, "the seeder's torrent does not parse; ignoring it");
                Asked::Failed(format!("its torrent does not parse: {e}"))
            }
        }
    }

    /// Starts downloading a torrent into the partial directory and opens a stream over it.
    pub(crate) async fn download(&self, torrent: &BlobTorrentFile) -> Result<Download, String> {
        let slot = Arc::clone(&self.streams).acquire_owned().await.map_err(|e| e.to_string())?;
        let session = self.seeding.session();
        let add = || async {
            let options = AddTorrentOptions {
                peer_opts: Some(PeerConnectionOptions {
                    max_request_window: Some(self.config.peer_request_window.max(1)),
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
        let live = handle.clone();
        let supply = Box::new(move || live.live().map(|l| l.supply()).unwrap_or_default());
        let progress = Box::new(move || handle.stats().progress_bytes);
        Ok(Download { id, stream: Box::pin(stream), progress, supply, _slot: slot })
    }

    /// Where librqbit writes a download's file.
    pub(crate) fn partial_path(&self, torrent: &BlobTorrentFile) -> PathBuf {
        self.partial_dir.join(torrent.parsed.name.as_deref().unwrap_or("unnamed"))
    }

    /// Takes a download out of the session and deletes its partial file.
    pub(crate) async fn drop_download(&self, id: usize) {
        self.remove_download(id, true).await;
    }

    /// Takes a download out of the session but keeps its file, whose verified pieces the
    /// caller takes over: librqbit no longer writes to it once this returns.
    pub(crate) async fn forget_download(&self, id: usize) {
        self.remove_download(id, false).await;
    }

    async fn remove_download(&self, id: usize, delete_file: bool) {
        if let Err(e) = self.seeding.session().delete(TorrentIdOrHash::Id(id), delete_file).await {
            tracing::warn!(id, error = %e, "could not remove a download from the session");
        }
    }

    /// Seeds a verified, stored blob onward.
    pub(crate) async fn seed(&self, blob: &HashedBlob) {
        if blob.size == 0 {
            return; // nothing to swarm; libtorrent cannot even load a zero-length torrent
        }
        match self.seeding.seed(blob).await {
            Ok(true) => tracing::info!(digest = %blob.digest, size = blob.size, "seeding onward"),
            Ok(false) => {}
            Err(e) => tracing::warn!(digest = %blob.digest, error = %e, "could not seed a stored blob"),
        }
    }

    pub(crate) fn uploaded_bytes(&self) -> u64 {
        self.seeding.uploaded_bytes()
    }
}
