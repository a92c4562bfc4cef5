//! `shoal up`: tracker, seeder and shim of one host in one process, over one data directory.
//!
//! The three services are the same libraries the separate subcommands run; this only wires
//! them to each other (the shim asks the local seeder, both announce to the local tracker)
//! and shuts them down together.

use std::io::Write;

use anyhow::Context;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_seeder::SeederConfig;
use shoal_store::eviction::StoreLimit;
use shoal_tasks::Tasks;
use shoal_tracker::TrackerConfig;
use tracing::Instrument;

use super::common::{shutdown_signal, ConfigFile, AUTO_SHARE};
use crate::cli::{BitTorrentFlags, StoreLimitFlags, UpArgs, UpstreamFlags};
use crate::magnets::OutputFormat;

pub(crate) fn run(args: UpArgs) -> anyhow::Result<()> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let upstream = UpstreamFlags::from(args.upstream_access.clone()).into_config(Some(&args.upstream), &file)?;
    let images = [args.images.clone(), file.images].concat();
    let host = &args.public_host;
    let seeder_listen = args.seeder_listen.unwrap_or_else(|| {
        let ip = if args.public { std::net::Ipv4Addr::UNSPECIFIED } else { std::net::Ipv4Addr::LOCALHOST };
        std::net::SocketAddr::from((ip, 7000))
    });
    let loopback_host = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if (args.public || !seeder_listen.ip().is_loopback()) && loopback_host {
        tracing::warn!(public_host = %host, seeder_listen = %seeder_listen,
            "the seeder listens beyond loopback, but torrents name {host} as its address, which other hosts cannot reach: give --public-host");
    }
    let tracker_url = format!("http://{host}:{}/announce", args.tracker_listen.port());
    let seeder_public = format!("http://{host}:{}", seeder_listen.port());
    let trackers = [vec![tracker_url.clone()], args.trackers.clone()].concat();
    let bittorrent = |listen| BitTorrentFlags {
        listen,
        announce_port: None,
        trackers: trackers.clone(),
        max_upload_rate: None,
        max_download_rate: None,
    };

    let seeder = SeederConfig {
        data_dir: args.data_dir.join("seeder"),
        http_listen: seeder_listen,
        public_url: Some(seeder_public.clone()),
        seeding: bittorrent(args.bt_listen).into_config(!args.no_super_seed),
        upstream: upstream.clone(),
        images: Vec::new(),
        api_images: images.clone(),
        platforms: [args.platforms.clone(), file.platforms].concat(),
        store_limit: StoreLimitFlags {
            max_bytes: args.max_store_bytes,
            high: StoreLimit::DEFAULT_HIGH_WATERMARK,
            low: StoreLimit::DEFAULT_LOW_WATERMARK,
        }
        .into_limit(&args.data_dir.join("seeder"), AUTO_SHARE / 2.0)?,
        retries: (&args.mirror).into(),
        mirror_allow: args.mirror.mirror_allow.clone(),
        api_token: args.api_token.clone().map(|t| t.0),
        tls: None,
        members: Vec::new(),
        replicas: shoal_torrents::DEFAULT_REPLICAS,
    };
    // The shim reaches the seeder on loopback whatever the public host is.
    let seeder_local = format!("http://127.0.0.1:{}", seeder_listen.port());
    let shim = ShimConfig {
        listen: args.shim_listen,
        data_dir: args.data_dir.join("shim"),
        default_registry: args.upstream.clone(),
        tag_ttl: args.timing.tag_ttl(),
        stale_tag_max_age: args.timing.stale_tag_max_age(),
        mirror_miss_timeout: args.timing.mirror_miss_timeout(),
        upstream,
        swarm: Some(
            args.timing.swarm_config(vec![seeder_local.clone()], bittorrent(args.shim_bt_listen).into_config(false)),
        ),
        store_limit: StoreLimitFlags::from(args.shim_store.clone())
            .into_limit(&args.data_dir.join("shim"), AUTO_SHARE / 2.0)?,
        tls: None,
    };
    let tracker = TrackerConfig { listen: args.tracker_listen, ..TrackerConfig::default() };

    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        // One tree: a signal, or one service failing, stops all three the same way.
        let root = Tasks::root("shoal-up");
        let tracker = shoal_tracker::bind(tracker).await.context("tracker")?;
        let seeder = shoal_seeder::bind(seeder).await.context("seeder")?;
        let seeder_addr = seeder.local_addr();
        let shim = BoundShim::bind(shim).await.context("registry shim")?;
        let shim_addr = shim.local_addr();
        // Each service's logs carry its name: the seeder and the shim both seed the blobs this
        // host pulls, and their lines would read the same.
        let service = |name: &'static str| tracing::info_span!("service", name);
        let tracker_task = root.spawn("tracker", tracker.serve(root.child("tracker")).instrument(service("tracker")));
        let seeder_task = root.spawn("seeder", seeder.serve(root.child("seeder")).instrument(service("seeder")));
        let shim_task = root.spawn("shim", shim.serve(root.child("shim")).instrument(service("shim")));

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
            let token = args.api_token.as_ref().map(|t| t.0.as_str());
            match super::magnets::mirror(&seeder_local, image, token, &Default::default()).await {
                Ok(listing) => super::magnets::print(&listing, OutputFormat::Text, None)?,
                Err(e) => eprintln!("shoal up: cannot mirror {image}: {e:#}"),
            }
        }

        // Run until a signal, or until one service ends (it failed); then stop the others.
        let ended = tokio::select! {
            () = shutdown_signal() => Ok(()),
            served = shim_task => ended("registry shim", served),
            served = seeder_task => ended("seeder", served),
            served = tracker_task => ended("tracker", served.map(|s| s.map(Ok::<(), std::convert::Infallible>))),
        };
        root.shutdown().await;
        ended
    });
    // Dropping the runtime drops the BitTorrent sessions' last tasks; only then is it all over.
    drop(runtime);
    served?;
    println!("shoal up: stopped");
    Ok(())
}

/// What a service's task ending before shutdown means: it failed (or panicked; only shutdown
/// cancels it).
fn ended<E: Into<anyhow::Error>>(
    service: &str,
    served: Result<Option<Result<(), E>>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match served {
        Ok(Some(Ok(()))) => Err(anyhow::anyhow!("the {service} stopped serving")),
        Ok(Some(Err(e))) => Err(e.into().context(service.to_owned())),
        Ok(None) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("the {service} panicked"))),
    }
}
