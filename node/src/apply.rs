//! The I/O around the plan: read the files, back up what changes, record it, write; and undo
//! it all byte for byte. Every check runs before the first write, so a refused install or
//! uninstall changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diff::unified;
use crate::manifest::{create_dir, sha256_hex, write_atomically, FileMode, Manifest, Original};
use crate::plan::{plan_install, InstallRequest};
use crate::NodeError;

/// What an install did (or, dry, would do).
#[derive(Debug, Default)]
pub struct InstallReport {
    /// A unified diff of every change.
    pub diff: String,
    /// Files written (none on a dry run or when everything was in place already).
    pub written: Vec<PathBuf>,
    /// Files that already pointed at the shim.
    pub unchanged: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// What an uninstall did (or, dry, would do).
#[derive(Debug, Default)]
pub struct UninstallReport {
    pub diff: String,
    /// Files put back as they were before install.
    pub restored: Vec<PathBuf>,
    /// Files install had created, now removed.
    pub removed: Vec<PathBuf>,
    /// False when there was no install to undo.
    pub had_install: bool,
}

/// Points the host at the shim as `request` says, keeping a backup of every file it changes
/// and a record of them in `state_dir`; with `dry_run`, only the diff.
pub fn install(request: &InstallRequest, state_dir: &Path, dry_run: bool) -> Result<InstallReport, NodeError> {
    let current = read_files(&request.paths())?;
    let plan = plan_install(request, &current)?;
    let mut report = InstallReport { unchanged: plan.unchanged, warnings: plan.warnings, ..Default::default() };
    for change in &plan.changes {
        report.diff.push_str(&unified(
            &change.path.to_string_lossy(),
            as_text(&change.before),
            as_text(&Some(change.after.clone())),
        ));
    }
    if dry_run || plan.changes.is_empty() {
        return Ok(report);
    }
    let mut manifest = Manifest::load(state_dir)?.unwrap_or_default();
    for change in &plan.changes {
        let parent = change.path.parent().unwrap_or(Path::new("/"));
        for dir in missing_dirs(parent) {
            if !manifest.created_dirs.contains(&dir) {
                manifest.created_dirs.push(dir);
            }
        }
        manifest.record(state_dir, &change.path, change.before.as_deref(), &change.after)?;
    }
    // The record is on disk before the first file changes: an install cut short can be undone.
    manifest.save(state_dir)?;
    for change in plan.changes {
        create_dir(change.path.parent().unwrap_or(Path::new("/")))?;
        write_atomically(&change.path, &change.after, FileMode::LikeTheOld)?;
        report.written.push(change.path);
    }
    Ok(report)
}

/// Puts back every file install changed, byte for byte, and removes the files and
/// directories it created. A file changed since install (by hand, by another tool) stops the
/// uninstall before anything is touched, unless `force`.
pub fn uninstall(state_dir: &Path, dry_run: bool, force: bool) -> Result<UninstallReport, NodeError> {
    let Some(manifest) = Manifest::load(state_dir)? else { return Ok(UninstallReport::default()) };
    let mut report = UninstallReport { had_install: true, ..Default::default() };
    let mut edited_since = Vec::new();
    let mut restores = Vec::new();
    for file in &manifest.files {
        let now = read_file(&file.path)?;
        let now_sha = now.as_deref().map(sha256_hex);
        let original = match &file.original {
            Original::Created => None,
            Original::Modified { sha256, backup } => Some((sha256, manifest.backup(state_dir, sha256, backup)?)),
        };
        let as_installed = now_sha.as_deref() == Some(&file.installed_sha256);
        let as_before = match &original {
            None => now.is_none(),
            Some((sha, _)) => now_sha.as_deref() == Some(sha.as_str()),
        };
        if !as_installed && !as_before {
            edited_since.push(file.path.clone());
        }
        let original = original.map(|(_, bytes)| bytes);
        report.diff.push_str(&unified(&file.path.to_string_lossy(), as_text(&now), as_text(&original)));
        restores.push((file.path.clone(), now.is_some(), original));
    }
    if !edited_since.is_empty() && !force {
        return Err(NodeError::EditedSinceInstall { paths: edited_since });
    }
    if dry_run {
        return Ok(report);
    }
    for (path, exists, original) in restores {
        match original {
            Some(bytes) => {
                create_dir(path.parent().unwrap_or(Path::new("/")))?;
                write_atomically(&path, &bytes, FileMode::LikeTheOld)?;
                report.restored.push(path);
            }
            None if exists => {
                std::fs::remove_file(&path).map_err(|error| NodeError::Write { path: path.clone(), error })?;
                report.removed.push(path);
            }
            None => {}
        }
    }
    for dir in manifest.created_dirs.iter().rev() {
        // Only when empty: anything put there since install stays.
        let _ = std::fs::remove_dir(dir);
    }
    Manifest::remove(state_dir)?;
    Ok(report)
}

/// The directories `dir` and its ancestors that do not exist yet, parents first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> =
        dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).map(Path::to_owned).collect();
    missing.reverse();
    missing
}

fn read_files(paths: &[PathBuf]) -> Result<BTreeMap<PathBuf, Vec<u8>>, NodeError> {
    let mut files = BTreeMap::new();
    for path in paths {
        if let Some(bytes) = read_file(path)? {
            files.insert(path.clone(), bytes);
        }
    }
    Ok(files)
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>, NodeError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(NodeError::Read { path: path.to_owned(), error }),
    }
}

fn as_text(bytes: &Option<Vec<u8>>) -> Option<&str> {
    bytes.as_deref().map(|b| std::str::from_utf8(b).unwrap_or("(not UTF-8 text)\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts_toml::Namespace;
    use crate::plan::ContainerdConfigCheck;

    struct Host {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        request: InstallRequest,
        state: PathBuf,
    }

    fn host() -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let request = InstallRequest {
            shim_url: "http://127.0.0.1:5000".into(),
            namespaces: vec![
                Namespace::parse_registry("ghcr.io").unwrap(),
                Namespace::parse_registry("quay.io").unwrap(),
            ],
            hosts_dir: root.join("certs.d"),
            containerd_config: Some(ContainerdConfigCheck { path: root.join("config.toml"), fix: true, release: None }),
            docker_daemon_json: Some(root.join("docker/daemon.json")),
        };
        Host { state: root.join("state"), root, request, _tmp: tmp }
    }

    /// Every file under `dir` with its bytes.
    fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(tree(&path));
                out.insert(path, b"<dir>".to_vec());
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
        out
    }

    #[test]
    fn install_then_uninstall_leaves_the_tree_as_it_was() {
        let h = host();
        std::fs::create_dir_all(h.root.join("certs.d/ghcr.io")).unwrap();
        std::fs::write(
            h.root.join("certs.d/ghcr.io/hosts.toml"),
            "server = \"https://ghcr.io\"\n[host.\"https://m\"]\n",
        )
        .unwrap();
        std::fs::write(h.root.join("config.toml"), "version = 2\n").unwrap();
        let before = tree(&h.root);
        let report = install(&h.request, &h.state, false).unwrap();
        assert_eq!(report.written.len(), 4, "{report:?}");
        let again = install(&h.request, &h.state, false).unwrap();
        assert!(again.written.is_empty() && again.diff.is_empty(), "{again:?}");
        let undone = uninstall(&h.state, false, false).unwrap();
        assert_eq!((undone.restored.len(), undone.removed.len()), (2, 2));
        assert_eq!(tree(&h.root), before);
        assert!(!uninstall(&h.state, false, false).unwrap().had_install);
    }

    #[test]
    fn permissions_and_symlinks_survive_install_and_uninstall() {
        use std::os::unix::fs::PermissionsExt;
        let h = host();
        std::fs::create_dir_all(h.root.join("docker")).unwrap();
        std::fs::write(h.root.join("real.json"), "{\"debug\": true}\n").unwrap();
        std::fs::set_permissions(h.root.join("real.json"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink(h.root.join("real.json"), h.root.join("docker/daemon.json")).unwrap();
        install(&h.request, &h.state, false).unwrap();
        let link = std::fs::symlink_metadata(h.root.join("docker/daemon.json")).unwrap();
        assert!(link.file_type().is_symlink(), "the symlink was replaced");
        assert!(std::fs::read_to_string(h.root.join("real.json")).unwrap().contains("registry-mirrors"));
        assert_eq!(std::fs::metadata(h.root.join("real.json")).unwrap().permissions().mode() & 0o777, 0o640);
        let mode = |p: &str| std::fs::metadata(h.state.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(""), mode("manifest.json")), (0o700, 0o600));
        let backups: Vec<_> = std::fs::read_dir(h.state.join("backups")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(backups.len(), 1);
        assert_eq!(std::fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777, 0o600);
        let new_file = std::fs::metadata(h.root.join("certs.d/ghcr.io/hosts.toml")).unwrap();
        assert_eq!(new_file.permissions().mode() & 0o777, 0o644);
        uninstall(&h.state, false, false).unwrap();
        assert!(std::fs::symlink_metadata(h.root.join("docker/daemon.json")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(h.root.join("real.json")).unwrap(), "{\"debug\": true}\n");
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let h = host();
        let report = install(&h.request, &h.state, true).unwrap();
        assert!(report.diff.contains("+++ b") && report.written.is_empty(), "{report:?}");
        assert!(tree(&h.root).is_empty());
    }

    #[test]
    fn a_file_edited_since_install_stops_the_uninstall_unless_forced() {
        let h = host();
        install(&h.request, &h.state, false).unwrap();
        let edited = h.root.join("docker/daemon.json");
        std::fs::write(&edited, "{}\n").unwrap();
        let err = uninstall(&h.state, false, false).unwrap_err();
        assert!(
            matches!(&err, NodeError::EditedSinceInstall { paths } if paths == std::slice::from_ref(&edited)),
            "{err}"
        );
        assert!(h.root.join("certs.d/ghcr.io/hosts.toml").exists(), "nothing was undone");
        uninstall(&h.state, false, true).unwrap();
        assert!(tree(&h.root).is_empty(), "{:?}", tree(&h.root));
    }

    #[test]
    fn a_later_install_with_more_registries_keeps_the_first_originals() {
        let mut h = host();
        std::fs::create_dir_all(h.root.join("docker")).unwrap();
        std::fs::write(h.root.join("docker/daemon.json"), "{\"debug\": true}").unwrap();
        let before = tree(&h.root);
        install(&h.request, &h.state, false).unwrap();
        h.request.namespaces.push(Namespace::Default);
        let more = install(&h.request, &h.state, false).unwrap();
        assert_eq!(more.written, [h.root.join("certs.d/_default/hosts.toml")]);
        uninstall(&h.state, false, false).unwrap();
        assert_eq!(tree(&h.root), before);
    }

    #[test]
    fn an_unparsable_file_changes_nothing() {
        let h = host();
        std::fs::create_dir_all(h.root.join("docker")).unwrap();
        std::fs::write(h.root.join("docker/daemon.json"), "{not json").unwrap();
        let before = tree(&h.root);
        let err = install(&h.request, &h.state, false).unwrap_err();
        assert!(err.to_string().contains("daemon.json"), "{err}");
        assert_eq!(tree(&h.root), before);
    }
}
