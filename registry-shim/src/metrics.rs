//! The shim's Prometheus metrics, on a registry of its own (served at `/metrics`).

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::origin::Source;

/// The shim's counters since start, as the live page shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ShimCounts {
    /// Blob bytes fetched for clients, by source.
    pub from_peers: u64,
    pub from_webseed: u64,
    pub from_upstream: u64,
    /// Bytes this host sent to BitTorrent peers (seeding onward).
    pub bittorrent_uploaded_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub verification_failures: u64,
    pub evicted_blobs: u64,
}

/// Every metric the shim exports.
pub struct ShimMetrics {
    registry: Registry,
    requests: IntCounterVec,
    cache: IntCounterVec,
    bytes: IntCounterVec,
    pub verification_failures: IntCounter,
    /// Upstream manifest fetches that failed, by `reason`.
    pub manifest_failures: IntCounterVec,
    pub bittorrent_uploaded_bytes: IntCounter,
    pub blobs: IntGauge,
    pub bytes_stored: IntGauge,
    pub evicted_blobs: IntCounter,
    pub evicted_bytes: IntCounter,
    /// Connections closed at once for being over the per-address cap.
    pub refused_connections: IntCounter,
}

impl Default for ShimMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ShimMetrics {
    pub fn new() -> Self {
        let registry = shoal_telemetry::service_registry();
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(v.clone())).expect("unique metric");
            v
        };
        let requests = vec(
            "shoal_shim_requests_total",
            "Distribution API requests by endpoint and status",
            &["endpoint", "status"],
        );
        let cache = vec(
            "shoal_shim_blob_cache_total",
            "Blob requests answered from the cache (hit) or not (miss)",
            &["result"],
        );
        let bytes = vec(
            "shoal_shim_blob_bytes_total",
            "Blob bytes fetched for clients, by source: BitTorrent peers, webseed, upstream registry",
            &["source"],
        );
        let manifest_failures =
            vec("shoal_shim_manifest_failures_total", "Upstream manifest fetches that failed, by reason", &["reason"]);
        let verification_failures = IntCounter::new(
            "shoal_shim_verification_failures_total",
            "Blobs whose bytes did not match their digest (discarded, client aborted)",
        )
        .expect("valid metric");
        registry.register(Box::new(verification_failures.clone())).expect("unique metric");
        let bittorrent_uploaded_bytes = IntCounter::new(
            "shoal_shim_bittorrent_uploaded_bytes_total",
            "Bytes uploaded to BitTorrent peers since start",
        )
        .expect("valid metric");
        registry.register(Box::new(bittorrent_uploaded_bytes.clone())).expect("unique metric");
        let gauge = |name: &str, help: &str| shoal_telemetry::gauge(&registry, name, help);
        let counter = |name: &str, help: &str| shoal_telemetry::counter(&registry, name, help);
        let blobs = gauge("shoal_shim_blobs", "Blobs in the shim's store");
        let bytes_stored = gauge("shoal_shim_stored_bytes", "Bytes of blobs in the shim's store");
        let evicted_blobs =
            counter("shoal_shim_evicted_blobs_total", "Blobs evicted to keep the store under its limit");
        let evicted_bytes = counter("shoal_shim_evicted_bytes_total", "Bytes of blobs evicted");
        let refused_connections = counter(
            "shoal_shim_refused_connections_total",
            "Connections closed at once: their address already had the most open connections allowed",
        );
        Self {
            registry,
            requests,
            cache,
            bytes,
            verification_failures,
            manifest_failures,
            bittorrent_uploaded_bytes,
            blobs,
            bytes_stored,
            evicted_blobs,
            evicted_bytes,
            refused_connections,
        }
    }

    /// What the cache policy moves.
    pub fn cache_metrics(&self) -> shoal_store::cache::CacheMetrics {
        shoal_store::cache::CacheMetrics {
            evicted_blobs: self.evicted_blobs.clone(),
            evicted_bytes: self.evicted_bytes.clone(),
            blobs: self.blobs.clone(),
            bytes_stored: self.bytes_stored.clone(),
        }
    }

    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests.with_label_values(&[endpoint, &status.to_string()]).inc();
    }

    pub fn cache(&self, hit: bool) {
        self.cache.with_label_values(&[if hit { "hit" } else { "miss" }]).inc();
    }

    /// The byte counter of one source.
    pub fn bytes(&self, source: Source) -> IntCounter {
        let label = match source {
            Source::Peers => "peers",
            Source::Webseed => "webseed",
            Source::Upstream => "upstream",
        };
        self.bytes.with_label_values(&[label])
    }

    /// The counters the live page shows.
    pub(crate) fn counts(&self) -> ShimCounts {
        ShimCounts {
            from_peers: self.bytes(Source::Peers).get(),
            from_webseed: self.bytes(Source::Webseed).get(),
            from_upstream: self.bytes(Source::Upstream).get(),
            bittorrent_uploaded_bytes: self.bittorrent_uploaded_bytes.get(),
            cache_hits: self.cache.with_label_values(&["hit"]).get(),
            cache_misses: self.cache.with_label_values(&["miss"]).get(),
            verification_failures: self.verification_failures.get(),
            evicted_blobs: self.evicted_blobs.get(),
        }
    }

    /// The swarm session's rate caps, as gauges (once, at start).
    pub(crate) fn show_rate_caps(&self, upload: Option<u32>, download: Option<u32>) {
        shoal_telemetry::show_rate_caps(&self.registry, "shim", upload, download);
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}
