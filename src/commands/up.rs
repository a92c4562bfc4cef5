//! `shoal up`: tracker, seeder and shim of one host in one process, over one data directory.
//!
//! The three services are the same libraries the separate subcommands run; this only wires
//! them to each other (the shim asks the local seeder, both announce to the local tracker)
//! and shuts them down together.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use shoal_registry_shim::SwarmConfig;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_seeder::SeederConfig;
use shoal_store::eviction::StoreLimit;
use shoal_store::seeding::SeedingConfig;
use shoal_tracker::TrackerConfig;
use shoal_upstream::{Credentials, UpstreamConfig};
use tokio::sync::{oneshot, watch};

use super::seeder::{init_logging, shutdown_signal, store_limit, ConfigFile};
use crate::cli::UpArgs;
use crate::magnets::OutputFormat;

pub(crate) fn run(args: UpArgs) -> anyhow::Result<()> {
    init_logging();
    let file = ConfigFile::load(args.config.as_deref())?;
    let mut credentials = file.credentials;
    if let (Some(username), Some(password)) = (&args.upstream_username, &args.upstream_password) {
        credentials
            .insert(args.upstream.clone(), Credentials { username: username.clone(), password: password.0.clone() });
    }
    let upstream = UpstreamConfig {
        insecure_registries: [args.insecure_registries.clone(), file.insecure_registries].concat(),
        credentials,
        default_registry: Some(args.upstream.clone()),
    };
    let images = [args.images.clone(), file.images].concat();
    let host = &args.public_host;
    let tracker_url = format!("http://{host}:{}/announce", args.tracker_listen.port());
    let seeder_public = format!("http://{host}:{}", args.seeder_listen.port());
    let trackers = [vec![tracker_url.clone()], args.trackers.clone()].concat();

    let seeder = SeederConfig {
        data_dir: args.data_dir.join("seeder"),
        http_listen: args.seeder_listen,
        public_url: Some(seeder_public.clone()),
        seeding: SeedingConfig {
            listen: args.bt_listen,
            announce_port: None,
            trackers: trackers.clone(),
            dht: false,
            local_service_discovery: false,
            disable_upload: false,
            super_seed: !args.no_super_seed,
        },
        upstream: upstream.clone(),
        images: Vec::new(),
        platforms: [args.platforms.clone(), file.platforms].concat(),
        store_limit: store_limit(
            args.max_store_bytes,
            StoreLimit::DEFAULT_HIGH_WATERMARK,
            StoreLimit::DEFAULT_LOW_WATERMARK,
        )?,
    };
    // The shim reaches the seeder on loopback whatever the public host is.
    let seeder_local = format!("http://127.0.0.1:{}", args.seeder_listen.port());
    let shim = ShimConfig {
        listen: args.shim_listen,
        data_dir: args.data_dir.join("shim"),
        default_registry: args.upstream.clone(),
        tag_ttl: Duration::from_secs(args.timing.tag_ttl_secs),
        upstream,
        swarm: Some(SwarmConfig {
            seeder_url: Some(seeder_local.clone()),
            seeding: SeedingConfig {
                listen: args.shim_bt_listen,
                announce_port: None,
                trackers,
                dht: false,
                local_service_discovery: false,
                disable_upload: false,
                super_seed: false,
            },
            stall_timeout: Duration::from_millis(args.timing.stall_timeout_ms),
            torrent_timeout: Duration::from_millis(args.timing.torrent_timeout_ms),
            peer_request_window: args.timing.peer_request_window,
        }),
        store_limit: store_limit(
            args.shim_max_store_bytes,
            args.shim_store_high_watermark,
            args.shim_store_low_watermark,
        )?,
    };
    let tracker = TrackerConfig { listen: args.tracker_listen, ..TrackerConfig::default() };

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };

        let tracker = shoal_tracker::bind(tracker).await.context("tracker")?;
        let tracker_task = tokio::spawn(tracker.serve(until_stopped()));

        let (ready, seeder_ready) = oneshot::channel();
        let mut seeder_task = tokio::spawn(shoal_seeder::run(
            seeder,
            move |addr| {
                let _ = ready.send(addr);
            },
            until_stopped(),
        ));
        let seeder_addr = tokio::select! {
            addr = seeder_ready => addr.context("the seeder stopped before it was ready")?,
            failed = &mut seeder_task => {
                failed.context("the seeder panicked")?.context("seeder")?;
                anyhow::bail!("the seeder stopped before it was ready");
            }
        };

        let shim = BoundShim::bind(shim).await.context("registry shim")?;
        let shim_addr = shim.local_addr();
        let shim_task = tokio::spawn(shim.serve());

        let mut out = std::io::stdout().lock();
        writeln!(out, "shoal up: tracker {tracker_url}")?;
        writeln!(
            out,
            "shoal up: seeder  {seeder_public} (listening on {seeder_addr}; webseeds, /metrics, /v1/images)"
        )?;
        writeln!(out, "shoal up: shim    http://{shim_addr} in front of {}", args.upstream)?;
        writeln!(out, "shoal up: ready; try: docker pull localhost:{}/<repo>:<tag>", shim_addr.port())?;
        out.flush()?;
        drop(out);

        for image in &images {
            match super::magnets::mirror(&seeder_local, image).await {
                Ok(listing) => super::magnets::print(&listing, OutputFormat::Text, None)?,
                Err(e) => eprintln!("shoal up: cannot mirror {image}: {e:#}"),
            }
        }

        // Run until a signal, or until one service fails; then stop the others.
        let failed = tokio::select! {
            () = shutdown_signal() => Ok(()),
            served = shim_task => served.context("the shim panicked")?.context("registry shim"),
            seeded = &mut seeder_task => seeded.context("the seeder panicked")?.context("seeder"),
        };
        let _ = stop.send(true);
        let _ = tracker_task.await;
        if !seeder_task.is_finished() {
            let _ = seeder_task.await;
        }
        failed
    })
}
