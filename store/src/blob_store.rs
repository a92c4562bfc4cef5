//! The content-addressed blob store: `DATA/blobs/sha256/<hex>`, filled only through verified ingest.
//!
//! A blob enters through [`BlobStore::ingest`]: its bytes go to a temporary file under
//! `DATA/tmp` while SHA-256 and the SHA-1 pieces are computed in the same pass, and the file is
//! renamed into place only when the SHA-256 equals the expected digest. A mismatch, a short or
//! long stream, or a crash leaves nothing under `blobs/`: [`BlobStore::open`] removes whatever
//! a killed process left in `tmp/`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use shoal_torrents::{hash_reader, BlobDigest, HashError, HashedBlob};

/// Why a blob was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob {expected} does not match its digest: the bytes hash to {actual}; discarded")]
    DigestMismatch { expected: BlobDigest, actual: BlobDigest },
    #[error("blob {digest}: {error}")]
    Size { digest: BlobDigest, error: HashError },
    #[error("blob {digest}: expected {expected} bytes, the file holds {actual}")]
    WrongSize { digest: BlobDigest, expected: u64, actual: u64 },
    #[error("blob {digest}: the upstream stream failed: {message}")]
    Source { digest: BlobDigest, message: String },
    #[error("store I/O at {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |error| StoreError::Io { path: path.to_owned(), error }
}

/// One chunk of a blob as it arrives from upstream, or the reason the stream broke.
pub type Chunk = Result<Bytes, String>;

/// Bytes read from a stored blob per chunk of an HTTP body. Each chunk costs a round trip to
/// tokio's blocking pool: at tower-http's 64 KiB, serving a cached 1 GiB blob took 0.75 s of CPU
/// (docker-registry, with sendfile: 0.3-0.45 s); at 2 MiB, tokio's largest file read, 0.4 s.
pub const SERVE_CHUNK: usize = 2 << 20;

/// A stored blob's file as an HTTP body (with `Range`, `HEAD` and conditional requests), read
/// [`SERVE_CHUNK`] bytes at a time.
pub fn serve_file(path: impl AsRef<Path>) -> tower_http::services::ServeFile {
    tower_http::services::ServeFile::new(path).with_buf_chunk_size(SERVE_CHUNK)
}

/// The on-disk layout under one data directory.
#[derive(Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    next_tmp: AtomicU64,
}

impl BlobStore {
    /// Creates the layout if needed and removes temporary files a previous process left behind.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let blobs = data_dir.join("blobs").join("sha256");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
        fs::create_dir_all(&tmp).map_err(io_at(&tmp))?;
        let mut stale = 0;
        for entry in fs::read_dir(&tmp).map_err(io_at(&tmp))? {
            let path = entry.map_err(io_at(&tmp))?.path();
            fs::remove_file(&path).map_err(io_at(&path))?;
            stale += 1;
        }
        if stale > 0 {
            tracing::warn!(count = stale, dir = %tmp.display(), "removed partial blobs left by an earlier run");
        }
        Ok(Self { blobs, tmp, next_tmp: AtomicU64::new(0) })
    }

    /// Where a stored blob lives (whether or not it is there).
    pub fn path(&self, digest: &BlobDigest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// The stored blob's size, if it is stored.
    pub fn stored_size(&self, digest: &BlobDigest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    /// Digests of every stored blob (file names that are not digests are ignored).
    pub fn list(&self) -> Result<Vec<BlobDigest>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_at(&self.blobs))? {
            let entry = entry.map_err(io_at(&self.blobs))?;
            if let Some(d) = entry.file_name().to_str().and_then(|n| format!("sha256:{n}").parse().ok()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Hashes an already stored blob again (used only when the index lost its record).
    pub fn rehash(&self, digest: &BlobDigest) -> Result<HashedBlob, StoreError> {
        let path = self.path(digest);
        let file = File::open(&path).map_err(io_at(&path))?;
        let size = file.metadata().map_err(io_at(&path))?.len();
        let hashed =
            hash_reader(file, size, &mut |_| {}).map_err(|error| StoreError::Size { digest: *digest, error })?;
        if hashed.digest != *digest {
            return Err(StoreError::DigestMismatch { expected: *digest, actual: hashed.digest });
        }
        Ok(hashed)
    }

    /// Removes a stored blob (eviction). Missing is fine.
    pub fn remove(&self, digest: &BlobDigest) -> Result<(), StoreError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io { path, error: e }),
            _ => Ok(()),
        }
    }

    /// Writes `size` bytes arriving on `chunks` to a temporary file, hashing them in the same
    /// pass (SHA-1 pieces on this thread, SHA-256 on a second core), and moves the file to its
    /// content address only if they hash to `expected`. Blocking: run it off the async runtime.
    pub fn ingest(
        &self,
        expected: BlobDigest,
        size: u64,
        chunks: impl Iterator<Item = Chunk>,
    ) -> Result<HashedBlob, StoreError> {
        self.ingest_notifying(expected, size, chunks, || {})
    }

    /// [`BlobStore::ingest`], calling `on_verified` as soon as the bytes have hashed to
    /// `expected`, before the file is synced and renamed: a client streaming the same bytes
    /// can have its last chunk then, without waiting for the disk.
    pub fn ingest_notifying(
        &self,
        expected: BlobDigest,
        size: u64,
        chunks: impl Iterator<Item = Chunk>,
        on_verified: impl FnOnce(),
    ) -> Result<HashedBlob, StoreError> {
        let tmp_path = self.temp_path(&expected);
        let result = self.ingest_to(&tmp_path, expected, size, chunks, on_verified);
        if result.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        result
    }

    /// A fresh path under `DATA/tmp` for a blob being assembled: on the store's filesystem (so
    /// [`BlobStore::adopt`] can rename it into place) and removed by the next [`BlobStore::open`]
    /// if the process dies first.
    pub fn temp_path(&self, digest: &BlobDigest) -> PathBuf {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{}.{}.{n}", digest.hex(), std::process::id()))
    }

    /// Takes in a file whose bytes the caller has already checked against `expected` (the shim
    /// hashes every byte it streams to its client, and those are the bytes in the file): checks
    /// its size, syncs it and renames it to its content address. The file must be on the
    /// store's filesystem. On failure nothing is stored and the file is left where it was.
    pub fn adopt(&self, file: &Path, expected: BlobDigest, size: u64) -> Result<(), StoreError> {
        let f = File::open(file).map_err(io_at(file))?;
        let actual = f.metadata().map_err(io_at(file))?.len();
        if actual != size {
            return Err(StoreError::WrongSize { digest: expected, expected: size, actual });
        }
        f.sync_data().map_err(io_at(file))?;
        drop(f);
        let dest = self.path(&expected);
        fs::rename(file, &dest).map_err(io_at(&dest))
    }

    fn ingest_to(
        &self,
        tmp_path: &Path,
        expected: BlobDigest,
        size: u64,
        chunks: impl Iterator<Item = Chunk>,
        on_verified: impl FnOnce(),
    ) -> Result<HashedBlob, StoreError> {
        let file = File::create(tmp_path).map_err(io_at(tmp_path))?;
        let mut tee = TeeReader { chunks, current: Bytes::new(), file, failure: None, delivered: 0, size };
        let hashed = hash_reader(&mut tee, size, &mut |_| {});
        if let Some(failure) = tee.failure.take() {
            return Err(match failure {
                TeeFailure::Source(message) => StoreError::Source { digest: expected, message },
                TeeFailure::Write(error) => StoreError::Io { path: tmp_path.to_owned(), error },
            });
        }
        let hashed = hashed.map_err(|error| StoreError::Size { digest: expected, error })?;
        if hashed.digest != expected {
            tracing::error!(%expected, actual = %hashed.digest, "upstream bytes do not match the digest; discarded");
            return Err(StoreError::DigestMismatch { expected, actual: hashed.digest });
        }
        on_verified();
        tee.file.sync_data().map_err(io_at(tmp_path))?;
        drop(tee);
        let dest = self.path(&expected);
        fs::rename(tmp_path, &dest).map_err(io_at(&dest))?;
        Ok(hashed)
    }
}

enum TeeFailure {
    Source(String),
    Write(io::Error),
}

/// Reads chunks off the channel and writes each to the temporary file as it is handed to the
/// hasher: the one pass over the bytes both stores and hashes them.
struct TeeReader<I> {
    chunks: I,
    current: Bytes,
    file: File,
    failure: Option<TeeFailure>,
    delivered: u64,
    size: u64,
}

impl<I: Iterator<Item = Chunk>> Read for TeeReader<I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.next() {
                Some(Ok(chunk)) => {
                    if let Err(e) = self.file.write_all(&chunk) {
                        let msg = e.to_string();
                        self.failure = Some(TeeFailure::Write(e));
                        return Err(io::Error::other(msg));
                    }
                    self.delivered += chunk.len() as u64;
                    self.current = chunk;
                }
                // A stream that fails only after every byte arrived is a client library
                // verifying on its own: our digest check below gives the precise verdict.
                Some(Err(message)) if self.delivered == self.size => {
                    tracing::debug!(%message, "upstream stream failed after the last byte; checking the digest ourselves");
                    return Ok(0);
                }
                Some(Err(message)) => {
                    self.failure = Some(TeeFailure::Source(message.clone()));
                    return Err(io::Error::other(message));
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digest_of(data: &[u8]) -> BlobDigest {
        format!("sha256:{}", hex::encode(Sha256::digest(data))).parse().unwrap()
    }

    fn feed(chunks: Vec<Chunk>) -> std::vec::IntoIter<Chunk> {
        chunks.into_iter()
    }

    fn tmp_is_empty(dir: &Path) -> bool {
        fs::read_dir(dir.join("tmp")).unwrap().next().is_none()
    }

    #[test]
    fn a_matching_blob_lands_at_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31) as u8).collect();
        let d = digest_of(&data);
        let chunks = data.chunks(7000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let hashed = store.ingest(d, data.len() as u64, feed(chunks)).unwrap();
        assert_eq!(hashed.digest, d);
        assert_eq!(fs::read(store.path(&d)).unwrap(), data);
        assert!(tmp_is_empty(dir.path()));
        assert_eq!(store.list().unwrap(), vec![d]);
        assert_eq!(store.rehash(&d).unwrap(), hashed);
    }

    #[test]
    fn a_mismatch_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let claimed = digest_of(b"what the manifest says");
        let err = store.ingest(claimed, 5, feed(vec![Ok(Bytes::from_static(b"other"))])).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not match"));
        assert!(store.stored_size(&claimed).is_none());
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn on_verified_runs_only_for_bytes_that_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = digest_of(b"hello");
        let mut told = false;
        store.ingest_notifying(d, 5, feed(vec![Ok(Bytes::from_static(b"hello"))]), || told = true).unwrap();
        assert!(told);
        let other = digest_of(b"other");
        let mut told = false;
        let err =
            store.ingest_notifying(other, 5, feed(vec![Ok(Bytes::from_static(b"jello"))]), || told = true).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!told, "a mismatch must never let a client have its last chunk");
        let mut told = false;
        let err = store
            .ingest_notifying(other, 5, feed(vec![Ok(Bytes::from_static(b"oth")), Err("reset".into())]), || told = true)
            .unwrap_err();
        assert!(matches!(err, StoreError::Source { .. }), "{err}");
        assert!(!told);
    }

    #[test]
    fn adopt_moves_a_whole_file_in_and_refuses_a_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = b"verified elsewhere".to_vec();
        let d = digest_of(&data);
        let file = store.temp_path(&d);
        fs::write(&file, &data[..4]).unwrap();
        let err = store.adopt(&file, d, data.len() as u64).unwrap_err();
        assert!(matches!(err, StoreError::WrongSize { expected: 18, actual: 4, .. }), "{err}");
        assert!(store.stored_size(&d).is_none());
        assert!(file.is_file(), "a refused file stays for its owner to discard");
        fs::write(&file, &data).unwrap();
        store.adopt(&file, d, data.len() as u64).unwrap();
        assert_eq!(fs::read(store.path(&d)).unwrap(), data);
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn short_long_and_broken_streams_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = digest_of(b"hello");
        let short = store.ingest(d, 6, feed(vec![Ok(Bytes::from_static(b"hello"))])).unwrap_err();
        assert!(matches!(short, StoreError::Size { .. }), "{short}");
        let long = store.ingest(d, 4, feed(vec![Ok(Bytes::from_static(b"hello"))])).unwrap_err();
        assert!(matches!(long, StoreError::Size { .. }), "{long}");
        let broken = store.ingest(d, 5, feed(vec![Ok(Bytes::from_static(b"he")), Err("reset".into())])).unwrap_err();
        assert!(matches!(broken, StoreError::Source { .. }), "{broken}");
        let late = store.ingest(d, 5, feed(vec![Ok(Bytes::from_static(b"jello")), Err("digest".into())])).unwrap_err();
        assert!(matches!(late, StoreError::DigestMismatch { .. }), "{late}");
        assert!(store.stored_size(&d).is_none());
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn open_removes_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        drop(BlobStore::open(dir.path()).unwrap());
        fs::write(dir.path().join("tmp").join("abc.123.0"), b"partial").unwrap();
        let _store = BlobStore::open(dir.path()).unwrap();
        assert!(tmp_is_empty(dir.path()));
    }
}
