//! `shoal shim`: flags and logging around `shoal_registry_shim::BoundShim`.

use std::io::Write;

use anyhow::Context;
use shoal_registry_shim::{BoundShim, SeederTrust, ShimConfig, SwarmConfig};
use shoal_tasks::Tasks;

use super::common::{cancel_on_signal, ConfigFile, AUTO_SHARE};
use crate::cli::{BitTorrentFlags, ShimArgs, StoreLimitFlags, UpstreamFlags};

pub(crate) fn run(args: ShimArgs) -> anyhow::Result<()> {
    let seeding = BitTorrentFlags::from(args.bittorrent).into_config(false);
    let seeder_trust = SeederTrust {
        ca: args.seeder_ca.clone(),
        identity: args.seeder_client_cert.clone().zip(args.seeder_client_key.clone()),
    };
    let swarm = (!args.seeders.is_empty())
        .then(|| SwarmConfig { seeder_trust, ..args.timing.swarm_config(args.seeders.clone(), seeding) });
    let config = ShimConfig {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        default_registry: args.upstream.clone(),
        tag_ttl: args.timing.tag_ttl(),
        stale_tag_max_age: args.timing.stale_tag_max_age(),
        mirror_miss_timeout: args.timing.mirror_miss_timeout(),
        upstream: UpstreamFlags::from(args.upstream_access)
            .into_config(Some(&args.upstream), &ConfigFile::default())?,
        swarm,
        store_limit: StoreLimitFlags::from(args.store).into_limit(&args.data_dir, AUTO_SHARE)?,
        tls: args.tls.into(),
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let shim = BoundShim::bind(config).await?;
        println!("shoal shim: listening on {scheme}://{}", shim.local_addr());
        let _ = std::io::stdout().flush();
        let tasks = Tasks::root("shim");
        cancel_on_signal(&tasks);
        shim.serve(tasks).await
    });
    // Dropping the runtime drops the BitTorrent session's last tasks; only then is it all over.
    drop(runtime);
    served?;
    println!("shoal shim: stopped");
    Ok(())
}
