//! Drives the hashing core over any `Read` with SHA-256 and SHA-1 on two cores at once.
//!
//! The calling thread reads and computes the SHA-1 pieces; a scoped worker computes SHA-256 over
//! the same buffers. A small pool of buffers circulates between the two, so a blob of any size
//! is streamed through a few MiB of memory. SHA-256 is inherently sequential and about as
//! fast as SHA-1 on SHA-NI cores, so this split keeps both cores busy; splitting the SHA-1
//! pieces further only pays with more than two cores (see docs/torrent-profile.md).

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::hasher::{HashedBlob, PieceHasher};
use crate::{BlobDigest, PieceLength};

const BUFFER_BYTES: usize = 1 << 20;
const BUFFERS: usize = 4;

/// Why a blob could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("reading the blob failed: {0}")]
    Io(io::Error),
    #[error("blob is truncated: expected {expected} bytes, got {got}")]
    Truncated { expected: u64, got: u64 },
    #[error("blob is longer than the expected {expected} bytes")]
    TooLong { expected: u64 },
}

// By hand, not `#[from]`: the variant formats the I/O error, so it must not also chain it.
impl From<io::Error> for HashError {
    fn from(e: io::Error) -> Self {
        HashError::Io(e)
    }
}

/// Progress callback: called with the number of bytes hashed so far.
pub type HashProgress<'a> = &'a mut dyn FnMut(u64);

/// Hashes exactly `size` bytes from `reader` in one pass, with the profile's piece length.
///
/// The size must be known up front (a file's length, an OCI descriptor's `size`) because the
/// piece length depends on it; a reader that ends early or runs long is an error, so a truncated
/// download can never be mistaken for a blob.
pub fn hash_reader<R: Read>(reader: R, size: u64, progress: HashProgress<'_>) -> Result<HashedBlob, HashError> {
    hash_reader_with(reader, size, PieceLength::for_blob_size(size), progress)
}

/// As [`hash_reader`], with an explicit piece length.
pub fn hash_reader_with<R: Read>(
    mut reader: R,
    size: u64,
    piece_length: PieceLength,
    progress: HashProgress<'_>,
) -> Result<HashedBlob, HashError> {
    let mut pieces = PieceHasher::new(piece_length, Some(size));
    let (to_worker, worker_in): (SyncSender<Arc<Vec<u8>>>, _) = sync_channel(BUFFERS);
    let (worker_out, from_worker): (SyncSender<Arc<Vec<u8>>>, Receiver<_>) = sync_channel(BUFFERS);

    std::thread::scope(|scope| {
        let sha256 = scope.spawn(move || {
            let mut sha = Sha256::new();
            for buf in worker_in {
                sha.update(&buf[..]);
                // The reader may already be gone after an error; then the buffer is just dropped.
                let _ = worker_out.send(buf);
            }
            sha.finalize()
        });

        let mut pool: Vec<Vec<u8>> = (0..BUFFERS).map(|_| Vec::with_capacity(BUFFER_BYTES)).collect();
        let mut total = 0u64;
        let read_result = loop {
            let mut buf = match pool.pop() {
                Some(buf) => buf,
                None => match from_worker.recv() {
                    Ok(arc) => reclaim(arc),
                    Err(_) => unreachable!("the SHA-256 worker outlives the reader"),
                },
            };
            match fill(&mut reader, &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    total += n as u64;
                    if total > size {
                        break Err(HashError::TooLong { expected: size });
                    }
                    let shared = Arc::new(buf);
                    to_worker.send(Arc::clone(&shared)).expect("SHA-256 worker alive");
                    pieces.update(&shared);
                    progress(total);
                    // Our clone is released here; the worker sends the buffer back when done.
                    drop(shared);
                }
                Err(e) => break Err(e.into()),
            }
        };
        drop(to_worker);
        let sha = sha256.join().expect("SHA-256 worker panicked");
        read_result?;
        if total < size {
            return Err(HashError::Truncated { expected: size, got: total });
        }
        Ok(HashedBlob { digest: BlobDigest::from_bytes(sha.into()), size, piece_length, pieces: pieces.finish() })
    })
}

/// Takes a buffer back from the worker; it holds the last reference once it has sent it.
fn reclaim(arc: Arc<Vec<u8>>) -> Vec<u8> {
    Arc::try_unwrap(arc).unwrap_or_else(|shared| Vec::with_capacity(shared.capacity()))
}

/// Reads until `buf` holds `BUFFER_BYTES` or the reader ends; returns how many bytes it holds.
fn fill<R: Read>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    let mut limited = reader.take(BUFFER_BYTES as u64);
    loop {
        match limited.read_to_end(buf) {
            Ok(_) => return Ok(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlobHasher;

    fn data(len: usize) -> Vec<u8> {
        let mut x = 0x9e3779b97f4a7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn agrees_with_the_sequential_core() {
        for len in [0, 1, 32 * 1024, BUFFER_BYTES, 3 * BUFFER_BYTES + 12_345, 9 * BUFFER_BYTES] {
            let bytes = data(len);
            let mut seq = BlobHasher::new(len as u64);
            seq.update(&bytes);
            let mut seen = 0;
            let par = hash_reader(&bytes[..], len as u64, &mut |n| seen = n).unwrap();
            assert_eq!(par, seq.finish(), "len {len}");
            assert_eq!(seen, len as u64);
        }
    }

    #[test]
    fn short_and_long_readers_are_errors() {
        let bytes = data(5000);
        assert!(matches!(
            hash_reader(&bytes[..], 6000, &mut |_| {}),
            Err(HashError::Truncated { expected: 6000, got: 5000 })
        ));
        assert!(matches!(hash_reader(&bytes[..], 4000, &mut |_| {}), Err(HashError::TooLong { expected: 4000 })));
    }

    #[test]
    fn reader_errors_surface() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = hash_reader(Broken, 10, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
    }
}
