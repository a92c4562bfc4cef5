//! What the default store limit (`--max-store-bytes auto`) is computed from: the bytes a store
//! holds already and the free space of the filesystem it is on, read once at start.

use std::path::Path;

/// Bytes of the blob files under `data_dir` (`blobs/sha256/*`); 0 for a new data directory.
pub fn stored_bytes(data_dir: &Path) -> std::io::Result<u64> {
    let blobs = data_dir.join("blobs").join("sha256");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut total = 0u64;
    for entry in entries {
        total = total.saturating_add(entry?.metadata()?.len());
    }
    Ok(total)
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
/// nearest existing ancestor, for a data directory not created yet).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("."));
    let stat = rustix::fs::statvfs(existing)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_add_up_the_blob_files_and_free_space_is_read_for_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_bytes(dir.path()).unwrap(), 0);
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("a"), vec![0u8; 1000]).unwrap();
        std::fs::write(blobs.join("b"), vec![0u8; 24]).unwrap();
        assert_eq!(stored_bytes(dir.path()).unwrap(), 1024);
        assert!(free_bytes(&dir.path().join("not/yet/made")).unwrap() > 0);
    }
}
