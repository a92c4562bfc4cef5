//! Shoal patch 8: each piece's SHA-1 taken from its chunks as they are written, so a completed
//! piece is checked without reading it back from disk.
//!
//! Upstream writes every 16 KiB chunk into the page cache, and when the piece is complete reads
//! the whole piece back (64 KiB at a time, into a freshly zeroed buffer) on a `block_in_place`
//! thread to hash it. A peer sends a piece's chunks in the order we asked for them, so the hash
//! can be fed with each chunk right after it is written, from the buffer that was written.
//!
//! The hash stands for the file's bytes only if every byte of the piece went through it exactly
//! once, in order, and nothing else wrote to the piece meanwhile. So the write and the hash
//! update happen under one lock per piece; a chunk that is not the next one expected (out of
//! order, written twice, after a steal) or a failed write marks the piece "unknown", and its
//! check reads it back from disk as upstream does. Nothing here ever says a piece is good that
//! the disk read would not: it can only skip the read.

use parking_lot::Mutex;
use sha1w::{ISha1, Sha1};

/// Per piece, the SHA-1 of its bytes written so far, if they were written in order.
pub(crate) struct PieceHashes {
    pieces: Box<[Mutex<InOrder>]>,
}

#[derive(Default)]
struct InOrder {
    /// The offset in the piece of the next byte the hash expects.
    next: u32,
    /// Some chunk broke the order: only a read from disk can check this piece.
    unknown: bool,
    /// Allocated at the piece's first chunk, dropped when it is checked.
    hasher: Option<Box<Sha1>>,
}

impl PieceHashes {
    pub(crate) fn new(pieces: usize) -> Self {
        Self { pieces: (0..pieces).map(|_| Mutex::new(InOrder::default())).collect() }
    }

    /// Runs `write` (the chunk's write to storage) and, if it succeeds and the chunk is the
    /// next the piece's hash expects, feeds it `data` (the bytes written), under the piece's
    /// lock.
    pub(crate) fn write_and_hash<E>(
        &self,
        piece: usize,
        offset: u32,
        data: [&[u8]; 2],
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(slot) = self.pieces.get(piece) else {
            return write();
        };
        let mut g = slot.lock();
        let result = write();
        let len = data[0].len() + data[1].len();
        if result.is_err() || g.unknown || offset != g.next {
            g.unknown = true;
            g.hasher = None;
            return result;
        }
        let hasher = g.hasher.get_or_insert_with(|| Box::new(Sha1::new()));
        hasher.update(data[0]);
        hasher.update(data[1]);
        g.next = offset.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        result
    }

    /// The piece's SHA-1 if all of its `len` bytes went through the hash in order, else None
    /// (read it back from disk). Either way the piece starts over: a piece that fails its
    /// check is downloaded again from its first chunk.
    pub(crate) fn take(&self, piece: usize, len: u32) -> Option<[u8; 20]> {
        let mut g = self.pieces.get(piece)?.lock();
        let InOrder { next, unknown, hasher } = std::mem::take(&mut *g);
        match hasher {
            Some(h) if !unknown && next == len => Some(h.finish()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1(data: &[u8]) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(data);
        h.finish()
    }

    fn write(hashes: &PieceHashes, piece: usize, offset: u32, data: &[u8]) {
        let (a, b) = data.split_at(data.len() / 3);
        hashes.write_and_hash(piece, offset, [a, b], || Ok::<_, ()>(())).unwrap();
    }

    #[test]
    fn in_order_chunks_give_the_pieces_sha1() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let hashes = PieceHashes::new(2);
        for (i, chunk) in data.chunks(16384).enumerate() {
            write(&hashes, 1, (i * 16384) as u32, chunk);
        }
        assert_eq!(hashes.take(1, data.len() as u32), Some(sha1(&data)));
        // Taken: the piece starts over.
        assert_eq!(hashes.take(1, data.len() as u32), None);
    }

    #[test]
    fn any_break_in_the_order_means_read_it_back() {
        let data = vec![5u8; 32768];
        let (a, b) = data.split_at(16384);
        // Out of order.
        let hashes = PieceHashes::new(1);
        write(&hashes, 0, 16384, b);
        write(&hashes, 0, 0, a);
        assert_eq!(hashes.take(0, 32768), None);
        // A chunk written twice (the file may hold either copy).
        write(&hashes, 0, 0, a);
        write(&hashes, 0, 0, a);
        write(&hashes, 0, 16384, b);
        assert_eq!(hashes.take(0, 32768), None);
        // A failed write.
        write(&hashes, 0, 0, a);
        assert!(hashes.write_and_hash(0, 16384, [b, &[]], || Err::<(), _>("disk full")).is_err());
        assert_eq!(hashes.take(0, 32768), None);
        // Short of the piece's length.
        write(&hashes, 0, 0, a);
        assert_eq!(hashes.take(0, 32768), None);
        // After all that, a clean pass works again.
        write(&hashes, 0, 0, a);
        write(&hashes, 0, 16384, b);
        assert_eq!(hashes.take(0, 32768), Some(sha1(&data)));
    }

    #[test]
    fn a_piece_out_of_range_is_only_written() {
        let hashes = PieceHashes::new(1);
        let mut wrote = false;
        hashes
            .write_and_hash(3, 0, [b"x", b""], || {
                wrote = true;
                Ok::<_, ()>(())
            })
            .unwrap();
        assert!(wrote);
        assert_eq!(hashes.take(3, 1), None);
    }
}
