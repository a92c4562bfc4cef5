//! The HTTP front end: axum routes over the shared [`Tracker`], served by hyper with lean
//! replies (no `date` or `content-type` header on announces: clients need neither, and a
//! 50-peer compact reply then fits in well under 450 bytes on the wire).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use shoal_http_edge::{ConnectionCap, Tls};
use shoal_tasks::Tasks;
use shoal_torrents::InfoHash;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::line_guard::LineGuard;
use crate::service::Tracker;

/// Shared state of the HTTP routes.
#[derive(Clone)]
pub struct HttpState {
    pub tracker: Arc<Tracker>,
    /// `Authorization: Bearer` token of the admin routes; `None` disables them.
    pub admin_token: Option<Arc<str>>,
    /// Take the peer address from the last `X-Forwarded-For` entry (behind a trusted proxy).
    pub trust_x_forwarded_for: bool,
}

/// The connection's source address, put on each request by the accept loop.
#[derive(Clone, Copy, Debug)]
struct Source(SocketAddr);

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/scrape", get(scrape))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/admin/torrents/{info_hash}", put(admin_put).delete(admin_delete))
        .with_state(state)
}

fn bencoded(body: Vec<u8>) -> Response {
    Response::new(Body::from(body))
}

/// The peer's IP: the connection's, or the proxy's word for it when so configured.
fn peer_ip(state: &HttpState, req: &Request) -> IpAddr {
    let source = req.extensions().get::<Source>().map_or(IpAddr::from([0, 0, 0, 0]), |s| s.0.ip());
    if !state.trust_x_forwarded_for {
        return source;
    }
    // The rightmost entry is the one our proxy added; entries left of it are client claims.
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(source)
}

async fn announce(State(state): State<HttpState>, req: Request) -> Response {
    let ip = peer_ip(&state, &req);
    let query = req.uri().query().unwrap_or("").as_bytes();
    bencoded(state.tracker.http_announce(query, SocketAddr::new(ip, 0)))
}

async fn scrape(State(state): State<HttpState>, req: Request) -> Response {
    bencoded(state.tracker.http_scrape(req.uri().query().unwrap_or("").as_bytes()))
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let mut response = state.tracker.render_metrics().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// `None` when the request carries the admin token, else the response refusing it.
fn unauthorized(state: &HttpState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.admin_token else {
        return Some((StatusCode::NOT_FOUND, "admin API disabled: set SHOAL_TRACKER_ADMIN_TOKEN\n").into_response());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison so response timing does not reveal the token.
    let same =
        given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    (!same).then(|| (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response())
}

async fn admin_set(state: HttpState, headers: HeaderMap, info_hash: String, allowed: bool) -> Response {
    if let Some(response) = unauthorized(&state, &headers) {
        return response;
    }
    let Ok(info_hash) = info_hash.parse::<InfoHash>() else {
        return (StatusCode::BAD_REQUEST, "expected a 40-hex infohash\n").into_response();
    };
    let tracker = state.tracker.clone();
    let result = tokio::task::spawn_blocking(move || {
        let changed = tracker.access().set(info_hash, allowed);
        if !allowed {
            tracker.forget(&info_hash);
        }
        changed
    })
    .await;
    match result {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(crate::access::AllowListError::Open)) => {
            (StatusCode::CONFLICT, "the tracker is open: start it with --allow-list to manage torrents\n")
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("admin change of {info_hash}: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not save the allow-list\n").into_response()
        }
        Err(e) => {
            tracing::error!("admin change of {info_hash}: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn admin_put(State(state): State<HttpState>, Path(info_hash): Path<String>, headers: HeaderMap) -> Response {
    admin_set(state, headers, info_hash, true).await
}

async fn admin_delete(State(state): State<HttpState>, Path(info_hash): Path<String>, headers: HeaderMap) -> Response {
    admin_set(state, headers, info_hash, false).await
}

/// From a connection's start (or its last response) to a complete request head, and for a TLS
/// handshake: announces come from anywhere, over slow links.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections on `listener` and serves `router` on each (over TLS when given), one
/// task under `tasks` per connection, until dropped. A connection from an address that already
/// holds `cap`'s maximum is closed at once and counted (`shoal_tracker_refused_connections_total`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tracker: Arc<Tracker>,
    (cap, tls): (ConnectionCap, Option<Tls>),
    tasks: Tasks,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.auto_date_header(false).timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let (stream, source) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Some(slot) = cap.take(source.ip()) else {
            tracker.refused_connection();
            tracing::debug!(%source, max = cap.max(), "connection over the per-address cap: closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Source(source));
            router.clone().oneshot(req.map(Body::new))
        });
        let (http, tracker, tls) = (http.clone(), tracker.clone(), tls.clone());
        tasks.spawn("tracker-connection", async move {
            let _slot = slot;
            let served = match tls {
                None => http.serve_connection(TokioIo::new(LineGuard::new(stream, tracker)), service).await,
                Some(tls) => match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        http.serve_connection(TokioIo::new(LineGuard::new(stream, tracker)), service).await
                    }
                    Ok(Err(e)) => return tracing::trace!("TLS handshake from {source}: {e}"),
                    Err(_) => return tracing::trace!("TLS handshake from {source} not done in time"),
                },
            };
            if let Err(e) = served {
                tracing::trace!("connection from {source}: {e}");
            }
        });
    }
}
