//! Every `/metrics` page (tracker, seeder, shim), read from running services, keeps
//! Prometheus's naming conventions, so a new metric cannot slip in with a name a dashboard
//! author would trip over: one `shoal_<service>_` prefix, `_total` on every counter and on
//! nothing else, a base unit (`_bytes`, `_seconds`) as the last word of a name that has one.
//! Besides its own, each page carries the standard `shoal_build_info{version,commit}` and
//! `process_*` families, and failures count by reason (an unknown image is `not_found`).
//! The Grafana dashboard (`deploy/kubernetes/base/grafana/shoal-dashboard.json`) names only
//! metrics and labels those pages show.

use std::collections::{BTreeMap, BTreeSet};

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

/// The families of exposition `text`s (sample names, so a histogram is its `_bucket`, `_sum` and
/// `_count`) with the label names their samples carry.
fn families<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in texts.into_iter().flat_map(str::lines).filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            labels.extend(label_names(&line[end + 1..]));
        }
    }
    out
}

/// The label names of a `{a="x",b=~"y"}` matcher or label set, read from just after its `{`.
fn label_names(mut rest: &str) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() || rest.starts_with('}') {
            break;
        }
        let Some(op) = rest.find(['=', '!']) else { break };
        names.push(rest[..op].trim().to_owned());
        // Skip the operator and the quoted value (with its escapes).
        let Some(open) = rest.find('"') else { break };
        let mut chars = rest[open + 1..].char_indices();
        let mut close = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    close = Some(open + 1 + i);
                    break;
                }
                _ => {}
            }
        }
        let Some(close) = close else { break };
        rest = &rest[close + 1..];
    }
    names
}

/// Labels Prometheus attaches to every scraped series (the target's), not the pages themselves.
const TARGET_LABELS: &[&str] = &["instance", "job", "namespace", "pod", "service", "endpoint", "container"];

/// What the dashboard's PromQL `expressions` name that the `pages` do not: metrics, label
/// matchers, and `by (..)` labels that no metric of the expression carries.
fn dashboard_violations(expressions: &[String], pages: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for expr in expressions {
        // Quoted strings hold label values and Grafana variables, never metric names.
        let bare: String = expr.split('"').enumerate().map(|(i, part)| if i % 2 == 0 { part } else { "" }).collect();
        let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| (*l).to_owned()).collect();
        let mut named = 0;
        for (start, token) in identifiers(expr) {
            if !(token.starts_with("shoal_") || token.starts_with("process_")) {
                continue;
            }
            named += 1;
            let Some(known) = pages.get(token) else {
                out.push(format!("{token}: no such metric on any page (in `{expr}`)"));
                continue;
            };
            labels.extend(known.iter().cloned());
            if let Some(matcher) = expr[start + token.len()..].strip_prefix('{') {
                for label in label_names(matcher) {
                    if !known.contains(&label) && !TARGET_LABELS.contains(&label.as_str()) {
                        out.push(format!("{token}: no label `{label}` (in `{expr}`)"));
                    }
                }
            }
        }
        if named == 0 {
            out.push(format!("names no Shoal metric: `{expr}`"));
        }
        for clause in bare.split(" by (").skip(1) {
            for label in clause.split(')').next().unwrap_or("").split(',').map(str::trim) {
                if !labels.contains(label) {
                    out.push(format!("by ({label}): no metric of `{expr}` carries it"));
                }
            }
        }
    }
    out
}

/// The identifiers of a PromQL expression with their byte offsets, quoted strings skipped.
fn identifiers(expr: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (None, false);
    for (i, c) in expr.char_indices().chain(std::iter::once((expr.len(), ' '))) {
        if c == '"' {
            quoted = !quoted;
        }
        let word = !quoted && (c.is_ascii_alphanumeric() || c == '_' || c == ':');
        match (word, start) {
            (true, None) if !c.is_ascii_digit() => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &expr[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Every `expr` of the dashboard JSON, at any depth.
fn expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

fn dashboard_expressions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes/base/grafana/shoal-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    expressions(&json, &mut out);
    assert!(out.len() >= 10, "the dashboard has {} expressions", out.len());
    out
}

#[test]
fn the_dashboard_checker_sees_unknown_metrics_and_labels() {
    let pages =
        families(["# TYPE shoal_shim_blob_bytes_total counter\nshoal_shim_blob_bytes_total{source=\"peers\"} 3\n\
         shoal_seeder_mirror_seconds_bucket{le=\"0.5\"} 1\nshoal_seeder_mirror_seconds_sum 0.2\n"]);
    assert_eq!(pages["shoal_shim_blob_bytes_total"], BTreeSet::from(["source".to_owned()]));
    let good = [
        r#"sum by (source) (rate(shoal_shim_blob_bytes_total{source="peers"}[$__rate_interval]))"#.to_owned(),
        "histogram_quantile(0.9, sum by (le) (rate(shoal_seeder_mirror_seconds_bucket[5m])))".to_owned(),
        r#"sum by (pod) (shoal_shim_blob_bytes_total{job=~"$job"})"#.to_owned(),
    ];
    assert_eq!(dashboard_violations(&good, &pages), Vec::<String>::new());
    let bad = [
        "rate(shoal_shim_blob_byte_total[5m])".to_owned(),
        r#"rate(shoal_shim_blob_bytes_total{sorce="peers"}[5m])"#.to_owned(),
        "sum by (outcome) (rate(shoal_shim_blob_bytes_total[5m]))".to_owned(),
        "rate(node_cpu_seconds_total[5m])".to_owned(),
    ];
    let found = dashboard_violations(&bad, &pages);
    assert_eq!(found.len(), 4, "{found:#?}");
    for (slip, v) in
        ["shoal_shim_blob_byte_total", "`sorce`", "by (outcome)", "names no Shoal metric"].iter().zip(&found)
    {
        assert!(v.contains(slip), "{slip} not flagged: {found:#?}");
    }
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
    let PushedImage { registry: _registry, address: registry, blobs: pushed_blobs, .. } =
        push_image(tmp.path(), "names/app", &[100_000], 7);
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
    // A blob through the shim, so that the families by source and cache result have samples.
    let layer = &pushed_blobs[1];
    let url = format!("http://{}/v2/names/app/blobs/{}", shim.addr, layer.digest);
    let (status, body, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
    assert_eq!((status, body.len() as u64), (200, layer.size), "a layer through the shim");
    let pages = [
        ("tracker", announce.replace("/announce", "/metrics")),
        ("seeder", format!("{}/metrics", seeder.url)),
        ("shim", format!("http://{}/metrics", shim.addr)),
    ];
    let mut found = Vec::new();
    let mut texts = Vec::new();
    for (service, url) in pages {
        let (status, body, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
        assert_eq!(status, 200, "{service} /metrics");
        let text = String::from_utf8(body).unwrap();
        texts.push(text.clone());
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
    let shown = families(texts.iter().map(String::as_str));
    let wrong = dashboard_violations(&dashboard_expressions(), &shown);
    assert!(wrong.is_empty(), "the Grafana dashboard names what no /metrics page shows:\n{}", wrong.join("\n"));
}
