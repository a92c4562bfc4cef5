//! A real upstream for tests: Debian's `docker-registry` on a free port, OCI layouts the test
//! writes itself (random tar+gzip layers), pushed with skopeo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{free_port, require_tool, run_ok, sha256_file, wait_for_tcp, write_blob, ChildGuard};

/// One blob of a test image, as written into the OCI layout.
pub struct LayoutBlob {
    pub digest: String,
    pub size: u64,
    pub media_type: &'static str,
    pub path: PathBuf,
}

fn descriptor(b: &LayoutBlob) -> serde_json::Value {
    serde_json::json!({ "mediaType": b.media_type, "digest": b.digest, "size": b.size })
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64, PathBuf) {
    let dir = layout.join("blobs").join("sha256");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join("incoming");
    std::fs::write(&tmp, bytes).unwrap();
    let digest = sha256_file(&tmp);
    let path = dir.join(digest.trim_start_matches("sha256:"));
    std::fs::rename(&tmp, &path).unwrap();
    (digest, bytes.len() as u64, path)
}

/// Writes an OCI image layout tagged `tag` with random tar+gzip layers of the given sizes.
/// Returns the blobs (config first) and the manifest digest.
pub fn write_oci_layout(layout: &Path, tag: &str, layer_sizes: &[usize], seed: u64) -> (Vec<LayoutBlob>, String) {
    let (blobs, manifest) = write_image(layout, ("linux", "amd64"), layer_sizes, seed);
    let digest = manifest["digest"].as_str().unwrap().to_owned();
    write_index(layout, tag, vec![manifest]);
    (blobs, digest)
}

/// Writes a multi-platform image: one image per `(os, arch)`, each with its own random layers,
/// under one OCI image index tagged `tag`. Returns each platform's blobs (config first) and
/// the index's digest.
pub fn write_oci_index(
    layout: &Path,
    tag: &str,
    platforms: &[(&str, &str)],
    layer_sizes: &[usize],
    seed: u64,
) -> (Vec<Vec<LayoutBlob>>, String) {
    let mut images = Vec::new();
    let mut manifests = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let (blobs, mut manifest) = write_image(layout, *platform, layer_sizes, seed * 10 + i as u64);
        manifest["platform"] = serde_json::json!({ "os": platform.0, "architecture": platform.1 });
        images.push(blobs);
        manifests.push(manifest);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let (digest, size, _) = put_blob(layout, &serde_json::to_vec(&index).unwrap());
    let descriptor = serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": size,
    });
    write_index(layout, tag, vec![descriptor]);
    (images, digest)
}

/// One image (layers, config, manifest) into the layout's blobs; returns its blobs and the
/// manifest's descriptor.
fn write_image(
    layout: &Path,
    (os, arch): (&str, &str),
    layer_sizes: &[usize],
    seed: u64,
) -> (Vec<LayoutBlob>, serde_json::Value) {
    let work = layout.with_extension(format!("work-{seed}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(layout.join("blobs").join("sha256")).unwrap();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, &size) in layer_sizes.iter().enumerate() {
        let content = work.join(format!("content{i}"));
        std::fs::create_dir_all(&content).unwrap();
        write_blob(&content, "data.bin", size, seed * 100 + i as u64);
        let tar = work.join(format!("layer{i}.tar"));
        run_ok(Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&content).arg("data.bin"));
        diff_ids.push(sha256_file(&tar));
        run_ok(Command::new("gzip").arg("-n").arg("-1").arg("-f").arg(&tar));
        let gz = std::fs::read(work.join(format!("layer{i}.tar.gz"))).unwrap();
        let (digest, size, path) = put_blob(layout, &gz);
        layers.push(LayoutBlob { digest, size, media_type: "application/vnd.oci.image.layer.v1.tar+gzip", path });
    }
    let config = serde_json::json!({
        "architecture": arch, "os": os,
        "config": {}, "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let (digest, size, path) = put_blob(layout, &serde_json::to_vec(&config).unwrap());
    let config = LayoutBlob { digest, size, media_type: "application/vnd.oci.image.config.v1+json", path };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(&config),
        "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
    });
    let (manifest_digest, manifest_size, _) = put_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    let mut blobs = vec![config];
    blobs.extend(layers);
    let descriptor = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
    });
    (blobs, descriptor)
}

/// The layout's `index.json`, naming `tag` for each top-level descriptor, and `oci-layout`.
fn write_index(layout: &Path, tag: &str, mut descriptors: Vec<serde_json::Value>) {
    for d in &mut descriptors {
        d["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
    }
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": descriptors });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A registry with one image pushed: what most tests start from.
pub struct PushedImage {
    pub registry: ChildGuard,
    pub port: u16,
    /// `127.0.0.1:PORT`, as a `--upstream` or an image name's registry part.
    pub address: String,
    /// Config first, then the layers.
    pub blobs: Vec<LayoutBlob>,
    pub manifest_digest: String,
}

/// Starts a docker-registry under `dir/registry` and pushes `repo:v1` to it with skopeo: an
/// image of layers of `layer_sizes` bytes (contents from `seed`), laid out under `dir/layout`.
pub fn push_image(dir: &Path, repo: &str, layer_sizes: &[usize], seed: u64) -> PushedImage {
    let (registry, port) = start_registry(&dir.join("registry"), "");
    let layout = dir.join("layout");
    let (blobs, manifest_digest) = write_oci_layout(&layout, "v1", layer_sizes, seed);
    skopeo_push(&layout, "v1", port, repo);
    PushedImage { registry, port, address: format!("127.0.0.1:{port}"), blobs, manifest_digest }
}

/// `docker-registry serve` on a free loopback port, storing under `dir`; `extra_config` is
/// appended to its YAML (auth, notifications).
pub fn start_registry(dir: &Path, extra_config: &str) -> (ChildGuard, u16) {
    serve_registry(dir, extra_config, Stdio::null())
}

/// [`start_registry`] with its access log (one line per request, as
/// `"GET /v2/<repo>/blobs/<digest> HTTP/1.1" 200`) written to `dir/access.log`, for tests that
/// count what upstream served.
pub fn start_registry_with_access_log(dir: &Path) -> (ChildGuard, u16, std::path::PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.join("access.log");
    let (child, port) = serve_registry(dir, "", Stdio::from(std::fs::File::create(&log).unwrap()));
    (child, port, log)
}

/// How many times the registry's access log shows a blob's body served (`GET`, 200, or 206:
/// oci-client asks for a range from byte 0, and the registry answers 206).
pub fn blob_gets(access_log: &Path, digest: &str) -> usize {
    let text = std::fs::read_to_string(access_log).unwrap_or_default();
    let needle = format!("/blobs/{digest} HTTP/1.1\"");
    let served = |l: &&str| {
        l.split_once(&needle).is_some_and(|(_, rest)| rest.starts_with(" 200 ") || rest.starts_with(" 206 "))
    };
    text.lines().filter(|l| l.contains("\"GET ")).filter(served).count()
}

fn serve_registry(dir: &Path, extra_config: &str, stdout: Stdio) -> (ChildGuard, u16) {
    let registry = require_tool("docker-registry");
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra_config}",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child =
        ChildGuard::spawn(Command::new(registry).arg("serve").arg(&config).stdout(stdout).stderr(Stdio::null()));
    wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(20));
    (child, port)
}

/// Pushes `oci:LAYOUT:TAG` (every platform of an index) to `127.0.0.1:PORT/REPO:TAG` with
/// skopeo over plain HTTP.
pub fn skopeo_push(layout: &Path, tag: &str, registry_port: u16, repo: &str) {
    let skopeo = require_tool("skopeo");
    run_ok(
        Command::new(skopeo)
            .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://127.0.0.1:{registry_port}/{repo}:{tag}")),
    );
}

/// `curl` a URL: (HTTP status, body, curl's exit code). `extra` adds curl flags.
pub fn curl(url: &str, extra: &[&str]) -> (u16, Vec<u8>, i32) {
    let curl = require_tool("curl");
    let out = Command::new(curl)
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "60"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = out.stdout;
    let split = text.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&text[split..]).trim().parse().unwrap_or(0);
    (status, text[..split].to_vec(), out.status.code().unwrap_or(-1))
}

/// `skopeo [GLOBAL] copy docker://REGISTRY/IMAGE dir:OUT` over plain HTTP, on a blocking thread
/// (for async tests); `global` are skopeo's own options, e.g. `--override-arch arm64`.
pub async fn skopeo_pull(registry: SocketAddr, image: &str, out: &Path, global: &[&str]) -> std::process::Output {
    skopeo_pull_with(registry, image, out, global, &[]).await
}

/// [`skopeo_pull`] with more `copy` options, e.g. `--src-creds USER:PASSWORD`.
pub async fn skopeo_pull_with(
    registry: SocketAddr,
    image: &str,
    out: &Path,
    global: &[&str],
    copy: &[&str],
) -> std::process::Output {
    let skopeo = require_tool("skopeo");
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(skopeo)
        .args(global)
        .args(["copy", "-q", "--src-tls-verify=false", "--retry-times=0"])
        .args(copy)
        .arg(format!("docker://{registry}/{image}"))
        .arg(format!("dir:{}", out.display()));
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}
