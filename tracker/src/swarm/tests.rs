//! Unit tests of the swarm store and the peer hand-out policy.

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::Ipv4Addr;

const HASH: InfoHash = InfoHash::from_bytes([7; 20]);

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

fn addr(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 6881)
}

fn req(i: u32, seeding: bool) -> Announce {
    let mut peer_id = [b'-'; 20];
    peer_id[..4].copy_from_slice(&i.to_be_bytes());
    Announce { info_hash: HASH, peer_id, addr: addr(i), event: Event::None, seeding, numwant: None }
}

fn announce(swarms: &Swarms, r: &Announce, now_ms: u64) -> (AnnounceOutcome, Vec<HandedPeer>) {
    let mut out = Vec::new();
    let outcome = swarms.announce(r, now_ms, &mut rng(), &mut out).unwrap();
    (outcome, out)
}

fn fill(swarms: &Swarms, seeders: u32, leechers: u32) {
    for i in 0..seeders {
        announce(swarms, &req(1000 + i, true), 0);
    }
    for i in 0..leechers {
        announce(swarms, &req(i, false), 0);
    }
}

#[test]
fn split_gives_seeders_at_most_half_and_hands_leftovers_over() {
    assert_eq!(split_handout(50, 1, 100), (1, 49));
    assert_eq!(split_handout(50, 100, 100), (25, 25));
    assert_eq!(split_handout(50, 100, 3), (47, 3));
    assert_eq!(split_handout(1, 5, 5), (1, 0));
    assert_eq!(split_handout(0, 5, 5), (0, 0));
    assert_eq!(split_handout(50, 0, 100), (0, 50));
    assert_eq!(split_handout(7, 2, 2), (2, 2));
}

#[test]
fn a_leecher_always_gets_the_seeder_of_a_large_fresh_swarm() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 1, 500);
    for seed in 0..50 {
        let mut r = req(seed, false);
        r.numwant = Some(10);
        let mut out = Vec::new();
        swarms.announce(&r, 0, &mut StdRng::seed_from_u64(seed.into()), &mut out).unwrap();
        assert_eq!(out.len(), 10);
        assert!(out.iter().any(|p| p.addr == addr(1000)), "seeder missing from {out:?}");
        assert!(out.iter().all(|p| p.addr != addr(seed)), "announcer handed itself");
    }
}

#[test]
fn a_seeder_gets_leechers_first_then_other_seeders() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 20, 30);
    let (outcome, out) = announce(&swarms, &req(1000, true), 0);
    assert_eq!((outcome.complete, outcome.incomplete), (20, 30));
    assert_eq!(out.len(), 49, "30 leechers and the 19 other seeders");
    let leechers = out.iter().filter(|p| p.addr.ip() < addr(1000).ip()).count();
    assert_eq!(leechers, 30);
    assert!(out.iter().all(|p| p.addr != addr(1000)), "announcer handed itself");

    let mut r = req(1001, true);
    r.numwant = Some(10);
    let (_, out) = announce(&swarms, &r, 0);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|p| p.addr.ip() < addr(1000).ip()), "leechers fill a short hand-out");
}

#[test]
fn a_magnet_client_announcing_left_0_still_hears_of_the_seeder() {
    // aria2c announces left=0 while it fetches a magnet's metadata.
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 1, 0);
    let (_, out) = announce(&swarms, &req(7, true), 0);
    assert_eq!(out.iter().map(|p| p.addr).collect::<Vec<_>>(), vec![addr(1000)]);
}

#[test]
fn hand_outs_are_distinct_random_and_exclude_the_announcer() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 0, 300);
    let mut seen = std::collections::HashSet::new();
    for seed in 0..20u64 {
        let mut out = Vec::new();
        swarms.announce(&req(5, false), 0, &mut StdRng::seed_from_u64(seed), &mut out).unwrap();
        let distinct: std::collections::HashSet<_> = out.iter().map(|p| p.addr).collect();
        assert_eq!(distinct.len(), 50);
        assert!(!distinct.contains(&addr(5)));
        seen.extend(distinct);
    }
    assert!(seen.len() > 200, "sampling looks biased: only {} distinct peers over 20 hand-outs", seen.len());
}

#[test]
fn wanting_most_of_a_swarm_gives_distinct_peers_without_the_announcer() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 0, 61);
    for seed in 0..20u64 {
        let mut r = req(7, false);
        r.numwant = Some(50);
        let mut out = Vec::new();
        swarms.announce(&r, 0, &mut StdRng::seed_from_u64(seed), &mut out).unwrap();
        let distinct: std::collections::HashSet<_> = out.iter().map(|p| p.addr).collect();
        assert_eq!((out.len(), distinct.len()), (50, 50));
        assert!(!distinct.contains(&addr(7)));
    }
}

#[test]
fn numwant_is_clamped_and_zero_gives_nothing() {
    let limits = SwarmLimits { max_numwant: 40, ..SwarmLimits::default() };
    let swarms = Swarms::new(limits);
    fill(&swarms, 10, 100);
    let mut r = req(0, false);
    r.numwant = Some(1_000_000);
    assert_eq!(announce(&swarms, &r, 0).1.len(), 40);
    r.numwant = Some(0);
    assert!(announce(&swarms, &r, 0).1.is_empty());
    r.numwant = None;
    assert_eq!(announce(&swarms, &r, 0).1.len(), 40);
}

#[test]
fn small_swarm_hands_out_everyone_but_the_announcer() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 2, 3);
    let (outcome, out) = announce(&swarms, &req(0, false), 0);
    assert_eq!((outcome.complete, outcome.incomplete), (2, 3));
    assert_eq!(out.len(), 4);
}

#[test]
fn stopped_removes_and_completed_moves_and_counts() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 1, 2);
    let mut done = req(0, true);
    done.event = Event::Completed;
    let (outcome, _) = announce(&swarms, &done, 0);
    assert_eq!((outcome.complete, outcome.incomplete), (2, 1));
    assert_eq!(swarms.scrape(&HASH).unwrap().downloaded, 1);
    let mut stop = req(1, false);
    stop.event = Event::Stopped;
    let (outcome, out) = announce(&swarms, &stop, 0);
    assert_eq!((outcome.complete, outcome.incomplete, outcome.membership), (2, 0, Membership::Left));
    assert!(out.is_empty());
    assert_eq!(swarms.totals(), Totals { swarms: 1, seeders: 2, leechers: 0 });
}

#[test]
fn stopping_the_last_peer_drops_the_swarm_and_stopped_never_creates_one() {
    let swarms = Swarms::new(SwarmLimits::default());
    let mut r = req(0, false);
    r.event = Event::Stopped;
    announce(&swarms, &r, 0);
    assert_eq!(swarms.totals().swarms, 0);
    announce(&swarms, &req(0, false), 0);
    announce(&swarms, &r, 0);
    assert_eq!(swarms.totals(), Totals::default());
    assert!(swarms.scrape(&HASH).is_none());
}

#[test]
fn peers_expire_after_the_ttl() {
    let limits = SwarmLimits { peer_ttl_secs: 60, ..SwarmLimits::default() };
    let swarms = Swarms::new(limits);
    announce(&swarms, &req(1, false), 0);
    announce(&swarms, &req(2, false), 30_000);
    assert_eq!(swarms.purge(59_000), Purged::default());
    assert_eq!(swarms.purge(60_000), Purged { peers: 1, swarms: 0 });
    assert_eq!(swarms.purge(90_000), Purged { peers: 1, swarms: 1 });
    assert_eq!(swarms.totals(), Totals::default());
}

#[test]
fn a_full_swarm_serves_newcomers_without_storing_them() {
    let limits = SwarmLimits { max_peers_per_swarm: 3, ..SwarmLimits::default() };
    let swarms = Swarms::new(limits);
    fill(&swarms, 1, 2);
    let (outcome, out) = announce(&swarms, &req(9, false), 0);
    assert_eq!(outcome.membership, Membership::NotStoredSwarmFull);
    assert_eq!(out.len(), 3);
    assert_eq!((outcome.complete, outcome.incomplete), (1, 2));
    // Known peers still refresh and change state.
    let (outcome, _) = announce(&swarms, &req(0, true), 0);
    assert_eq!((outcome.complete, outcome.incomplete, outcome.membership), (2, 1, Membership::Stored));
}

#[test]
fn the_peer_cap_and_the_swarm_cap_hold() {
    let limits = SwarmLimits { max_peers: 2, max_swarms: 2, ..SwarmLimits::default() };
    let swarms = Swarms::new(limits);
    let mut other = req(3, false);
    other.info_hash = InfoHash::from_bytes([8; 20]);
    announce(&swarms, &req(1, false), 0);
    announce(&swarms, &other, 0);
    assert_eq!(announce(&swarms, &req(2, false), 0).0.membership, Membership::NotStoredTrackerFull);
    let mut third = req(4, false);
    third.info_hash = InfoHash::from_bytes([9; 20]);
    assert_eq!(swarms.announce(&third, 0, &mut rng(), &mut Vec::new()), Err(SwarmError::TooManySwarms));
    assert_eq!(swarms.totals(), Totals { swarms: 2, seeders: 0, leechers: 2 });
}

#[test]
fn large_lists_use_an_index_that_stays_consistent() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 0, 100);
    for i in (0..100).step_by(3) {
        let mut r = req(i, false);
        r.event = Event::Stopped;
        announce(&swarms, &r, 0);
    }
    // Every remaining peer is found (refresh, not add) and every removed one is gone.
    for i in 0..100 {
        announce(&swarms, &req(i, false), 0);
    }
    assert_eq!(swarms.totals().leechers, 100);
    for i in 0..95 {
        let mut r = req(i, false);
        r.event = Event::Stopped;
        announce(&swarms, &r, 0);
    }
    assert_eq!(swarms.totals().leechers, 5);
    let (_, out) = announce(&swarms, &req(99, false), 0);
    assert_eq!(out.len(), 4);
}

#[test]
fn ipv6_and_ipv4_peers_are_handed_to_their_own_family() {
    let swarms = Swarms::new(SwarmLimits::default());
    fill(&swarms, 1, 1);
    let mut v6 = req(77, false);
    v6.addr = "[2001:db8::1]:6881".parse().unwrap();
    let (outcome, out) = announce(&swarms, &v6, 0);
    assert_eq!((outcome.complete, outcome.incomplete), (1, 2));
    assert!(out.is_empty());
    let mut v6b = req(78, false);
    v6b.addr = "[2001:db8::2]:6881".parse().unwrap();
    let (_, out) = announce(&swarms, &v6b, 0);
    assert_eq!(out.iter().map(|p| p.addr).collect::<Vec<_>>(), vec![v6.addr]);
    // A v4-mapped source is an IPv4 peer.
    let mut mapped = req(79, false);
    mapped.addr = "[::ffff:10.0.0.1]:6881".parse().unwrap();
    let (_, out) = announce(&swarms, &mapped, 0);
    assert!(out.iter().all(|p| p.addr.is_ipv4()) && out.len() == 2);
}

#[test]
fn one_address_cannot_create_swarms_past_its_budget_but_joins_existing_ones() {
    let limits =
        SwarmLimits { new_swarms_per_address_burst: 2, new_swarms_per_address_per_sec: 1, ..SwarmLimits::default() };
    let swarms = Swarms::new(limits);
    let torrent = |n: u8, peer: u32| {
        let mut r = req(peer, false);
        r.info_hash = InfoHash::from_bytes([n; 20]);
        r
    };
    // req(peer) announces from 10.0.0.<peer>: peer 1 floods, peer 2 is someone else.
    assert!(swarms.announce(&torrent(1, 1), 0, &mut rng(), &mut Vec::new()).is_ok());
    assert!(swarms.announce(&torrent(2, 1), 0, &mut rng(), &mut Vec::new()).is_ok());
    assert_eq!(swarms.announce(&torrent(3, 1), 0, &mut rng(), &mut Vec::new()), Err(SwarmError::TooManyNewSwarms));
    assert!(swarms.announce(&torrent(3, 2), 0, &mut rng(), &mut Vec::new()).is_ok(), "another address starts it");
    assert!(swarms.announce(&torrent(3, 1), 0, &mut rng(), &mut Vec::new()).is_ok(), "joining costs nothing");
    assert!(swarms.announce(&torrent(4, 1), 1000, &mut rng(), &mut Vec::new()).is_ok(), "refilled after 1 s");
    assert_eq!(swarms.totals().swarms, 4);
}
