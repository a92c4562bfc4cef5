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
}
