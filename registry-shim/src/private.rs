//! Which stored blobs came with a client's own credentials: a marker file per blob under
//! `DATA/private/`, so the mark survives restarts and is in place before the blob is.
//!
//! A blob fetched with a client's credentials may be private. The store is content-addressed
//! and shared, so such a blob is served from the cache only after the upstream registry lets
//! the asking client (with its credentials, or the shim's own access) read it in that
//! repository; it is not seeded onto the swarm. The mark is written before the download
//! starts (a crash never leaves a private blob unmarked) and dropped once the shim's own access
//! proves the blob readable without a client's credentials.

use std::io;
use std::path::{Path, PathBuf};

use shoal_torrents::BlobDigest;

pub(crate) struct PrivateBlobs {
    dir: PathBuf,
}

impl PrivateBlobs {
    pub(crate) fn open(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join("private");
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, digest: &BlobDigest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Marks `digest` private (before its bytes are stored). Durable: the file is synced.
    pub(crate) fn mark(&self, digest: &BlobDigest) -> io::Result<()> {
        let file = std::fs::File::create(self.path(digest))?;
        file.sync_all()
    }

    pub(crate) fn is_private(&self, digest: &BlobDigest) -> bool {
        self.path(digest).exists()
    }

    /// Drops the mark (shown readable without a client's credentials, or evicted).
    pub(crate) fn clear(&self, digest: &BlobDigest) {
        match std::fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(%digest, error = %e, "cannot drop a private mark")
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_reopening_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let d: BlobDigest = format!("sha256:{}", "c".repeat(64)).parse().unwrap();
        let other: BlobDigest = format!("sha256:{}", "d".repeat(64)).parse().unwrap();
        let marks = PrivateBlobs::open(dir.path()).unwrap();
        assert!(!marks.is_private(&d));
        marks.mark(&d).unwrap();
        drop(marks);
        let marks = PrivateBlobs::open(dir.path()).unwrap();
        assert!(marks.is_private(&d) && !marks.is_private(&other));
        marks.clear(&d);
        marks.clear(&other);
        assert!(!marks.is_private(&d));
    }
}
