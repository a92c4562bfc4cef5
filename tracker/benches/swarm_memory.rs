//! Memory benchmark of the swarm store: resident bytes per peer with 1,000,000 peers over
//! 100,000 swarms (run: `cargo bench -p shoal-tracker --bench swarm_memory`).

// A benchmark prints its figures.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_torrents::InfoHash;
use shoal_tracker::swarm::{Announce, Event, SwarmLimits, Swarms};

/// Resident set size of this process in bytes, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm resident field");
    pages * 4096
}

fn main() {
    // `cargo test --all-targets` also runs this target (without `--bench`): do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let swarm_count: u32 = std::env::var("SWARMS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let peer_count: u32 = std::env::var("PEERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut rng = StdRng::seed_from_u64(1);
    let hashes: Vec<InfoHash> = (0..swarm_count).map(|_| InfoHash::from_bytes(rng.random())).collect();
    let peer_ids: Vec<[u8; 20]> = (0..1024).map(|_| rng.random()).collect();
    let swarms = Swarms::new(SwarmLimits::default());
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for i in 0..peer_count {
        // Distinct addresses; about one in four peers is a seeder, as in the load benchmark.
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 6881);
        let req = Announce {
            info_hash: hashes[(i % swarm_count) as usize],
            peer_id: peer_ids[(i % 1024) as usize],
            addr,
            event: Event::Started,
            seeding: rng.random_ratio(1, 4),
            numwant: Some(0),
        };
        out.clear();
        swarms.announce(&req, 0, &mut rng, &mut out).expect("under the caps");
    }
    let elapsed = started.elapsed();
    let after = rss_bytes();
    let totals = swarms.totals();
    assert_eq!(totals.seeders + totals.leechers, peer_count as usize);
    assert_eq!(totals.swarms, swarm_count as usize);
    let per_peer = (after - before) as f64 / f64::from(peer_count);
    println!(
        "RESULT swarms={} peers={} rss_delta_bytes={} bytes_per_peer={per_peer:.1} target<=200 fill_ns_per_announce={:.0}",
        totals.swarms,
        peer_count,
        after - before,
        elapsed.as_nanos() as f64 / f64::from(peer_count)
    );
    std::hint::black_box(&swarms);
}
