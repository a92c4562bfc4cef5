//! The shim's live page (`/ui`) in headless Chromium: a shim pulls a skopeo-pushed image's blobs
//! (from a real `docker-registry`, mirrored by a seeder) for curl, over the swarm with HTTP
//! fallbacks. The page as served holds the view already (first paint); the DOM Chromium dumps
//! shows what `/v1/pulls` reports: each pull with its bytes by source adding up to the blob,
//! the totals by source, what the host seeds onward, and a `/metrics` link.

use std::time::Duration;

use shoal_interop_tests::browser::{attr, chromium, tag_with_id, value_of};
use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::stack::{start_seeder, start_shim, start_tracker};

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn get(url: &str) -> Vec<u8> {
    let (status, body, _) = curl(url, &[]);
    assert_eq!(status, 200, "GET {url}: {}", String::from_utf8_lossy(&body));
    body
}

/// `data-value` of the cell with this class in the `<tr>` with `data-digest="digest"`.
fn pull_cell(dom: &str, digest: &str, class: &str) -> u64 {
    let at = dom.find(&format!("data-digest=\"{digest}\"")).unwrap_or_else(|| panic!("no pull row {digest}:\n{dom}"));
    let row = &dom[at..at + dom[at..].find("</tr>").unwrap()];
    let cell = row.find(&format!("class=\"num {class}\"")).unwrap_or_else(|| panic!("no {class} in {row}"));
    let start = row[..cell].rfind('<').unwrap();
    attr(&row[start..start + row[start..].find('>').unwrap() + 1], "data-value").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_renders_what_the_shim_pulled_and_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address, blobs, .. } =
        push_image(tmp.path(), "team/shimui", &[2 << 20, 200 << 10], 73);
    let announce = start_tracker().await;
    let seeder = start_seeder(&tmp.path().join("seeder"), &address, std::slice::from_ref(&announce)).await;
    seeder.mirror(&format!("{address}/team/shimui:v1")).await;
    let shim = start_shim(&tmp.path().join("shim"), &address, Some(&seeder.url), std::slice::from_ref(&announce)).await;
    let base = format!("http://{}", shim.addr);

    for blob in &blobs {
        let url = format!("{base}/v2/team/shimui/blobs/{}", blob.digest);
        let body = blocking(move || get(&url)).await;
        assert_eq!(body.len() as u64, blob.size);
    }
    // Every pull has ended and every blob is seeded onward.
    let pulls_url = format!("{base}/v1/pulls");
    let url = pulls_url.clone();
    let wanted = blobs.len();
    let view: serde_json::Value = blocking(move || {
        let mut view = serde_json::Value::Null;
        shoal_interop_tests::wait_until("every pull done and every blob seeded", Duration::from_secs(30), || {
            view = serde_json::from_slice(&get(&url)).unwrap();
            let done = view["pulls"].as_array().unwrap().iter().filter(|p| p["state"] == "done").count();
            let live = view["seeding"].as_array().unwrap().iter().filter(|s| s["state"] == "live").count();
            done == wanted && live == wanted
        });
        view
    })
    .await;
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let t = &view["totals"];
    assert_eq!(n(&t["blobs"]), blobs.len() as u64);
    assert_eq!(n(&t["stored_bytes"]), blobs.iter().map(|b| b.size).sum::<u64>());
    let fetched = n(&t["from_peers"]) + n(&t["from_webseed"]) + n(&t["from_upstream"]);
    assert_eq!(fetched, blobs.iter().map(|b| b.size).sum::<u64>(), "every byte fetched once, from some source");
    assert!(n(&t["from_peers"]) > 0, "the swarm delivered: {t}");

    // The page as served, before any script: the view is inlined.
    let ui = format!("{base}/ui");
    let raw = String::from_utf8(
        blocking({
            let ui = ui.clone();
            move || get(&ui)
        })
        .await,
    )
    .unwrap();
    let inlined = raw.split("<script id=\"first-view\" type=\"application/json\">").nth(1).unwrap();
    let inlined: serde_json::Value = serde_json::from_str(&inlined[..inlined.find("</script>").unwrap()]).unwrap();
    assert_eq!(inlined["totals"]["blobs"], blobs.len());
    assert_eq!(inlined["pulls"].as_array().unwrap().len(), blobs.len());

    let profile = tmp.path().join("chromium-profile");
    let dom = blocking(move || String::from_utf8(chromium(&profile, &ui, &["--dump-dom".into()])).unwrap()).await;
    assert_eq!(attr(tag_with_id(&dom, "status"), "class"), "ok", "the page read /v1/pulls");
    let after: serde_json::Value = blocking(move || serde_json::from_slice(&get(&pulls_url)).unwrap()).await;
    let t = &after["totals"];
    for (id, key) in [
        ("blob-count", "blobs"),
        ("stored-bytes", "stored_bytes"),
        ("from-peers", "from_peers"),
        ("from-webseed", "from_webseed"),
        ("from-upstream", "from_upstream"),
        ("cache-misses", "cache_misses"),
    ] {
        assert_eq!(value_of(&dom, id), n(&t[key]), "#{id} shows totals.{key}");
    }
    for blob in &blobs {
        let by_source: u64 =
            ["from-peers", "from-webseed", "from-upstream"].iter().map(|c| pull_cell(&dom, &blob.digest, c)).sum();
        assert_eq!(by_source, blob.size, "the pull of {} adds up to the blob", blob.digest);
        assert!(dom.contains(&format!("data-seeded=\"{}\"", blob.digest)), "{} seeded onward", blob.digest);
    }
    assert_eq!(attr(tag_with_id(&dom, "metrics-link"), "href"), "metrics");
}
