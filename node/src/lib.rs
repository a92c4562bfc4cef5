//! Shoal on a host: containerd's hosts.toml tree and Docker's daemon.json pointed at the
//! registry shim (`install`), put back byte for byte (`uninstall`), and checked (`doctor`).
//!
//! The edits are pure (`hosts_toml`, `daemon_json`, `containerd_config`, `plan`, `diff`: text in,
//! text out, unit-tested); `apply` reads and writes the files with a backup and a record of each
//! in a state directory (`manifest`); `doctor` talks to the shim and runs `ctr` or `docker`.

use std::path::PathBuf;

mod apply;
mod containerd_config;
mod daemon_json;
mod diff;
pub mod doctor;
#[cfg(test)]
mod fuzz;
mod hosts_toml;
mod manifest;
mod plan;

pub use apply::{install, uninstall, InstallReport, UninstallReport};
pub use containerd_config::{ContainerdConfigError, ContainerdRelease, Finding};
pub use daemon_json::{mirrors as daemon_json_mirrors, DaemonJsonError};
pub use hosts_toml::{host_order, BadRegistry, HostsTomlError, Namespace};
pub use plan::{ContainerdConfigCheck, InstallRequest, PlanError};

/// The default state directory: backups of the files install changed and its record of them.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/shoal/node-backup";

/// Why an install or uninstall stopped. Each stops before its first write when it can.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("{path} is not a record `shoal node install` wrote: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error(
        "changed since `shoal node install` wrote them: {}; nothing was restored (--force restores the originals over those changes)",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    EditedSinceInstall { paths: Vec<PathBuf> },
}
