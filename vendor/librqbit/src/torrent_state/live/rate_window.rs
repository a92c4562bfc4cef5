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
//! A peer that answers in bursts (Transmission sends what it was asked for about every 0.5 s)
//! is limited by the window itself: its rate is the window per burst, and 300 ms of that rate is
//! less than the window, so the window would sit at [`MIN_WINDOW`] (8 x 16 KiB per half second:
//! 262 KB/s from a Transmission that gave aria2c 2.6 MB/s). So a pause in which the peer held
//! our requests, after a burst that delivered the whole window much faster than the pause
//! lasted, doubles a floor under the window ([`RateWindow::on_chunk`]); a link-limited peer
//! delivers evenly and never looks like that.
//!
//! Pure: the caller passes the time of each chunk's arrival.

use std::time::{Duration, Instant};

/// How far ahead of a peer's measured rate requests are kept outstanding.
pub(crate) const WINDOW_TIME: Duration = Duration::from_millis(300);
/// The smallest window, whatever the rate (one piece of 128 KiB, half of a 256 KiB one).
pub(crate) const MIN_WINDOW: usize = 8;
/// Bytes are counted over samples of at least this long before the rate is updated.
const SAMPLE: Duration = Duration::from_millis(250);
/// A gap between two chunks this long ends a burst.
const BURST_GAP: Duration = Duration::from_millis(100);
/// Requests sent this soon after a chunk count as outstanding from that chunk on: the requester
/// refills the window a moment after each arrival, not at the same instant.
const REFILL_SLACK: Duration = Duration::from_millis(20);
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
    /// Since when the peer has held at least one of our requests (`None`: it holds none).
    busy_since: Option<Instant>,
    /// When the current burst's first chunk arrived, and how many chunks it has had.
    burst_start: Option<Instant>,
    burst_chunks: usize,
    /// The window when the current burst began: what the peer had been asked for when it sent it.
    burst_window: usize,
    /// The window never goes below this: raised by bursts that delivered the whole window.
    floor: usize,
}

impl RateWindow {
    /// Starts at the smallest window: the first sample (a quarter of a second) grows it to the
    /// peer's rate.
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            window: MIN_WINDOW.min(cap),
            rate: None,
            sample_start: None,
            last_arrival: None,
            sample_bytes: 0,
            busy_since: None,
            burst_start: None,
            burst_chunks: 0,
            burst_window: MIN_WINDOW.min(cap),
            floor: MIN_WINDOW,
        }
    }

    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// A lower maximum (the peer's `reqq`); returns the window if that changed it.
    pub(crate) fn set_cap(&mut self, cap: usize) -> Option<usize> {
        self.cap = cap.max(1);
        self.resize()
    }

    /// A request was sent to the peer at `now`.
    pub(crate) fn on_request(&mut self, now: Instant) {
        self.busy_since.get_or_insert(now);
    }

    /// A chunk of `bytes` arrived at `now`, leaving `still_requested` of our requests at the
    /// peer; returns the new window when it changes.
    ///
    /// A gap of more than a sample between two chunks in which the peer held none of our
    /// requests (we had nothing to ask it for) starts a new sample without counting the gap,
    /// so an idle spell does not read as a slow peer. A gap in which it held them is its rate.
    pub(crate) fn on_chunk(&mut self, now: Instant, bytes: u64, still_requested: usize) -> Option<usize> {
        let last = self.last_arrival.replace(now);
        let held_requests =
            matches!((last, self.busy_since), (Some(last), Some(busy)) if busy <= last + REFILL_SLACK);
        let gap = last.map(|last| now.saturating_duration_since(last));
        self.busy_since = if still_requested > 0 { Some(self.busy_since.unwrap_or(now)) } else { None };
        let pause = gap.filter(|gap| *gap >= BURST_GAP);
        if let (Some(gap), Some(last)) = (pause, last) {
            if held_requests {
                self.after_pause(last, gap);
            }
        }
        if pause.is_some() || self.burst_start.is_none() {
            self.burst_start = Some(now);
            self.burst_chunks = 0;
            self.burst_window = self.window;
        }
        self.burst_chunks += 1;
        let idle = gap.is_some_and(|gap| gap > SAMPLE) && !held_requests;
        let start = match self.sample_start {
            Some(start) if !idle => start,
            _ => {
                // This chunk's bytes were asked for before the sample starts: not counted.
                self.sample_start = Some(now);
                self.sample_bytes = 0;
                return self.resize();
            }
        };
        self.sample_bytes += bytes;
        let elapsed = now.saturating_duration_since(start);
        if elapsed < SAMPLE {
            return self.resize();
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

    /// The peer held our requests for `gap` and sent nothing. If the burst before delivered the
    /// whole window in much less time than that, the window was what held the peer back: raise
    /// the floor. If it delivered less, or slowly, the peer is limited by something else.
    /// `burst_end` is the burst's last chunk, the one before the pause.
    fn after_pause(&mut self, burst_end: Instant, gap: Duration) {
        let span = self.burst_start.map(|start| burst_end.saturating_duration_since(start)).unwrap_or_default();
        // Three quarters: requests sent just as the peer sent its burst wait for the next one.
        if self.burst_chunks * 4 >= self.burst_window * 3 && span * 2 <= gap {
            self.floor = (self.window * 2).min(self.cap).max(self.floor);
        } else {
            self.floor = (self.floor / 2).max(MIN_WINDOW);
        }
    }

    fn resize(&mut self) -> Option<usize> {
        let wanted = match self.rate {
            Some(rate) => (rate * WINDOW_TIME.as_secs_f64() / CHUNK).ceil() as usize,
            None => MIN_WINDOW,
        };
        let window = wanted.max(self.floor).clamp(MIN_WINDOW.min(self.cap), self.cap);
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

    /// Feeds chunks at `bytes_per_sec` for `secs` from `t`, the peer holding requests all along
    /// (a link-limited peer); returns the time after.
    fn feed(w: &mut RateWindow, t: Instant, bytes_per_sec: u64, secs: f64) -> Instant {
        let every = Duration::from_secs_f64(KIB16 as f64 / bytes_per_sec as f64);
        let mut now = t;
        let end = t + Duration::from_secs_f64(secs);
        w.on_request(t);
        while now < end {
            w.on_chunk(now, KIB16, w.window());
            now += every;
        }
        now
    }

    /// A peer that sends everything it was asked for in one burst every `period` (as
    /// Transmission does); returns the time after `bursts` of them.
    fn bursts(w: &mut RateWindow, t: Instant, period: Duration, bursts: usize) -> Instant {
        let mut now = t;
        w.on_request(now);
        for _ in 0..bursts {
            let asked = w.window();
            for i in 0..asked {
                // The requester refills each slot as its chunk arrives.
                w.on_chunk(now + Duration::from_micros(100 * i as u64), KIB16, asked);
            }
            now += period;
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
        // The last chunk leaves nothing requested; nothing asked for 5 s, then chunks at the
        // old rate again.
        w.on_chunk(t, KIB16, 0);
        let t = t + Duration::from_secs(5);
        w.on_request(t);
        assert_eq!(w.on_chunk(t + Duration::from_millis(1), KIB16, 1), None);
        feed(&mut w, t, 300_000_000, 0.5);
        assert_eq!(w.window(), 64);
    }

    #[test]
    fn a_peer_that_answers_in_bursts_gets_a_window_that_keeps_its_bursts_full() {
        // 8 chunks every 0.5 s is 262 KB/s, 0.3 s of which is under the smallest window: sized
        // by rate alone, the window would stay at 8 and so would the bursts.
        let mut w = RateWindow::new(64);
        bursts(&mut w, Instant::now(), Duration::from_millis(500), 6);
        assert_eq!(w.window(), 64, "each full burst doubles the window");
    }

    #[test]
    fn bursts_that_do_not_fill_the_window_let_it_fall_back() {
        let mut w = RateWindow::new(64);
        let t = bursts(&mut w, Instant::now(), Duration::from_millis(500), 6);
        assert_eq!(w.window(), 64);
        // Now 4 chunks per 0.5 s, whatever was asked: the peer's own limit, not the window's.
        let mut now = t;
        for _ in 0..8 {
            for i in 0..4 {
                w.on_chunk(now + Duration::from_micros(100 * i), KIB16, w.window());
            }
            now += Duration::from_millis(500);
        }
        assert_eq!(w.window(), MIN_WINDOW);
    }

    #[test]
    fn a_link_limited_peer_with_hiccups_keeps_its_rate_window() {
        // 0.42 MB/s, evenly, with a 150 ms hiccup every second: never a burst of the whole
        // window, so no floor.
        let mut w = RateWindow::new(64);
        let mut t = Instant::now();
        for _ in 0..5 {
            t = feed(&mut w, t, 416_000, 1.0) + Duration::from_millis(150);
        }
        assert_eq!(w.window(), MIN_WINDOW);
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
