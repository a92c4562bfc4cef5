//! The seeder's live page (`/ui`) in a real browser: headless Chromium (Debian's package) loads
//! it from a seeder that mirrored a skopeo-pushed image out of a real `docker-registry`, while
//! and after aria2c downloaded a layer from it over BitTorrent and curl fetched another by
//! webseed. The page as served already holds the view (first paint). While aria2c is connected
//! the DOM lists it as a peer; afterwards the DOM must show the numbers `/v1/swarms` reports
//! (swarm count = blobs, bytes by channel, per-swarm uploads, the upload-rate peak and y-axis),
//! the image by `image:tag`, which blob is the config and which the layers, each swarm's magnet
//! (copy button) and `.torrent` link, the tracker's count of seeders, and a `/metrics` link; a
//! screenshot must come out as a real PNG. `SHOAL_UI_SCREENSHOT=docs/ui.png` also copies the
//! screenshot there (the docs' picture).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal_interop_tests::browser::{attr, chromium, png_size, tag_with_id, text_of, value_of};
use shoal_interop_tests::registry::{curl, skopeo_push, start_registry, write_oci_layout};
use shoal_interop_tests::stack::{start_seeder, start_tracker};
use shoal_interop_tests::{aria2c_command, assert_aria2c_succeeded, require_tool, sha256_file};
use shoal_torrents::{hash_reader, BlobTorrent, Distribution};

/// Runs blocking work (child processes, curl) off the runtime the in-process seeder serves on.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn get_json(url: &str) -> serde_json::Value {
    let (status, body, _) = curl(url, &[]);
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Waits (30 s at most) until `/v1/swarms` at `url` shows the swarm of `digest` as `ready` says.
async fn wait_for_swarm(url: &str, digest: &str, what: &'static str, ready: fn(&serde_json::Value) -> bool) {
    let (url, digest) = (url.to_owned(), digest.to_owned());
    blocking(move || {
        shoal_interop_tests::wait_until(what, Duration::from_secs(30), || {
            let v = get_json(&url);
            v["swarms"].as_array().unwrap().iter().find(|s| s["digest"] == digest.as_str()).is_some_and(ready)
        })
    })
    .await;
}

/// The `<tr>` of one swarm in the table.
fn row<'a>(dom: &'a str, digest: &str) -> &'a str {
    let at = dom.find(&format!("data-digest=\"{digest}\"")).unwrap_or_else(|| panic!("no row for {digest}:\n{dom}"));
    let start = dom[..at].rfind("<tr").unwrap();
    &dom[start..start + dom[start..].find("</tr>").unwrap()]
}

/// `data-value` of the first cell with this class in a row.
fn cell_value(row: &str, class: &str) -> u64 {
    let at = row.find(&format!("class=\"num {class}\"")).unwrap_or_else(|| panic!("no {class} cell in {row}"));
    let start = row[..at].rfind('<').unwrap();
    attr(&row[start..start + row[start..].find('>').unwrap() + 1], "data-value").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_renders_the_seeders_live_numbers() {
    for tool in ["chromium", "aria2c", "curl", "skopeo", "docker-registry"] {
        require_tool(tool);
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (blobs, _) = write_oci_layout(&layout, "v1", &[3 << 20, 300 << 10], 61);
    let (_registry, rport) = start_registry(&tmp.path().join("registry"), "");
    skopeo_push(&layout, "v1", rport, "team/ui");

    let announce = start_tracker().await;
    let seeder =
        start_seeder(&tmp.path().join("seeder"), &format!("127.0.0.1:{rport}"), std::slice::from_ref(&announce)).await;
    let base = seeder.url.clone();
    let image = format!("127.0.0.1:{rport}/team/ui:v1");
    let mirror_url = format!("{base}/v1/images");
    let (status, body, _) = blocking(move || {
        let body = format!(r#"{{"image":"{image}"}}"#);
        curl(&mirror_url, &["-X", "POST", "-H", "content-type: application/json", "-d", &body])
    })
    .await;
    assert_eq!(status, 200, "mirroring: {}", String::from_utf8_lossy(&body));

    // Every blob is stored and its swarm is live before anyone downloads.
    let swarms_url = format!("{base}/v1/swarms");
    let url = swarms_url.clone();
    let wanted = blobs.len();
    blocking(move || {
        shoal_interop_tests::wait_until("every blob seeded and live", Duration::from_secs(60), || {
            let v = get_json(&url);
            v["totals"]["swarms"] == wanted && v["swarms"].as_array().unwrap().iter().all(|s| s["state"] == "live")
        })
    })
    .await;

    // The big layer over BitTorrent alone (its torrent names the tracker and no webseed), the
    // small one by webseed: both sources then have bytes to show.
    let (bt_layer, ws_layer) = (&blobs[1], &blobs[2]);
    let hashed = hash_reader(std::fs::File::open(&bt_layer.path).unwrap(), bt_layer.size, &mut |_| {}).unwrap();
    let torrent = BlobTorrent::from_hashed(&hashed);
    let torrent_path = tmp.path().join("layer.torrent");
    std::fs::write(
        &torrent_path,
        torrent.torrent_bytes(&Distribution { trackers: vec![announce.clone()], webseeds: vec![] }),
    )
    .unwrap();
    // aria2c, slowed so that it is still connected while Chromium looks.
    let download = tmp.path().join("aria2c");
    let started = Instant::now();
    let (mut cmd, log) = aria2c_command(&download, torrent_path.as_os_str(), &["--max-download-limit=300K"]);
    let aria2c = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_for_swarm(&swarms_url, &bt_layer.digest, "aria2c connected to the layer's swarm", |s| {
        !s["peer_list"].as_array().unwrap().is_empty()
    })
    .await;
    let ui = format!("{base}/ui");
    let profile = tmp.path().join("chromium-profile");
    let during = blocking({
        let (profile, ui) = (profile.clone(), ui.clone());
        move || String::from_utf8(chromium(&profile, &ui, &["--dump-dom".into()])).unwrap()
    })
    .await;
    assert!(during.contains("data-peer=\"127.0.0.1:"), "aria2c listed as a connected peer:\n{during}");
    let out = blocking(move || aria2c.wait_with_output().unwrap()).await;
    assert_aria2c_succeeded(torrent_path.as_os_str(), &out, &log);
    eprintln!("aria2c fetched {} bytes over BitTorrent in {:?}", bt_layer.size, started.elapsed());
    assert_eq!(sha256_file(&download.join(torrent.name.as_str())), bt_layer.digest);
    let webseed_url = format!("{base}/webseed/sha256-{}", ws_layer.digest.trim_start_matches("sha256:"));
    let (status, body, _) = blocking(move || curl(&webseed_url, &[])).await;
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, ws_layer.size);

    // The once-a-second sampler has seen the BitTorrent burst.
    let url = swarms_url.clone();
    let before = blocking(move || {
        let mut view = serde_json::Value::Null;
        shoal_interop_tests::wait_until("a BitTorrent upload rate in the history", Duration::from_secs(10), || {
            view = get_json(&url);
            view["rates"].as_array().unwrap().iter().any(|r| r["bittorrent_bytes_per_s"].as_u64().unwrap() > 0)
        });
        view
    })
    .await;

    // The tracker's counts have been scraped since.
    wait_for_swarm(&swarms_url, &bt_layer.digest, "a scrape counting the layer's seeder", |s| {
        s["tracker"]["seeders"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    // The page as served, before any script ran: the first paint has the view.
    let page_url = ui.clone();
    let (status, raw, _) = blocking(move || curl(&page_url, &[])).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8(raw).unwrap();
    let inlined = raw.split("<script id=\"first-view\" type=\"application/json\">").nth(1).unwrap();
    let inlined: serde_json::Value = serde_json::from_str(&inlined[..inlined.find("</script>").unwrap()]).unwrap();
    assert_eq!(inlined["totals"]["swarms"], blobs.len(), "the served page inlines the view");

    let dom = blocking({
        let (profile, ui) = (profile.clone(), ui.clone());
        move || String::from_utf8(chromium(&profile, &ui, &["--dump-dom".into()])).unwrap()
    })
    .await;
    let url = swarms_url.clone();
    let after = blocking(move || get_json(&url)).await;

    // Nothing moved while Chromium looked: the page shows exactly what the API says.
    let totals = &after["totals"];
    for key in ["swarms", "blobs", "bytes_stored", "bittorrent_uploaded_bytes", "webseed_uploaded_bytes"] {
        assert_eq!(before["totals"][key], totals[key], "totals.{key} changed during the test");
    }
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let n_str = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    assert_eq!(attr(tag_with_id(&dom, "status"), "class"), "ok", "the page read /v1/swarms");
    assert_eq!(value_of(&dom, "swarm-count"), blobs.len() as u64);
    assert_eq!(text_of(&dom, "swarm-count"), blobs.len().to_string());
    assert_eq!(value_of(&dom, "blob-count"), blobs.len() as u64);
    assert_eq!(value_of(&dom, "bytes-stored"), blobs.iter().map(|b| b.size).sum::<u64>());
    assert_eq!(value_of(&dom, "bytes-stored"), n(&totals["bytes_stored"]));

    let bt_uploaded = value_of(&dom, "bt-uploaded");
    assert_eq!(bt_uploaded, n(&totals["bittorrent_uploaded_bytes"]));
    assert!(bt_uploaded >= bt_layer.size, "aria2c's {} bytes all came from the seeder: {bt_uploaded}", bt_layer.size);
    assert!(text_of(&dom, "bt-uploaded").ends_with(" MiB"), "{}", text_of(&dom, "bt-uploaded"));
    assert_eq!(value_of(&dom, "webseed-uploaded"), ws_layer.size);
    assert_eq!(value_of(&dom, "webseed-uploaded"), n(&totals["webseed_uploaded_bytes"]));
    assert_eq!(value_of(&dom, "mirror-count"), 1);

    // One row per blob; the layer aria2c fetched shows the bytes it uploaded.
    assert_eq!(dom.matches("data-digest=\"").count(), blobs.len());
    let bt_swarm =
        after["swarms"].as_array().unwrap().iter().find(|s| s["digest"] == bt_layer.digest.as_str()).unwrap();
    let bt_row = row(&dom, &bt_layer.digest);
    assert!(n(&bt_swarm["uploaded_bytes"]) >= bt_layer.size);
    assert_eq!(cell_value(bt_row, "uploaded"), n(&bt_swarm["uploaded_bytes"]));
    assert!(n(&bt_swarm["peers_seen"]) >= 1, "aria2c was a peer of this swarm: {bt_swarm}");
    assert_eq!(cell_value(row(&dom, &ws_layer.digest), "uploaded"), 0, "webseed bytes are not BitTorrent uploads");

    // The sparkline's peak is the history's.
    let peak = after["rates"].as_array().unwrap().iter().map(|r| n(&r["bittorrent_bytes_per_s"])).max().unwrap();
    let chart = tag_with_id(&dom, "rate-chart");
    assert!(peak > 0);
    assert_eq!(attr(chart, "data-peak-fill").parse::<u64>().unwrap(), peak, "{chart}");
    assert!(attr(chart, "data-samples").parse::<u64>().unwrap() > 0);
    // The y-axis names the chart's top: the peak over both channels.
    let peak_ws = after["rates"].as_array().unwrap().iter().map(|r| n(&r["webseed_bytes_per_s"])).max().unwrap();
    assert_eq!(value_of(&dom, "rate-chart-ymax"), peak.max(peak_ws));
    assert!(text_of(&dom, "rate-chart-ymax").ends_with("/s"));
    assert_eq!(attr(tag_with_id(&dom, "metrics-link"), "href"), "metrics");

    // The image by its tag, its config and layers by role, each swarm's magnet and .torrent.
    let image_ref = format!("127.0.0.1:{rport}/team/ui:v1");
    assert!(dom.contains(&format!("data-image=\"{image_ref}\"")), "the image row names {image_ref}:\n{dom}");
    let config = &blobs[0];
    assert!(row(&dom, &config.digest).contains("data-value=\"config\""), "{}", row(&dom, &config.digest));
    assert!(bt_row.contains("data-value=\"layer\""), "{bt_row}");
    assert!(bt_row.contains(&image_ref), "the layer's row names its image: {bt_row}");
    let magnet = n_str(&bt_swarm["magnet"]);
    assert!(magnet.starts_with(&format!("magnet:?xt=urn:btih:{}", n_str(&bt_swarm["info_hash"]))), "{magnet}");
    assert!(bt_row.contains(&format!("data-copy=\"{}\"", magnet.replace('&', "&amp;"))), "copy button: {bt_row}");
    assert!(bt_row.contains(&format!("href=\"{}\"", n_str(&bt_swarm["torrent"]))), ".torrent link: {bt_row}");
    let (status, torrent_body, _) = blocking({
        let url = n_str(&bt_swarm["torrent"]).to_owned();
        move || curl(&url, &[])
    })
    .await;
    assert_eq!(status, 200);
    let linked = shoal_torrents::ParsedTorrent::parse(&torrent_body).unwrap();
    assert_eq!(linked.info_hash.hex(), n_str(&bt_swarm["info_hash"]), "the linked .torrent is the blob's");
    // What the tracker counts: at least the seeder itself as a seeder.
    let tracker_cell = {
        let at = bt_row.find("class=\"num tracker\"").unwrap();
        let start = bt_row[..at].rfind('<').unwrap();
        attr(&bt_row[start..start + bt_row[start..].find('>').unwrap() + 1], "data-value")
    };
    let seeders: u64 = tracker_cell.split('/').next().unwrap().parse().unwrap();
    assert!(seeders >= 1, "tracker S/L/C {tracker_cell}");

    // A screenshot for people: a real PNG of the window's size with more in it than a blank page.
    let png = tmp.path().join("ui.png");
    blocking({
        let (profile, ui, png) = (profile.clone(), ui.clone(), png.clone());
        move || chromium(&profile, &ui, &[format!("--screenshot={}", png.display()), "--window-size=1200,800".into()])
    })
    .await;
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(png_size(&bytes), (1200, 800));
    assert!(bytes.len() > 20_000, "a {}-byte screenshot is too plain to be the page", bytes.len());
    if let Some(dest) = std::env::var_os("SHOAL_UI_SCREENSHOT") {
        let dest = PathBuf::from(dest);
        let dest = if dest.is_relative() { Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dest) } else { dest };
        std::fs::copy(&png, &dest).unwrap();
        eprintln!("screenshot copied to {}", dest.display());
    }
    seeder.stop().await;
}
