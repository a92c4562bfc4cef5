//! The record `shoal node install` keeps in its state directory: every file it wrote, whether it
//! created or modified it, the SHA-256 of the original and of what it wrote, the backup of each
//! original, and the directories it created; `shoal node uninstall` undoes exactly that.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::NodeError;

const MANIFEST: &str = "manifest.json";
const BACKUPS: &str = "backups";

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) files: Vec<ManagedFile>,
    /// Directories install created, parents before children.
    pub(crate) created_dirs: Vec<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ManagedFile {
    pub(crate) path: PathBuf,
    pub(crate) original: Original,
    /// SHA-256 (hex) of the bytes install last wrote.
    pub(crate) installed_sha256: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum Original {
    /// The file did not exist: uninstall removes it.
    Created,
    /// The file existed: its bytes are in `backups/<backup>`, uninstall puts them back.
    Modified { sha256: String, backup: String },
}

/// SHA-256 as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Manifest {
    /// The manifest in `state_dir`, or `None` when nothing is installed.
    pub(crate) fn load(state_dir: &Path) -> Result<Option<Self>, NodeError> {
        let path = state_dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| NodeError::BadManifest { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(NodeError::Read { path, error }),
        }
    }

    /// Writes the manifest (temporary file, fsync, rename), creating the state directory.
    pub(crate) fn save(&self, state_dir: &Path) -> Result<(), NodeError> {
        let bytes = serde_json::to_vec_pretty(self).expect("the manifest always serializes");
        create_dir(&state_dir.join(BACKUPS))?;
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(state_dir, private)
            .map_err(|error| NodeError::Write { path: state_dir.to_owned(), error })?;
        write_atomically(&state_dir.join(MANIFEST), &bytes, FileMode::Private)
    }

    /// Keeps `original` of `path` as a backup (when it existed) and records the file.
    pub(crate) fn record(
        &mut self,
        state_dir: &Path,
        path: &Path,
        original: Option<&[u8]>,
        installed: &[u8],
    ) -> Result<(), NodeError> {
        let installed_sha256 = sha256_hex(installed);
        if let Some(known) = self.files.iter_mut().find(|f| f.path == path) {
            // Installed before: the original backed up then is still the one to restore.
            known.installed_sha256 = installed_sha256;
            return Ok(());
        }
        let original = match original {
            None => Original::Created,
            Some(bytes) => {
                let backup = format!("{:03}-{}", self.files.len(), file_name(path));
                create_dir(&state_dir.join(BACKUPS))?;
                write_atomically(&state_dir.join(BACKUPS).join(&backup), bytes, FileMode::Private)?;
                Original::Modified { sha256: sha256_hex(bytes), backup }
            }
        };
        self.files.push(ManagedFile { path: path.to_owned(), original, installed_sha256 });
        Ok(())
    }

    /// The original bytes of a modified file, checked against the hash taken at install.
    pub(crate) fn backup(&self, state_dir: &Path, sha256: &str, backup: &str) -> Result<Vec<u8>, NodeError> {
        let path = state_dir.join(BACKUPS).join(backup);
        let bytes = std::fs::read(&path).map_err(|error| NodeError::Read { path: path.clone(), error })?;
        if sha256_hex(&bytes) != sha256 {
            return Err(NodeError::BadManifest { path, reason: "the backup's SHA-256 is not the original's".into() });
        }
        Ok(bytes)
    }

    /// Removes the manifest, the backups and the state directory itself when that leaves it empty.
    pub(crate) fn remove(state_dir: &Path) -> Result<(), NodeError> {
        let backups = state_dir.join(BACKUPS);
        if backups.exists() {
            std::fs::remove_dir_all(&backups).map_err(|error| NodeError::Write { path: backups, error })?;
        }
        let manifest = state_dir.join(MANIFEST);
        std::fs::remove_file(&manifest).map_err(|error| NodeError::Write { path: manifest, error })?;
        let _ = std::fs::remove_dir(state_dir);
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into())
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), NodeError> {
    std::fs::create_dir_all(dir).map_err(|error| NodeError::Write { path: dir.to_owned(), error })
}

/// Whose a file install writes is, and who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileMode {
    /// A runtime's file: the old file's owner and permissions, 0644 for a new one.
    LikeTheOld,
    /// The record and the backups: 0600 (a hosts.toml may carry credentials in a header).
    Private,
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and renamed
/// over it, so a reader sees the old file or the new one, never half of one. A symlink stays
/// one: the file it points at is written.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: FileMode) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let error = |error| NodeError::Write { path: path.clone(), error };
    let dir = path.parent().ok_or_else(|| error(std::io::Error::other("no parent directory")))?;
    let old = std::fs::metadata(&path).ok();
    let permissions = match (mode, &old) {
        (FileMode::Private, _) => std::fs::Permissions::from_mode(0o600),
        (FileMode::LikeTheOld, Some(old)) => old.permissions(),
        (FileMode::LikeTheOld, None) => std::fs::Permissions::from_mode(0o644),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    tmp.write_all(bytes).map_err(error)?;
    tmp.as_file().set_permissions(permissions).map_err(error)?;
    if let (FileMode::LikeTheOld, Some(old)) = (mode, &old) {
        std::os::unix::fs::fchown(tmp.as_file(), Some(old.uid()), Some(old.gid())).map_err(error)?;
    }
    tmp.as_file().sync_all().map_err(error)?;
    tmp.persist(&path).map_err(|e| error(e.error))?;
    Ok(())
}
