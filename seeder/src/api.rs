//! The seeder's HTTP API (axum): torrents, magnets, images, mirroring, webseeds, metrics, and
//! the live page (`/ui`, `/v1/swarms`: see [`crate::ui`]).
//!
//! Status codes live here and nowhere else: the layers below return typed errors, and
//! [`ApiError`] maps them at the edge.
//!
//! Every torrent, magnet and webseed request counts as a use of its blob (the cache's
//! least-recently-used order), and a webseed response holds a lease on its blob until the body
//! is finished or dropped, so the blob is not evicted while it is being served.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shoal_torrents::{BlobDigest, BlobTorrent, HashedBlob};

use crate::jobs::MirrorJobs;
use crate::metrics::SeederMetrics;
use crate::mirror::{Mirror, MirrorError};
use crate::requests::{self, MirrorRequest, RequestError};
use crate::ring::{OwnerAnswer, OwnersError, TorrentFacts, UpstreamName, FORWARDED};
use crate::scrape::TrackerSwarms;
use crate::ui::{self, Throughput};
use shoal_store::blob_store::StoreError;
use shoal_store::index::{ImageBlob, ImageRecord, IndexError};
use shoal_store::seeding::Seeding;
use shoal_store::usage::{now_ms, LeasedBody};
use shoal_tasks::Tasks;
use shoal_upstream::{Upstream, UpstreamError};

/// What every handler shares.
pub(crate) struct ApiState {
    pub mirror: Arc<Mirror>,
    pub jobs: Arc<MirrorJobs>,
    pub metrics: Arc<SeederMetrics>,
    /// The BitTorrent session, read for `/v1/swarms`.
    pub seeding: Arc<Seeding>,
    /// Upload rates sampled once a second ([`ui::record_throughput`]).
    pub throughput: Arc<Throughput>,
    /// The swarms as the tracker counts them ([`crate::scrape::scrape_loop`]).
    pub tracker: Arc<TrackerSwarms>,
    /// This seeder's public base URL, without a trailing slash.
    pub public_url: String,
    /// Where work a request starts but does not wait for runs (mirrors of pushed images,
    /// fetches asked for with `wait=false`).
    pub tasks: Tasks,
    /// `--api-token`: what `POST /v1/images` and `/v1/notifications` must present as a bearer
    /// token; `None`: anyone who reaches the API may.
    pub api_token: Option<String>,
}

/// The router of every endpoint.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/blobs/{digest}/torrent", get(blob_torrent))
        .route("/v1/blobs/{digest}/magnet", get(blob_magnet))
        .route("/v1/images", post(mirror_image))
        .route("/v1/jobs", get(jobs))
        .route("/v1/images/{*reference}", get(image))
        .route("/v1/notifications", post(notification))
        .route("/webseed/{name}", get(webseed).head(webseed))
        .route("/metrics", get(metrics))
        .route("/v1/swarms", get(swarms))
        .route("/ui", get(ui_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// An error as the HTTP client sees it: a status and a JSON `{"error": ".."}` body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.to_string())
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<MirrorError> for ApiError {
    fn from(e: MirrorError) -> Self {
        let status = match &e {
            e if matches!(root(e), MirrorError::Upstream(UpstreamError::Reference { .. })) => StatusCode::BAD_REQUEST,
            MirrorError::Owners(OwnersError::Refused { status, .. }) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            MirrorError::Owners(OwnersError::Unreachable { .. }) => StatusCode::BAD_GATEWAY,
            e if e.is_not_allowed() => StatusCode::FORBIDDEN,
            e if e.is_upstream() => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

/// `GET /v1/swarms`.
async fn swarms(State(state): State<Arc<ApiState>>) -> Result<Json<ui::SwarmsView>, ApiError> {
    Ok(Json(state.swarms_view()?))
}

/// `GET /ui`: the page with the view as of now inlined, so its first paint holds data.
async fn ui_page(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let page = ui::page(&state.swarms_view()?);
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], page)
        .into_response())
}

fn root(e: &MirrorError) -> &MirrorError {
    match e {
        MirrorError::Shared(inner) => root(inner),
        e => e,
    }
}

#[derive(Debug, Deserialize)]
struct BlobQuery {
    repo: Option<String>,
    ns: Option<String>,
    /// `false`: a blob that must be fetched first is answered at once with 202 while the fetch
    /// goes on (a shim then streams from upstream meanwhile, and a slow answer means a loaded
    /// seeder, not a mirror in progress).
    wait: Option<bool>,
}

/// Where a blob's bytes are: stored here, or to be fetched from an upstream reference.
enum Located {
    Stored(HashedBlob),
    Upstream(oci_client::Reference),
}

impl ApiState {
    fn swarms_view(&self) -> Result<ui::SwarmsView, IndexError> {
        let links = self.mirror.ring().links(&self.public_url);
        ui::sample_view(self.mirror.index(), &self.seeding, &self.metrics, &self.throughput, &self.tracker, &links)
    }

    /// The blob, fetched from upstream first when it is missing and the query names a repo
    /// (or the blob was evicted: then from a repository it was seen in). Counts as a use.
    async fn blob(&self, digest: BlobDigest, query: &BlobQuery) -> Result<HashedBlob, ApiError> {
        let hashed = self.find_or_fetch(digest, query).await?;
        self.mirror.usage().touch(digest, now_ms());
        Ok(hashed)
    }

    async fn find_or_fetch(&self, digest: BlobDigest, query: &BlobQuery) -> Result<HashedBlob, ApiError> {
        match self.locate(digest, query)? {
            Located::Stored(h) => Ok(h),
            Located::Upstream(reference) => Ok(self.mirror.ensure_blob(&reference, digest, None).await?),
        }
    }

    /// The stored blob, or the upstream reference to fetch it from (checked, not fetched).
    fn locate(&self, digest: BlobDigest, query: &BlobQuery) -> Result<Located, ApiError> {
        if let Some(h) = self.mirror.stored_blob(&digest)? {
            return Ok(Located::Stored(h));
        }
        let evicted_from = match query.repo {
            Some(_) => None,
            None => self.mirror.index().evicted_repos(&digest)?.and_then(|repos| repos.into_iter().next()),
        };
        // `registry/repository`, as the index records it.
        let (ns, repo) = match (query.repo.as_deref(), evicted_from.as_deref().and_then(|r| r.split_once('/'))) {
            (Some(repo), _) => (query.ns.as_deref(), repo),
            (None, Some((registry, repo))) => (Some(registry), repo),
            (None, None) => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "blob {digest} is not stored here; add ?repo=<name>[&ns=<registry>] to fetch it from upstream"
                    ),
                ))
            }
        };
        let repo = requests::repository(repo)?;
        let ns = ns.map(requests::registry).transpose()?;
        if ns.is_none() && self.mirror.upstream().default_registry().is_none() && !repo.contains('/') {
            tracing::debug!(%repo, "no ns and no default registry: resolving on Docker Hub");
        }
        let reference = self.mirror.upstream().blob_reference(ns, repo, &digest).map_err(MirrorError::from)?;
        Ok(Located::Upstream(reference))
    }

    fn torrent_url(&self, digest: &BlobDigest) -> String {
        format!("{}/v1/blobs/{digest}/torrent", self.public_url)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        MirrorError::from(e).into()
    }
}

/// A torrent's response: its bytes as a `.torrent` attachment.
fn torrent_response(digest: &BlobDigest, bytes: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{}.torrent\"", digest.torrent_name());
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-bittorrent")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("ASCII")),
        ],
        bytes,
    )
        .into_response()
}

/// The answer for a fetch that goes on after the response.
fn fetching_response(digest: &BlobDigest) -> Response {
    let body = format!("blob {digest} is being fetched from upstream; ask again for its torrent\n");
    let retry = [(header::RETRY_AFTER, HeaderValue::from_static("1"))];
    (StatusCode::ACCEPTED, retry, body).into_response()
}

impl ApiState {
    /// Whether another seeder should answer for this blob: it is not stored here, this seeder
    /// does not own it, and the request was not forwarded here by another seeder (answered
    /// here then, whatever this seeder thinks of the ring: a request is forwarded once).
    fn is_for_owners(&self, digest: &BlobDigest, headers: &HeaderMap) -> Result<bool, ApiError> {
        if self.mirror.ring().owns(digest) || self.mirror.stored_blob(digest)?.is_some() {
            return Ok(false);
        }
        if headers.contains_key(FORWARDED) {
            tracing::warn!(%digest, "a seeder forwarded a blob it thinks this seeder owns, and this one does not: \
                the seeders' member lists (--member) disagree; answering here");
            return Ok(false);
        }
        Ok(true)
    }
}

async fn blob_torrent(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
    Query(query): Query<BlobQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let digest = requests::blob_digest(&digest)?;
    if state.is_for_owners(&digest, &headers)? {
        let name = UpstreamName { repo: query.repo.as_deref(), ns: query.ns.as_deref() };
        let answer = state.mirror.ring().owner_torrent(&digest, &name, query.wait != Some(false)).await;
        return Ok(match answer.map_err(MirrorError::from)? {
            OwnerAnswer::Torrent { bytes, .. } => torrent_response(&digest, bytes.to_vec()),
            OwnerAnswer::Fetching => fetching_response(&digest),
        });
    }
    let hashed = if query.wait == Some(false) {
        match state.locate(digest, &query)? {
            Located::Stored(hashed) => {
                state.mirror.usage().touch(digest, now_ms());
                hashed
            }
            Located::Upstream(reference) => {
                let mirror = Arc::clone(&state.mirror);
                state.tasks.spawn("seeder-fetch-unwaited", async move {
                    if let Err(e) = mirror.ensure_blob(&reference, digest, None).await {
                        tracing::warn!(%digest, error = %e, "fetching a blob asked for without waiting failed");
                    }
                });
                return Ok(fetching_response(&digest));
            }
        }
    } else {
        state.blob(digest, &query).await?
    };
    let bytes = BlobTorrent::from_hashed(&hashed).torrent_bytes(&state.mirror.ring().distribution(&digest));
    Ok(torrent_response(&digest, bytes))
}

async fn blob_magnet(
    State(state): State<Arc<ApiState>>,
    Path(digest): Path<String>,
    Query(query): Query<BlobQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let digest = requests::blob_digest(&digest)?;
    let facts = if state.is_for_owners(&digest, &headers)? {
        let name = UpstreamName { repo: query.repo.as_deref(), ns: query.ns.as_deref() };
        match state.mirror.ring().owner_torrent(&digest, &name, true).await.map_err(MirrorError::from)? {
            OwnerAnswer::Torrent { facts, .. } => facts,
            OwnerAnswer::Fetching => return Ok(fetching_response(&digest)),
        }
    } else {
        TorrentFacts::of(&state.blob(digest, &query).await?)
    };
    let mut magnet =
        state.mirror.ring().distribution(&digest).magnet(facts.info_hash, digest.torrent_name(), facts.size);
    magnet.torrent_url = Some(state.torrent_url(&digest));
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{magnet}\n")).into_response())
}

/// One blob of an image, as `GET /v1/images/<ref>` lists it.
#[derive(Serialize)]
struct BlobView {
    digest: String,
    size: u64,
    media_type: String,
    info_hash: Option<String>,
    magnet: Option<String>,
    torrent: String,
}

#[derive(Serialize)]
struct ManifestView {
    digest: String,
    platform: Option<String>,
    config: BlobView,
    layers: Vec<BlobView>,
}

#[derive(Serialize)]
struct ImageView {
    reference: String,
    digest: String,
    media_type: String,
    manifests: Vec<ManifestView>,
}

impl ApiState {
    /// One blob of an image: its torrent's facts from the index when it is stored here, else
    /// from its owners (asked without making them fetch).
    async fn blob_view(&self, blob: &ImageBlob) -> Result<BlobView, ApiError> {
        let digest = blob.digest.parse::<BlobDigest>().ok();
        let facts = match &digest {
            Some(d) => match self.mirror.index().hashed(d)? {
                Some(hashed) => Some(TorrentFacts::of(&hashed)),
                None if !self.mirror.ring().owns(d) => self.mirror.ring().remote_facts(d).await,
                None => None,
            },
            None => None,
        };
        let magnet = digest.zip(facts).map(|(d, facts)| {
            let mut m = self.mirror.ring().distribution(&d).magnet(facts.info_hash, d.torrent_name(), facts.size);
            m.torrent_url = Some(self.torrent_url(&d));
            m.to_string()
        });
        Ok(BlobView {
            digest: blob.digest.clone(),
            size: blob.size,
            media_type: blob.media_type.clone(),
            info_hash: facts.map(|f| f.info_hash.hex()),
            magnet,
            torrent: format!("{}/v1/blobs/{}/torrent", self.public_url, blob.digest),
        })
    }

    async fn image_view(&self, record: &ImageRecord) -> Result<ImageView, ApiError> {
        let mut manifests = Vec::new();
        for m in &record.manifests {
            let mut layers = Vec::with_capacity(m.layers.len());
            for layer in &m.layers {
                layers.push(self.blob_view(layer).await?);
            }
            manifests.push(ManifestView {
                digest: m.digest.clone(),
                platform: m.platform.clone(),
                config: self.blob_view(&m.config).await?,
                layers,
            });
        }
        Ok(ImageView {
            reference: record.reference.clone(),
            digest: record.digest.clone(),
            media_type: record.media_type.clone(),
            manifests,
        })
    }
}

async fn image(State(state): State<Arc<ApiState>>, Path(reference): Path<String>) -> Result<Response, ApiError> {
    let parsed =
        Upstream::parse_reference(&reference).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Some(record) = state.mirror.index().image(&parsed.whole())? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("image {} has not been mirrored; POST /v1/images to mirror it", parsed.whole()),
        ));
    };
    Ok(Json(state.image_view(&record).await?).into_response())
}

impl ApiState {
    /// Lets a request that makes the seeder fetch through only with `--api-token`, if one is set.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.api_token else { return Ok(()) };
        let given = requests::bearer_token(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
        if given.is_some_and(|given| same_secret(given, expected.as_bytes())) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this seeder wants its API token: send Authorization: Bearer <token> (shoal magnets --seeder-token)",
        ))
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn mirror_image(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state.authorize(&headers)?;
    let request: MirrorRequest = serde_json::from_slice(&body)
        .map_err(|e| RequestError::Body(format!("expected {{\"image\": \"..\"}}: {e}")))?;
    let record = state.jobs.mirror(&request.image).await.map_err(|e| {
        if e.is_not_found() {
            ApiError::new(StatusCode::NOT_FOUND, format!("manifest unknown: {} ({e})", request.image))
        } else {
            e.into()
        }
    })?;
    Ok(Json(state.image_view(&record).await?).into_response())
}

/// `GET /v1/jobs`: mirror jobs running or waiting for their next attempt.
async fn jobs(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "jobs": state.jobs.list()? })).into_response())
}

async fn notification(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    state.authorize(&headers)?;
    let images = requests::pushed_images(&body)?;
    // Jobs, not one-off tasks: the runner starts them (several at once) and retries failures.
    for image in &images {
        state.jobs.enqueue(image)?;
    }
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "mirroring": images }))).into_response())
}

async fn webseed(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let digest = requests::webseed_name(&name)?;
    // Leased before the lookup: an eviction either finished before (404) or waits until the
    // body is done.
    let lease = state.mirror.usage().lease(digest).await;
    if state.mirror.stored_blob(&digest)?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("blob {digest} is not stored here")));
    }
    state.mirror.usage().touch(digest, now_ms());
    let is_get = request.method() == Method::GET;
    let response = shoal_store::blob_store::serve_file(state.mirror.store().path(&digest))
        .try_call(request)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading blob {digest}: {e}")))?;
    if is_get && response.status().is_success() {
        let sent = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        state.metrics.webseed_uploaded_bytes.inc_by(sent);
    }
    Ok(response.map(|body| Body::new(LeasedBody::new(Body::new(body), lease))))
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
