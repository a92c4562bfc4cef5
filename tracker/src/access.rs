//! Which infohashes the tracker serves: everything (open, the default) or an allow-list.
//!
//! The list lives in memory and, when it came from a file, is written back to that file (via
//! a temporary file and a rename) after every admin change, so changes survive a restart.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use shoal_torrents::InfoHash;

#[derive(Debug, thiserror::Error)]
pub enum AllowListError {
    #[error("cannot read allow-list {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("allow-list {path} line {line}: expected 40 hex characters")]
    Line { path: PathBuf, line: usize },
    #[error("cannot write allow-list {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
    #[error("the tracker is open: start it with an allow-list to manage torrents")]
    Open,
}

/// Parses allow-list text: one 40-hex infohash per line; blank lines and `#` comments skipped.
/// On error, returns the 1-based number of the first bad line.
pub fn parse_allow_list(text: &str) -> Result<HashSet<InfoHash>, usize> {
    let mut set = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        set.insert(line.parse::<InfoHash>().map_err(|_| i + 1)?);
    }
    Ok(set)
}

/// The tracker's access policy.
pub struct Access {
    list: Option<RwLock<HashSet<InfoHash>>>,
    file: Option<PathBuf>,
}

impl Access {
    /// Serves every infohash.
    pub fn open() -> Self {
        Self { list: None, file: None }
    }

    /// Serves only the infohashes listed in `path`.
    pub fn from_file(path: &Path) -> Result<Self, AllowListError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| AllowListError::Read { path: path.to_owned(), error })?;
        let set = parse_allow_list(&text).map_err(|line| AllowListError::Line { path: path.to_owned(), line })?;
        Ok(Self { list: Some(RwLock::new(set)), file: Some(path.to_owned()) })
    }

    /// Serves only the given infohashes (no file behind them).
    pub fn from_set(set: HashSet<InfoHash>) -> Self {
        Self { list: Some(RwLock::new(set)), file: None }
    }

    pub fn is_open(&self) -> bool {
        self.list.is_none()
    }

    pub fn allows(&self, info_hash: &InfoHash) -> bool {
        match &self.list {
            None => true,
            Some(list) => list.read().unwrap_or_else(|e| e.into_inner()).contains(info_hash),
        }
    }

    /// Adds or removes one infohash and saves the file. Returns whether the list changed.
    /// Blocking (file I/O): call from a blocking context.
    pub fn set(&self, info_hash: InfoHash, allowed: bool) -> Result<bool, AllowListError> {
        let list = self.list.as_ref().ok_or(AllowListError::Open)?;
        let mut set = list.write().unwrap_or_else(|e| e.into_inner());
        let changed = if allowed { set.insert(info_hash) } else { set.remove(&info_hash) };
        if changed {
            if let Some(path) = &self.file {
                save(path, &set)?;
            }
        }
        Ok(changed)
    }
}

fn save(path: &Path, set: &HashSet<InfoHash>) -> Result<(), AllowListError> {
    let mut lines: Vec<String> = set.iter().map(InfoHash::hex).collect();
    lines.sort();
    let mut text = lines.join("\n");
    text.push('\n');
    let tmp = path.with_extension("tmp");
    let err = |error| AllowListError::Write { path: path.to_owned(), error };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_blanks_and_either_case() {
        let set = parse_allow_list("# lab torrents\n\n0123456789abcdef0123456789ABCDEF01234567  # blob\n").unwrap();
        assert!(set.contains(&"0123456789abcdef0123456789abcdef01234567".parse().unwrap()));
        assert_eq!(parse_allow_list("ok\n").unwrap_err(), 1);
    }

    #[test]
    fn admin_changes_are_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allow.txt");
        std::fs::write(&path, "").unwrap();
        let access = Access::from_file(&path).unwrap();
        let h = InfoHash::from_bytes([0xab; 20]);
        assert!(!access.allows(&h));
        assert!(access.set(h, true).unwrap());
        assert!(access.allows(&h));
        assert!(Access::from_file(&path).unwrap().allows(&h));
        assert!(access.set(h, false).unwrap());
        assert!(!Access::from_file(&path).unwrap().allows(&h));
        assert!(matches!(Access::open().set(h, true), Err(AllowListError::Open)));
    }
}
