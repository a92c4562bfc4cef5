//! A real Docker daemon for tests, started the way ../shared/FIELD-NOTES.md found works here:
//! vfs storage, no iptables, no bridge, everything under one temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{require_tool, wait_until, ChildGuard};

pub struct DockerDaemon {
    _child: ChildGuard,
    pub host: String,
    /// The daemon's own containerd, for `ctr --address`.
    pub containerd_socket: PathBuf,
}

impl DockerDaemon {
    /// Starts `dockerd` with its state under `dir` and waits until it answers `docker info`.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// [`DockerDaemon::start`] with more `dockerd` flags (e.g. `--config-file`).
    pub fn start_with(dir: &Path, extra: &[&std::ffi::OsStr]) -> Self {
        let dockerd = require_tool("dockerd");
        require_tool("docker");
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("docker.sock");
        let host = format!("unix://{}", socket.display());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = ChildGuard::spawn(
            Command::new(dockerd)
                .args(["--storage-driver=vfs", "--iptables=false", "--bridge=none"])
                .arg(format!("--data-root={}", dir.join("root").display()))
                .arg(format!("--exec-root={}", dir.join("exec").display()))
                .args(["-H", &host])
                .arg("--pidfile")
                .arg(dir.join("docker.pid"))
                .args(extra)
                .stdout(Stdio::null())
                .stderr(log),
        );
        let daemon = Self { _child: child, host, containerd_socket: dir.join("exec/containerd/containerd.sock") };
        wait_until("dockerd to answer `docker info`", Duration::from_secs(60), || {
            daemon.docker(&["info"]).status.success()
        });
        daemon
    }

    /// Runs `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").env("DOCKER_HOST", &self.host).args(args).output().unwrap()
    }

    /// `ctr images pull --plain-http` of `registry/image` in namespace `shoaltest`, through the
    /// daemon's containerd, with a hosts.toml (under `hosts_dir`) that sends `registry`'s pulls
    /// to `mirror` first (containerd's mirror mode: the shim gets `?ns=registry`). Panics with
    /// ctr's output when it fails.
    pub fn ctr_pull_through_mirror(
        &self,
        hosts_dir: &Path,
        registry: &str,
        mirror: std::net::SocketAddr,
        image: &str,
    ) -> std::process::Output {
        std::fs::create_dir_all(hosts_dir.join(registry)).unwrap();
        std::fs::write(
            hosts_dir.join(registry).join("hosts.toml"),
            format!("server = \"http://{registry}\"\n\n[host.\"http://{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
        )
        .unwrap();
        crate::run_ok(
            Command::new(require_tool("ctr"))
                .arg("--address")
                .arg(&self.containerd_socket)
                .args(["-n", "shoaltest", "images", "pull", "--plain-http", "--hosts-dir"])
                .arg(hosts_dir)
                .arg(format!("{registry}/{image}")),
        )
    }
}
