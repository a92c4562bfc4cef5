//! The seeder's upload-rate history for the live page: successive samples of the two upload
//! counters (BitTorrent, webseed) turned into rates, the last two minutes kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use shoal_store::seeding::Seeding;
use shoal_store::usage::now_ms;

use crate::metrics::SeederMetrics;

/// How many rate samples (one a second) the history keeps: two minutes.
const HISTORY_SAMPLES: usize = 120;

/// Upload rates over one sampling interval, ending at `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RateSample {
    pub at_ms: u64,
    pub bittorrent_bytes_per_s: u64,
    pub webseed_bytes_per_s: u64,
}

/// Upload rates from successive samples of the two upload counters; keeps the last `capacity`.
#[derive(Debug)]
struct ThroughputHistory {
    capacity: usize,
    /// The previous sample: (at_ms, BitTorrent total, webseed total).
    last: Option<(u64, u64, u64)>,
    rates: VecDeque<RateSample>,
}

impl ThroughputHistory {
    fn new(capacity: usize) -> Self {
        Self { capacity, last: None, rates: VecDeque::with_capacity(capacity) }
    }

    /// Records the counters' totals at `at_ms`. A counter that went down (a restarted session)
    /// counts as no upload for that interval; a sample not later than the previous one is
    /// ignored.
    fn record(&mut self, at_ms: u64, bittorrent_total: u64, webseed_total: u64) {
        if let Some((last_ms, last_bt, last_ws)) = self.last {
            if at_ms <= last_ms {
                return;
            }
            let elapsed = at_ms - last_ms;
            let rate = |now: u64, before: u64| now.saturating_sub(before).saturating_mul(1000) / elapsed;
            if self.rates.len() == self.capacity {
                self.rates.pop_front();
            }
            if self.capacity > 0 {
                self.rates.push_back(RateSample {
                    at_ms,
                    bittorrent_bytes_per_s: rate(bittorrent_total, last_bt),
                    webseed_bytes_per_s: rate(webseed_total, last_ws),
                });
            }
        }
        self.last = Some((at_ms, bittorrent_total, webseed_total));
    }

    /// Oldest first.
    fn rates(&self) -> Vec<RateSample> {
        self.rates.iter().copied().collect()
    }
}

/// The history shared by the sampling task and the API.
#[derive(Debug)]
pub(crate) struct Throughput(Mutex<ThroughputHistory>);

impl Throughput {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(ThroughputHistory::new(HISTORY_SAMPLES)))
    }

    fn history(&self) -> std::sync::MutexGuard<'_, ThroughputHistory> {
        // The history is plain numbers; a panic mid-update leaves nothing inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Oldest first.
    pub(crate) fn rates(&self) -> Vec<RateSample> {
        self.history().rates()
    }
}

impl Default for Throughput {
    fn default() -> Self {
        Self::new()
    }
}

/// Samples the upload counters once a second, forever (spawn it; it ends with the runtime).
pub(crate) async fn record_throughput(seeding: Arc<Seeding>, metrics: Arc<SeederMetrics>, throughput: Arc<Throughput>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (bt, ws) = (seeding.uploaded_bytes(), metrics.webseed_uploaded_bytes.get());
        throughput.history().record(now_ms(), bt, ws);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates a 10-sample history gives after `samples` of (at_ms, BitTorrent total, webseed
    /// total), as (at_ms, BitTorrent bytes/s, webseed bytes/s).
    fn rates_after(samples: &[(u64, u64, u64)]) -> Vec<(u64, u64, u64)> {
        let mut h = ThroughputHistory::new(10);
        for &(at_ms, bittorrent, webseed) in samples {
            h.record(at_ms, bittorrent, webseed);
        }
        h.rates().iter().map(|r| (r.at_ms, r.bittorrent_bytes_per_s, r.webseed_bytes_per_s)).collect()
    }

    #[test]
    fn rates_are_deltas_per_second_between_samples() {
        assert!(rates_after(&[(1_000, 0, 0)]).is_empty(), "one sample is no interval");
        let samples = [(1_000, 0, 0), (2_000, 4096, 100), (2_500, 4096 + 1000, 100)];
        assert_eq!(rates_after(&samples), [(2_000, 4096, 100), (2_500, 2000, 0)]);
    }

    #[test]
    fn rates_survive_counter_resets_and_clock_steps_back() {
        // The third sample is not later than the second: ignored.
        let samples = [(1_000, 5000, 5000), (2_000, 10, 6000), (1_500, 999_999, 999_999), (3_000, 1010, 6000)];
        assert_eq!(rates_after(&samples), [(2_000, 0, 1000), (3_000, 1000, 0)]);
    }

    #[test]
    fn the_history_keeps_the_newest_samples() {
        let mut h = ThroughputHistory::new(3);
        for i in 0..=5u64 {
            h.record(i * 1000, i * 10, 0);
        }
        let at: Vec<_> = h.rates().iter().map(|r| r.at_ms).collect();
        assert_eq!(at, vec![3000, 4000, 5000]);
        assert!(h.rates().iter().all(|r| r.bittorrent_bytes_per_s == 10));

        let mut none = ThroughputHistory::new(0);
        none.record(0, 0, 0);
        none.record(1000, 5, 5);
        assert!(none.rates().is_empty());
    }
}
