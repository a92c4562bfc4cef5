//! What `shoal node install` writes, given what the files hold now (pure): the request, the
//! files' current bytes in, the changes and the warnings out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::containerd_config::{self, ContainerdConfigError, ContainerdRelease, Finding};
use crate::daemon_json::{self, DaemonJsonEdit, DaemonJsonError};
use crate::hosts_toml::{self, HostsTomlEdit, HostsTomlError, Namespace};

/// What to point at the shim.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The shim's base URL as containerd and Docker reach it (`http://127.0.0.1:5000`).
    pub shim_url: String,
    /// The namespaces to write a hosts.toml for (`_default` when mirroring every registry);
    /// empty when containerd is left alone.
    pub namespaces: Vec<Namespace>,
    /// containerd's hosts.toml tree (`/etc/containerd/certs.d`).
    pub hosts_dir: PathBuf,
    /// containerd's config.toml to check (and with `fix`, edit); `None`: not checked.
    pub containerd_config: Option<ContainerdConfigCheck>,
    /// Docker's daemon.json to add the shim to (`registry-mirrors`); `None`: Docker left alone.
    pub docker_daemon_json: Option<PathBuf>,
}

/// containerd's config.toml, checked and perhaps fixed.
#[derive(Debug, Clone)]
pub struct ContainerdConfigCheck {
    pub path: PathBuf,
    pub fix: bool,
    /// From `containerd --version`, when it could be run.
    pub release: Option<ContainerdRelease>,
}

impl InstallRequest {
    /// Every file the plan may read or write, so the caller can read them first.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.namespaces.iter().map(|ns| self.hosts_toml(ns)).collect();
        paths.extend(self.containerd_config.as_ref().map(|c| c.path.clone()));
        paths.extend(self.docker_daemon_json.clone());
        paths
    }

    fn hosts_toml(&self, namespace: &Namespace) -> PathBuf {
        self.hosts_dir.join(namespace.dir_name()).join("hosts.toml")
    }
}

/// One file's new bytes (`before`: what it holds now, `None` when it does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileChange {
    pub path: PathBuf,
    pub before: Option<Vec<u8>>,
    pub after: Vec<u8>,
}

/// The changes an install makes and what it has to say about the rest.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct InstallPlan {
    pub changes: Vec<FileChange>,
    /// Files that already point at the shim.
    pub unchanged: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// Why no plan could be made: a file that is there cannot be read as what it should be.
/// Nothing is written when planning fails.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot add the shim to {path}")]
    HostsToml {
        path: PathBuf,
        #[source]
        error: HostsTomlError,
    },
    #[error("cannot add the shim to {path}")]
    DaemonJson {
        path: PathBuf,
        #[source]
        error: DaemonJsonError,
    },
    #[error("cannot check containerd's config {path}")]
    ContainerdConfig {
        path: PathBuf,
        #[source]
        error: ContainerdConfigError,
    },
    #[error("{path} is not UTF-8 text")]
    NotText { path: PathBuf },
}

/// The plan for `request` over the files as they are (`current`: each path's bytes, missing
/// when the file does not exist).
pub(crate) fn plan_install(
    request: &InstallRequest,
    current: &BTreeMap<PathBuf, Vec<u8>>,
) -> Result<InstallPlan, PlanError> {
    let mut plan = InstallPlan::default();
    for namespace in &request.namespaces {
        let path = request.hosts_toml(namespace);
        let before = text(&path, current)?;
        let edit = hosts_toml::with_shim_first(before, namespace, &request.shim_url)
            .map_err(|error| PlanError::HostsToml { path: path.clone(), error })?;
        match edit {
            HostsTomlEdit::AlreadyPresent { first } => {
                if !first {
                    plan.warnings.push(format!(
                        "{} names the shim, but not first: containerd asks the hosts before it first",
                        path.display()
                    ));
                }
                plan.unchanged.push(path);
            }
            HostsTomlEdit::Write(after) => plan.push(path, before, after),
        }
    }
    if let Some(check) = &request.containerd_config {
        plan_containerd_config(request, check, current, &mut plan)?;
    }
    if let Some(path) = &request.docker_daemon_json {
        let before = text(path, current)?;
        match daemon_json::with_mirror_first(before, &request.shim_url)
            .map_err(|error| PlanError::DaemonJson { path: path.clone(), error })?
        {
            DaemonJsonEdit::AlreadyPresent => plan.unchanged.push(path.clone()),
            DaemonJsonEdit::Write(after) => {
                plan.warnings.push(format!(
                    "Docker asks {} for Docker Hub images only (its registry-mirrors applies to nothing else); \
                     restart dockerd (or send it SIGHUP) to load {}",
                    request.shim_url,
                    path.display()
                ));
                plan.push(path.clone(), before, after);
            }
        }
    }
    Ok(plan)
}

fn plan_containerd_config(
    request: &InstallRequest,
    check: &ContainerdConfigCheck,
    current: &BTreeMap<PathBuf, Vec<u8>>,
    plan: &mut InstallPlan,
) -> Result<(), PlanError> {
    let path = &check.path;
    let hosts_dir = request.hosts_dir.to_string_lossy();
    let before = text(path, current)?;
    let error = |error| PlanError::ContainerdConfig { path: path.clone(), error };
    let (version, findings) = containerd_config::check(before, &hosts_dir, check.release).map_err(error)?;
    let fixing = check.fix && findings.iter().any(Finding::fixable);
    for finding in &findings {
        let prefix = match version {
            Some(v) => format!("{} (version {v})", path.display()),
            None => path.display().to_string(),
        };
        if !(fixing && finding.fixable()) {
            plan.warnings.push(format!("{prefix}: {finding}"));
        }
    }
    if fixing {
        let after = containerd_config::fixed(before, &hosts_dir, check.release).map_err(error)?;
        plan.warnings.push(format!("restart containerd to load {} (CRI pulls read it at start)", path.display()));
        plan.push(path.clone(), before, after);
    } else if findings.is_empty() {
        plan.unchanged.push(path.clone());
    }
    Ok(())
}

impl InstallPlan {
    fn push(&mut self, path: PathBuf, before: Option<&str>, after: String) {
        self.changes.push(FileChange {
            path,
            before: before.map(|b| b.as_bytes().to_vec()),
            after: after.into_bytes(),
        });
    }
}

fn text<'a>(path: &Path, current: &'a BTreeMap<PathBuf, Vec<u8>>) -> Result<Option<&'a str>, PlanError> {
    current
        .get(path)
        .map(|bytes| std::str::from_utf8(bytes).map_err(|_| PlanError::NotText { path: path.to_owned() }))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "http://127.0.0.1:5000";

    fn request() -> InstallRequest {
        InstallRequest {
            shim_url: SHIM.into(),
            namespaces: vec![Namespace::parse_registry("ghcr.io").unwrap(), Namespace::Default],
            hosts_dir: "/etc/containerd/certs.d".into(),
            containerd_config: Some(ContainerdConfigCheck {
                path: "/etc/containerd/config.toml".into(),
                fix: false,
                release: None,
            }),
            docker_daemon_json: Some("/etc/docker/daemon.json".into()),
        }
    }

    fn files(entries: &[(&str, &str)]) -> BTreeMap<PathBuf, Vec<u8>> {
        entries.iter().map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec())).collect()
    }

    #[test]
    fn a_bare_host_gets_every_file_and_a_warning_about_containerd() {
        let plan = plan_install(&request(), &BTreeMap::new()).unwrap();
        let paths: Vec<_> = plan.changes.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/etc/containerd/certs.d/ghcr.io/hosts.toml",
                "/etc/containerd/certs.d/_default/hosts.toml",
                "/etc/docker/daemon.json"
            ]
        );
        assert!(plan.changes.iter().all(|c| c.before.is_none()));
        assert!(plan.warnings.iter().any(|w| w.contains("no containerd config file")), "{:?}", plan.warnings);
        assert!(plan.warnings.iter().any(|w| w.contains("Docker Hub images only")), "{:?}", plan.warnings);
    }

    #[test]
    fn fix_edits_the_config_and_a_second_plan_changes_nothing() {
        let mut request = request();
        request.containerd_config.as_mut().unwrap().fix = true;
        let config = "version = 3\n";
        let plan = plan_install(&request, &files(&[("/etc/containerd/config.toml", config)])).unwrap();
        assert_eq!(plan.changes.len(), 4);
        assert!(!plan.warnings.iter().any(|w| w.contains("transfer service")), "{:?}", plan.warnings);
        let after: BTreeMap<PathBuf, Vec<u8>> = plan.changes.into_iter().map(|c| (c.path, c.after)).collect();
        let again = plan_install(&request, &after).unwrap();
        assert_eq!(again.changes, []);
        assert_eq!(again.unchanged.len(), 4);
    }

    #[test]
    fn without_fix_the_transfer_service_is_a_warning_and_the_config_is_left_alone() {
        let config =
            "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = '/etc/containerd/certs.d'\n";
        let plan = plan_install(&request(), &files(&[("/etc/containerd/config.toml", config)])).unwrap();
        assert!(plan.changes.iter().all(|c| c.path != Path::new("/etc/containerd/config.toml")));
        assert!(
            plan.warnings.iter().any(|w| w.contains("(version 3)") && w.contains("use_local_image_pull")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn a_bad_file_fails_the_whole_plan_naming_it() {
        let err = plan_install(&request(), &files(&[("/etc/docker/daemon.json", "{oops")])).unwrap_err();
        assert_eq!(err.to_string(), "cannot add the shim to /etc/docker/daemon.json");
        let binary: BTreeMap<PathBuf, Vec<u8>> =
            [(PathBuf::from("/etc/containerd/certs.d/ghcr.io/hosts.toml"), vec![0xff, 0xfe])].into();
        assert!(matches!(plan_install(&request(), &binary), Err(PlanError::NotText { .. })));
    }
}
