//! The seeder's Prometheus metrics, on a registry of its own (served at `/metrics`).

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Registry, TextEncoder};
use shoal_telemetry::{counter, counter_vec, gauge};

/// Every metric the seeder exports.
pub struct SeederMetrics {
    registry: Registry,
    pub blobs: IntGauge,
    pub bytes_stored: IntGauge,
    pub bittorrent_uploaded_bytes: IntCounter,
    pub webseed_uploaded_bytes: IntCounter,
    pub upstream_fetches: IntCounter,
    /// By `reason` ([`crate::MirrorError::reason`]).
    pub upstream_failures: IntCounterVec,
    /// Images whose mirroring failed, by `reason`.
    pub mirror_failures: IntCounterVec,
    pub digest_mismatches: IntCounter,
    /// Connections closed at once for being over the per-address cap.
    pub refused_connections: IntCounter,
    pub evicted_blobs: IntCounter,
    pub evicted_bytes: IntCounter,
    pub mirror_seconds: Histogram,
    /// Seeders in the ring, this one included.
    pub ring_members: IntGauge,
    /// Stored blobs this seeder owns in the ring (the rest are left over from an earlier ring).
    pub ring_owned_blobs: IntGauge,
    /// Torrent requests forwarded to a blob's owners, by `outcome`.
    pub ring_forwarded: IntCounterVec,
    /// Blobs handed to their other owners after a fetch here, by `outcome`.
    pub ring_replications: IntCounterVec,
}

impl SeederMetrics {
    /// What the cache policy moves.
    pub fn cache(&self) -> shoal_store::cache::CacheMetrics {
        shoal_store::cache::CacheMetrics {
            evicted_blobs: self.evicted_blobs.clone(),
            evicted_bytes: self.evicted_bytes.clone(),
            blobs: self.blobs.clone(),
            bytes_stored: self.bytes_stored.clone(),
        }
    }

    pub fn new() -> Self {
        let registry = shoal_telemetry::service_registry();
        let gauge = |name: &str, help: &str| gauge(&registry, name, help);
        let counter = |name: &str, help: &str| counter(&registry, name, help);
        let blobs = gauge("shoal_seeder_blobs", "Blobs in the store");
        let bytes_stored = gauge("shoal_seeder_stored_bytes", "Bytes of blobs in the store");
        let bittorrent_uploaded_bytes =
            counter("shoal_seeder_bittorrent_uploaded_bytes_total", "Bytes uploaded to BitTorrent peers since start");
        let webseed_uploaded_bytes =
            counter("shoal_seeder_webseed_uploaded_bytes_total", "Bytes of blob bodies served by the webseed");
        let upstream_fetches = counter("shoal_seeder_upstream_fetches_total", "Blob fetches from upstream registries");
        let upstream_failures = counter_vec(
            &registry,
            "shoal_seeder_upstream_failures_total",
            "Failed upstream blob fetches, by reason",
            "reason",
        );
        let mirror_failures = counter_vec(
            &registry,
            "shoal_seeder_mirror_failures_total",
            "Images whose mirroring failed, by reason",
            "reason",
        );
        let digest_mismatches = counter(
            "shoal_seeder_digest_mismatches_total",
            "Upstream blobs discarded because their bytes did not match",
        );
        let refused_connections = counter(
            "shoal_seeder_refused_connections_total",
            "Connections closed at once: their address already had the most open connections allowed",
        );
        let evicted_blobs =
            counter("shoal_seeder_evicted_blobs_total", "Blobs evicted to keep the store under its limit");
        let evicted_bytes = counter("shoal_seeder_evicted_bytes_total", "Bytes of blobs evicted");
        let mirror_seconds = Histogram::with_opts(
            HistogramOpts::new("shoal_seeder_mirror_seconds", "Time to mirror one image (manifests and blobs)")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
        )
        .expect("valid metric");
        registry.register(Box::new(mirror_seconds.clone())).expect("unique metric");
        let ring_members = gauge("shoal_seeder_ring_members", "Seeders in the ring (--member), this one included");
        let ring_owned_blobs =
            gauge("shoal_seeder_ring_owned_blobs", "Stored blobs this seeder owns in the ring (primary or replica)");
        let ring_forwarded = counter_vec(
            &registry,
            "shoal_seeder_ring_forwarded_total",
            "Torrent requests for blobs other seeders own, forwarded to them, by outcome",
            "outcome",
        );
        let ring_replications = counter_vec(
            &registry,
            "shoal_seeder_ring_replications_total",
            "Blobs fetched here and handed to their other owners, by outcome (held, fetching, failed)",
            "outcome",
        );
        Self {
            registry,
            blobs,
            bytes_stored,
            bittorrent_uploaded_bytes,
            webseed_uploaded_bytes,
            upstream_fetches,
            upstream_failures,
            mirror_failures,
            digest_mismatches,
            refused_connections,
            evicted_blobs,
            evicted_bytes,
            mirror_seconds,
            ring_members,
            ring_owned_blobs,
            ring_forwarded,
            ring_replications,
        }
    }

    /// The BitTorrent session's rate caps, as gauges (once, at start).
    pub(crate) fn show_rate_caps(&self, upload: Option<u32>, download: Option<u32>) {
        shoal_telemetry::show_rate_caps(&self.registry, "seeder", upload, download);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}

impl Default for SeederMetrics {
    fn default() -> Self {
        Self::new()
    }
}
