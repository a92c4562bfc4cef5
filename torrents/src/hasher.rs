//! The pure hashing core: fed a blob's bytes in any chunking, yields its SHA-256 and SHA-1 pieces.

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::{BlobDigest, PieceLength};

/// What one pass over a blob yields: everything the torrent profile needs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HashedBlob {
    pub digest: BlobDigest,
    pub size: u64,
    pub piece_length: PieceLength,
    /// One SHA-1 per piece, the last piece possibly short. Empty for an empty blob.
    pub pieces: Vec<[u8; 20]>,
}

/// SHA-1 of consecutive fixed-length pieces over a byte stream fed in arbitrary chunks.
#[derive(Clone)]
pub(crate) struct PieceHasher {
    piece_length: u64,
    current: Sha1,
    filled: u64,
    pieces: Vec<[u8; 20]>,
}

impl PieceHasher {
    pub(crate) fn new(piece_length: PieceLength, expected_size: Option<u64>) -> Self {
        let capacity = expected_size.map_or(0, |s| piece_length.piece_count(s).min(1 << 20) as usize);
        Self {
            piece_length: u64::from(piece_length.bytes()),
            current: Sha1::new(),
            filled: 0,
            pieces: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.piece_length - self.filled) as usize;
            let take = room.min(data.len());
            self.current.update(&data[..take]);
            self.filled += take as u64;
            data = &data[take..];
            if self.filled == self.piece_length {
                self.pieces.push(self.current.finalize_reset().into());
                self.filled = 0;
            }
        }
    }

    /// Closes the last, short piece if there is one. An exact multiple of the piece length gets
    /// no extra piece (librqbit's create_torrent gets this wrong and aria2 rejects its output).
    pub(crate) fn finish(mut self) -> Vec<[u8; 20]> {
        if self.filled > 0 {
            self.pieces.push(self.current.finalize().into());
        }
        self.pieces
    }
}

/// SHA-256 and SHA-1 pieces of one blob in a single sequential pass. [`crate::hash_reader`]
/// runs the same two halves on two threads; this form is for callers that already have the
/// bytes in hand (tests, small blobs, streams hashed as they pass through).
#[derive(Clone)]
pub struct BlobHasher {
    sha256: Sha256,
    pieces: PieceHasher,
    size: u64,
    piece_length: PieceLength,
}

impl BlobHasher {
    /// The piece length depends on the size, so the size must be known before the first byte.
    pub fn new(size: u64) -> Self {
        Self::with_piece_length(size, PieceLength::for_blob_size(size))
    }

    pub fn with_piece_length(size: u64, piece_length: PieceLength) -> Self {
        Self { sha256: Sha256::new(), pieces: PieceHasher::new(piece_length, Some(size)), size: 0, piece_length }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.pieces.update(data);
        self.size += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn position(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> HashedBlob {
        HashedBlob {
            digest: BlobDigest::from_bytes(self.sha256.finalize().into()),
            size: self.size,
            piece_length: self.piece_length,
            pieces: self.pieces.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pl() -> PieceLength {
        PieceLength::new(32 * 1024).unwrap()
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut whole = BlobHasher::with_piece_length(data.len() as u64, pl());
        whole.update(&data);
        let whole = whole.finish();
        for chunk in [1, 7, 4096, 32 * 1024, 40_000] {
            let mut h = BlobHasher::with_piece_length(data.len() as u64, pl());
            data.chunks(chunk).for_each(|c| h.update(c));
            assert_eq!(h.finish(), whole, "chunk {chunk}");
        }
        assert_eq!(whole.pieces.len(), 4);
        assert_eq!(whole.size, 100_000);
    }

    #[test]
    fn piece_counts_at_the_edges() {
        let piece = 32 * 1024;
        for (size, count) in [(0, 0), (1, 1), (piece, 1), (2 * piece, 2), (2 * piece + 1, 3)] {
            let mut h = BlobHasher::with_piece_length(size as u64, pl());
            h.update(&vec![0xab; size]);
            assert_eq!(h.finish().pieces.len(), count, "size {size}");
        }
    }

    #[test]
    fn empty_blob_has_the_well_known_digest() {
        let h = BlobHasher::new(0).finish();
        assert_eq!(h.digest.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
