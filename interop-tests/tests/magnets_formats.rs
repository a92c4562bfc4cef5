//! `shoal magnets` against a real seeder mirroring a real `docker-registry`: the text and json
//! formats list every blob with the profile's magnet, and the example GitHub workflow's
//! "Print magnet links" step, run verbatim, writes a `::notice::` per layer and a step summary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shoal_interop_tests::registry::{push_image, LayoutBlob, PushedImage};
use shoal_interop_tests::shoal_binary;
use shoal_interop_tests::stack::{start_seeder, start_tracker};
use shoal_torrents::{hash_reader, BlobTorrent};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn magnets(args: &[&str]) -> Output {
    Command::new(shoal_binary()).arg("magnets").args(args).env_remove("GITHUB_STEP_SUMMARY").output().unwrap()
}

fn info_hash(blob: &LayoutBlob) -> String {
    let hashed = hash_reader(std::fs::File::open(&blob.path).unwrap(), blob.size, &mut |_| {}).unwrap();
    BlobTorrent::from_hashed(&hashed).info_hash().hex()
}

/// The `run: |` script of the workflow step named `name`.
fn workflow_step_script(workflow: &str, name: &str) -> String {
    let mut lines = workflow.lines().skip_while(|l| l.trim() != format!("- name: {name}"));
    lines.next().expect("the step exists");
    let run = lines.next().unwrap();
    assert_eq!(run.trim(), "run: |", "the step is a `run: |` block");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let body: Vec<&str> = lines.take_while(|l| l.trim().is_empty() || indent(l) > indent(run)).collect();
    body.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnets_prints_every_blob_in_three_stable_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address: registry, blobs, manifest_digest, .. } =
        push_image(tmp.path(), "team/app", &[1 << 20, 300_000, 5_000], 91);
    let trackers = vec![start_tracker().await];
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, &trackers).await;
    let image = format!("{registry}/team/app:v1");
    let url = seeder.url.clone();

    tokio::task::spawn_blocking(move || {
        // text: `<media type> <digest> <size> <magnet>` per blob, config first.
        let out = magnets(&[&image, "--seeder", &url]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), blobs.len(), "{text}");
        for (line, blob) in lines.iter().zip(&blobs) {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 4, "{line}");
            assert_eq!(fields[0], blob.media_type);
            assert_eq!(fields[1], blob.digest);
            assert_eq!(fields[2], blob.size.to_string());
            assert!(fields[3].starts_with(&format!("magnet:?xt=urn:btih:{}&", info_hash(blob))), "{line}");
        }
        // Stable: a second run prints the same bytes.
        let again = magnets(&[&image, "--seeder", &url]);
        assert_eq!(String::from_utf8(again.stdout).unwrap(), text);

        // json: one object with every blob.
        let out = magnets(&[&image, "--seeder", &url, "--format", "json"]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["image"], image.as_str());
        assert_eq!(v["digest"], manifest_digest.as_str());
        let listed = v["blobs"].as_array().unwrap();
        assert_eq!(listed.len(), blobs.len());
        for (i, (b, blob)) in listed.iter().zip(&blobs).enumerate() {
            assert_eq!(b["kind"], if i == 0 { "config" } else { "layer" });
            assert_eq!(b["digest"], blob.digest.as_str());
            assert_eq!(b["size"], blob.size);
            assert_eq!(b["info_hash"], info_hash(blob).as_str());
            assert!(b["platform"].is_null(), "a single-manifest image has no platform: {b}");
        }

        // github: the example workflow's step, verbatim.
        let workflow = std::fs::read_to_string(repo_root().join("docs/github-workflow-magnets.yml")).unwrap();
        let script = workflow_step_script(&workflow, "Print magnet links");
        assert!(script.contains("shoal magnets"), "{script}");
        let summary = tmp_summary();
        let bin_dir = shoal_binary().parent().unwrap().to_owned();
        let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{script}"))
            .env("PATH", path)
            .env("IMAGE", &image)
            .env("SHOAL_SEEDER", &url)
            .env("GITHUB_STEP_SUMMARY", summary.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = String::from_utf8(out.stdout).unwrap();
        let notices: Vec<&str> = log.lines().collect();
        assert_eq!(notices.len(), blobs.len() - 1, "one notice per layer:\n{log}");
        for (i, (notice, blob)) in notices.iter().zip(&blobs[1..]).enumerate() {
            let escaped_image = image.replace(':', "%3A");
            let prefix = format!("::notice title=Layer {}/{} of {escaped_image} (", i + 1, blobs.len() - 1);
            assert!(notice.starts_with(&prefix), "{notice}");
            assert!(
                notice.contains(&format!(")::{} magnet:?xt=urn:btih:{}&", blob.digest, info_hash(blob))),
                "{notice}"
            );
            assert!(!notice[2..].contains('\n'));
        }
        let markdown = std::fs::read_to_string(summary.path()).unwrap();
        assert!(markdown.starts_with(&format!("### Magnet links for `{image}`\n")), "{markdown}");
        for blob in &blobs {
            assert!(markdown.contains(&format!("| `{}` |", blob.digest)), "{} missing:\n{markdown}", blob.digest);
        }

        // Bad input: a clear error, a non-zero exit, nothing on stdout. An image upstream does
        // not have says so, with an exit status of its own (3, not 1).
        let missing = format!("{registry}/team/app:nope");
        let out = magnets(&[&missing, "--seeder", &url]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(out.stdout.is_empty());
        assert!(err.contains(&format!("manifest unknown: {missing}")), "{err}");
        let out = magnets(&["NOT A REFERENCE", "--seeder", &url]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("400"), "{}", String::from_utf8_lossy(&out.stderr));
        let out = magnets(&[&image, "--seeder", "http://127.0.0.1:9"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the seeder"));
    })
    .await
    .unwrap();
    seeder.stop().await;
}

fn tmp_summary() -> tempfile::NamedTempFile {
    tempfile::NamedTempFile::new().unwrap()
}
