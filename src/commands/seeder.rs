//! `shoal seeder`: flags, config file and logging around `shoal_seeder::bind`.

use std::io::Write;

use anyhow::Context;
use shoal_seeder::SeederConfig;
use shoal_tasks::Tasks;

use super::common::{cancel_on_signal, ConfigFile, AUTO_SHARE};
use crate::cli::{BitTorrentFlags, SeederArgs, StoreLimitFlags, UpstreamFlags};

pub(crate) fn run(args: SeederArgs) -> anyhow::Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let mut seeding = BitTorrentFlags::from(args.bittorrent).into_config(!args.no_super_seed);
    seeding.dht = args.dht;
    seeding.local_service_discovery = args.lsd;
    let config = SeederConfig {
        data_dir: args.data_dir.clone(),
        http_listen: args.listen,
        public_url: args.public_url,
        seeding,
        upstream: UpstreamFlags::from(args.upstream_access).into_config(args.upstream.as_deref(), &file)?,
        images: [args.images, file.images].concat(),
        api_images: Vec::new(),
        platforms: [args.platforms, file.platforms].concat(),
        store_limit: StoreLimitFlags::from(args.store).into_limit(&args.data_dir, AUTO_SHARE)?,
        retries: (&args.mirror).into(),
        mirror_allow: args.mirror.mirror_allow.clone(),
        api_token: args.api_token.clone().map(|t| t.0),
        tls: args.tls.into(),
        members: args.ring.members.clone(),
        replicas: args.ring.replicas,
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let served = runtime.block_on(async {
        let seeder = shoal_seeder::bind(config).await?;
        println!("shoal seeder: listening on {scheme}://{}", seeder.local_addr());
        let _ = std::io::stdout().flush();
        let tasks = Tasks::root("seeder");
        cancel_on_signal(&tasks);
        seeder.serve(tasks).await
    });
    // Dropping the runtime drops the BitTorrent session's last tasks; only then is it all over.
    drop(runtime);
    served?;
    println!("shoal seeder: stopped");
    Ok(())
}
