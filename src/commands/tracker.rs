//! `shoal tracker`: maps the command line onto the tracker library's config and runs it.

use shoal_tracker::{Intervals, SwarmLimits, TrackerConfig};

use crate::cli::TrackerArgs;

pub(crate) fn run(args: TrackerArgs) -> anyhow::Result<()> {
    let config = TrackerConfig {
        listen: args.listen,
        udp_listen: args.udp_listen,
        intervals: Intervals { interval_secs: args.interval, min_interval_secs: args.min_interval },
        peer_ttl_intervals: args.peer_ttl_intervals,
        limits: SwarmLimits {
            default_numwant: args.default_numwant,
            max_numwant: args.max_numwant,
            max_peers_per_swarm: args.max_peers_per_swarm,
            max_peers: args.max_peers,
            max_swarms: args.max_swarms,
            new_swarms_per_address_burst: args.new_swarms_per_address_burst,
            new_swarms_per_address_per_sec: args.new_swarms_per_address_per_sec,
            ..SwarmLimits::default()
        },
        allow_list: args.allow_list,
        admin_token: args.admin_token,
        trust_x_forwarded_for: args.trust_x_forwarded_for,
        threads: args.threads,
        max_connections_per_address: args.max_connections_per_address as usize,
        tls: args.tls.into(),
        shard: args.self_url.map(|me| (args.members, me)),
    };
    shoal_tracker::run(config)?;
    Ok(())
}
