//! `shoal seeder`: flags, config file and logging around `shoal_seeder::run`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use serde::Deserialize;
use shoal_seeder::SeederConfig;
use shoal_store::eviction::StoreLimit;
use shoal_store::seeding::SeedingConfig;
use shoal_upstream::{Credentials, UpstreamConfig};

use crate::cli::SeederArgs;

/// The optional JSON config file (`--config`): lists that are awkward as flags, and
/// credentials that must not sit on a command line.
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
    pub(crate) fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// A store limit from `--max-store-bytes` and its watermarks (seeder and shim alike).
pub(crate) fn store_limit(max_bytes: Option<u64>, high: f64, low: f64) -> anyhow::Result<Option<StoreLimit>> {
    max_bytes.map(|max| StoreLimit::new(max, high, low)).transpose().context("invalid --max-store-bytes or watermarks")
}

pub(crate) fn run(args: SeederArgs) -> anyhow::Result<()> {
    init_logging();
    let file = ConfigFile::load(args.config.as_deref())?;
    let mut credentials = file.credentials;
    if let (Some(user), Some(password)) = (&args.upstream_username, &args.upstream_password) {
        let registry =
            args.upstream.clone().context("--upstream-username needs --upstream (the registry it is for)")?;
        credentials.insert(registry, Credentials { username: user.clone(), password: password.0.clone() });
    }
    let config = SeederConfig {
        data_dir: args.data_dir,
        http_listen: args.listen,
        public_url: args.public_url,
        seeding: SeedingConfig {
            listen: args.bt_listen,
            announce_port: args.announce_port,
            trackers: args.trackers,
            dht: args.dht,
            local_service_discovery: args.lsd,
            disable_upload: false,
            super_seed: !args.no_super_seed,
        },
        upstream: UpstreamConfig {
            insecure_registries: [args.insecure_registries, file.insecure_registries].concat(),
            credentials,
            default_registry: args.upstream,
        },
        images: [args.images, file.images].concat(),
        platforms: [args.platforms, file.platforms].concat(),
        store_limit: store_limit(args.max_store_bytes, args.store_high_watermark, args.store_low_watermark)?,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        shoal_seeder::run(
            config,
            |addr| {
                println!("shoal seeder: listening on http://{addr}");
                let _ = std::io::stdout().flush();
            },
            shutdown_signal(),
        )
        .await
    })?;
    Ok(())
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librqbit=warn,librqbit_core=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
