//! Shoal patch: how many chunk requests to keep outstanding at a peer, from how fast it sends.
//!
//! A fixed window is wrong one way or the other. One seeder over loopback needs 64 requests
//! of 16 KiB in flight to run at 300 MB/s. In a swarm of hosts on 50 mbit links, 64 at each of
//! 15 peers commits a host to pieces for seconds ahead (a piece reserved at a peer that shares
//! its link 15 ways arrives 2-3 s later, while other hosts wait for it to be relayed), and the
//! lab's p50 went from 1.35x to 1.2x ideal with 8. So the window covers [`WINDOW_TIME`] of the
//! peer's measured rate, between [`MIN_WINDOW`] and the configured maximum.
//!
//! The window is the only thing that limits a peer whose round trip is longer than
//! [`WINDOW_TIME`], so such a peer's rate, and with it the window, would shrink to
//! [`MIN_WINDOW`]; 300 ms covers the round trips of nearly every path on the internet.
//!
//! Pure: the caller passes the time of each chunk's arrival.

use std::time::{Duration, Instant};

/// How far ahead of a peer's measured rate requests are kept outstanding.
pub(crate) const WINDOW_TIME: Duration = Duration::from_millis(300);
/// The smallest window, whatever the rate (one piece of 128 KiB, half of a 256 KiB one).
pub(crate) const MIN_WINDOW: usize = 8;
/// Bytes are counted over samples of at least this long before the rate is updated.
const SAMPLE: Duration = Duration::from_millis(250);
/// The size of one request: librqbit asks for 16 KiB chunks.
const CHUNK: f64 = 16384.0;

#[derive(Debug)]
pub(crate) struct RateWindow {
    cap: usize,
    window: usize,
    /// Bytes/s, smoothed over samples; `None` until the first sample ends.
    rate: Option<f64>,
    sample_start: Option<Instant>,
    last_arrival: Option<Instant>,
    sample_bytes: u64,
}

impl RateWindow {
    /// Starts at the smallest window: the first sample (a quarter of a second) grows it to the
    /// peer's rate.
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self { cap, window: MIN_WINDOW.min(cap), rate: None, sample_start: None, last_arrival: None, sample_bytes: 0 }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// A lower maximum (the peer's `reqq`); returns the window if that changed it.
    pub(crate) fn set_cap(&mut self, cap: usize) -> Option<usize> {
        self.cap = cap.max(1);
        self.resize()
    }

    /// A chunk of `bytes` arrived at `now`; returns the new window when it changes.
    ///
    /// A gap of more than a sample between two chunks (we had nothing to ask this peer for)
    /// starts a new sample without counting the gap, so an idle spell does not read as a slow
    /// peer.
    pub(crate) fn on_chunk(&mut self, now: Instant, bytes: u64) -> Option<usize> {
        let idle = self.last_arrival.is_some_and(|last| now.saturating_duration_since(last) > SAMPLE);
        self.last_arrival = Some(now);
        let start = match self.sample_start {
            Some(start) if !idle => start,
            _ => {
                // This chunk's bytes were asked for before the sample starts: not counted.
                self.sample_start = Some(now);
                self.sample_bytes = 0;
                return None;
            }
        };
        self.sample_bytes += bytes;
        let elapsed = now.saturating_duration_since(start);
        if elapsed < SAMPLE {
            return None;
        }
        let sample = self.sample_bytes as f64 / elapsed.as_secs_f64();
        self.rate = Some(match self.rate {
            Some(rate) => (rate + sample) / 2.0,
            None => sample,
        });
        self.sample_start = Some(now);
        self.sample_bytes = 0;
        self.resize()
    }

    fn resize(&mut self) -> Option<usize> {
        let wanted = match self.rate {
            Some(rate) => (rate * WINDOW_TIME.as_secs_f64() / CHUNK).ceil() as usize,
            None => MIN_WINDOW,
        };
        let window = wanted.clamp(MIN_WINDOW.min(self.cap), self.cap);
        (window != self.window).then(|| {
            self.window = window;
            window
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB16: u64 = 16384;

    /// Feeds chunks at `bytes_per_sec` for `secs` from `t`; returns the time after.
    fn feed(w: &mut RateWindow, t: Instant, bytes_per_sec: u64, secs: f64) -> Instant {
        let every = Duration::from_secs_f64(KIB16 as f64 / bytes_per_sec as f64);
        let mut now = t;
        let end = t + Duration::from_secs_f64(secs);
        while now < end {
            w.on_chunk(now, KIB16);
            now += every;
        }
        now
    }

    #[test]
    fn a_fast_peer_gets_the_whole_window_after_one_sample() {
        let mut w = RateWindow::new(64);
        assert_eq!(w.window(), MIN_WINDOW);
        feed(&mut w, Instant::now(), 300_000_000, 0.3);
        assert_eq!(w.window(), 64);
    }

    #[test]
    fn a_peer_sharing_a_50_mbit_link_15_ways_gets_the_smallest_window() {
        let mut w = RateWindow::new(64);
        // 6.25 MB/s / 15: about 0.42 MB/s, 0.3 s of which is 7.6 chunks.
        feed(&mut w, Instant::now(), 416_000, 3.0);
        assert_eq!(w.window(), MIN_WINDOW);
    }

    #[test]
    fn the_window_follows_the_rate_both_ways() {
        let mut w = RateWindow::new(64);
        let t = feed(&mut w, Instant::now(), 2_000_000, 2.0);
        // 2 MB/s for 0.3 s: 36.6 chunks.
        assert_eq!(w.window(), 37);
        feed(&mut w, t, 500_000, 3.0);
        assert_eq!(w.window(), 10);
    }

    #[test]
    fn an_idle_spell_does_not_shrink_the_window() {
        let mut w = RateWindow::new(64);
        let t = feed(&mut w, Instant::now(), 300_000_000, 0.5);
        assert_eq!(w.window(), 64);
        // Nothing asked for 5 s, then chunks at the old rate again.
        let t = t + Duration::from_secs(5);
        assert_eq!(w.on_chunk(t, KIB16), None);
        feed(&mut w, t, 300_000_000, 0.5);
        assert_eq!(w.window(), 64);
    }

    #[test]
    fn the_peers_reqq_caps_the_window() {
        let mut w = RateWindow::new(64);
        let t = feed(&mut w, Instant::now(), 300_000_000, 0.3);
        assert_eq!(w.set_cap(20), Some(20));
        feed(&mut w, t, 300_000_000, 0.3);
        assert_eq!(w.window(), 20);
        let tiny = RateWindow::new(2);
        assert_eq!(tiny.window(), 2, "a cap under the smallest window wins");
    }
}
