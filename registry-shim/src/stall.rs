//! When a swarm download that has gone quiet has stalled, so the rest should come over HTTP.
//!
//! "Nothing for 3 s" alone is the wrong test with stock peers: Transmission connects, sends a
//! full bitfield and unchokes a new peer only at its next rechoke (every 10 s), so its first
//! bytes come 9-11 s later, and a 3 s deadline took the whole blob from upstream although a
//! peer was about to send it. But a swarm that holds nothing we lack, or peers that have choked
//! us for longer than a rechoke cycle, must still fall back fast. So a quiet download waits
//! while a peer that holds a missing piece either unchoked us just now or is still new enough
//! to unchoke us at its next rechoke, and falls back otherwise.
//!
//! Pure: the caller passes how long the download has been quiet and the swarm's
//! [`SwarmSupply`] (vendor/librqbit, patch 7).

use std::time::Duration;

use librqbit::SwarmSupply;

/// How long a swarm may stay quiet before its download falls back to HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StallPolicy {
    /// Nothing at all for this long, with no peer about to send, is a stall (`--stall-timeout-ms`).
    pub quiet: Duration,
    /// A peer that holds what we lack and still chokes us may take this long after connecting
    /// to unchoke us (`--unchoke-wait-ms`: a rechoke cycle of 10 s, plus its first burst).
    pub unchoke_wait: Duration,
}

/// What to do about a quiet download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep waiting on the swarm, for this reason.
    Wait(&'static str),
    /// Fall back to HTTP; the reason, for the log line.
    Stalled(String),
}

impl StallPolicy {
    pub(crate) fn judge(&self, quiet_for: Duration, supply: &SwarmSupply) -> Verdict {
        if quiet_for < self.quiet {
            return Verdict::Wait("quiet for less than the stall timeout");
        }
        if supply.newest_unchoke.is_some_and(|ago| ago < self.quiet) {
            return Verdict::Wait("a peer that holds missing pieces has just unchoked us");
        }
        if supply.newest_choked_holder.is_some_and(|age| age < self.unchoke_wait) {
            return Verdict::Wait("a peer that holds missing pieces may unchoke us at its next rechoke");
        }
        let quiet = quiet_for.as_secs_f64();
        Verdict::Stalled(match (supply.holders, supply.unchoked_holders) {
            (0, _) => format!("no peer holds a missing piece, nothing for {quiet:.1} s"),
            (n, 0) => format!("the {n} peer(s) holding missing pieces kept us choked, nothing for {quiet:.1} s"),
            (_, n) => format!("the {n} peer(s) that unchoked us sent nothing for {quiet:.1} s"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: StallPolicy = StallPolicy { quiet: Duration::from_secs(3), unchoke_wait: Duration::from_secs(15) };

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn an_empty_swarm_stalls_after_the_quiet_time() {
        assert!(matches!(POLICY.judge(s(2.9), &SwarmSupply::default()), Verdict::Wait(_)));
        let Verdict::Stalled(why) = POLICY.judge(s(3.0), &SwarmSupply::default()) else { panic!() };
        assert!(why.starts_with("no peer holds a missing piece"), "{why}");
    }

    #[test]
    fn a_new_peer_that_chokes_us_gets_a_rechoke_cycle() {
        // Transmission: connected, full bitfield, first bytes at its next rechoke.
        let transmission =
            SwarmSupply { holders: 1, unchoked_holders: 0, newest_choked_holder: Some(s(9.5)), newest_unchoke: None };
        assert!(matches!(POLICY.judge(s(9.5), &transmission), Verdict::Wait(_)));
        let long_choked = SwarmSupply { newest_choked_holder: Some(s(15.0)), ..transmission };
        let Verdict::Stalled(why) = POLICY.judge(s(15.0), &long_choked) else { panic!() };
        assert!(why.contains("kept us choked"), "{why}");
    }

    #[test]
    fn an_unchoke_buys_the_quiet_time_and_no_more() {
        let unchoked =
            SwarmSupply { holders: 1, unchoked_holders: 1, newest_choked_holder: None, newest_unchoke: Some(s(1.0)) };
        assert!(matches!(POLICY.judge(s(10.0), &unchoked), Verdict::Wait(_)));
        let silent = SwarmSupply { newest_unchoke: Some(s(3.0)), ..unchoked };
        let Verdict::Stalled(why) = POLICY.judge(s(10.0), &silent) else { panic!() };
        assert!(why.contains("unchoked us sent nothing"), "{why}");
    }
}
