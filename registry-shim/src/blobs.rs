//! Blobs for the shim: verified local cache hits, and misses streamed to the client while they
//! are stored and verified, one download per blob however many clients ask.
//!
//! The client never receives the last byte of a blob before its SHA-256 has matched: the
//! stream holds back its final chunk until the whole blob has hashed to its digest, and ends in
//! an error instead when it does not match, so the client sees a broken transfer, never a bad
//! blob.
//!
//! A miss is written to disk once. Straight from upstream, the store's ingest writes it as it
//! hashes it. From the swarm, librqbit has already written it (`DATA/partial/`): the shim then
//! only hashes the SHA-256 of what it streams, and the store adopts librqbit's file by renaming
//! it ([`Landing::OnDisk`]); whatever comes over HTTP after a stall is appended by the feed to a
//! copy of the verified prefix, and that assembled file is hashed again from disk before it is
//! adopted, so its piece table is our own.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use shoal_store::blob_store::{BlobStore, StoreError};
use shoal_store::usage::Lease;
use shoal_torrents::{hash_reader, BlobDigest, BlobTorrent, HashedBlob, PieceLength};
use shoal_upstream::Upstream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::cache::ShimCache;
use crate::feed::{Feed, LandedFile};
use crate::metrics::ShimMetrics;
use crate::swarm::{BlobTorrentFile, Source as SourceKind, Swarm};
use crate::RegistryError;

/// Outcome of one download, as seen by the clients waiting on it.
type Outcome = Option<Result<(), String>>;

/// What a blob request gets.
pub enum BlobBody {
    /// Verified and stored: serve the file (with `Range`).
    Cached {
        path: PathBuf,
        size: u64,
        /// Held until the response body is done, so eviction waits (`None`: not leased).
        lease: Option<Lease>,
    },
    /// Arriving now: bytes as they come, the last chunk only after verification.
    Streaming { size: u64, chunks: mpsc::Receiver<Result<Bytes, io::Error>> },
}

/// Where a blob comes from: the registry and repository it was asked under, and the client's
/// own credentials if it sent any (`Debug` redacts them).
#[derive(Clone, Debug)]
pub struct BlobOrigin {
    pub registry: String,
    pub repository: String,
    /// A miss with these comes from upstream with them, stays off the swarm and is marked
    /// private ([`crate::private::PrivateBlobs`]).
    pub auth: Option<oci_client::secrets::RegistryAuth>,
}

pub struct BlobFetcher {
    store: Arc<BlobStore>,
    upstream: Arc<Upstream>,
    swarm: Option<Arc<Swarm>>,
    metrics: Arc<ShimMetrics>,
    inflight: Mutex<HashMap<BlobDigest, watch::Receiver<Outcome>>>,
    cache: Arc<ShimCache>,
}

/// A miss's bytes on their way, from whichever sources it takes.
struct Source {
    size: u64,
    chunks: BoxStream<'static, Result<Bytes, io::Error>>,
    /// The swarm download still in the session, to drop once the blob is stored.
    download: Arc<Mutex<Option<usize>>>,
    landing: Landing,
}

/// How a miss's bytes reach the store.
enum Landing {
    /// The store writes its own copy as the bytes pass (and computes the SHA-1 pieces).
    Ingest,
    /// The bytes are on disk when the stream ends: the feed hands over the file, and the store
    /// adopts it once the SHA-256 of the streamed bytes matches.
    OnDisk {
        file: oneshot::Receiver<LandedFile>,
        piece_length: u64,
        pieces: Vec<[u8; 20]>,
        info_hash: shoal_torrents::InfoHash,
    },
}

impl BlobFetcher {
    pub fn new(
        store: Arc<BlobStore>,
        upstream: Arc<Upstream>,
        swarm: Option<Arc<Swarm>>,
        metrics: Arc<ShimMetrics>,
        cache: Arc<ShimCache>,
    ) -> Self {
        Self { store, upstream, swarm, metrics, inflight: Mutex::new(HashMap::new()), cache }
    }

    pub fn swarm(&self) -> Option<&Arc<Swarm>> {
        self.swarm.as_ref()
    }

    pub fn cached(&self, digest: &BlobDigest) -> Option<BlobBody> {
        let size = self.store.stored_size(digest)?;
        Some(BlobBody::Cached { path: self.store.path(digest), size, lease: None })
    }

    /// A stored blob this client may have: any blob not marked private, and a private one
    /// only once upstream lets this client (or the shim's own access) read it in this
    /// repository. `None`: not stored.
    /// Leased and counted as a use.
    async fn hit(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<Option<BlobBody>, RegistryError> {
        // Leased before the lookup: an eviction either finished before (a miss) or waits.
        let lease = self.cache.lease(*digest).await;
        let Some(size) = self.store.stored_size(digest) else { return Ok(None) };
        let body = BlobBody::Cached { path: self.store.path(digest), size, lease: Some(lease) };
        self.cache.touch(*digest);
        let private = self.cache.private();
        if !private.is_private(digest) {
            return Ok(Some(body));
        }
        let reference = self.reference(origin, digest)?;
        match self.upstream.blob_readable(&reference, digest, origin.auth.as_ref()).await {
            Ok(true) => {
                if origin.auth.is_none() {
                    private.clear(digest); // readable without a client's credentials
                }
                Ok(Some(body))
            }
            Ok(false) => Err(RegistryError::BlobUnknown(digest.to_string())),
            Err(e) => Err(upstream_error(Subject::Blob, &digest.to_string(), e)),
        }
    }

    /// The blob's size without downloading it, for `HEAD` on a miss.
    pub async fn size(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<u64, RegistryError> {
        if let Some(BlobBody::Cached { size, .. }) = self.hit(origin, digest).await? {
            return Ok(size);
        }
        let reference = self.reference(origin, digest)?;
        let stream = self
            .upstream
            .blob_from_as(&reference, digest, None, 0, origin.auth.as_ref())
            .await
            .map_err(|e| upstream_error(Subject::Blob, &digest.to_string(), e))?;
        Ok(stream.size)
    }

    /// A hit, or the start of a download (or the end of one already running, when `stream` is
    /// false or someone else leads it: then the caller gets the cached file once it is done).
    pub async fn get(
        self: &Arc<Self>,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        stream: bool,
    ) -> Result<BlobBody, RegistryError> {
        self.attempt(origin, digest, stream, true).await
    }

    /// `get`. A client that joined a download which then failed tries again (`may_retry`): the
    /// leader may have failed for reasons of its own (no credentials, while this client has
    /// them), and this client's answer should be about its own request. It may join another
    /// client's download again, but every failed leader has answered its own client for good,
    /// so the tries end: at the latest this client leads one itself. A leader waiting for its
    /// own download (`lead` without a stream) does not retry.
    async fn attempt(
        self: &Arc<Self>,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        stream: bool,
        may_retry: bool,
    ) -> Result<BlobBody, RegistryError> {
        if let Some(hit) = self.hit(origin, digest).await? {
            self.metrics.cache(true);
            return Ok(hit);
        }
        self.metrics.cache(false);
        // Either join the download under way or become its leader; the lock is never held
        // across an await.
        let joined = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            match inflight.get(digest) {
                Some(rx) => Ok(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(*digest, rx);
                    Err(tx)
                }
            }
        };
        let follower = match joined {
            Ok(rx) => rx,
            Err(tx) => return self.lead(origin, digest, tx, stream).await,
        };
        let mut rx = follower;
        // Cloned out of the watch (its guard must not be held across the await below).
        let outcome =
            rx.wait_for(Option::is_some).await.map_err(|_| RegistryError::Unavailable("download lost".into()))?.clone();
        match outcome.expect("waited for Some") {
            // Through `hit`: a blob another client fetched with its credentials is checked.
            Ok(()) => self.hit(origin, digest).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string())),
            Err(message) if may_retry => {
                tracing::info!(%digest, error = %message, "the download this request joined failed; trying on its own");
                Box::pin(self.attempt(origin, digest, stream, true)).await
            }
            Err(message) => Err(RegistryError::Unavailable(message)),
        }
    }

    fn reference(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<oci_client::Reference, RegistryError> {
        self.upstream
            .blob_reference(Some(&origin.registry), &origin.repository, digest)
            .map_err(|e| RegistryError::NameInvalid(e.to_string()))
    }

    async fn lead(
        self: &Arc<Self>,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        done: watch::Sender<Outcome>,
        stream: bool,
    ) -> Result<BlobBody, RegistryError> {
        let private = origin.auth.is_some();
        // Held until the blob is indexed and seeded: eviction never takes a blob mid-download.
        let lease = self.cache.lease(*digest).await;
        let marked = if private { self.cache.private().mark(digest).map_err(|e| e.to_string()) } else { Ok(()) };
        let source = match marked {
            Err(e) => Err(RegistryError::Unavailable(format!("cannot mark {digest} private: {e}"))),
            Ok(()) => self.open_source(origin, digest).await,
        };
        let source = match source {
            Ok(s) => s,
            Err(e) => {
                self.inflight.lock().expect("inflight lock").remove(digest);
                let _ = done.send(Some(Err(e.to_string())));
                return Err(e);
            }
        };
        let size = source.size;
        let (body_tx, body_rx) = mpsc::channel(16);
        let this = Arc::clone(self);
        let digest = *digest;
        let repository = format!("{}/{}", origin.registry, origin.repository);
        tokio::spawn(async move {
            let _lease = lease;
            let download = Arc::clone(&source.download);
            let outcome = this.pump(digest, source, body_tx).await;
            if let Ok(hashed) = &outcome {
                if let Err(e) = this.cache.stored(hashed, &repository) {
                    tracing::error!(%digest, error = %e, "cannot index a stored blob");
                }
            }
            if let Some(swarm) = &this.swarm {
                let left = download.lock().expect("download lock").take();
                if let Some(id) = left {
                    swarm.drop_download(id).await;
                }
                if let (Ok(hashed), false) = (&outcome, private) {
                    swarm.seed(hashed).await;
                }
            }
            if let Err(e) = &outcome {
                if matches!(e, StoreError::DigestMismatch { .. }) {
                    this.metrics.verification_failures.inc();
                }
                tracing::error!(%digest, error = %e, "blob download failed");
            }
            this.inflight.lock().expect("inflight lock").remove(&digest);
            let _ = done.send(Some(outcome.map(|_| ()).map_err(|e| e.to_string())));
        });
        if stream {
            Ok(BlobBody::Streaming { size, chunks: body_rx })
        } else {
            drop(body_rx);
            // Its own download: a failure is the answer, not a reason to start another.
            Box::pin(self.attempt(origin, &digest, false, false)).await
        }
    }

    /// Opens the byte source of a miss: the swarm (through the seeder's torrent) with HTTP
    /// fallbacks for whatever it does not deliver in time, or the upstream registry directly
    /// when there is no seeder or it has no torrent for the blob yet.
    async fn open_source(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<Source, RegistryError> {
        let reference = self.reference(origin, digest)?;
        let swarm = self.swarm.as_ref().map(Arc::clone);
        let torrent = match &swarm {
            // A client's own credentials: its blob stays between it and upstream.
            Some(s) if origin.auth.is_none() => s.torrent(origin, digest).await,
            _ => None,
        };
        let (Some(swarm), Some(torrent)) = (swarm, torrent) else {
            let stream = self
                .upstream
                .blob_from_as(&reference, digest, None, 0, origin.auth.as_ref())
                .await
                .map_err(|e| upstream_error(Subject::Blob, &digest.to_string(), e))?;
            let counted = self.count(stream.chunks, SourceKind::Upstream);
            return Ok(Source {
                size: stream.size,
                chunks: counted,
                download: Arc::default(),
                landing: Landing::Ingest,
            });
        };
        let size = torrent.parsed.size.unwrap_or(0);
        let download = match swarm.download(&torrent).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(%digest, error = %e, "librqbit could not start the download; using HTTP");
                None
            }
        };
        let in_session = Arc::new(Mutex::new(download.as_ref().map(|d| d.id)));
        let (tx, rx) = mpsc::channel(8);
        let (landed_tx, landed_rx) = oneshot::channel();
        let feed = Feed {
            partial: swarm.partial_path(&torrent),
            swarm,
            store: Arc::clone(&self.store),
            metrics: Arc::clone(&self.metrics),
            upstream: Arc::clone(&self.upstream),
            reference,
            digest: *digest,
            size,
            webseeds: torrent.parsed.distribution.webseeds.clone(),
            in_session: Arc::clone(&in_session),
            tx,
            assembly: None,
        };
        tokio::spawn(feed.run(download, landed_tx));
        let BlobTorrentFile { parsed, .. } = torrent;
        let landing = Landing::OnDisk {
            file: landed_rx,
            piece_length: parsed.piece_length,
            pieces: parsed.pieces,
            info_hash: parsed.info_hash,
        };
        Ok(Source { size, chunks: ReceiverStream::new(rx).boxed(), download: in_session, landing })
    }

    fn count(
        &self,
        chunks: BoxStream<'static, Result<Bytes, io::Error>>,
        source: SourceKind,
    ) -> BoxStream<'static, Result<Bytes, io::Error>> {
        let counter = self.metrics.bytes(source);
        chunks
            .inspect(move |c| {
                if let Ok(b) = c {
                    counter.inc_by(b.len() as u64);
                }
            })
            .boxed()
    }

    /// Feeds the source to the store (which hashes and verifies on a blocking thread) and to
    /// the client, holding the last chunk back until the bytes have matched the digest.
    async fn pump(
        &self,
        digest: BlobDigest,
        source: Source,
        body: mpsc::Sender<Result<Bytes, io::Error>>,
    ) -> Result<HashedBlob, StoreError> {
        let size = source.size;
        let (store_tx, mut store_rx) = mpsc::channel::<Result<Bytes, String>>(16);
        let store = Arc::clone(&self.store);
        let chunks = std::iter::from_fn(move || store_rx.blocking_recv());
        let (verified_tx, verified_rx) = oneshot::channel::<()>();
        let on_verified = move || {
            let _ = verified_tx.send(());
        };
        let ingest = match source.landing {
            Landing::Ingest => {
                tokio::task::spawn_blocking(move || store.ingest_notifying(digest, size, chunks, on_verified))
            }
            Landing::OnDisk { file, piece_length, pieces, info_hash } => tokio::task::spawn_blocking(move || {
                let table = TorrentTable { piece_length, pieces, info_hash };
                adopt_landed(&store, digest, size, chunks, file, table, on_verified)
            }),
        };
        let mut chunks = source.chunks;
        let mut held: Option<Bytes> = None;
        let mut client = Some(body);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| e.to_string());
            let failed = chunk.is_err();
            if store_tx.send(chunk.clone()).await.is_err() {
                break; // the store gave up (too long, disk error): its result says why
            }
            if let Ok(bytes) = chunk {
                if let Some(previous) = held.replace(bytes) {
                    // A client that went away does not stop the download: the cache still wants it.
                    if let Some(c) = &client {
                        if c.send(Ok(previous)).await.is_err() {
                            client = None;
                        }
                    }
                }
            }
            if failed {
                break;
            }
        }
        drop(store_tx);
        // The last chunk goes out as soon as the streamed bytes have matched the digest; the
        // store's fsync and rename (a third of a second for a 342 MiB layer here, all layers at
        // once at the end of a pull) then happen without the client waiting on them.
        if verified_rx.await.is_ok() {
            if let (Some(c), Some(last)) = (client.take(), held.take()) {
                let _ = c.send(Ok(last)).await;
            }
        }
        let stored = ingest.await.unwrap_or_else(|e| Err(StoreError::Source { digest, message: e.to_string() }));
        if let Some(c) = client {
            let last = match &stored {
                Ok(_) => held.map(Ok),
                Err(e) => Some(Err(io::Error::other(format!("blob {digest} failed verification: {e}")))),
            };
            if let Some(last) = last {
                let _ = c.send(last).await;
            }
        }
        stored
    }
}

/// The piece table of the torrent a swarm download used.
struct TorrentTable {
    piece_length: u64,
    pieces: Vec<[u8; 20]>,
    info_hash: shoal_torrents::InfoHash,
}

/// The store's side of a download that is already on disk: hashes the SHA-256 of the streamed
/// chunks, and when it matches the digest, adopts the file the feed hands over. Blocking.
fn adopt_landed(
    store: &BlobStore,
    digest: BlobDigest,
    size: u64,
    chunks: impl Iterator<Item = Result<Bytes, String>>,
    file: oneshot::Receiver<LandedFile>,
    table: TorrentTable,
    on_verified: impl FnOnce(),
) -> Result<HashedBlob, StoreError> {
    use sha2::{Digest, Sha256};
    let mut sha256 = Sha256::new();
    let mut seen = 0u64;
    for chunk in chunks {
        let chunk = chunk.map_err(|message| StoreError::Source { digest, message })?;
        seen += chunk.len() as u64;
        if seen > size {
            return Err(StoreError::WrongSize { digest, expected: size, actual: seen });
        }
        sha256.update(&chunk);
    }
    if seen != size {
        return Err(StoreError::WrongSize { digest, expected: size, actual: seen });
    }
    let actual = BlobDigest::from_bytes(sha256.finalize().into());
    if actual != digest {
        return Err(StoreError::DigestMismatch { expected: digest, actual });
    }
    on_verified();
    let lost = || StoreError::Source { digest, message: "the download's file was lost".into() };
    let landed = file.blocking_recv().map_err(|_| lost())?;
    let path = landed.file.path().to_owned();
    let from_swarm = if landed.all_from_swarm { swarm_table(digest, size, table) } else { None };
    let hashed = match from_swarm {
        Some(hashed) => hashed,
        None => {
            // Bytes from HTTP were never checked against the torrent's SHA-1s: take the piece
            // table (and, once more, the SHA-256) from what is on disk.
            let reader = std::fs::File::open(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            let hashed =
                hash_reader(reader, size, &mut |_| {}).map_err(|source| StoreError::Size { digest, source })?;
            if hashed.digest != digest {
                return Err(StoreError::DigestMismatch { expected: digest, actual: hashed.digest });
            }
            hashed
        }
    };
    store.adopt(&path, digest, size)?;
    landed.file.keep();
    Ok(hashed)
}

/// The blob as the torrent describes it, if the torrent is the profile's torrent of these
/// pieces (the same infohash): then the seeder's piece table can be seeded as it is.
fn swarm_table(digest: BlobDigest, size: u64, table: TorrentTable) -> Option<HashedBlob> {
    let piece_length = PieceLength::new(table.piece_length).ok()?;
    let blob = HashedBlob { digest, size, piece_length, pieces: table.pieces };
    (BlobTorrent::from_hashed(&blob).info_hash() == table.info_hash).then_some(blob)
}

/// What a request was after, so a 404 upstream becomes the right OCI code.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject {
    Blob,
    Manifest,
}

/// Maps an upstream failure to what the shim's client should hear.
pub(crate) fn upstream_error(subject: Subject, what: &str, e: shoal_upstream::UpstreamError) -> RegistryError {
    let unknown = || match subject {
        Subject::Blob => RegistryError::BlobUnknown(what.to_owned()),
        Subject::Manifest => RegistryError::ManifestUnknown(what.to_owned()),
    };
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    use shoal_upstream::UpstreamError as U;
    match &e {
        U::Registry { source, .. } => match source {
            E::ImageManifestNotFoundError(_) => unknown(),
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
                RegistryError::Unauthorized { www_authenticate: None }
            }
            E::ServerError { code: 404, .. } => unknown(),
            E::ServerError { code: 401, .. } => RegistryError::Unauthorized { www_authenticate: None },
            E::ServerError { code: 403, .. } => RegistryError::Denied,
            E::RegistryError { envelope, .. } => match envelope.errors.first().map(|x| &x.code) {
                Some(C::BlobUnknown | C::ManifestUnknown | C::NotFound) => unknown(),
                Some(C::NameUnknown) => RegistryError::NotFound,
                Some(C::Unauthorized) => RegistryError::Unauthorized { www_authenticate: None },
                Some(C::Denied) => RegistryError::Denied,
                _ => RegistryError::Unavailable(e.to_string()),
            },
            _ => RegistryError::Unavailable(e.to_string()),
        },
        U::Reference { .. } => RegistryError::NameInvalid(what.to_owned()),
        _ => RegistryError::Unavailable(e.to_string()),
    }
}
