//! Shoal's BitTorrent tracker: HTTP (BEP 3/7/23/48) and UDP (BEP 15) over one swarm store.
//!
//! [`bind`] opens the sockets and returns a [`BoundTracker`] whose addresses are known before
//! it serves (tests bind port 0); [`run`] is the CLI's entry point; [`spawn`] runs a tracker on
//! its own thread and runtime until dropped. See README.md for the module map and policies.

pub mod access;
#[cfg(test)]
mod fuzz;
pub mod http;
mod line_guard;
pub mod metrics;
pub mod query;
pub mod reply;
pub mod service;
mod shard;
pub mod swarm;
pub mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_http_edge::{ConnectionCap, Tls, TlsFiles};
use shoal_tasks::Tasks;
use tokio::net::{TcpListener, UdpSocket};
use tower_http::trace::TraceLayer;

pub use access::{Access, AllowListError};
pub use service::{Intervals, Refusal, Tracker};
pub use shard::{Role, Shard, ShardError};
pub use swarm::{Event, SwarmLimits, Swarms};

/// Open HTTP connections per address by default: a NATed site announces through one address,
/// and an announce holds its connection only for a round trip, so this is far above what a real
/// site needs and far below the process's file descriptors.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 1024;

/// Everything `shoal tracker` can be told.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub listen: SocketAddr,
    pub udp_listen: Option<SocketAddr>,
    pub intervals: Intervals,
    /// Peers expire after this many announce intervals without news.
    pub peer_ttl_intervals: u32,
    pub limits: SwarmLimits,
    pub allow_list: Option<PathBuf>,
    pub admin_token: Option<String>,
    pub trust_x_forwarded_for: bool,
    /// Runtime worker threads; `None`: one per available core (taskset is honoured).
    pub threads: Option<usize>,
    /// Open HTTP connections one address may hold; more are closed at once and counted.
    pub max_connections_per_address: usize,
    /// Serve HTTPS announces with this certificate (the UDP tracker is unaffected).
    pub tls: Option<TlsFiles>,
    /// All tracker members' announce URLs and this tracker's among them, when it is one of
    /// several (`--member`, `--self-url`): announces are then counted by role.
    pub shard: Option<(Vec<String>, String)>,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 6969)),
            udp_listen: None,
            intervals: Intervals { interval_secs: 300, min_interval_secs: 60 },
            peer_ttl_intervals: 2,
            limits: SwarmLimits::default(),
            allow_list: None,
            admin_token: None,
            trust_x_forwarded_for: false,
            threads: None,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            tls: None,
            shard: None,
        }
    }
}

impl TrackerConfig {
    /// A config for tests and embedding: HTTP on `127.0.0.1:0`, everything else default.
    pub fn loopback() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Self::default() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error(transparent)]
    AllowList(#[from] AllowListError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    #[error("cannot set up TLS")]
    Tls(#[from] shoal_http_edge::TlsError),
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// A tracker whose sockets are open but not yet served.
pub struct BoundTracker {
    tracker: Arc<Tracker>,
    http: TcpListener,
    udp: Option<UdpSocket>,
    state: http::HttpState,
    cap: ConnectionCap,
    tls: Option<Tls>,
}

/// Opens the tracker's sockets and loads its allow-list.
pub async fn bind(config: TrackerConfig) -> Result<BoundTracker, TrackerError> {
    if config.intervals.interval_secs == 0 || config.peer_ttl_intervals == 0 {
        return Err(TrackerError::Config("the interval and the peer expiry multiple must be positive"));
    }
    if config.max_connections_per_address == 0 {
        return Err(TrackerError::Config("the per-address connection cap must be positive"));
    }
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
    let access = match &config.allow_list {
        Some(path) => Access::from_file(path)?,
        None => Access::open(),
    };
    let limits = SwarmLimits {
        peer_ttl_secs: config.intervals.interval_secs.saturating_mul(config.peer_ttl_intervals),
        ..config.limits.clone()
    };
    let tracker = Tracker::new(limits, config.intervals, access);
    let tracker = Arc::new(match config.shard {
        Some((members, me)) => tracker.with_shard(Shard::new(members, me)?),
        None => tracker,
    });
    let http =
        TcpListener::bind(config.listen).await.map_err(|error| TrackerError::Bind { addr: config.listen, error })?;
    let udp = match config.udp_listen {
        Some(addr) => Some(UdpSocket::bind(addr).await.map_err(|error| TrackerError::Bind { addr, error })?),
        None => None,
    };
    let state = http::HttpState {
        tracker: tracker.clone(),
        admin_token: config.admin_token.filter(|t| !t.is_empty()).map(Arc::from),
        trust_x_forwarded_for: config.trust_x_forwarded_for,
    };
    let cap = ConnectionCap::new(config.max_connections_per_address);
    Ok(BoundTracker { tracker, http, udp, state, cap, tls })
}

impl BoundTracker {
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("a bound listener has an address")
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|s| s.local_addr().expect("a bound socket has an address"))
    }

    pub fn tracker(&self) -> Arc<Tracker> {
        self.tracker.clone()
    }

    /// Serves HTTP (and UDP) until `tasks` is cancelled. Everything the tracker spawns (the
    /// purge, the UDP server, one task per HTTP connection) is under `tasks`; when this
    /// returns, all of it has ended.
    pub async fn serve(self, tasks: Tasks) {
        let purge_every = Duration::from_secs(u64::from(self.tracker.intervals().interval_secs.clamp(4, 240) / 4));
        let (tracker, purging) = (self.tracker.clone(), tasks.clone());
        tasks.spawn("tracker-purge", async move {
            let mut tick = tokio::time::interval(purge_every);
            loop {
                tick.tick().await;
                let tracker = tracker.clone();
                let _ = purging.spawn_blocking("tracker-purge-sweep", move || tracker.purge()).await;
            }
        });
        if let Some(socket) = self.udp {
            tasks.spawn("tracker-udp", udp::serve(socket, self.tracker.clone()));
        }
        // Spans only: the default per-request events and the body wrapper cost announces/s on
        // the tracker's hot path (scripts/bench-tracker.sh, docs/benchmarks.md).
        let spans =
            TraceLayer::new_for_http().on_request(()).on_response(()).on_body_chunk(()).on_eos(()).on_failure(());
        let router = http::router(self.state).layer(spans);
        tokio::select! {
            () = http::serve(self.http, router, self.tracker.clone(), (self.cap, self.tls), tasks.clone()) => {}
            () = tasks.cancelled() => {}
        }
        tasks.shutdown().await;
    }
}

fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, TrackerError> {
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut builder = if threads <= 1 {
        // One core: skip the work-stealing scheduler's cross-thread wake-ups.
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build().map_err(TrackerError::Runtime)
}

/// Runs the tracker until Ctrl-C or SIGTERM (the CLI's entry point).
pub fn run(config: TrackerConfig) -> Result<(), TrackerError> {
    let rt = runtime(config.threads)?;
    rt.block_on(async move {
        let bound = bind(config).await?;
        tracing::info!(http = %bound.http_addr(), udp = ?bound.udp_addr(), "tracker listening");
        let scheme = if bound.tls.is_some() { "https" } else { "http" };
        eprintln!("shoal tracker: listening on {scheme}://{}/announce", bound.http_addr());
        if let Some(udp) = bound.udp_addr() {
            eprintln!("shoal tracker: listening on udp://{udp}/announce");
        }
        let tasks = Tasks::root("tracker");
        tokio::select! {
            () = bound.serve(tasks.clone()) => {}
            () = stop_signal() => tasks.shutdown().await,
        }
        Ok(())
    })
}

async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A tracker serving on its own thread; dropping it stops the tracker.
pub struct RunningTracker {
    http_addr: SocketAddr,
    udp_addr: Option<SocketAddr>,
    tracker: Arc<Tracker>,
    tasks: Tasks,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Binds and serves `config` on a new thread, returning once the sockets accept.
pub fn spawn(config: TrackerConfig) -> Result<RunningTracker, TrackerError> {
    let rt = runtime(config.threads.or(Some(2)))?;
    let bound = rt.block_on(bind(config))?;
    let (http_addr, udp_addr, tracker) = (bound.http_addr(), bound.udp_addr(), bound.tracker());
    let tasks = Tasks::root("tracker");
    let serving = tasks.clone();
    let thread = std::thread::Builder::new()
        .name("shoal-tracker".into())
        .spawn(move || rt.block_on(bound.serve(serving)))
        .map_err(TrackerError::Runtime)?;
    Ok(RunningTracker { http_addr, udp_addr, tracker, tasks, thread: Some(thread) })
}

impl RunningTracker {
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// `http://ADDR/announce`.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.http_addr)
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        self.tasks.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
