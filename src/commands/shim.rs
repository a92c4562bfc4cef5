//! `shoal shim`: flags and logging around `shoal_registry_shim::run`.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use shoal_registry_shim::SwarmConfig;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_store::seeding::SeedingConfig;
use shoal_upstream::{Credentials, UpstreamConfig};

use super::seeder::{init_logging, shutdown_signal, store_limit};
use crate::cli::ShimArgs;

pub(crate) fn run(args: ShimArgs) -> anyhow::Result<()> {
    init_logging();
    let mut credentials = HashMap::new();
    if let (Some(username), Some(password)) = (&args.upstream_username, &args.upstream_password) {
        credentials
            .insert(args.upstream.clone(), Credentials { username: username.clone(), password: password.0.clone() });
    }
    let swarm = args.seeder.clone().map(|seeder| SwarmConfig {
        seeder_url: Some(seeder),
        seeding: SeedingConfig {
            listen: args.bt_listen,
            announce_port: args.announce_port,
            trackers: args.trackers.clone(),
            dht: false,
            local_service_discovery: false,
            disable_upload: false,
            super_seed: false,
        },
        stall_timeout: Duration::from_millis(args.timing.stall_timeout_ms),
        torrent_timeout: Duration::from_millis(args.timing.torrent_timeout_ms),
        peer_request_window: args.timing.peer_request_window,
    });
    let config = ShimConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        default_registry: args.upstream.clone(),
        tag_ttl: Duration::from_secs(args.timing.tag_ttl_secs),
        upstream: UpstreamConfig {
            insecure_registries: args.insecure_registries,
            credentials,
            default_registry: Some(args.upstream),
        },
        swarm,
        store_limit: store_limit(args.max_store_bytes, args.store_high_watermark, args.store_low_watermark)?,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shim = BoundShim::bind(config).await?;
        println!("shoal shim: listening on http://{}", shim.local_addr());
        let _ = std::io::stdout().flush();
        tokio::select! {
            served = shim.serve() => served,
            () = shutdown_signal() => Ok(()),
        }
    })?;
    Ok(())
}
