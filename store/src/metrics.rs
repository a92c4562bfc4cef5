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
