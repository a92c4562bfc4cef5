//! What the long-running subcommands share: logging, the stop signal, the config file, and the
//! one conversion of each shared flag group into its library config.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use shoal_registry_shim::SwarmConfig;
use shoal_store::eviction::{StoreLimit, StoreSize};
use shoal_store::seeding::SeedingConfig;
use shoal_tasks::Tasks;
use shoal_upstream::{Credentials, UpstreamConfig};

use crate::cli::{BitTorrentFlags, LogFormat, ShimTiming, StoreLimitFlags, UpstreamFlags};

/// The optional JSON config file (`--config` not ending in `.toml`): lists that are awkward as
/// flags, and credentials that must not sit on a command line.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Registry host -> {"username", "password"}.
    #[serde(default)]
    pub credentials: HashMap<String, Credentials>,
}

impl ConfigFile {
    /// The file at `path`, or the empty config without one.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        // A TOML file set flags before they were parsed (`crate::cli::file`).
        let Some(path) = path.filter(|p| p.extension().is_none_or(|e| e != "toml")) else { return Ok(Self::default()) };
        let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

impl UpstreamFlags {
    /// Upstream access for `registry` (the `--upstream` the credentials are for), merged with
    /// the config file's registries and credentials.
    pub(crate) fn into_config(self, registry: Option<&str>, file: &ConfigFile) -> anyhow::Result<UpstreamConfig> {
        let mut credentials = file.credentials.clone();
        if let (Some(username), Some(password)) = (self.username, self.password) {
            let registry = registry.context("--upstream-username needs --upstream (the registry it is for)")?;
            credentials.insert(registry.to_owned(), Credentials { username, password: password.0 });
        }
        Ok(UpstreamConfig {
            insecure_registries: [self.insecure_registries, file.insecure_registries.clone()].concat(),
            credentials,
            default_registry: registry.map(str::to_owned),
            deadlines: self.deadlines,
        })
    }
}

/// The share of the free space an `auto` store limit takes (`shoal up` splits it between its
/// seeder and its shim).
pub(crate) const AUTO_SHARE: f64 = 0.8;

impl StoreLimitFlags {
    /// The limit of the store in `data_dir` (`None`: `--max-store-bytes none`); `auto` is what
    /// it holds plus `share` of its filesystem's free space, read now.
    pub(crate) fn into_limit(self, data_dir: &std::path::Path, share: f64) -> anyhow::Result<Option<StoreLimit>> {
        let max = match self.max_bytes {
            StoreSize::Auto => {
                let stored = shoal_store::space::stored_bytes(data_dir)
                    .with_context(|| format!("cannot read the store in {}", data_dir.display()))?;
                let free = shoal_store::space::free_bytes(data_dir)
                    .with_context(|| format!("cannot read the free space of {}", data_dir.display()))?;
                let max = StoreSize::Auto.resolve(stored, free, share);
                tracing::info!(data_dir = %data_dir.display(), max_store_bytes = max, stored_bytes = stored,
                    free_bytes = free, share, "store limit: what is stored plus a share of the free space (--max-store-bytes)");
                max
            }
            size => size.resolve(0, 0, share),
        };
        max.map(|max| StoreLimit::new(max, self.high, self.low))
            .transpose()
            .context("invalid --max-store-bytes or watermarks")
    }
}

impl BitTorrentFlags {
    /// The seeding session's config: tracker-announced only (DHT and LSD are the seeder's own
    /// opt-ins), uploading, super-seeding as asked.
    pub(crate) fn into_config(self, super_seed: bool) -> SeedingConfig {
        SeedingConfig {
            announce_port: self.announce_port,
            super_seed,
            max_upload_rate: self.max_upload_rate,
            max_download_rate: self.max_download_rate,
            ..SeedingConfig::tracker_only(self.listen, self.trackers)
        }
    }
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librqbit=warn,librqbit_core=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        // Escape codes only where a terminal draws them: a file or journal gets plain text.
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Cancels `tasks` on Ctrl-C or SIGTERM (a task of the tree itself, so it goes with it).
pub(crate) fn cancel_on_signal(tasks: &Tasks) {
    let stop = tasks.clone();
    tasks.spawn("stop-signal", async move {
        shutdown_signal().await;
        stop.cancel();
    });
}

impl ShimTiming {
    /// The shim's swarm side: ask `seeders` for torrents, seed with `seeding`.
    pub(crate) fn swarm_config(&self, seeders: Vec<String>, seeding: SeedingConfig) -> SwarmConfig {
        SwarmConfig {
            seeders,
            seeding,
            stall_timeout: Duration::from_millis(self.stall_timeout_ms),
            unchoke_wait: Duration::from_millis(self.unchoke_wait_ms),
            torrent_timeout: Duration::from_millis(self.torrent_timeout_ms),
            peer_request_window: self.peer_request_window,
            seeder_trust: Default::default(),
        }
    }

    pub(crate) fn tag_ttl(&self) -> Duration {
        Duration::from_secs(self.tag_ttl_secs)
    }

    pub(crate) fn stale_tag_max_age(&self) -> Duration {
        Duration::from_secs(self.stale_tag_max_age_secs)
    }

    pub(crate) fn mirror_miss_timeout(&self) -> Duration {
        Duration::from_millis(self.mirror_miss_timeout_ms)
    }
}
