//! Prometheus helpers shared by every service's metrics (names are fixed in code, so a bad or
//! taken one is a bug and panics at start), and what every `/metrics` page carries:
//! `shoal_build_info{version,commit}` and the standard `process_*` metrics. [`page`] is the frame
//! the live pages share.

pub mod page;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The version every crate of the workspace shares.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this was built from (`build.rs`): 12 hex digits, or `unknown` outside a checkout.
pub const COMMIT: &str = env!("SHOAL_COMMIT");
/// What `shoal --version` prints after the name.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SHOAL_COMMIT"), ")");

/// A registry holding what every page shows first: `shoal_build_info` (always 1, the build in its
/// labels, so a dashboard can tell which build answers) and the process collector's `process_*`
/// (CPU seconds, resident memory, open fds, threads, start time), read from `/proc` at each
/// scrape. In `shoal up` every service's page shows the same process: they share it.
pub fn service_registry() -> Registry {
    let registry = Registry::new();
    let info = IntGaugeVec::new(
        Opts::new("shoal_build_info", "The build answering: always 1, with its version and commit"),
        &["version", "commit"],
    )
    .expect("valid metric");
    info.with_label_values(&[VERSION, COMMIT]).set(1);
    registry.register(Box::new(info)).expect("unique metric");
    // Linux only (procfs); elsewhere the page simply has no process_* metrics.
    #[cfg(target_os = "linux")]
    registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("unique metric");
    registry
}

/// An integer gauge registered on `registry`.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

/// `<service>_bittorrent_max_upload_rate_bytes` and `..._max_download_rate_bytes` on
/// `registry`: the session's caps in bytes per second (`--max-upload-rate`,
/// `--max-download-rate`), 0 when there is none.
pub fn show_rate_caps(registry: &Registry, service: &str, upload: Option<u32>, download: Option<u32>) {
    for (direction, cap) in [("upload", upload), ("download", download)] {
        let name = format!("shoal_{service}_bittorrent_max_{direction}_rate_bytes");
        let help =
            format!("Most bytes per second the BitTorrent session may {direction} (--max-{direction}-rate); 0: no cap");
        gauge(registry, &name, &help).set(i64::from(cap.unwrap_or(0)));
    }
}

/// An integer counter registered on `registry`.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

/// A counter with one label registered on `registry`.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
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
    fn a_service_registry_names_its_build_and_process() {
        let names: Vec<String> = service_registry().gather().iter().map(|f| f.name().to_owned()).collect();
        assert!(names.contains(&"shoal_build_info".to_owned()), "{names:?}");
        for process in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(names.iter().any(|n| n == process), "{process} missing from {names:?}");
        }
        let info = service_registry().gather().into_iter().find(|f| f.name() == "shoal_build_info").unwrap();
        let labels: Vec<(String, String)> =
            info.get_metric()[0].get_label().iter().map(|l| (l.name().to_owned(), l.value().to_owned())).collect();
        assert_eq!(labels, [("commit".to_owned(), COMMIT.to_owned()), ("version".to_owned(), VERSION.to_owned())]);
        assert!(COMMIT == "unknown" || (COMMIT.len() == 12 && COMMIT.chars().all(|c| c.is_ascii_hexdigit())));
    }

    #[test]
    fn a_mirrored_total_only_moves_forward() {
        let c = IntCounter::new("t_total", "t").unwrap();
        catch_up(&c, 10);
        catch_up(&c, 25);
        catch_up(&c, 3); // the source restarted
        assert_eq!(c.get(), 25);
    }
}
