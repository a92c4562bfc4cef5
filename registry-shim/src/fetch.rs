//! Blobs for the shim: verified local cache hits, and misses streamed to the client while they
//! are stored and verified, one download per blob however many clients ask.
//!
//! A request walks one way: [`BlobFetcher::get`] tries a hit, then joins the blob's flight
//! ([`shoal_tasks::single_flight`]) or leads it. A leader opens the miss's [`MissSource`] (the
//! swarm through the seeder's torrent, with the [`Feed`]'s HTTP fallbacks, or upstream
//! directly) and hands it to one task that [`pump`]s it to the store and the client, then
//! indexes and seeds the blob. A follower waits for that outcome and is answered from the
//! store; if the shared download failed it tries again on its own (a loop, never recursion).
//! A follower for another repository than the leader's waits only while the download makes
//! progress: once no byte has arrived for its own first-byte deadline, it downloads the blob
//! straight from its own upstream instead ([`BlobFetcher::solo`]), beside the stalled flight
//! (the store's ingest writes each download to its own temporary file).
//!
//! A miss is written to disk once. Straight from upstream, the store's ingest writes it as it
//! hashes it ([`Landing::Ingest`]). From the swarm, librqbit has already written it
//! (`DATA/partial/`): the shim then only hashes the SHA-256 of what it streams, and the store
//! adopts librqbit's file by renaming it ([`Landing::OnDisk`], `landing.rs`).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use shoal_store::blob_store::{BlobStore, StoreError};
use shoal_store::usage::{now_ms, Lease};
use shoal_tasks::single_flight::{Flight, Progress, SingleFlight, Waited};
use shoal_tasks::Tasks;
use shoal_torrents::{BlobDigest, HashedBlob};
use shoal_upstream::Upstream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument;

use crate::cache::ShimCache;
use crate::error::{upstream_error, DownloadFailed, Subject};
use crate::feed::{Feed, LandedFile};
use crate::landing::{adopt_landed, TorrentTable};
use crate::metrics::ShimMetrics;
use crate::origin::{BlobOrigin, Source};
use crate::pulls::{Pull, PullLog};
use crate::pump::{pump, StoreSide};
use crate::swarm::{BlobTorrentFile, Swarm};
use crate::RegistryError;

/// Outcome of one download, as every client waiting on it sees it.
type Outcome = Result<(), DownloadFailed>;

/// What a blob request gets.
pub(crate) enum BlobBody {
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

pub(crate) struct BlobFetcher {
    store: Arc<BlobStore>,
    upstream: Arc<Upstream>,
    swarm: Option<Arc<Swarm>>,
    metrics: Arc<ShimMetrics>,
    flights: SingleFlight<BlobDigest, Outcome>,
    /// Downloads around a stalled flight, one per blob and repository ([`BlobFetcher::solo`]).
    solo_flights: SingleFlight<(BlobDigest, String), Outcome>,
    cache: Arc<ShimCache>,
    pulls: Arc<PullLog>,
    tasks: Tasks,
}

/// How a miss's source is chosen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The swarm when the seeder has a torrent, else upstream.
    Best,
    /// Upstream only (a follower going around a stalled flight).
    Upstream,
}

/// A miss's bytes on their way, from whichever sources it takes.
struct MissSource {
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
    OnDisk { file: oneshot::Receiver<LandedFile>, table: TorrentTable },
}

impl BlobFetcher {
    pub(crate) fn new(
        store: Arc<BlobStore>,
        upstream: Arc<Upstream>,
        swarm: Option<Arc<Swarm>>,
        metrics: Arc<ShimMetrics>,
        cache: Arc<ShimCache>,
        pulls: Arc<PullLog>,
        tasks: Tasks,
    ) -> Self {
        let (flights, solo_flights) = (SingleFlight::default(), SingleFlight::default());
        Self { store, upstream, swarm, metrics, flights, solo_flights, cache, pulls, tasks }
    }

    pub(crate) fn swarm(&self) -> Option<&Arc<Swarm>> {
        self.swarm.as_ref()
    }

    /// A stored blob this client may have: any blob not marked private, and a private one
    /// only once upstream lets this client (or the shim's own access) read it in this
    /// repository. `None`: not stored. Leased and counted as a use.
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
    pub(crate) async fn size(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<u64, RegistryError> {
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

    /// A hit, or the start of a download (with `stream`: its bytes as they arrive), or the end
    /// of one (without `stream`, or when another client leads it: the stored file once done).
    ///
    /// A client that joined a download which then failed tries again: the leader may have
    /// failed for reasons of its own (no credentials, while this client has them), and this
    /// client's answer should be about its own request. Every failed leader has answered its
    /// own client for good, so the tries end: at the latest this client leads one itself. A
    /// leader waiting for its own download does not retry.
    pub(crate) async fn get(
        &self,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        stream: bool,
    ) -> Result<BlobBody, RegistryError> {
        loop {
            if let Some(hit) = self.hit(origin, digest).await? {
                self.metrics.cache(true);
                return Ok(hit);
            }
            self.metrics.cache(false);
            let repository = format!("{}/{}", origin.registry, origin.repository);
            let (follower, leading) = match self.flights.join(*digest, &repository) {
                Flight::Follow(f) => (f, false),
                Flight::Lead(leader) => {
                    let own = leader.follower();
                    let body = self.lead(origin, digest, leader).await?;
                    if stream {
                        return Ok(body);
                    }
                    (own, true)
                }
            };
            let (leader, stall) = (follower.leader_tag().to_owned(), self.upstream.deadlines().first_byte);
            let outcome = match follower.wait_as(&repository, stall).await {
                Waited::Outcome(outcome) => outcome,
                Waited::Stalled => {
                    tracing::warn!(%digest, %leader, ?stall, "the download this request joined (for another repository) made no progress within this request's deadline; fetching from this repository's upstream on its own");
                    return self.solo(origin, digest, stream).await;
                }
            };
            let outcome = outcome.unwrap_or_else(|| Err(DownloadFailed::lost()));
            match outcome {
                // Through `hit`: a blob another client fetched with its credentials is checked.
                Ok(()) => {
                    return self
                        .hit(origin, digest)
                        .await?
                        .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))
                }
                Err(e) if leading => return Err(RegistryError::Unavailable(e.to_string())),
                Err(e) => {
                    tracing::info!(%digest, error = %e, "the download this request joined failed; trying on its own");
                }
            }
        }
    }

    fn reference(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<oci_client::Reference, RegistryError> {
        self.upstream
            .blob_reference(Some(&origin.registry), &origin.repository, digest)
            .map_err(|e| RegistryError::NameInvalid(e.to_string()))
    }

    /// Opens the miss's source and starts the task that stores, indexes and seeds it; returns
    /// the client's stream of it. A failure to open is every follower's outcome too.
    async fn lead(
        &self,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        leader: shoal_tasks::single_flight::Leader<BlobDigest, Outcome>,
    ) -> Result<BlobBody, RegistryError> {
        let progress = leader.progress();
        self.start(origin, digest, Route::Best, progress, move |outcome| leader.finish(outcome)).await
    }

    /// A download of a blob whose flight stalled, outside the flight, from upstream: the
    /// client's stream of it, or (without `stream`) the stored blob once it is done.
    /// Many clients of one repository that find one stalled flight share one such download
    /// (a flight of its own per blob and repository), not one each.
    async fn solo(&self, origin: &BlobOrigin, digest: &BlobDigest, stream: bool) -> Result<BlobBody, RegistryError> {
        let repository = format!("{}/{}", origin.registry, origin.repository);
        let follower = match self.solo_flights.join((*digest, repository.clone()), &repository) {
            Flight::Follow(follower) => follower,
            Flight::Lead(leader) => {
                let (own, progress) = (leader.follower(), leader.progress());
                let body = self.start(origin, digest, Route::Upstream, progress, move |o| leader.finish(o)).await?;
                if stream {
                    return Ok(body);
                }
                drop(body); // the download goes on without a client
                own
            }
        };
        match follower.wait().await {
            Some(Ok(())) => {
                self.hit(origin, digest).await?.ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))
            }
            Some(Err(e)) => Err(RegistryError::Unavailable(e.to_string())),
            None => Err(RegistryError::Unavailable(DownloadFailed::lost().to_string())),
        }
    }

    /// Opens the source `route` picks and starts the task that stores, indexes and seeds the
    /// blob, counting its bytes into `progress` and handing its outcome to `finish`.
    async fn start(
        &self,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        route: Route,
        progress: Progress,
        finish: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<BlobBody, RegistryError> {
        let private = origin.auth.is_some();
        // Held until the blob is indexed and seeded: eviction never takes a blob mid-download.
        let lease = self.cache.lease(*digest).await;
        let pull = self.pulls.start(*digest, format!("{}/{}", origin.registry, origin.repository), now_ms());
        let marked = if private { self.cache.private().mark(digest).map_err(|e| e.to_string()) } else { Ok(()) };
        let source = match marked {
            Err(e) => Err(RegistryError::Unavailable(format!("cannot mark {digest} private: {e}"))),
            Ok(()) => self.open_source(origin, digest, &pull, route).await,
        };
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                pull.end(now_ms(), Some(e.to_string()));
                finish(Err(DownloadFailed::new(e.clone())));
                return Err(e);
            }
        };
        source.chunks = source
            .chunks
            .inspect(move |c| {
                if let Ok(b) = c {
                    progress.advance(b.len() as u64);
                }
            })
            .boxed();
        let size = source.size;
        pull.set_size(size);
        let (body_tx, body_rx) = mpsc::channel(16);
        let landed = Landed {
            store: Arc::clone(&self.store),
            cache: Arc::clone(&self.cache),
            swarm: self.swarm.clone(),
            metrics: Arc::clone(&self.metrics),
            tasks: self.tasks.clone(),
            digest: *digest,
            repository: format!("{}/{}", origin.registry, origin.repository),
            private,
        };
        let span = tracing::info_span!("blob", %digest);
        self.tasks.spawn(
            "blob-download",
            async move {
                let _lease = lease;
                let outcome = landed.run(source, body_tx).await;
                pull.end(now_ms(), outcome.as_ref().err().map(ToString::to_string));
                finish(outcome.map(|_| ()).map_err(DownloadFailed::new));
            }
            .instrument(span),
        );
        Ok(BlobBody::Streaming { size, chunks: body_rx })
    }

    /// Opens the byte source of a miss: the swarm (through the seeder's torrent) with HTTP
    /// fallbacks for whatever it does not deliver in time, or the upstream registry directly
    /// when there is no seeder or it has no torrent for the blob yet, or `route` says so.
    async fn open_source(
        &self,
        origin: &BlobOrigin,
        digest: &BlobDigest,
        pull: &Arc<Pull>,
        route: Route,
    ) -> Result<MissSource, RegistryError> {
        let reference = self.reference(origin, digest)?;
        let swarm = self.swarm.as_ref().map(Arc::clone);
        let torrent = match &swarm {
            // A client's own credentials: its blob stays between it and upstream.
            Some(s) if origin.auth.is_none() && route == Route::Best => s.torrent(origin, digest).await,
            _ => None,
        };
        let (Some(swarm), Some(torrent)) = (swarm, torrent) else {
            let stream = self
                .upstream
                .blob_from_as(&reference, digest, None, 0, origin.auth.as_ref())
                .await
                .map_err(|e| upstream_error(Subject::Blob, &digest.to_string(), e))?;
            let (counter, pull) = (self.metrics.bytes(Source::Upstream), Arc::clone(pull));
            let chunks = stream
                .chunks
                .inspect(move |c| {
                    if let Ok(b) = c {
                        counter.inc_by(b.len() as u64);
                        pull.count(Source::Upstream, b.len() as u64);
                    }
                })
                .boxed();
            return Ok(MissSource { size: stream.size, chunks, download: Arc::default(), landing: Landing::Ingest });
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
            pull: Arc::clone(pull),
            upstream: Arc::clone(&self.upstream),
            tasks: self.tasks.clone(),
            reference,
            digest: *digest,
            size,
            webseeds: torrent.parsed.distribution.webseeds.clone(),
            in_session: Arc::clone(&in_session),
            tx,
            assembly: None,
        };
        let span = tracing::info_span!("blob-feed", %digest);
        self.tasks.spawn("blob-feed", feed.run(download, landed_tx).instrument(span));
        let BlobTorrentFile { parsed, .. } = torrent;
        let table =
            TorrentTable { piece_length: parsed.piece_length, pieces: parsed.pieces, info_hash: parsed.info_hash };
        let landing = Landing::OnDisk { file: landed_rx, table };
        Ok(MissSource { size, chunks: ReceiverStream::new(rx).boxed(), download: in_session, landing })
    }
}

/// What a leader's task needs once the source is open: the store to verify into, then the
/// index and the swarm to hand the blob to.
struct Landed {
    store: Arc<BlobStore>,
    cache: Arc<ShimCache>,
    swarm: Option<Arc<Swarm>>,
    metrics: Arc<ShimMetrics>,
    tasks: Tasks,
    digest: BlobDigest,
    repository: String,
    private: bool,
}

impl Landed {
    /// Pumps the source into the store and to the client, then indexes and seeds the blob.
    async fn run(
        self,
        source: MissSource,
        client: mpsc::Sender<Result<Bytes, io::Error>>,
    ) -> Result<HashedBlob, StoreError> {
        let digest = self.digest;
        let download = Arc::clone(&source.download);
        let outcome = self.store(source, client).await;
        if let Ok(hashed) = &outcome {
            if let Err(e) = self.cache.stored(hashed, &self.repository) {
                tracing::error!(%digest, error = %e, "cannot index a stored blob");
            }
        }
        if let Some(swarm) = &self.swarm {
            let left = download.lock().expect("download lock").take();
            if let Some(id) = left {
                swarm.drop_download(id).await;
            }
            if let (Ok(hashed), false) = (&outcome, self.private) {
                swarm.seed(hashed).await;
            }
        }
        if let Err(e) = &outcome {
            if matches!(e, StoreError::DigestMismatch { .. }) {
                self.metrics.verification_failures.inc();
            }
            tracing::error!(%digest, error = %e, "blob download failed");
        }
        outcome
    }

    /// The verifying pump, with the store's ingest or adoption on a blocking thread.
    async fn store(
        &self,
        source: MissSource,
        client: mpsc::Sender<Result<Bytes, io::Error>>,
    ) -> Result<HashedBlob, StoreError> {
        let (digest, size) = (self.digest, source.size);
        let (store_tx, mut store_rx) = mpsc::channel::<Result<Bytes, String>>(16);
        let chunks = std::iter::from_fn(move || store_rx.blocking_recv());
        let (verified_tx, verified) = oneshot::channel::<()>();
        let on_verified = move || {
            let _ = verified_tx.send(());
        };
        let store = Arc::clone(&self.store);
        let ingest = match source.landing {
            Landing::Ingest => self
                .tasks
                .spawn_blocking("blob-ingest", move || store.ingest_notifying(digest, size, chunks, on_verified)),
            Landing::OnDisk { file, table } => self.tasks.spawn_blocking("blob-adopt", move || {
                adopt_landed(&store, digest, size, chunks, file, table, on_verified)
            }),
        };
        let stored =
            async move { ingest.await.unwrap_or_else(|e| Err(StoreError::Source { digest, message: e.to_string() })) };
        pump(source.chunks, StoreSide { chunks: store_tx, verified, stored }, client).await
    }
}
