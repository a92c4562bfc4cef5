//! `shoal node install|uninstall|doctor`: the flags that point a host's containerd and Docker at
//! the shim. Every path is a flag with an env twin (`SHOAL_NODE_…`), so tests run on temp dirs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Point containerd (a hosts.toml per registry, the shim first) and Docker (daemon.json's
    /// registry-mirrors) at the shim, backing up every file changed. A second run changes
    /// nothing.
    Install(NodeInstallArgs),
    /// Put back every file `shoal node install` changed, byte for byte, and remove the ones it
    /// created.
    Uninstall(NodeUninstallArgs),
    /// Check that the shim answers, that a miss comes back (404) within the dial timeout, that
    /// containerd's hosts.toml asks the shim first (with --pull-with ctr, the default), and
    /// (with --image) that a real pull goes through the shim.
    Doctor(NodeDoctorArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// containerd's hosts.toml tree (and its config.toml checked).
    Containerd,
    /// Docker's daemon.json (`registry-mirrors`: Docker Hub images only).
    Docker,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullTool {
    Ctr,
    Docker,
}

#[derive(Args, Debug)]
pub struct NodeInstallArgs {
    /// Registry to send through the shim: `host[:port]`, or `http://host[:port]` for one served
    /// over plain HTTP (repeat or comma-separate).
    #[arg(long = "registry", env = "SHOAL_NODE_REGISTRIES", value_delimiter = ',')]
    pub registries: Vec<String>,
    /// Send every registry through the shim: containerd's `_default` hosts.toml.
    #[arg(long, env = "SHOAL_NODE_MIRROR_ALL")]
    pub mirror_all: bool,
    /// What to configure (repeat or comma-separate).
    #[arg(
        long = "runtime",
        env = "SHOAL_NODE_RUNTIMES",
        value_enum,
        value_delimiter = ',',
        default_value = "containerd"
    )]
    pub runtimes: Vec<Runtime>,
    #[command(flatten)]
    pub shim: ShimUrl,
    #[command(flatten)]
    pub hosts: HostsDir,
    /// containerd's config.toml, checked for whether CRI pulls read the hosts.toml tree.
    #[arg(long, env = "SHOAL_NODE_CONTAINERD_CONFIG", default_value = "/etc/containerd/config.toml")]
    pub containerd_config: PathBuf,
    /// Set what the check finds missing in containerd's config.toml (`config_path`, and on
    /// version 3 `use_local_image_pull = true`); without it, a warning. Restart containerd after.
    #[arg(long, env = "SHOAL_NODE_FIX")]
    pub fix: bool,
    /// Docker's daemon.json (with `--runtime docker`).
    #[arg(long, env = "SHOAL_NODE_DOCKER_DAEMON_JSON", default_value = "/etc/docker/daemon.json")]
    pub docker_daemon_json: PathBuf,
    /// Print the diff of every change and change nothing.
    #[arg(long, env = "SHOAL_NODE_DRY_RUN")]
    pub dry_run: bool,
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(Args, Debug)]
pub struct NodeUninstallArgs {
    /// Print the diff of what would be restored and change nothing.
    #[arg(long, env = "SHOAL_NODE_DRY_RUN")]
    pub dry_run: bool,
    /// Restore the originals even over files changed since install.
    #[arg(long, env = "SHOAL_NODE_FORCE")]
    pub force: bool,
    #[command(flatten)]
    pub state: StateDir,
}

#[derive(Args, Debug)]
pub struct NodeDoctorArgs {
    #[command(flatten)]
    pub shim: ShimUrl,
    /// The registry the miss check names (`?ns=`), as containerd's mirror requests do.
    #[arg(long, env = "SHOAL_NODE_MISS_REGISTRY", default_value = "docker.io")]
    pub miss_registry: String,
    /// Milliseconds within which the shim must answer a miss, so containerd moves on to the
    /// registry: the dial/response budget containerd gives a mirror.
    #[arg(long, env = "SHOAL_NODE_DIAL_TIMEOUT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub dial_timeout_ms: u64,
    /// A small image to pull through the mirror configuration (`registry/repo:tag`; a Docker
    /// Hub name with `--pull-with docker`); without it, no pull is tried.
    #[arg(long, env = "SHOAL_NODE_DOCTOR_IMAGE")]
    pub image: Option<String>,
    /// What pulls the image: `ctr` (with --hosts-dir, in namespace shoal-doctor) or `docker`.
    #[arg(long, env = "SHOAL_NODE_PULL_WITH", value_enum, default_value = "ctr")]
    pub pull_with: PullTool,
    /// containerd's socket, for `ctr`.
    #[arg(long, env = "SHOAL_NODE_CONTAINERD_ADDRESS", default_value = "/run/containerd/containerd.sock")]
    pub containerd_address: PathBuf,
    #[command(flatten)]
    pub hosts: HostsDir,
}

#[derive(Args, Debug)]
pub struct ShimUrl {
    /// The shim's URL as containerd and Docker reach it.
    #[arg(long = "shim-url", env = "SHOAL_NODE_SHIM_URL", default_value = "http://127.0.0.1:5000", value_parser = super::http_url)]
    pub shim_url: String,
}

#[derive(Args, Debug)]
pub struct HostsDir {
    /// containerd's hosts.toml tree (its CRI `config_path`; `ctr --hosts-dir`).
    #[arg(long = "hosts-dir", env = "SHOAL_NODE_HOSTS_DIR", default_value = "/etc/containerd/certs.d")]
    pub hosts_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct StateDir {
    /// Where install keeps its backups and its record of what it changed.
    #[arg(long = "state-dir", env = "SHOAL_NODE_STATE_DIR", default_value = shoal_node::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}
