//! The HTTP edge every Shoal web service (seeder, registry shim) is served through: an axum
//! router over hyper's HTTP/1.1, with what `axum::serve` lacks:
//! - a **header-read deadline** ([`EdgeLimits::header_read_timeout`]): a client that opens a
//!   connection and sends its request head slowly, or not at all (slowloris), is dropped;
//! - a **per-address connection cap** ([`EdgeLimits::max_connections_per_address`]): one
//!   address cannot hold every file descriptor; a connection over the cap is closed at once
//!   and counted;
//! - a **graceful stop** in the task tree: once the node is cancelled, no connection is
//!   accepted, idle ones close, and a response in flight gets `grace` to finish;
//! - **TLS** when given a certificate ([`Tls`], rustls), with client certificates required
//!   when given a client CA; the handshake has the header-read deadline too.
//!
//! Each request carries axum's `ConnectInfo<SocketAddr>` of its connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use shoal_tasks::Tasks;
use tokio::net::TcpListener;
use tower::ServiceExt;

mod tls;
pub use tls::{Tls, TlsError, TlsFiles};

/// What one edge allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeLimits {
    /// From a connection's start (or the end of its last response) to a complete request head.
    pub header_read_timeout: Duration,
    /// Open connections from one IP address.
    pub max_connections_per_address: usize,
}

impl Default for EdgeLimits {
    /// 10 s for a request head (every real client sends it at once; the tracker allows 30 s
    /// because announces come from anywhere); 256 connections per address (a `docker pull`
    /// opens a handful, a host's shim a few per blob).
    fn default() -> Self {
        Self { header_read_timeout: Duration::from_secs(10), max_connections_per_address: 256 }
    }
}

/// Open connections per address, capped: [`ConnectionCap::take`] hands out a slot while the
/// address is under the cap, and the slot gives itself back when dropped. Public so that an
/// edge with its own accept loop (the tracker's, which wraps each stream) applies the same cap.
#[derive(Clone)]
pub struct ConnectionCap {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection counted against its address; dropping it gives the slot back.
pub struct ConnectionSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ConnectionCap {
    /// At most `max` connections open at once from one address.
    pub fn new(max: usize) -> Self {
        Self { max, open: Arc::default() }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more connection from `ip`, or `None` if it already has `max` open.
    pub fn take(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().expect("connections lock");
        let n = open.entry(ip.to_canonical()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot { open: Arc::clone(&self.open), ip: ip.to_canonical() })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("connections lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` (over `tls` when given) until `tasks` is cancelled; each
/// connection is a task under `tasks` that gets `grace` after the cancel to finish its
/// response. `refused` counts connections closed for being over the per-address cap. Returns
/// once it stops accepting; the caller's `tasks.shutdown()` then waits for the connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    tls: Option<Tls>,
    refused: prometheus::IntCounter,
    tasks: Tasks,
    grace: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let cap = ConnectionCap::new(limits.max_connections_per_address);
    let stop = tasks.cancelled();
    tokio::pin!(stop);
    loop {
        let (stream, source) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(slot) = cap.take(source.ip()) else {
            refused.inc();
            tracing::debug!(%source, max = limits.max_connections_per_address, "connection over the per-address cap: closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(source));
            router.clone().oneshot(request.map(Body::new))
        });
        let (http, cancelled, tls) = (http.clone(), tasks.cancelled(), tls.clone());
        let handshake_deadline = limits.header_read_timeout;
        tasks.spawn_with_grace("http-connection", grace, async move {
            let _slot = slot;
            let served = match tls {
                None => serve_connection(&http, stream, service, cancelled).await,
                Some(tls) => match tokio::time::timeout(handshake_deadline, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(&http, stream, service, cancelled).await,
                    Ok(Err(e)) => return tracing::debug!(%source, error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%source, "TLS handshake not done within the deadline"),
                },
            };
            if let Err(e) = served {
                tracing::debug!(%source, error = %e, "connection ended with an error");
            }
        });
    }
}

/// One connection's HTTP, over whatever byte stream it has; on a cancel, a graceful stop.
async fn serve_connection<IO, S>(
    http: &hyper::server::conn::http1::Builder,
    io: IO,
    service: S,
    cancelled: impl std::future::Future<Output = ()>,
) -> Result<(), hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => served,
        () = cancelled => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_per_address_and_gives_slots_back() {
        let cap = ConnectionCap::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = cap.take(a).unwrap();
        let _second = cap.take(a).unwrap();
        assert!(cap.take(a).is_none(), "a third from one address");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(cap.take(mapped).is_none(), "an IPv4-mapped IPv6 address is the same address");
        let _other = cap.take(b).expect("another address has its own count");
        drop(first);
        assert!(cap.take(a).is_some(), "a slot given back");
    }
}
