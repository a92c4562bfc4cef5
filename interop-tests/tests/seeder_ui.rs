//! The seeder's live page (`/ui`) in a real browser: headless Chromium (Debian's package) loads
//! it from a seeder that mirrored a skopeo-pushed image out of a real `docker-registry`, after
//! aria2c downloaded a layer from it over BitTorrent and curl fetched another by webseed. The
//! DOM Chromium dumps must show the numbers `/v1/swarms` reports (swarm count = blobs, bytes by
//! source, per-swarm uploads, the upload-rate peak), and a screenshot must come out as a real
//! PNG. `SHOAL_UI_SCREENSHOT=docs/ui.png` also copies the screenshot there (the docs' picture).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_interop_tests::registry::{curl, skopeo_push, start_registry, write_oci_layout};
use shoal_interop_tests::stack::{start_seeder, start_tracker};
use shoal_interop_tests::{aria2c_download, require_tool, run_ok, sha256_file};
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

/// aria2c fetching `torrent` over BitTorrent alone (no webseed in it), into `dir`.
fn aria2c(dir: &Path, torrent: &Path) {
    aria2c_download(dir, torrent.as_os_str());
}

/// Headless Chromium on `url` with its own throwaway profile and no background traffic; the
/// page gets 5 s of virtual time (several polls) before Chromium dumps or shoots it.
fn chromium(profile: &Path, url: &str, output: &[String]) -> Vec<u8> {
    let out = run_ok(
        Command::new("timeout")
            .arg("120")
            .arg(require_tool("chromium"))
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(output)
            .arg(url),
    );
    out.stdout
}

/// The opening tag of the element with this id, e.g. `<span id="x" data-value="3">`.
fn tag_with_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom.find(&format!(" id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id} in the DOM:\n{dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].to_owned()
}

/// `data-value` of the element with this id, as a number.
fn value_of(dom: &str, id: &str) -> u64 {
    let tag = tag_with_id(dom, id);
    attr(tag, "data-value").parse().unwrap_or_else(|e| panic!("#{id} data-value in {tag}: {e}"))
}

/// The text right inside the element with this id.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let tag = tag_with_id(dom, id);
    let at = dom.find(tag).unwrap() + tag.len();
    &dom[at..at + dom[at..].find('<').unwrap()]
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

/// Width and height from a PNG's IHDR, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
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
    let download = tmp.path().join("aria2c");
    let started = Instant::now();
    blocking({
        let (download, torrent_path) = (download.clone(), torrent_path.clone());
        move || aria2c(&download, &torrent_path)
    })
    .await;
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

    let ui = format!("{base}/ui");
    let profile = tmp.path().join("chromium-profile");
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
    assert_eq!(attr(chart, "data-peak-bittorrent").parse::<u64>().unwrap(), peak, "{chart}");
    assert!(attr(chart, "data-samples").parse::<u64>().unwrap() > 0);

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
