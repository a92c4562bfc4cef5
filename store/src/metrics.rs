//! Prometheus helpers shared by every service's metrics (names are fixed in code, so a bad or
//! taken one is a bug and panics at start).

use prometheus::{IntCounter, IntGauge, Registry};

/// An integer gauge registered on `registry`.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// An integer counter registered on `registry`.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

/// Advances `counter`, which mirrors a running total kept elsewhere (librqbit's bytes uploaded),
/// to `total`; never backwards, so a counter stays a counter if the source restarts.
pub fn catch_up(counter: &IntCounter, total: u64) {
    // Read-then-add is not atomic: two scrapes at once would both add the gap. Catch-ups are
    // rare (a scrape, a 2 s tick), so one lock for all of them costs nothing.
    static CATCHING_UP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = CATCHING_UP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let behind = total.saturating_sub(counter.get());
    if behind > 0 {
        counter.inc_by(behind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirrored_total_only_moves_forward() {
        let c = IntCounter::new("t_total", "t").unwrap();
        catch_up(&c, 10);
        catch_up(&c, 25);
        catch_up(&c, 3); // the source restarted
        assert_eq!(c.get(), 25);
    }
}
