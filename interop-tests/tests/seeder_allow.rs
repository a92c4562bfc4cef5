//! `--mirror-allow` with two real docker-registry instances: by default the seeder mirrors only
//! the registry it fronts, so asking it for an image or a blob of the other one is a 403 that
//! names the allow-list, and nothing is fetched; a pattern for the other registry's repository
//! prefix lets it mirror that one, and still nothing else.

use std::path::Path;

use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::stack::{start_seeder, start_tracker};
use shoal_interop_tests::{free_port, spawn_seeder};

fn post_image(seeder: &str, image: &str) -> (u16, String) {
    let body = format!(r#"{{"image":"{image}"}}"#);
    let (status, answer, _) =
        curl(&format!("{seeder}/v1/images"), &["-X", "POST", "-H", "content-type: application/json", "-d", &body]);
    (status, String::from_utf8_lossy(&answer).into_owned())
}

fn stored_blobs(data: &Path) -> usize {
    std::fs::read_dir(data.join("blobs/sha256")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeder_mirrors_only_what_its_allow_list_names() {
    let tmp = tempfile::tempdir().unwrap();
    let fronted: PushedImage = push_image(&tmp.path().join("a"), "team/app", &[100_000], 91);
    let other: PushedImage = push_image(&tmp.path().join("b"), "team/app", &[100_000], 92);
    let trackers = vec![start_tracker().await];
    let data = tmp.path().join("seeder");
    let seeder = start_seeder(&data, &fronted.address, &trackers).await;

    let url = seeder.url.clone();
    let (fronted_addr, other_addr) = (fronted.address.clone(), other.address.clone());
    let layer = other.blobs[1].digest.clone();
    tokio::task::spawn_blocking(move || {
        let (status, body) = post_image(&url, &format!("{fronted_addr}/team/app:v1"));
        assert_eq!(status, 200, "the fronted registry: {body}");
        let before = stored_blobs(&data);
        let (status, body) = post_image(&url, &format!("{other_addr}/team/app:v1"));
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("mirror allow-list") && body.contains(&fronted_addr), "{body}");
        let torrent = format!("{url}/v1/blobs/{layer}/torrent?repo=team/app&ns={other_addr}");
        let (status, body, _) = curl(&torrent, &[]);
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        assert_eq!(stored_blobs(&data), before, "something was fetched for a refused request");
    })
    .await
    .unwrap();
    seeder.stop().await;

    // The binary with a prefix pattern for the other registry (and only that).
    let bt = format!("127.0.0.1:{}", free_port());
    let allow = format!("{}/team/*", other.address);
    let (_child, url) =
        spawn_seeder(&tmp.path().join("seeder2"), &["--bt-listen".into(), bt, "--mirror-allow".into(), allow]);
    let (fronted_addr, other_addr) = (fronted.address.clone(), other.address.clone());
    tokio::task::spawn_blocking(move || {
        let (status, body) = post_image(&url, &format!("{other_addr}/team/app:v1"));
        assert_eq!(status, 200, "allowed by the pattern: {body}");
        let (status, body) = post_image(&url, &format!("{fronted_addr}/team/app:v1"));
        assert_eq!(status, 403, "a pattern replaces the default: {body}");
    })
    .await
    .unwrap();
}
