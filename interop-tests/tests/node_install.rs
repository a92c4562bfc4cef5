//! `shoal node install|uninstall|doctor` on real processes: a containerd of the test's own
//! (Debian's 1.6, which `ctr --hosts-dir` drives), a `shoal shim` in front of a docker-registry,
//! and a Docker daemon of the test's own reading the daemon.json install edited. Install
//! extends a hosts.toml tree that has entries already (the shim first, every entry kept), a
//! pull goes through the shim (its `/metrics` count it), a second install changes nothing, the
//! doctor passes and then fails plainly once the shim is gone, and uninstall puts every file
//! back byte for byte (SHA-256 of every file before and after).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shoal_interop_tests::containerd::Containerd;
use shoal_interop_tests::docker::DockerDaemon;
use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::{free_port, run_ok, sha256_file, shoal_binary, spawn_shim};

/// Every file under `dir` (recursively) and its SHA-256.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(hashes(&path));
        } else {
            out.insert(path.clone(), sha256_file(&path));
        }
    }
    out
}

/// `shoal node ARGS`.
fn node(args: &[&str]) -> Output {
    Command::new(shoal_binary()).arg("node").args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The count of one series of the shim's `shoal_shim_requests_total`.
fn shim_requests(shim_url: &str, endpoint: &str, status: u16) -> u64 {
    let (code, body, _) = curl(&format!("{shim_url}/metrics"), &[]);
    assert_eq!(code, 200, "the shim's /metrics");
    let series = format!("shoal_shim_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} ");
    text(&body).lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn containerd_pulls_through_the_shim_after_install_and_uninstall_restores_every_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address: registry, blobs, .. } =
        push_image(tmp.path(), "team/app", &[300_000, 20_000], 91);
    let (mut shim, shim_url) = spawn_shim(&tmp.path().join("shim"), &["--upstream".into(), registry.clone()]);
    let mut containerd = Containerd::start(&tmp.path().join("containerd"));

    // The host as an operator left it: a hosts.toml for the registry with a mirror of its own,
    // one for a registry Shoal is not asked to mirror, a CA file beside them.
    let etc = tmp.path().join("etc");
    let hosts_dir = etc.join("certs.d");
    std::fs::create_dir_all(hosts_dir.join(&registry)).unwrap();
    std::fs::create_dir_all(hosts_dir.join("other.example")).unwrap();
    let team_mirror = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        hosts_dir.join(&registry).join("hosts.toml"),
        format!("server = \"http://{registry}\"\n\n# the team's own mirror\n[host.\"{team_mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
    )
    .unwrap();
    std::fs::write(hosts_dir.join("other.example/hosts.toml"), "server = \"https://other.example\"\n").unwrap();
    std::fs::write(hosts_dir.join("other.example/ca.crt"), "not really a certificate\n").unwrap();
    // install --fix edits the config the test's containerd runs with; it is restarted on it.
    let config_copy = etc.join("containerd-config.toml");
    std::fs::copy(&containerd.config, &config_copy).unwrap();
    let before = hashes(&etc);

    let state = tmp.path().join("state");
    let hosts_flag = format!("--hosts-dir={}", hosts_dir.display());
    let config_flag = format!("--containerd-config={}", config_copy.display());
    let state_flag = format!("--state-dir={}", state.display());
    let registry_flag = format!("--registry=http://{registry}");
    let shim_flag = format!("--shim-url={shim_url}");
    let install: Vec<&str> =
        vec!["install", &registry_flag, &shim_flag, &hosts_flag, &config_flag, &state_flag, "--fix"];

    let dry = node(&[install.as_slice(), &["--dry-run"]].concat());
    assert!(dry.status.success(), "dry run: {}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains(&format!("+[host.\"{shim_url}\"]")), "{}", text(&dry.stdout));
    assert_eq!(hashes(&etc), before, "a dry run changed files");
    assert!(!state.exists(), "a dry run kept a record");

    let first = node(&install);
    assert!(first.status.success(), "install: {}", text(&first.stderr));
    let hosts_toml = std::fs::read_to_string(hosts_dir.join(&registry).join("hosts.toml")).unwrap();
    let order = shoal_node::host_order(&hosts_toml).unwrap();
    assert_eq!(order, [shim_url.clone(), team_mirror.clone(), format!("http://{registry}")], "{hosts_toml}");
    assert!(hosts_toml.contains("# the team's own mirror\n"), "{hosts_toml}");
    let installed = hashes(&etc);
    let unrelated: Vec<_> =
        before.keys().filter(|p| !p.starts_with(hosts_dir.join(&registry)) && **p != config_copy).collect();
    for path in &unrelated {
        assert_eq!(installed[*path], before[*path], "{} changed", path.display());
    }
    let config = std::fs::read_to_string(&config_copy).unwrap();
    assert!(config.contains(&format!("config_path = \"{}\"", hosts_dir.display())), "{config}");

    // containerd starts on the fixed config, and `ctr --hosts-dir` pulls through the shim.
    std::fs::copy(&config_copy, &containerd.config).unwrap();
    containerd.restart();
    let manifests = shim_requests(&shim_url, "manifests", 200);
    let out = containerd
        .ctr(&["-n", "shoaltest", "images", "pull", "--snapshotter", "native", "--hosts-dir"])
        .arg(&hosts_dir)
        .arg(format!("{registry}/team/app:v1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ctr pull: {}{}\n{}", text(&out.stdout), text(&out.stderr), containerd.log());
    assert!(shim_requests(&shim_url, "manifests", 200) > manifests, "the pull went around the shim");
    assert_eq!(shim_requests(&shim_url, "blobs", 200), blobs.len() as u64, "every blob through the shim");

    // A second install is a no-op and says so.
    let second = node(&install);
    assert!(second.status.success(), "second install: {}", text(&second.stderr));
    assert!(text(&second.stdout).contains("already installed, nothing changed"), "{}", text(&second.stdout));
    assert_eq!(hashes(&etc), installed);

    // The doctor: the shim answers, a miss is a fast 404, a ctr pull goes through the shim.
    let socket_flag = format!("--containerd-address={}", containerd.socket.display());
    let image_flag = format!("--image={registry}/team/app:v1");
    let miss_flag = format!("--miss-registry={registry}");
    let doctor = ["doctor", &shim_flag, &miss_flag, &image_flag, &socket_flag, &hosts_flag];
    let healthy = Command::new(shoal_binary())
        .arg("node")
        .args(&doctor[..])
        .env("CONTAINERD_SNAPSHOTTER", "native")
        .output()
        .unwrap();
    eprintln!("shoal node doctor:\n{}", text(&healthy.stdout));
    assert!(healthy.status.success(), "doctor: {}{}", text(&healthy.stdout), text(&healthy.stderr));
    assert_eq!(text(&healthy.stdout).matches("ok   ").count(), 4, "{}", text(&healthy.stdout));
    let _ = shim.0.kill();
    let _ = shim.0.wait();
    let down = node(&doctor);
    assert!(!down.status.success(), "the doctor passed with the shim down: {}", text(&down.stdout));
    assert!(
        text(&down.stdout).contains(&format!("FAIL shim answers: cannot reach the shim at {shim_url}")),
        "{}",
        text(&down.stdout)
    );
    assert!(text(&down.stderr).contains("1 check(s) failed: shim answers"), "{}", text(&down.stderr));

    let undone = node(&["uninstall", &state_flag]);
    assert!(undone.status.success(), "uninstall: {}", text(&undone.stderr));
    assert_eq!(hashes(&etc), before, "uninstall did not restore every file");
    assert!(!state.exists(), "uninstall left its record behind");
    let again = node(&["uninstall", &state_flag]);
    assert!(text(&again.stdout).contains("nothing to undo"), "{}", text(&again.stdout));
}

#[test]
fn docker_pulls_a_hub_name_through_the_shim_and_daemon_json_keeps_its_other_keys() {
    let tmp = tempfile::tempdir().unwrap();
    // Docker asks a registry mirror for Hub names only; the shim serves `library/app` from its
    // upstream, a registry of the test's own.
    let PushedImage { registry: _registry, address: registry, .. } =
        push_image(tmp.path(), "library/app", &[50_000], 92);
    let (_shim, shim_url) = spawn_shim(&tmp.path().join("shim"), &["--upstream".into(), registry.clone()]);
    let daemon_json = tmp.path().join("etc/docker/daemon.json");
    std::fs::create_dir_all(daemon_json.parent().unwrap()).unwrap();
    let original = "{\n\t\"max-concurrent-downloads\": 2,\n\t\"log-driver\": \"json-file\",\n\t\"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"2\"},\n\t\"registry-mirrors\": [\"https://mirror.invalid\"],\n\t\"debug\": false\n}\n";
    std::fs::write(&daemon_json, original).unwrap();
    let before = sha256_file(&daemon_json);

    let state = tmp.path().join("state");
    let json_flag = format!("--docker-daemon-json={}", daemon_json.display());
    let state_flag = format!("--state-dir={}", state.display());
    let shim_flag = format!("--shim-url={shim_url}");
    let install = ["install", "--runtime=docker", &shim_flag, &json_flag, &state_flag];
    let first = node(&install);
    assert!(first.status.success(), "install: {}", text(&first.stderr));
    assert!(text(&first.stderr).contains("Docker Hub images only"), "{}", text(&first.stderr));
    let edited = std::fs::read_to_string(&daemon_json).unwrap();
    assert_eq!(shoal_node::daemon_json_mirrors(&edited).unwrap(), [shim_url.as_str(), "https://mirror.invalid"]);
    let keys =
        ["max-concurrent-downloads", "log-driver", "log-opts", "max-size", "max-file", "registry-mirrors", "debug"];
    let at: Vec<usize> = keys.iter().map(|k| edited.find(&format!("\"{k}\"")).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "keys reordered: {edited}");
    let (mut was, mut now): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(original).unwrap(), serde_json::from_str(&edited).unwrap());
    was.as_object_mut().unwrap().remove("registry-mirrors");
    now.as_object_mut().unwrap().remove("registry-mirrors");
    assert_eq!(was, now, "other keys changed");
    let installed = sha256_file(&daemon_json);
    let second = node(&install);
    assert!(text(&second.stdout).contains("already installed"), "{}", text(&second.stdout));
    assert_eq!(sha256_file(&daemon_json), installed);

    // dockerd loads the edited file, and a Hub name comes through the shim (there is no
    // Docker Hub here: without the mirror this pull fails).
    let daemon =
        DockerDaemon::start_with(&tmp.path().join("docker"), &["--config-file".as_ref(), daemon_json.as_os_str()]);
    let manifests = shim_requests(&shim_url, "manifests", 200);
    let pulled = daemon.docker(&["pull", "app:v1"]);
    assert!(pulled.status.success(), "docker pull app:v1: {}", text(&pulled.stderr));
    assert!(shim_requests(&shim_url, "manifests", 200) > manifests, "the pull went around the shim");
    // The doctor's `docker` talks to the test's daemon, never the machine's.
    let miss_flag = format!("--miss-registry={registry}");
    let doctor = Command::new(shoal_binary())
        .args(["node", "doctor", &shim_flag, &miss_flag, "--image=app:v1", "--pull-with=docker"])
        .env("DOCKER_HOST", &daemon.host)
        .output()
        .unwrap();
    eprintln!("shoal node doctor --pull-with docker:\n{}", text(&doctor.stdout));
    assert!(doctor.status.success(), "doctor: {}{}", text(&doctor.stdout), text(&doctor.stderr));
    drop(daemon);

    run_ok(Command::new(shoal_binary()).args(["node", "uninstall", &state_flag]));
    assert_eq!(sha256_file(&daemon_json), before, "daemon.json not restored byte for byte");
    assert_eq!(std::fs::read_to_string(&daemon_json).unwrap(), original);
}
