//! Blobs for the shim: verified local cache hits, and misses streamed to the client while they
//! are stored and verified, one download per blob however many clients ask.
//!
//! The client never receives the last byte of a blob before its SHA-256 has matched: the
//! stream holds back its final chunk until the store has verified the whole blob, and ends in
//! an error instead when it does not match, so the client sees a broken transfer, never a bad
//! blob. Today a miss comes from the upstream registry; the swarm (seeder torrent + librqbit,
//! webseed fallback) plugs in at [`BlobFetcher::open_source`].

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use shoal_seeder::store::{BlobStore, StoreError};
use shoal_seeder::upstream::Upstream;
use shoal_torrents::BlobDigest;
use tokio::sync::{mpsc, watch};

use crate::RegistryError;

/// Outcome of one download, as seen by the clients waiting on it.
type Outcome = Option<Result<(), String>>;

/// What a blob request gets.
pub enum BlobBody {
    /// Verified and stored: serve the file (with `Range`).
    Cached { path: PathBuf, size: u64 },
    /// Arriving now: bytes as they come, the last chunk only after verification.
    Streaming { size: u64, chunks: mpsc::Receiver<Result<Bytes, io::Error>> },
}

/// Where a blob comes from: the registry and repository it was asked under.
#[derive(Clone, Debug)]
pub struct BlobOrigin {
    pub registry: String,
    pub repository: String,
}

pub struct BlobFetcher {
    store: Arc<BlobStore>,
    upstream: Arc<Upstream>,
    inflight: Mutex<HashMap<BlobDigest, watch::Receiver<Outcome>>>,
}

impl BlobFetcher {
    pub fn new(store: Arc<BlobStore>, upstream: Arc<Upstream>) -> Self {
        Self { store, upstream, inflight: Mutex::new(HashMap::new()) }
    }

    pub fn cached(&self, digest: &BlobDigest) -> Option<BlobBody> {
        let size = self.store.stored_size(digest)?;
        Some(BlobBody::Cached { path: self.store.path(digest), size })
    }

    /// The blob's size without downloading it, for `HEAD` on a miss.
    pub async fn size(&self, origin: &BlobOrigin, digest: &BlobDigest) -> Result<u64, RegistryError> {
        if let Some(size) = self.store.stored_size(digest) {
            return Ok(size);
        }
        let reference = self.reference(origin, digest)?;
        let stream = self
            .upstream
            .blob(&reference, digest, None)
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
        if let Some(hit) = self.cached(digest) {
            return Ok(hit);
        }
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
        let outcome =
            rx.wait_for(Option::is_some).await.map_err(|_| RegistryError::Unavailable("download lost".into()))?;
        match outcome.clone().expect("waited for Some") {
            Ok(()) => self.cached(digest).ok_or_else(|| RegistryError::BlobUnknown(digest.to_string())),
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
        let source = match self.open_source(origin, digest).await {
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
        tokio::spawn(async move {
            let outcome = this.pump(digest, source, body_tx).await;
            if let Err(e) = &outcome {
                tracing::error!(%digest, error = %e, "blob download failed");
            }
            this.inflight.lock().expect("inflight lock").remove(&digest);
            let _ = done.send(Some(outcome.map_err(|e| e.to_string())));
        });
        if stream {
            Ok(BlobBody::Streaming { size, chunks: body_rx })
        } else {
            drop(body_rx);
            Box::pin(self.get(origin, &digest, false)).await
        }
    }

    /// Opens the byte source of a miss. Today: the upstream registry.
    async fn open_source(
        &self,
        origin: &BlobOrigin,
        digest: &BlobDigest,
    ) -> Result<shoal_seeder::upstream::BlobStream, RegistryError> {
        let reference = self.reference(origin, digest)?;
        self.upstream
            .blob(&reference, digest, None)
            .await
            .map_err(|e| upstream_error(Subject::Blob, &digest.to_string(), e))
    }

    /// Feeds the source to the store (which hashes and verifies on a blocking thread) and to
    /// the client, holding the last chunk back until the store has verified the blob.
    async fn pump(
        &self,
        digest: BlobDigest,
        source: shoal_seeder::upstream::BlobStream,
        body: mpsc::Sender<Result<Bytes, io::Error>>,
    ) -> Result<(), StoreError> {
        let size = source.size;
        let (store_tx, mut store_rx) = mpsc::channel::<Result<Bytes, String>>(16);
        let store = Arc::clone(&self.store);
        let ingest = tokio::task::spawn_blocking(move || {
            store.ingest(digest, size, std::iter::from_fn(move || store_rx.blocking_recv()))
        });
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
        stored.map(|_| ())
    }
}

/// What a request was after, so a 404 upstream becomes the right OCI code.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject {
    Blob,
    Manifest,
}

/// Maps an upstream failure to what the shim's client should hear.
pub(crate) fn upstream_error(subject: Subject, what: &str, e: shoal_seeder::upstream::UpstreamError) -> RegistryError {
    let unknown = || match subject {
        Subject::Blob => RegistryError::BlobUnknown(what.to_owned()),
        Subject::Manifest => RegistryError::ManifestUnknown(what.to_owned()),
    };
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    use shoal_seeder::upstream::UpstreamError as U;
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
