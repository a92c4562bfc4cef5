//! `shoal up` restarted while its upstream is down: the shim keeps the manifests and tags it
//! served in its redb index, so a real Docker daemon pulls the image again by tag (served
//! stale, with a `Warning` header and a log line) and by digest, all from the store; a tag it
//! never served fails at once with the cause; and a stale tag older than
//! `--stale-tag-max-age-secs` is refused rather than served. A clean stop (SIGTERM) prints one
//! "stopped" line and logs no warning.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_interop_tests::docker::DockerDaemon;
use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::up::Up;
use shoal_interop_tests::{free_port, run_ok};

/// Starts `shoal up` over `upstream` with every listener on a loopback port of its own. The
/// ports are picked once per test and reused across restarts: docker names the image by the
/// shim's address.
fn start_up(data: &Path, upstream: &str, ports: &[u16; 5], extra: &[&str]) -> Up {
    let listen: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let data = data.to_str().unwrap();
    let mut args = vec!["--data-dir", data, "--upstream", upstream, "--public-host", "127.0.0.1"];
    args.extend(["--shim-listen", &listen[0], "--tracker-listen", &listen[1], "--seeder-listen", &listen[2]]);
    args.extend(["--bt-listen", &listen[3], "--shim-bt-listen", &listen[4]]);
    args.extend(extra);
    Up::start(Path::new(data).parent().unwrap(), &args)
}

fn docker_ok(daemon: &DockerDaemon, args: &[&str]) -> String {
    let out = daemon.docker(args);
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn a_restarted_shoal_up_serves_what_it_served_while_upstream_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry, address, manifest_digest, .. } =
        push_image(tmp.path(), "team/app", &[700_000, 300_000], 61);
    let data: PathBuf = tmp.path().join("up");
    let ports = [free_port(), free_port(), free_port(), free_port(), free_port()];
    // A TTL of zero: after the restart every tag is stale, so upstream is asked (and fails).
    let up = start_up(&data, &address, &ports, &["--tag-ttl-secs", "0"]);
    let daemon = DockerDaemon::start(&tmp.path().join("docker"));
    let shim = format!("127.0.0.1:{}", ports[0]);
    let by_tag = format!("{shim}/team/app:v1");
    let by_digest = format!("{shim}/team/app@{manifest_digest}");
    docker_ok(&daemon, &["pull", &by_tag]);
    let image_id = docker_ok(&daemon, &["image", "inspect", "--format", "{{.Id}}", &by_tag]);

    // A clean stop says so once, and warns of nothing (librqbit's bitfields were written).
    let (printed, logged) = up.stop();
    assert_eq!(printed.lines().filter(|l| l.contains("stopped")).count(), 1, "{printed}");
    assert!(printed.trim_end().ends_with("shoal up: stopped"), "{printed}");
    let warnings: Vec<&str> = logged.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
    assert!(warnings.is_empty(), "a clean run and stop logged warnings: {warnings:#?}");
    drop(registry);
    let up = start_up(&data, &address, &ports, &["--tag-ttl-secs", "0"]);
    docker_ok(&daemon, &["rmi", &by_tag]);
    docker_ok(&daemon, &["pull", &by_tag]);
    assert_eq!(docker_ok(&daemon, &["image", "inspect", "--format", "{{.Id}}", &by_tag]), image_id);
    assert!(up.logged("upstream unreachable: serving a stale tag"), "no log line for the stale tag");
    docker_ok(&daemon, &["rmi", &by_tag]);
    docker_ok(&daemon, &["pull", &by_digest]);
    assert_eq!(docker_ok(&daemon, &["image", "inspect", "--format", "{{.Id}}", &by_digest]), image_id);

    // The stale answer says so; a tag never served fails at once, naming the cause.
    let url = |reference: &str| format!("http://{shim}/v2/team/app/manifests/{reference}");
    let accept = format!("Accept: {MANIFEST_TYPE}");
    let headers =
        run_ok(Command::new("curl").args(["-sS", "-o", "/dev/null", "-D", "-", "-H", &accept]).arg(url("v1")));
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(headers.contains("warning: 110 shoal \"response is stale"), "{headers}");
    assert!(headers.contains(&format!("docker-content-digest: {manifest_digest}")), "{headers}");
    let started = Instant::now();
    let (status, body, _) = curl(&url("v2"), &["-H", &accept]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("UNAVAILABLE") && body.contains("onnect"), "the cause is not in the body: {body}");
    assert!(started.elapsed() < Duration::from_secs(5), "an unreachable upstream took {:?}", started.elapsed());
    up.stop();

    // Past --stale-tag-max-age-secs the tag is refused, saying why; by digest it is still served.
    let up = start_up(&data, &address, &ports, &["--tag-ttl-secs", "0", "--stale-tag-max-age-secs", "0"]);
    let (status, body, _) = curl(&url("v1"), &["-H", &accept]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("more than the 0s stale tags are served for"), "{body}");
    assert!(up.logged("older than --stale-tag-max-age-secs"), "no log line for the refused tag");
    let (status, _, _) = curl(&url(&manifest_digest), &["-H", &accept]);
    assert_eq!(status, 200, "a manifest by digest never goes stale");
    up.stop();
}
