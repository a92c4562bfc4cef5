//! A full disk is a local error, never blamed on upstream, and leaves nothing half-stored: the
//! seeder's and the shim's data directories on a 4 MiB tmpfs, asked for an image whose layer
//! is 6 MB (a real docker-registry behind). The seeder's mirror answers 500 naming "No space
//! left on device", counted as `local_io` (and kept as a job: space may come back); the shim's
//! pull fails without a half-written blob in its store, and once the disk has room again the
//! same pull arrives byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::stack::start_direct_shim;
use shoal_interop_tests::{free_port, run_ok, spawn_seeder};

/// A tmpfs of `size` mounted at `path` for the test's duration (the suite runs as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        run_ok(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path));
        Self(path.to_owned())
    }
}

impl Tmpfs {
    /// More room, as when space is freed (tmpfs resizes in place; what is open stays open).
    fn grow(&self, size: &str) {
        run_ok(Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_local_error_and_stores_nothing_half_written() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address, blobs, .. } = push_image(tmp.path(), "team/app", &[6_000_000], 95);
    let layer = &blobs[1];

    // The seeder (the binary), its data directory on the small disk, no limit of its own.
    let disk = Tmpfs::mount(&tmp.path().join("seeder-disk"), "4m");
    let bt = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = ["--bt-listen", &bt, "--upstream", &address, "--max-store-bytes", "none"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (_seeder, url) = spawn_seeder(&disk.0.join("data"), &args);
    let image = format!("{address}/team/app:v1");
    let (status, body, _) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let body = format!(r#"{{"image":"{image}"}}"#);
            curl(&format!("{url}/v1/images"), &["-X", "POST", "-H", "content-type: application/json", "-d", &body])
        }
    })
    .await
    .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "a full disk is the seeder's own failure, not a bad gateway: {body}");
    assert!(body.contains("No space left on device"), "{body}");
    let (_, metrics, _) = curl(&format!("{url}/metrics"), &[]);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(r#"shoal_seeder_mirror_failures_total{reason="local_io"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"reason="stream_failed""#), "blamed on the stream: {metrics}");
    assert_eq!(files_under(&disk.0.join("data/tmp")), 0, "a half-written blob was left behind");
    let (_, jobs, _) = curl(&format!("{url}/v1/jobs"), &[]);
    assert!(String::from_utf8_lossy(&jobs).contains("\"last_reason\":\"local_io\""), "not kept for a retry");

    // The shim (no swarm): the pull fails, nothing half-stored, and once space is freed the
    // same pull succeeds byte for byte.
    let shim_disk = Tmpfs::mount(&tmp.path().join("shim-disk"), "4m");
    let data = shim_disk.0.join("data");
    let shim = start_direct_shim(&data, &address, Duration::from_secs(30), Default::default()).await;
    let blob_url = format!("http://{shim}/v2/team/app/blobs/{}", layer.digest);
    let expected = std::fs::read(&layer.path).unwrap();
    let got = tokio::task::spawn_blocking({
        let blob_url = blob_url.clone();
        move || curl(&blob_url, &[])
    })
    .await
    .unwrap();
    assert!(got.2 != 0 || got.1 != expected, "a blob larger than the disk was served whole");
    let stored = data.join("blobs/sha256").join(layer.digest.trim_start_matches("sha256:"));
    assert!(!stored.exists(), "a blob that did not fit is in the store");
    shim_disk.grow("64m");
    let (status, bytes, _) = tokio::task::spawn_blocking(move || curl(&blob_url, &[])).await.unwrap();
    assert_eq!(status, 200);
    assert!(bytes == expected, "the pull after the disk was freed arrived changed");
}
