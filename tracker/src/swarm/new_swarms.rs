//! How many new swarms one address may create: a token bucket per address (an IPv4 address, or
//! an IPv6 /64, which one host can fill with addresses), so that one client announcing random
//! infohashes cannot fill the tracker's swarm cap (`wrk` did in about 20 s) and lock every new
//! torrent out until its peers expire.
//!
//! Pure: the caller passes the time. Buckets that have refilled completely are dropped by
//! [`NewSwarmBudget::forget_full`] (the store's purge), so the map holds only addresses that
//! created swarms lately.

use std::collections::HashMap;
use std::net::IpAddr;

/// An address's bucket: tokens (new swarms it may still create) as of `at_ms`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// Which addresses share a bucket: an IPv4 address, or the /64 of an IPv6 one.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
    }
}

/// New swarms per address: up to `burst` at once, refilled at `per_sec`.
#[derive(Debug)]
pub(crate) struct NewSwarmBudget {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl NewSwarmBudget {
    pub(crate) fn new(burst: u32, per_sec: u32) -> Self {
        Self { burst: f64::from(burst), per_sec: f64::from(per_sec), buckets: HashMap::new() }
    }

    fn refilled(&self, bucket: Bucket, now_ms: u64) -> f64 {
        let secs = now_ms.saturating_sub(bucket.at_ms) as f64 / 1000.0;
        (bucket.tokens + secs * self.per_sec).min(self.burst)
    }

    /// Takes one new swarm from `ip`'s budget; `false` when it has none left.
    pub(crate) fn take(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        let key = bucket_key(ip);
        let tokens = match self.buckets.get(&key) {
            Some(&bucket) => self.refilled(bucket, now_ms),
            None => self.burst,
        };
        if tokens < 1.0 {
            return false;
        }
        self.buckets.insert(key, Bucket { tokens: tokens - 1.0, at_ms: now_ms });
        true
    }

    /// Drops the buckets that are full again (as good as never used).
    pub(crate) fn forget_full(&mut self, now_ms: u64) {
        let (burst, per_sec) = (self.burst, self.per_sec);
        self.buckets.retain(|_, b| {
            let secs = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
            b.tokens + secs * per_sec < burst
        });
    }

    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_its_rate_and_others_are_unaffected() {
        let mut budget = NewSwarmBudget::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!((0..3).all(|_| budget.take(a, 0)));
        assert!(!budget.take(a, 0), "past the burst");
        assert!(budget.take(b, 0), "another address has its own budget");
        assert!(!budget.take(a, 400), "0.8 of a token after 400 ms at 2/s");
        assert!(budget.take(a, 500));
        assert!(!budget.take(a, 500));
        // Refilled to the burst and no further.
        assert!((0..3).all(|_| budget.take(a, 60_000)));
        assert!(!budget.take(a, 60_000));
    }

    #[test]
    fn one_ipv6_slash_64_is_one_budget() {
        let mut budget = NewSwarmBudget::new(1, 1);
        assert!(budget.take("2001:db8::1".parse().unwrap(), 0));
        assert!(!budget.take("2001:db8::ffff:1".parse().unwrap(), 0), "same /64");
        assert!(budget.take("2001:db8:0:1::1".parse().unwrap(), 0), "another /64");
        assert!(budget.take("::ffff:10.0.0.9".parse().unwrap(), 0), "a mapped IPv4 address is its own");
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut budget = NewSwarmBudget::new(2, 1);
        budget.take("10.0.0.1".parse().unwrap(), 0);
        budget.take("10.0.0.2".parse().unwrap(), 0);
        budget.take("10.0.0.2".parse().unwrap(), 0);
        budget.forget_full(1500);
        assert_eq!(budget.addresses(), 1, "the first refilled after 1 s, the second needs 2 s");
        budget.forget_full(2000);
        assert_eq!(budget.addresses(), 0);
    }
}
