//! Every `/metrics` page (tracker, seeder, shim), read from running services, keeps
//! Prometheus's naming conventions, so a new metric cannot slip in with a name a dashboard
//! author would trip over: one `shoal_<service>_` prefix, `_total` on every counter and on
//! nothing else, a base unit (`_bytes`, `_seconds`) as the last word of a name that has one.
//! Besides its own, each page carries the standard `shoal_build_info{version,commit}` and
//! `process_*` families, and failures count by reason (an unknown image is `not_found`).

use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::stack::{start_seeder, start_shim, start_tracker};

/// What is wrong with the metric families of one exposition `text` from `service`.
fn violations(service: &str, text: &str) -> Vec<String> {
    let prefix = format!("shoal_{service}_");
    let mut out = Vec::new();
    let help = |name: &str| {
        let head = format!("# HELP {name} ");
        text.lines().find_map(|l| l.strip_prefix(head.as_str())).unwrap_or("").to_owned()
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
        // The two standard families every page carries besides its own.
        if name == "shoal_build_info" || name.starts_with("process_") {
            continue;
        }
        if !name.starts_with(&prefix) {
            out.push(format!("{name}: not under {prefix}"));
        }
        match (kind, name.ends_with("_total")) {
            ("counter", false) => out.push(format!("{name}: a counter without _total")),
            ("gauge" | "histogram" | "summary", true) => out.push(format!("{name}: a {kind} named _total")),
            _ => {}
        }
        if kind == "gauge" && help(name).contains("since start") {
            out.push(format!("{name}: a running total kept as a gauge (make it a counter)"));
        }
        let base = name.strip_suffix("_total").unwrap_or(name);
        for unit in ["bytes", "seconds"] {
            if base.contains(&format!("_{unit}_")) {
                out.push(format!("{name}: the unit `{unit}` is not the last word"));
            }
        }
        for wrong in ["_ms", "_milliseconds", "_kb", "_mib", "_kib", "_mb"] {
            if base.ends_with(wrong) {
                out.push(format!("{name}: not a base unit ({wrong})"));
            }
        }
    }
    out
}

#[test]
fn the_checker_sees_each_kind_of_slip() {
    let text = "# TYPE shoal_seeder_stored_bytes gauge\n# TYPE shoal_seeder_uploaded_bytes gauge\n\
                # TYPE shoal_seeder_fetches counter\n# TYPE shoal_seeder_blobs_total gauge\n\
                # TYPE shoal_seeder_bytes_stored gauge\n# TYPE shoal_shim_x_total counter\n\
                # TYPE shoal_seeder_wait_ms histogram\n# TYPE shoal_seeder_mirror_seconds histogram\n\
                # HELP shoal_seeder_sent_bytes Bytes sent since start\n# TYPE shoal_seeder_sent_bytes gauge\n";
    let found = violations("seeder", text);
    assert_eq!(found.len(), 6, "{found:#?}");
    for name in [
        "shoal_seeder_fetches",
        "shoal_seeder_blobs_total",
        "shoal_seeder_bytes_stored",
        "shoal_shim_x_total",
        "shoal_seeder_wait_ms",
        "shoal_seeder_sent_bytes",
    ] {
        assert!(found.iter().any(|v| v.starts_with(&format!("{name}:"))), "{name} not flagged: {found:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metrics_page_keeps_the_naming_conventions() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address: registry, .. } = push_image(tmp.path(), "names/app", &[100_000], 7);
    let announce = start_tracker().await;
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, std::slice::from_ref(&announce)).await;
    // A mirror first, so that labelled families (by source, by outcome) have samples to show.
    seeder.mirror(&format!("{registry}/names/app:v1")).await;
    // A mirror of an image the registry does not have: a failure with its reason.
    let (url, body) = (format!("{}/v1/images", seeder.url), format!(r#"{{"image":"{registry}/names/nothing:v1"}}"#));
    let (status, _, _) = tokio::task::spawn_blocking(move || {
        curl(&url, &["-X", "POST", "-H", "content-type: application/json", "-d", &body])
    })
    .await
    .unwrap();
    assert_eq!(status, 404, "mirroring an unknown image");
    let shim =
        start_shim(&tmp.path().join("shim"), &registry, Some(&seeder.url), std::slice::from_ref(&announce)).await;
    let url = format!("http://{}/v2/names/nothing/manifests/v1", shim.addr);
    let (status, _, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
    assert_eq!(status, 404, "an unknown manifest through the shim");
    let pages = [
        ("tracker", announce.replace("/announce", "/metrics")),
        ("seeder", format!("{}/metrics", seeder.url)),
        ("shim", format!("http://{}/metrics", shim.addr)),
    ];
    let mut found = Vec::new();
    for (service, url) in pages {
        let (status, body, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
        assert_eq!(status, 200, "{service} /metrics");
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("# TYPE "), "{service} /metrics has no metric families:\n{text}");
        found.extend(violations(service, &text));
        let build = format!("shoal_build_info{{commit=\"{}\",version=\"0.1.0\"}} 1", shoal_telemetry::COMMIT);
        assert!(text.contains(&build), "{service} /metrics lacks {build}:\n{text}");
        for process in ["process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds "] {
            assert!(text.contains(process), "{service} /metrics lacks {process}");
        }
        let failure = match service {
            "seeder" => Some("shoal_seeder_mirror_failures_total{reason=\"not_found\"} 1"),
            "shim" => Some("shoal_shim_manifest_failures_total{reason=\"not_found\"} 1"),
            _ => None,
        };
        if let Some(failure) = failure {
            assert!(text.contains(failure), "{service} /metrics lacks {failure}:\n{text}");
        }
    }
    assert!(found.is_empty(), "metric names off the conventions:\n{}", found.join("\n"));
}
