//! The README's own words, run: its main command (`cargo run --release -- up`) in front of a
//! local `docker-registry` instead of Docker Hub, then its walk-through block line by line: a
//! real Docker daemon pulls `localhost:5000/<image>`, `shoal magnets` prints the magnets, aria2c
//! fetches the first layer by magnet and `sha256sum` must print that layer's digest.
//!
//! Only two things are this test's: `SHOAL_UPSTREAM` (the README's documented way to front
//! another registry, exported for both terminals) and the image (`IMAGE=` after the README's
//! own first line, which derives `UPSTREAM` from `SHOAL_UPSTREAM`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::docker::DockerDaemon;
use shoal_interop_tests::registry::{push_image, PushedImage};
use shoal_interop_tests::{require_tool, without_cargo_test_env, ChildGuard};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The fenced `sh` blocks of the README, in order.
fn sh_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), l) => block.push(l.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_main_command_serves_docker_pull_and_prints_magnets() {
    for tool in ["cargo", "aria2c", "sha256sum", "awk", "docker", "skopeo"] {
        require_tool(tool);
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let blocks = sh_blocks(&readme);
    let main_command = blocks[0]
        .iter()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .expect("the README opens with its main command")
        .clone();
    assert!(main_command.contains(" up"), "the README's main command is `shoal up`: {main_command}");
    let walkthrough = blocks
        .iter()
        .find(|b| b.iter().any(|l| l.contains("docker pull localhost:5000/")))
        .expect("the README walks from `shoal up` to a docker pull")
        .clone();
    assert!(walkthrough[0].starts_with("UPSTREAM="), "the walk-through names its image first: {:?}", walkthrough[0]);

    // The README promises these ports; a clear failure if something else holds one.
    for port in [5000, 6969, 7000, 6881, 6882] {
        let free = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok();
        assert!(free, "port {port}, which `shoal up` uses by default, is taken on this machine");
    }

    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, port, blobs, .. } =
        push_image(tmp.path(), "team/app", &[3 << 20, 1 << 20, 60_000], 77);

    // The main command, verbatim, with SHOAL_UPSTREAM pointing at the local registry.
    let mut up = ChildGuard::spawn(
        without_cargo_test_env(&mut Command::new("bash"))
            .arg("-c")
            .arg(format!("exec {main_command}"))
            .current_dir(repo_root())
            .env("SHOAL_UPSTREAM", format!("127.0.0.1:{port}"))
            .env("SHOAL_DATA_DIR", tmp.path().join("shoal-data"))
            .env("RUST_LOG", "info,librqbit=warn")
            .stdout(Stdio::piped()),
    );
    let stdout = up.0.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[shoal up] {line}");
            if line.starts_with("shoal up: ready") {
                let _ = ready_tx.send(());
            }
        }
    });
    // A cold `cargo run --release` compiles first; the ready line comes once all three serve.
    ready_rx.recv_timeout(Duration::from_secs(1500)).expect("`shoal up` printed its ready line");

    let daemon = DockerDaemon::start(&tmp.path().join("docker"));
    let _ = std::fs::remove_dir_all("/tmp/shoal-layer");
    // The walk-through as written, with SHOAL_UPSTREAM exported as the README says; only the
    // image it names is this test's.
    assert!(walkthrough[0].starts_with("UPSTREAM=${SHOAL_UPSTREAM:-docker.io} IMAGE="), "{}", walkthrough[0]);
    let mut script = vec![walkthrough[0].clone(), "IMAGE=team/app:v1".to_owned()];
    script.extend(walkthrough[1..].iter().cloned());
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euxo pipefail\n{}", script.join("\n")))
        .current_dir(repo_root())
        .env("SHOAL_UPSTREAM", format!("127.0.0.1:{port}"))
        .env("DOCKER_HOST", &daemon.host)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README's walk-through failed:\n{stdout}\n{stderr}");

    // `shoal magnets` printed one line per blob: config then the layers, each with a magnet.
    let magnet_lines: Vec<&str> = stdout.lines().filter(|l| l.contains(" magnet:?xt=urn:btih:")).collect();
    assert_eq!(
        magnet_lines.len(),
        blobs.len(),
        "`shoal magnets` prints one line per blob (its second run feeds MAGNET=):\n{stdout}"
    );
    for (line, blob) in magnet_lines.iter().zip(&blobs) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[1], blob.digest, "{line}");
        assert_eq!(fields[2], blob.size.to_string(), "{line}");
    }
    // aria2c fetched the first layer by magnet; sha256sum printed its digest.
    let first_layer = blobs[1].digest.trim_start_matches("sha256:");
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{first_layer}  /tmp/shoal-layer/sha256-{first_layer}"))),
        "sha256sum did not print the first layer's digest:\n{stdout}"
    );
    // Docker holds the image under the shim's name.
    let inspect = daemon.docker(&["image", "inspect", "localhost:5000/team/app:v1"]);
    assert!(inspect.status.success(), "docker has no localhost:5000/team/app:v1");
    let _ = std::fs::remove_dir_all("/tmp/shoal-layer");
}
