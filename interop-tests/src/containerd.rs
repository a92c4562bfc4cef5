//! A real containerd of the test's own (Debian's, the one docker.io brings): its root, state,
//! socket and config all under one temporary directory, never the machine's `/run/containerd`
//! or `/var/lib/containerd`; the CRI plugin off (no kubelet here); driven with `ctr`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{require_tool, wait_until, ChildGuard};

pub struct Containerd {
    child: Option<ChildGuard>,
    dir: PathBuf,
    /// The gRPC socket, for `ctr --address`.
    pub socket: PathBuf,
    /// The config.toml it runs with (tests may edit it and [`Containerd::restart`]).
    pub config: PathBuf,
}

impl Containerd {
    /// Writes a config under `dir`, starts containerd with it and waits until `ctr version`
    /// answers.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("config.toml");
        let socket = dir.join("containerd.sock");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
                 [grpc]\n  address = \"{socket}\"\n\n\
                 [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{opt}\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                socket = socket.display(),
                opt = dir.join("opt").display(),
            ),
        )
        .unwrap();
        let mut containerd = Self { child: None, dir: dir.to_owned(), socket, config };
        containerd.restart();
        containerd
    }

    /// Stops containerd (if running) and starts it again from its config file.
    pub fn restart(&mut self) {
        drop(self.child.take());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("containerd.log")).unwrap();
        self.child = Some(ChildGuard::spawn(
            Command::new(require_tool("containerd"))
                .arg("--config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log),
        ));
        wait_until("containerd to answer `ctr version`", Duration::from_secs(30), || {
            self.ctr(&["version"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        });
    }

    /// `ctr --address <socket> ARGS`.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(require_tool("ctr"));
        cmd.arg("--address").arg(&self.socket).args(args);
        cmd
    }

    /// containerd's log so far, for a failure message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}
