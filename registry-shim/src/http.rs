//! The HTTP edge: axum routes for the Distribution v2 pull API, OCI error envelopes, status codes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use shoal_tasks::Tasks;
use shoal_torrents::BlobDigest;
use tokio_stream::wrappers::ReceiverStream;
use tower::ServiceExt;

use oci_client::secrets::RegistryAuth;

use crate::auth;
use crate::error::{upstream_error, Subject};
use crate::fetch::{BlobBody, BlobFetcher};
use crate::media;
use crate::origin::BlobOrigin;
use crate::resolve::{ManifestResolver, Resolved};
use crate::route::{Page, Route};
use crate::RegistryError;

/// Everything a request handler needs.
pub(crate) struct ShimState {
    pub upstream: Arc<shoal_upstream::Upstream>,
    pub blobs: Arc<BlobFetcher>,
    pub manifests: ManifestResolver,
    pub metrics: Arc<crate::metrics::ShimMetrics>,
    /// For the live page: the stored blobs and the newest downloads.
    pub cache: Arc<crate::cache::ShimCache>,
    pub pulls: Arc<crate::pulls::PullLog>,
    /// Registry for requests without `?ns=` (direct mode: `docker pull localhost:5000/repo`).
    pub default_registry: String,
    /// Set once the shim warned that it is used as a Docker Hub mirror with another upstream.
    pub warned_hub_mirror: std::sync::atomic::AtomicBool,
    /// How long a mirror request (`ns=`) may take before it is answered 404 (`--mirror-miss-timeout-ms`).
    pub mirror_miss_timeout: Duration,
    /// Where a mirror request's manifest fetch runs, so it goes on (and fills the cache) after
    /// the client was told to go elsewhere.
    pub tasks: Tasks,
}

pub(crate) fn router(state: Arc<ShimState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/ui", get(ui_page))
        .route("/v1/pulls", get(pulls))
        .route("/v2", any(v2))
        .route("/v2/", any(v2))
        .route("/v2/{*rest}", any(v2))
        .with_state(state)
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = match &self {
            RegistryError::NameInvalid(_)
            | RegistryError::NamespaceInvalid(_)
            | RegistryError::DigestInvalid(_)
            | RegistryError::ManifestInvalid(_)
            | RegistryError::PaginationInvalid(_) => StatusCode::BAD_REQUEST,
            RegistryError::ManifestUnknown(_) | RegistryError::BlobUnknown(_) | RegistryError::NotFound => {
                StatusCode::NOT_FOUND
            }
            RegistryError::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            RegistryError::Denied => StatusCode::FORBIDDEN,
            RegistryError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            RegistryError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        };
        let mut response = (status, [(header::CONTENT_TYPE, "application/json")], self.envelope()).into_response();
        if let RegistryError::Unauthorized { www_authenticate: Some(challenge) } = &self {
            if let Ok(v) = HeaderValue::from_str(challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        api_version(response)
    }
}

fn api_version(mut response: Response) -> Response {
    response.headers_mut().insert("Docker-Distribution-API-Version", HeaderValue::from_static("registry/2.0"));
    response
}

fn host_view(state: &ShimState) -> Result<crate::ui::HostView, shoal_store::index::IndexError> {
    let swarm = state.blobs.swarm().map(|s| s.as_ref());
    crate::ui::sample(&state.cache, swarm, &state.metrics, &state.pulls)
}

fn index_unreadable(e: shoal_store::index::IndexError) -> Response {
    tracing::error!(error = %e, "cannot read the index for the live page");
    (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the index: {e}\n")).into_response()
}

/// `GET /v1/pulls`: what the live page shows, as JSON.
async fn pulls(State(state): State<Arc<ShimState>>) -> Response {
    match host_view(&state) {
        Ok(view) => axum::Json(view).into_response(),
        Err(e) => index_unreadable(e),
    }
}

/// `GET /ui`: the page with the view as of now inlined, so its first paint holds data.
async fn ui_page(State(state): State<Arc<ShimState>>) -> Response {
    match host_view(&state) {
        Ok(view) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
            crate::ui::page(&view),
        )
            .into_response(),
        Err(e) => index_unreadable(e),
    }
}

async fn metrics(State(state): State<Arc<ShimState>>) -> Response {
    if let Some(swarm) = state.blobs.swarm() {
        shoal_telemetry::catch_up(&state.metrics.bittorrent_uploaded_bytes, swarm.uploaded_bytes());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

async fn v2(State(state): State<Arc<ShimState>>, request: Request) -> Response {
    let endpoint = endpoint_label(request.uri().path());
    let path = request.uri().path().to_owned();
    let ns = namespace(request.uri().query());
    if let Some(ns) = ns.as_deref().filter(|ns| !shoal_upstream::is_registry_host(ns)) {
        // Checked before anything is asked of it: `ns` must not steer a request elsewhere.
        let response = RegistryError::NamespaceInvalid(ns.to_owned()).into_response();
        state.metrics.request(endpoint, response.status().as_u16());
        return response;
    }
    if ns.is_none() {
        warn_if_hub_mirror(&state, &path);
    }
    // A mirror that cannot answer at once says 404, and containerd asks the registry itself.
    let mirror_deadline = ns.is_some().then_some(state.mirror_miss_timeout);
    let registry = ns.unwrap_or_else(|| state.default_registry.clone());
    let response = match handle(&state, &registry, request, mirror_deadline).await {
        Ok(response) => api_version(response),
        Err(RegistryError::Unauthorized { www_authenticate: None }) => {
            // oci-client does not keep the upstream's challenge: ask for it (without
            // credentials) at the same path, so the client learns where and how to log in.
            let challenge = state.upstream.challenge(&registry, &path).await;
            RegistryError::Unauthorized { www_authenticate: challenge }.into_response()
        }
        Err(e) => e.into_response(),
    };
    state.metrics.request(endpoint, response.status().as_u16());
    response
}

/// Requests without `ns` go to `--upstream` under the name asked for. Docker's `registry-mirrors`
/// sends Docker Hub's official images as `library/<name>`: such a request to a shim whose
/// upstream is not Docker Hub is most likely a misconfiguration, said once.
fn warn_if_hub_mirror(state: &ShimState, path: &str) {
    if hub_mirror_elsewhere(&state.default_registry, path)
        && !state.warned_hub_mirror.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            upstream = %state.default_registry,
            %path,
            "asked for a Docker Hub official image (library/...) without ns=, as Docker's registry-mirrors does, \
             but the upstream is not Docker Hub: serving it from the upstream under that name (said once)"
        );
    }
}

/// Whether an ns-less request for `path` looks like Docker's Hub mirroring while the upstream
/// is `upstream`, not Docker Hub.
fn hub_mirror_elsewhere(upstream: &str, path: &str) -> bool {
    let hub = matches!(upstream, "docker.io" | "registry-1.docker.io" | "index.docker.io");
    !hub && path.starts_with("/v2/library/")
}

/// A bounded label for the requests metric (paths themselves would explode cardinality).
fn endpoint_label(path: &str) -> &'static str {
    if path.contains("/manifests/") {
        "manifests"
    } else if path.ends_with("/tags/list") {
        "tags"
    } else if path.ends_with("/_catalog") {
        "catalog"
    } else if path.contains("/blobs/") {
        "blobs"
    } else if path.trim_end_matches('/') == "/v2" {
        "base"
    } else {
        "other"
    }
}

async fn handle(
    state: &Arc<ShimState>,
    registry: &str,
    request: Request,
    mirror_deadline: Option<Duration>,
) -> Result<Response, RegistryError> {
    let path = request.uri().path();
    let route = Route::parse(path.strip_prefix("/v2").unwrap_or(path).trim_start_matches('/'))?;
    let head = match *request.method() {
        Method::GET => false,
        Method::HEAD => true,
        ref m => {
            return Err(RegistryError::Unsupported(format!(
                "{m} is not supported: this is a pull-only mirror (GET and HEAD)"
            )))
        }
    };
    let client = auth::client_auth(request.headers());
    match route {
        Route::Base => ping(state, registry, client.as_ref()).await,
        Route::Unsupported => {
            Err(RegistryError::Unsupported("pushing is not supported: this is a pull-only mirror".into()))
        }
        Route::Tags { name } => {
            let page = Page::parse(request.uri().query())?;
            let tags = state
                .upstream
                .tags_as(registry, name.as_str(), client.as_ref(), page.n.map(|n| n + 1), page.last.as_deref())
                .await
                .map_err(|e| upstream_error(Subject::Tags, name.as_str(), e))?;
            Ok(listing(&page, tags, &request, |tags| serde_json::json!({ "name": name.as_str(), "tags": tags })))
        }
        Route::Catalog => {
            let page = Page::parse(request.uri().query())?;
            let prefix = format!("{registry}/");
            let blobs =
                state.cache.blobs().map_err(|e| RegistryError::Unavailable(format!("reading the index: {e}")))?;
            let repositories: Vec<String> = blobs
                .iter()
                .flat_map(|(_, r)| r.repos.iter())
                .filter_map(|r| r.strip_prefix(&prefix).map(str::to_owned))
                .collect();
            Ok(listing(
                &page,
                repositories,
                &request,
                |repositories| serde_json::json!({ "repositories": repositories }),
            ))
        }
        Route::Manifest { name, reference } => {
            let accept: Vec<&str> =
                request.headers().get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
            let accepted = media::accepted(&accept);
            let Resolved { manifest, stale_for } = match mirror_deadline {
                None => state.manifests.resolve(registry, &name, &reference, client.as_ref()).await?,
                Some(deadline) => {
                    let what = format!("{registry}/{name}:{reference}");
                    let (state, registry) = (Arc::clone(state), registry.to_owned());
                    let (name, reference) = (name.clone(), reference.clone());
                    let resolving = state.tasks.clone().spawn("mirror-manifest", async move {
                        state.manifests.resolve(&registry, &name, &reference, client.as_ref()).await
                    });
                    let resolved = within(deadline, &what, RegistryError::ManifestUnknown, resolving).await?;
                    match resolved {
                        Ok(Some(resolved)) => resolved?,
                        Ok(None) => return Err(RegistryError::Unavailable("the shim is stopping".into())),
                        Err(e) => return Err(RegistryError::Unavailable(format!("resolving {what} failed: {e}"))),
                    }
                }
            };
            // As Distribution does: a type the client did not accept is not served (it would
            // fail to parse it); no conversion (Distribution's list -> linux/amd64 rewrite).
            if !accepted.iter().any(|m| *m == manifest.media_type) {
                let what = format!("{name}:{reference}");
                return Err(RegistryError::ManifestUnknown(media::not_accepted(&what, &manifest.media_type)));
            }
            let mut response = Response::new(if head { Body::empty() } else { Body::from(manifest.bytes.clone()) });
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, header_value(&manifest.media_type));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(manifest.bytes.len()));
            h.insert("Docker-Content-Digest", header_value(&manifest.digest.to_string()));
            if let Some(age) = stale_for {
                // RFC 7234's "Response is Stale", with the age: clients that log it say why.
                let warning = format!(
                    "110 shoal \"Response is Stale: upstream unreachable, tag last confirmed {}s ago\"",
                    age.as_secs()
                );
                h.insert(header::WARNING, header_value(&warning));
            }
            Ok(response)
        }
        Route::Blob { name, digest } => {
            let origin =
                BlobOrigin { registry: registry.to_owned(), repository: name.as_str().to_owned(), auth: client };
            let answer = blob(state, &origin, &digest, head, request);
            match mirror_deadline {
                None => answer.await,
                // A miss's download is led by a task of its own: it goes on filling the store.
                Some(deadline) => {
                    within(deadline, &format!("{registry}/{name}@{digest}"), RegistryError::BlobUnknown, answer).await?
                }
            }
        }
    }
}

/// `answer`, or `unknown` (a 404) once `deadline` has passed without it: a mirror request
/// (`ns=`) the shim cannot answer in time sends containerd to the registry itself.
async fn within<T>(
    deadline: Duration,
    what: &str,
    unknown: fn(String) -> RegistryError,
    answer: impl std::future::Future<Output = T>,
) -> Result<T, RegistryError> {
    tokio::time::timeout(deadline, answer).await.map_err(|_| {
        tracing::info!(%what, deadline_ms = deadline.as_millis() as u64,
            "mirror request not answered within --mirror-miss-timeout-ms: 404, so the client asks the registry");
        unknown(format!(
            "{what}: not answered within {} ms (--mirror-miss-timeout-ms); ask the registry",
            deadline.as_millis()
        ))
    })
}

/// `GET /v2/`: the upstream's answer to these credentials, so `docker login` through the shim
/// and the client's challenge-driven auth work. Without client credentials for a registry the
/// shim has credentials of its own for, or when upstream is unreachable (the cache may still
/// serve), the answer is 200.
async fn ping(state: &ShimState, registry: &str, client: Option<&RegistryAuth>) -> Result<Response, RegistryError> {
    if client.is_none() && state.upstream.has_credentials(registry) {
        return Ok(Response::new(Body::from("{}")));
    }
    match state.upstream.ping(registry, client).await {
        Ok(Some(challenge)) => {
            Err(RegistryError::Unauthorized { www_authenticate: Some(challenge).filter(|c| !c.is_empty()) })
        }
        Ok(None) => Ok(Response::new(Body::from("{}"))),
        Err(e) => {
            tracing::debug!(%registry, error = %e, "upstream unreachable for /v2/; answering for the cache");
            Ok(Response::new(Body::from("{}")))
        }
    }
}

/// One page of `entries` (sorted and deduplicated here) as the JSON `body` makes of it, with
/// the next page's `Link` (keeping the request's `ns`) when more follow.
fn listing(
    page: &Page,
    mut entries: Vec<String>,
    request: &Request,
    body: impl FnOnce(&[String]) -> serde_json::Value,
) -> Response {
    entries.sort();
    entries.dedup();
    let (entries, more) = page.of(&entries);
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body(&entries).to_string()).into_response();
    let ns = namespace(request.uri().query());
    if let Some(link) = more.then(|| page.next_link(request.uri().path(), &entries, ns.as_deref())).flatten() {
        response.headers_mut().insert(header::LINK, header_value(&link));
    }
    response
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// The `ns` query parameter containerd adds in mirror mode: the registry a request is for.
fn namespace(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "ns").map(|(_, v)| v.into_owned())
}

async fn blob(
    state: &Arc<ShimState>,
    origin: &BlobOrigin,
    digest: &BlobDigest,
    head: bool,
    request: Request,
) -> Result<Response, RegistryError> {
    if head {
        let size = state.blobs.size(origin, digest).await?;
        let mut response = Response::new(Body::empty());
        blob_headers(response.headers_mut(), digest, Some(size));
        return Ok(response);
    }
    // A range of a blob we lack is served from the cache once the whole blob is in.
    let ranged = request.headers().contains_key(header::RANGE);
    match state.blobs.get(origin, digest, !ranged).await? {
        BlobBody::Cached { path, lease, .. } => {
            let served = shoal_store::blob_store::serve_file(path)
                .oneshot(request)
                .await
                .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
            let mut response = served.map(|body| match lease {
                Some(lease) => Body::new(shoal_store::usage::LeasedBody::new(Body::new(body), lease)),
                None => Body::new(body),
            });
            if response.status().is_success() {
                blob_headers(response.headers_mut(), digest, None);
            }
            Ok(response)
        }
        BlobBody::Streaming { size, chunks } => {
            let mut response = Response::new(Body::from_stream(ReceiverStream::new(chunks)));
            blob_headers(response.headers_mut(), digest, Some(size));
            Ok(response)
        }
    }
}

fn blob_headers(h: &mut HeaderMap, digest: &BlobDigest, size: Option<u64>) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert("Docker-Content-Digest", header_value(&digest.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(size) = size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_is_read_from_the_query() {
        assert_eq!(namespace(Some("ns=127.0.0.1%3A5000")).as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(namespace(Some("a=b&ns=docker.io")).as_deref(), Some("docker.io"));
        assert_eq!(namespace(Some("a=b")), None);
        assert_eq!(namespace(None), None);
    }

    #[test]
    fn hub_official_images_without_ns_are_noticed_only_with_another_upstream() {
        assert!(hub_mirror_elsewhere("ghcr.io", "/v2/library/alpine/manifests/3.20"));
        assert!(!hub_mirror_elsewhere("docker.io", "/v2/library/alpine/manifests/3.20"));
        assert!(!hub_mirror_elsewhere("registry-1.docker.io", "/v2/library/alpine/blobs/x"));
        assert!(!hub_mirror_elsewhere("ghcr.io", "/v2/team/app/manifests/1"));
    }

    #[test]
    fn endpoints_are_labelled_by_kind() {
        let labels = ["/v2/a/manifests/1", "/v2/a/tags/list", "/v2/_catalog", "/v2/a/blobs/x", "/v2/", "/v2/a/b"]
            .map(endpoint_label);
        assert_eq!(labels, ["manifests", "tags", "catalog", "blobs", "base", "other"]);
    }
}
