//! Prometheus metrics of the tracker, with the hot-path handles resolved once at start.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::shard::Role;
use crate::swarm::{Event, Totals};

pub struct Metrics {
    registry: Registry,
    /// Indexed like [`event_index`].
    announces: [IntCounter; 4],
    pub scrapes: IntCounter,
    pub refused_connections: IntCounter,
    failures: IntCounterVec,
    pub not_stored: IntCounterVec,
    swarms: IntGauge,
    seeders: IntGauge,
    leechers: IntGauge,
    pub announce_seconds: Histogram,
    /// Indexed like [`role_index`].
    roles: [IntCounter; 3],
    pub members: IntGauge,
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Owner => 0,
        Role::Failover => 1,
        Role::Outside => 2,
    }
}

fn event_index(event: Event) -> usize {
    match event {
        Event::None => 0,
        Event::Started => 1,
        Event::Completed => 2,
        Event::Stopped => 3,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = shoal_telemetry::service_registry();
        let by_event = IntCounterVec::new(
            Opts::new("shoal_tracker_announces_total", "Announces served, by event (HTTP and UDP)"),
            &["event"],
        )
        .expect("static metric definition");
        let announces = [Event::None, Event::Started, Event::Completed, Event::Stopped]
            .map(|e| by_event.with_label_values(&[e.label()]));
        let scrapes =
            IntCounter::new("shoal_tracker_scrapes_total", "Scrapes served").expect("static metric definition");
        let refused_connections = IntCounter::new(
            "shoal_tracker_refused_connections_total",
            "HTTP connections closed at once for being over the per-address cap",
        )
        .expect("static metric definition");
        let failures = IntCounterVec::new(
            Opts::new("shoal_tracker_failures_total", "Requests answered with a failure reason, by reason"),
            &["reason"],
        )
        .expect("static metric definition");
        let not_stored = IntCounterVec::new(
            Opts::new("shoal_tracker_peers_not_stored_total", "Announcers served but not remembered, by cap hit"),
            &["cap"],
        )
        .expect("static metric definition");
        let swarms = IntGauge::new("shoal_tracker_swarms", "Torrents with at least one peer").expect("static");
        let seeders = IntGauge::new("shoal_tracker_seeders", "Peers with the whole torrent").expect("static");
        let leechers = IntGauge::new("shoal_tracker_leechers", "Peers still downloading").expect("static");
        let by_role = IntCounterVec::new(
            Opts::new(
                "shoal_tracker_announces_by_role_total",
                "Announces served as the torrent's owner tracker, as a failover tier, or outside its tiers \
                 (only with --member)",
            ),
            &["role"],
        )
        .expect("static metric definition");
        let roles = [Role::Owner, Role::Failover, Role::Outside].map(|r| by_role.with_label_values(&[r.label()]));
        let members =
            IntGauge::new("shoal_tracker_members", "Tracker members this tracker knows of (0: alone, no --member)")
                .expect("static metric definition");
        let announce_seconds = Histogram::with_opts(
            HistogramOpts::new("shoal_tracker_announce_seconds", "Time to serve an announce, parse to reply")
                .buckets(vec![5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3]),
        )
        .expect("static metric definition");
        for c in [
            Box::new(by_event) as Box<dyn prometheus::core::Collector>,
            Box::new(scrapes.clone()),
            Box::new(refused_connections.clone()),
            Box::new(failures.clone()),
            Box::new(not_stored.clone()),
            Box::new(swarms.clone()),
            Box::new(seeders.clone()),
            Box::new(leechers.clone()),
            Box::new(announce_seconds.clone()),
            Box::new(by_role),
            Box::new(members.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            announces,
            scrapes,
            refused_connections,
            failures,
            not_stored,
            swarms,
            seeders,
            leechers,
            announce_seconds,
            roles,
            members,
        }
    }

    pub fn served_as(&self, role: Role) {
        self.roles[role_index(role)].inc();
    }

    pub fn announced(&self, event: Event) {
        self.announces[event_index(event)].inc();
    }

    pub fn failed(&self, reason: &str) {
        self.failures.with_label_values(&[reason]).inc();
    }

    /// The text exposition, with the gauges refreshed from `totals`.
    pub fn render(&self, totals: Totals) -> String {
        self.swarms.set(totals.swarms as i64);
        self.seeders.set(totals.seeders as i64);
        self.leechers.set(totals.leechers as i64);
        TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}
