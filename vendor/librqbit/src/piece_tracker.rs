//! Coordinates piece download state by wrapping ChunkTracker with inflight piece tracking.
//!
//! This module provides the [`PieceTracker`] type which encapsulates the relationship between
//! queued pieces (in ChunkTracker) and in-flight pieces (being downloaded by a peer).
//!
//! The key invariant maintained is: a piece is in exactly one state at any time:
//! - HAVE (completed)
//! - QUEUED (available to download)
//! - IN_FLIGHT (currently being downloaded)
//! - NOT_NEEDED (not selected for download)

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use buffers::ByteBuf;
use librqbit_core::lengths::ValidPieceIndex;
use peer_binary_protocol::Piece;

use crate::{
    chunk_tracker::{ChunkMarkingResult, ChunkTracker},
    file_info::FileInfo,
    type_aliases::{FileInfos, FilePriorities, PeerHandle},
};

/// Tracks a piece currently being downloaded.
#[derive(Debug, Clone)]
pub struct InflightPiece {
    pub peer: PeerHandle,
    pub started: Instant,
}

/// Result of attempting to acquire a piece.
#[derive(Debug)]
pub enum AcquireResult {
    /// A new piece was reserved from the queue.
    Reserved(ValidPieceIndex),
    /// A piece was stolen from a slower peer.
    Stolen {
        piece: ValidPieceIndex,
        from_peer: PeerHandle,
    },
    /// No pieces are available for this peer.
    NoneAvailable,
}

/// Parameters for acquiring a piece.
pub struct AcquireRequest<'a, I, P, S>
where
    I: Iterator<Item = ValidPieceIndex>,
    P: Fn(ValidPieceIndex) -> bool,
    S: Fn(ValidPieceIndex) -> bool,
{
    /// The peer requesting a piece.
    pub peer: PeerHandle,
    /// The peer's average piece download time (for steal calculations).
    pub peer_avg_time: Option<Duration>,
    /// Priority pieces to check first (e.g., for streaming).
    pub priority_pieces: I,
    /// File download priority ordering.
    pub file_priorities: &'a FilePriorities,
    /// File metadata for iterating pieces.
    pub file_infos: &'a FileInfos,
    /// Returns true if the peer has the given piece.
    pub peer_has_piece: P,
    /// Returns true if the piece can be stolen (e.g., not locked for writing).
    pub can_steal: S,
    /// Shoal patch: how many live peers that are not seeds, and have sent us data, have each
    /// piece, indexed by piece (empty: unknown).
    pub availability: &'a [u16],
    /// Shoal patch: the requesting peer has every piece (the origin, or a finished host).
    pub peer_is_seed: bool,
    /// Shoal patch: a seed may give any piece (the download has stalled).
    pub seed_gives_any: bool,
}

/// Coordinates piece download state.
///
/// Wraps a [`ChunkTracker`] with tracking of which pieces are currently being downloaded
/// (in-flight) and by which peer. This ensures that:
///
/// - A piece is only assigned to one peer at a time (unless stolen)
/// - Pieces are properly requeued when a peer dies
/// - State transitions maintain invariants
pub struct PieceTracker {
    chunks: ChunkTracker,
    inflight: HashMap<ValidPieceIndex, InflightPiece>,
}

impl PieceTracker {
    // === CONSTRUCTION ===

    /// Create a new PieceTracker wrapping the given ChunkTracker.
    pub fn new(chunks: ChunkTracker) -> Self {
        Self {
            chunks,
            inflight: HashMap::new(),
        }
    }

    /// Read-only access to the underlying ChunkTracker.
    pub fn chunks(&self) -> &ChunkTracker {
        &self.chunks
    }

    /// Consume the PieceTracker, requeuing any in-flight pieces.
    ///
    /// This is used when pausing a torrent - any pieces that were being downloaded
    /// need to be put back in the queue so they can be re-downloaded on resume.
    pub fn into_chunks(mut self) -> ChunkTracker {
        // Requeue all in-flight pieces so they'll be re-downloaded on resume
        for piece in self.inflight.into_keys() {
            self.chunks.mark_piece_broken_if_not_have(piece);
        }
        self.chunks
    }

    // === PIECE ACQUISITION ===

    /// Attempt to acquire a piece for the requesting peer.
    ///
    /// The acquisition strategy is (Shoal patch: rarest-first, seeds give only unheld
    /// pieces, no steal before the endgame):
    /// 1. (upstream: try to steal a piece from a peer that's 10x slower)
    /// 2. Try to reserve a piece from the queue (priority pieces first, then the rarest)
    /// 3. In the endgame, try to steal a piece from a peer that's 3x slower
    ///
    /// If `Stolen` is returned, the caller MUST call `peers.on_steal()` to notify
    /// the old peer and update counters.
    pub fn acquire_piece<I, P, S>(&mut self, mut req: AcquireRequest<I, P, S>) -> AcquireResult
    where
        I: Iterator<Item = ValidPieceIndex>,
        P: Fn(ValidPieceIndex) -> bool,
        S: Fn(ValidPieceIndex) -> bool,
    {
        // 1. (Shoal patch: upstream first stole a piece from a peer 10x slower than this one,
        // before reserving anything. Hosts that start together all look slow to each other for
        // a while, so pieces were stolen back and forth and the client's stream starved; now a
        // piece is stolen only in the endgame, step 3.)

        let endgame = self
            .chunks
            .iter_queued_pieces(req.file_priorities, req.file_infos)
            .next()
            .is_none();
        let availability = |piece: ValidPieceIndex| {
            req.availability
                .get(piece.get_usize())
                .copied()
                .unwrap_or(0)
        };
        // Shoal patch: a seed gives only pieces that no other peer holds, so the origin sends
        // each piece about once and the hosts trade the rest among themselves; a seed that
        // takes requests for pieces others hold spends the one link every host shares. Not in
        // the endgame, nor when the download has stalled (peers that hold a piece but never
        // send it must not block us).
        let seed_gives_only_unheld = req.peer_is_seed && !req.seed_gives_any && !endgame;

        // 2. Try reserve from priority_pieces then queued pieces
        // First check priority pieces that aren't already downloaded or in-flight
        for piece in &mut req.priority_pieces {
            if !self.chunks.is_piece_have(piece)
                && !self.inflight.contains_key(&piece)
                && (req.peer_has_piece)(piece)
                && !(seed_gives_only_unheld && availability(piece) > 0)
            {
                return self.reserve_piece(piece, req.peer);
            }
        }

        // Then the rarest queued piece this peer has, ties broken at random (Shoal patch:
        // rarest-first). Hosts that start one blob together would otherwise all ask the origin
        // for the same pieces and have nothing to trade. Rarest-first asks the origin (which
        // has everything) for pieces no other peer has yet, and asks the other peers for what
        // they hold, so the origin sends each piece about once. Streams still get their next
        // pieces first, through `priority_pieces` above.
        // Note: iter_queued_pieces only returns pieces in queue_pieces (not in-flight)
        let mut rarest = u16::MAX;
        let mut candidates: Vec<ValidPieceIndex> = Vec::new();
        for piece in self
            .chunks
            .iter_queued_pieces(req.file_priorities, req.file_infos)
            .filter(|piece| (req.peer_has_piece)(*piece))
        {
            let count = availability(piece);
            if seed_gives_only_unheld && count > 0 {
                continue;
            }
            if count < rarest {
                rarest = count;
                candidates.clear();
            }
            if count == rarest {
                candidates.push(piece);
            }
        }
        if !candidates.is_empty() {
            use rand::RngExt;
            let piece = candidates[rand::rng().random_range(0..candidates.len())];
            return self.reserve_piece(piece, req.peer);
        }

        // 3. Try steal with 3x threshold (moderately slow peer). Shoal patch: only in the
        // endgame, when no piece is left in the queue. A requester whose peer merely has
        // nothing reservable right now used to steal, and steals thrashed between peers.
        if endgame {
            if let Some(result) = self.try_steal(&req, 3.0) {
                return result;
            }
        }

        AcquireResult::NoneAvailable
    }

    /// Reserve a piece: remove from queue, add to inflight.
    fn reserve_piece(&mut self, piece: ValidPieceIndex, peer: PeerHandle) -> AcquireResult {
        self.chunks.reserve_needed_piece(piece);
        self.inflight.insert(
            piece,
            InflightPiece {
                peer,
                started: Instant::now(),
            },
        );
        AcquireResult::Reserved(piece)
    }

    /// Try to steal a piece from a slower peer.
    fn try_steal<I, P, S>(
        &mut self,
        req: &AcquireRequest<I, P, S>,
        threshold: f64,
    ) -> Option<AcquireResult>
    where
        I: Iterator<Item = ValidPieceIndex>,
        P: Fn(ValidPieceIndex) -> bool,
        S: Fn(ValidPieceIndex) -> bool,
    {
        let my_avg = req.peer_avg_time?;
        let min_elapsed = Duration::from_secs_f64(my_avg.as_secs_f64() * threshold);

        // Find the slowest piece from another peer that exceeds threshold
        // and that the stealing peer actually has (can download)
        let (piece, old_peer, _) = self
            .inflight
            .iter()
            .filter(|(_, info)| info.peer != req.peer)
            .filter(|(p, _)| (req.peer_has_piece)(**p))
            .map(|(p, info)| (*p, info.peer, info.started.elapsed()))
            .filter(|(_, _, elapsed)| *elapsed >= min_elapsed)
            .max_by_key(|(_, _, elapsed)| *elapsed)?;

        // Check can_steal (e.g., per_piece_lock)
        if !(req.can_steal)(piece) {
            return None;
        }

        // Update ownership (piece stays in inflight, just changes owner)
        let info = self.inflight.get_mut(&piece)?;
        info.peer = req.peer;
        info.started = Instant::now();

        Some(AcquireResult::Stolen {
            piece,
            from_peer: old_peer,
        })
    }

    // === PIECE COMPLETION ===

    /// Remove piece from inflight tracking (e.g., after all chunks received).
    ///
    /// Returns download duration if piece was in-flight.
    /// Note: Does NOT mark the piece as downloaded - caller should do hash check
    /// and then call `mark_piece_hash_ok` or `mark_piece_hash_failed`.
    pub fn take_inflight(&mut self, piece: ValidPieceIndex) -> Option<Duration> {
        let inflight = self.inflight.remove(&piece)?;
        Some(inflight.started.elapsed())
    }

    /// Mark piece as downloaded after successful hash verification.
    pub fn mark_piece_hash_ok(&mut self, piece: ValidPieceIndex) {
        self.chunks.mark_piece_downloaded(piece);
    }

    /// Mark piece as failed after hash verification failure - requeues the piece.
    pub fn mark_piece_hash_failed(&mut self, piece: ValidPieceIndex) {
        self.chunks.mark_piece_broken_if_not_have(piece);
    }

    /// Release all pieces owned by a peer (on peer death).
    ///
    /// Moves all pieces owned by the peer from IN_FLIGHT back to QUEUED.
    /// Returns the number of pieces released.
    pub fn release_pieces_owned_by(&mut self, peer: PeerHandle) -> usize {
        // Collect pieces to release (can't modify while iterating)
        let pieces_to_release: Vec<_> = self
            .inflight
            .iter()
            .filter(|(_, info)| info.peer == peer)
            .map(|(p, _)| *p)
            .collect();

        let count = pieces_to_release.len();
        for piece in pieces_to_release {
            self.inflight.remove(&piece);
            self.chunks.mark_piece_broken_if_not_have(piece);
        }
        count
    }

    // === QUERIES ===

    /// Get the inflight info for a piece, if it's currently being downloaded.
    pub fn get_inflight(&self, piece: ValidPieceIndex) -> Option<&InflightPiece> {
        self.inflight.get(&piece)
    }

    /// Check if a piece is currently in-flight.
    #[allow(dead_code)]
    pub fn is_inflight(&self, piece: ValidPieceIndex) -> bool {
        self.inflight.contains_key(&piece)
    }

    /// Get the number of pieces currently in-flight.
    #[allow(dead_code)]
    pub fn inflight_count(&self) -> usize {
        self.inflight.len()
    }

    // === PASS-THROUGH METHODS ===

    /// Mark a chunk as downloaded. Returns the result indicating if the piece is complete.
    pub fn mark_chunk_downloaded(
        &mut self,
        piece: &Piece<ByteBuf<'_>>,
    ) -> Option<ChunkMarkingResult> {
        self.chunks.mark_chunk_downloaded(piece)
    }

    /// Update which files are selected for download.
    pub fn update_only_files(
        &mut self,
        file_infos: &FileInfos,
        new_only_files: &HashSet<usize>,
    ) -> anyhow::Result<crate::chunk_tracker::HaveNeededSelected> {
        self.chunks.update_only_files(file_infos, new_only_files)
    }

    /// Update per-file have bytes when a piece completes. Returns remaining bytes for the file.
    pub fn update_file_have_on_piece_completed(
        &mut self,
        piece_id: ValidPieceIndex,
        file_id: usize,
        file_info: &FileInfo,
    ) -> u64 {
        self.chunks
            .update_file_have_on_piece_completed(piece_id, file_id, file_info)
    }

    /// Flush the have pieces bitfield to disk.
    pub fn flush_have_pieces(&mut self, flush_async: bool) -> anyhow::Result<()> {
        self.chunks.get_have_pieces_mut().flush(flush_async)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bitv::BitV as BitVTrait, type_aliases::BF};
    use librqbit_core::lengths::Lengths;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn peer(id: u8) -> PeerHandle {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, id)), 6881)
    }

    /// Create a simple ChunkTracker for testing.
    /// Creates a torrent with the specified number of pieces, all selected.
    fn make_test_chunk_tracker(num_pieces: u32) -> ChunkTracker {
        // Create a simple single-file torrent
        let piece_length = 16384u32; // 16KB pieces
        let total_length = piece_length as u64 * num_pieces as u64;

        let lengths = Lengths::new(total_length, piece_length).unwrap();

        let bf_len = lengths.piece_bitfield_bytes();

        // No pieces downloaded yet (empty have)
        let have = BF::from_boxed_slice(vec![0u8; bf_len].into_boxed_slice());

        // All pieces selected
        let mut selected = BF::from_boxed_slice(vec![0u8; bf_len].into_boxed_slice());
        for i in 0..num_pieces as usize {
            selected.set(i, true);
        }

        // Single file spanning all pieces
        let file_infos = vec![crate::file_info::FileInfo {
            relative_filename: "test.dat".into(),
            offset_in_torrent: 0,
            len: total_length,
            piece_range: 0..num_pieces,
            attrs: Default::default(),
        }];

        ChunkTracker::new(have.into_dyn(), selected, lengths, &file_infos).unwrap()
    }

    fn make_test_file_infos(num_pieces: u32) -> FileInfos {
        let piece_length = 16384u64;
        vec![crate::file_info::FileInfo {
            relative_filename: "test.dat".into(),
            offset_in_torrent: 0,
            len: piece_length * num_pieces as u64,
            piece_range: 0..num_pieces,
            attrs: Default::default(),
        }]
    }

    fn make_default_file_priorities(file_infos: &FileInfos) -> FilePriorities {
        (0..file_infos.len()).collect()
    }

    #[test]
    fn test_new_piece_tracker() {
        let chunks = make_test_chunk_tracker(10);
        let tracker = PieceTracker::new(chunks);
        assert_eq!(tracker.inflight_count(), 0);
    }

    #[test]
    fn test_reserve_piece_from_queue() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true, // Peer has all pieces
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        // Shoal patch: upstream reserved piece 0, the first in the queue; with no availability
        // known every queued piece is as rare as any other, and one is picked at random.
        match result {
            AcquireResult::Reserved(piece) => {
                assert!(piece.get() < 5);
                assert!(tracker.is_inflight(piece));
                assert_eq!(tracker.inflight_count(), 1);
            }
            _ => panic!("Expected Reserved, got {:?}", result),
        }
    }

    #[test]
    fn test_reserve_filters_by_peer_has_piece() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        // Peer only has piece 2 and later
        // Note: iter_queued_pieces iterates in order: first, last, middle
        // So for 0..5: 0, 4, 1, 2, 3
        // With filter >= 2, we get 4 first (skips 0, takes 4)
        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |p| p.get() >= 2,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        match result {
            AcquireResult::Reserved(piece) => {
                // Got piece 4 (first one peer has in iteration order)
                assert!(piece.get() >= 2, "Should have gotten a piece >= 2");
            }
            _ => panic!("Expected Reserved, got {:?}", result),
        }
    }

    #[test]
    fn test_complete_piece() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        // Reserve a piece first
        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        let piece = match result {
            AcquireResult::Reserved(p) => p,
            _ => panic!("Expected Reserved"),
        };

        // Complete the piece (take_inflight + hash check + mark_piece_hash_ok)
        let duration = tracker.take_inflight(piece);
        assert!(duration.is_some());
        assert!(!tracker.is_inflight(piece));
        // Simulate successful hash check
        tracker.mark_piece_hash_ok(piece);
        assert!(tracker.chunks().is_piece_have(piece));
    }

    #[test]
    fn test_fail_piece_requeues() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        // Reserve piece 0
        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        let piece = match result {
            AcquireResult::Reserved(p) => p,
            _ => panic!("Expected Reserved"),
        };

        assert!(tracker.is_inflight(piece));

        // Fail the piece (take_inflight + hash check fails + mark_piece_hash_failed)
        let duration = tracker.take_inflight(piece);
        assert!(duration.is_some());
        // Simulate failed hash check
        tracker.mark_piece_hash_failed(piece);

        // Should no longer be in-flight
        assert!(!tracker.is_inflight(piece));
        // Should not be in have
        assert!(!tracker.chunks().is_piece_have(piece));
        // Should be back in queue - verify by trying to reserve it again
        let result2 = tracker.acquire_piece(AcquireRequest {
            peer: peer(2),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |p| p == piece, // Only has the failed piece
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        match result2 {
            AcquireResult::Reserved(p) => assert_eq!(p, piece),
            _ => panic!("Expected piece to be re-reservable after fail"),
        }
    }

    #[test]
    fn test_release_pieces_owned_by_peer() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        let peer_a = peer(1);
        let peer_b = peer(2);

        // Peer A reserves first two pieces (order: 0, 4, 1, 2, 3)
        // So peer A gets pieces 0 and 4
        let piece_a1 = match tracker.acquire_piece(AcquireRequest {
            peer: peer_a,
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        }) {
            AcquireResult::Reserved(p) => p,
            _ => panic!("Expected Reserved"),
        };
        let piece_a2 = match tracker.acquire_piece(AcquireRequest {
            peer: peer_a,
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        }) {
            AcquireResult::Reserved(p) => p,
            _ => panic!("Expected Reserved"),
        };

        // Peer B reserves next piece
        let piece_b = match tracker.acquire_piece(AcquireRequest {
            peer: peer_b,
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        }) {
            AcquireResult::Reserved(p) => p,
            _ => panic!("Expected Reserved"),
        };

        assert_eq!(tracker.inflight_count(), 3);
        assert!(tracker.is_inflight(piece_a1));
        assert!(tracker.is_inflight(piece_a2));
        assert!(tracker.is_inflight(piece_b));

        // Peer A dies
        let released = tracker.release_pieces_owned_by(peer_a);
        assert_eq!(released, 2);
        assert_eq!(tracker.inflight_count(), 1); // Only peer B's piece remains

        // Verify peer B's piece is still in-flight
        assert!(tracker.is_inflight(piece_b));
        // Verify peer A's pieces are no longer in-flight
        assert!(!tracker.is_inflight(piece_a1));
        assert!(!tracker.is_inflight(piece_a2));
    }

    #[test]
    fn test_into_chunks_requeues_inflight() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        // Reserve two pieces (Shoal patch: which two is random, upstream took 0 and 4).
        let first = acquire(&mut tracker, peer(1), None, |_| true, &[], false, false);
        let second = acquire(&mut tracker, peer(1), None, |_| true, &[], false, false);
        let reserved = match (first, second) {
            (AcquireResult::Reserved(a), AcquireResult::Reserved(b)) => [a, b],
            other => panic!("Expected two Reserved, got {:?}", other),
        };

        assert_eq!(tracker.inflight_count(), 2);

        // Convert back to chunks (simulates pause)
        let chunks = tracker.into_chunks();

        // Create a new tracker and verify both pieces are back in queue: a peer that has only
        // one of them gets it reserved (upstream: the first queued piece was piece 0 again).
        let mut new_tracker = PieceTracker::new(chunks);
        for piece in reserved {
            match acquire(
                &mut new_tracker,
                peer(2),
                None,
                |p| p == piece,
                &[],
                false,
                false,
            ) {
                AcquireResult::Reserved(p) => assert_eq!(p, piece),
                other => panic!("Expected to reserve {piece:?} after into_chunks, got {other:?}"),
            }
        }
    }

    #[test]
    fn test_priority_pieces_checked_first() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        // Priority pieces: piece 3, then piece 2
        let piece3 = tracker
            .chunks()
            .get_lengths()
            .validate_piece_index(3)
            .unwrap();
        let piece2 = tracker
            .chunks()
            .get_lengths()
            .validate_piece_index(2)
            .unwrap();
        let priority = vec![piece3, piece2];

        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: priority.into_iter(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| true,
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        // Should get piece 3 (first priority piece)
        match result {
            AcquireResult::Reserved(p) => assert_eq!(p.get(), 3),
            _ => panic!("Expected Reserved(3), got {:?}", result),
        }
    }

    #[test]
    fn test_none_available_when_no_pieces() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let file_infos = make_test_file_infos(5);
        let file_priorities = make_default_file_priorities(&file_infos);

        // Peer has no pieces
        let result = tracker.acquire_piece(AcquireRequest {
            peer: peer(1),
            peer_avg_time: None,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece: |_| false, // Peer has nothing
            can_steal: |_| true,
            availability: &[],
            peer_is_seed: false,
            seed_gives_any: false,
        });

        match result {
            AcquireResult::NoneAvailable => {}
            _ => panic!("Expected NoneAvailable, got {:?}", result),
        }
    }

    #[test]
    fn test_take_inflight_nonexistent_piece_returns_none() {
        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);
        let piece = tracker
            .chunks()
            .get_lengths()
            .validate_piece_index(0)
            .unwrap();

        // Try to take a piece that's not in-flight
        let result = tracker.take_inflight(piece);
        assert!(result.is_none());
    }

    #[test]
    fn test_steal_only_pieces_peer_has() {
        // This test verifies the fix for a bug where try_steal didn't check
        // if the stealing peer actually has the piece in their bitfield.
        // Without this check, a peer could "steal" a piece they can't download,
        // leaving it stuck in inflight forever.
        //
        // Shoal patch: a piece is stolen only in the endgame (nothing left in the queue), so
        // peer A reserves every piece first (upstream: only pieces 0 and 4, and peer B stole
        // before the endgame).

        let chunks = make_test_chunk_tracker(5);
        let mut tracker = PieceTracker::new(chunks);

        let peer_a = peer(1);
        let peer_b = peer(2);

        let mut reserved = Vec::new();
        for _ in 0..5 {
            match acquire(&mut tracker, peer_a, None, |_| true, &[], false, false) {
                AcquireResult::Reserved(p) => reserved.push(p),
                other => panic!("Expected Reserved, got {:?}", other),
            }
        }
        reserved.sort_by_key(|p| p.get());
        let piece_0 = reserved[0];
        let piece_4 = reserved[4];
        assert_eq!((piece_0.get(), piece_4.get()), (0, 4));

        // Sleep briefly so pieces become stealable
        std::thread::sleep(Duration::from_millis(5));

        // Peer B tries to acquire with:
        // - Very short avg_time (1ms) so 3x threshold = 3ms < 5ms elapsed
        // - peer_has_piece returns true ONLY for piece 4, NOT piece 0
        let result = acquire(
            &mut tracker,
            peer_b,
            Some(Duration::from_millis(1)),
            |p| p.get() == 4, // Peer B only has piece 4
            &[],
            false,
            false,
        );

        // Should steal piece 4 (which peer B has), NOT piece 0 (which peer B doesn't have)
        match result {
            AcquireResult::Stolen { piece, from_peer } => {
                assert_eq!(piece, piece_4, "Should steal piece 4 (the one peer B has)");
                assert_eq!(from_peer, peer_a);
                // Verify the other pieces are still owned by peer A (weren't stolen)
                for p in &reserved[..4] {
                    assert_eq!(tracker.get_inflight(*p).unwrap().peer, peer_a);
                }
            }
            _ => panic!("Expected Stolen, got {:?}", result),
        }
    }

    /// Shoal patch: one `acquire_piece` with no stream pieces, for the tests of the patch.
    fn acquire(
        tracker: &mut PieceTracker,
        peer: PeerHandle,
        peer_avg_time: Option<Duration>,
        peer_has_piece: impl Fn(ValidPieceIndex) -> bool,
        availability: &[u16],
        peer_is_seed: bool,
        seed_gives_any: bool,
    ) -> AcquireResult {
        let num_pieces = tracker.chunks().get_lengths().total_pieces();
        let file_infos = make_test_file_infos(num_pieces);
        let file_priorities = make_default_file_priorities(&file_infos);
        tracker.acquire_piece(AcquireRequest {
            peer,
            peer_avg_time,
            priority_pieces: std::iter::empty(),
            file_priorities: &file_priorities,
            file_infos: &file_infos,
            peer_has_piece,
            can_steal: |_| true,
            availability,
            peer_is_seed,
            seed_gives_any,
        })
    }

    fn reserved(result: AcquireResult) -> u32 {
        match result {
            AcquireResult::Reserved(p) => p.get(),
            other => panic!("Expected Reserved, got {:?}", other),
        }
    }

    /// Shoal patch: the rarest queued piece the peer has is reserved; ties are broken at
    /// random.
    #[test]
    fn test_reserve_rarest_piece() {
        let mut tracker = PieceTracker::new(make_test_chunk_tracker(5));
        let availability = [3, 2, 1, 2, 3];
        assert_eq!(
            reserved(acquire(
                &mut tracker,
                peer(1),
                None,
                |_| true,
                &availability,
                false,
                false
            )),
            2
        );
        // Pieces 1 and 3 are now the rarest, and only piece 3 is left at this peer.
        assert_eq!(
            reserved(acquire(
                &mut tracker,
                peer(1),
                None,
                |p| p.get() != 1,
                &availability,
                false,
                false
            )),
            3
        );
        // A tie: either of the rarest, never a commoner one.
        let mut picked = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut tracker = PieceTracker::new(make_test_chunk_tracker(5));
            picked.insert(reserved(acquire(
                &mut tracker,
                peer(1),
                None,
                |_| true,
                &[1, 0, 2, 0, 1],
                false,
                false,
            )));
        }
        assert_eq!(picked, [1, 3].into_iter().collect());
    }

    /// Shoal patch: a seed is asked only for pieces no other peer holds, except in the
    /// endgame or once the download has stalled (`seed_gives_any`).
    #[test]
    fn test_seed_gives_only_unheld_pieces() {
        let availability = [1, 1, 0, 1, 1];
        let mut tracker = PieceTracker::new(make_test_chunk_tracker(5));
        assert_eq!(
            reserved(acquire(
                &mut tracker,
                peer(1),
                None,
                |_| true,
                &availability,
                true,
                false
            )),
            2
        );
        // Every other piece is held by a peer: nothing for the seed.
        assert!(matches!(
            acquire(
                &mut tracker,
                peer(1),
                None,
                |_| true,
                &availability,
                true,
                false
            ),
            AcquireResult::NoneAvailable
        ));
        // Unless the download has stalled.
        assert!(matches!(
            acquire(
                &mut tracker,
                peer(1),
                None,
                |_| true,
                &availability,
                true,
                true
            ),
            AcquireResult::Reserved(_)
        ));
        // A peer that is not a seed may be given pieces others hold.
        assert!(matches!(
            acquire(
                &mut tracker,
                peer(2),
                None,
                |_| true,
                &availability,
                false,
                false
            ),
            AcquireResult::Reserved(_)
        ));
    }

    /// Shoal patch: nothing is stolen while pieces are left in the queue, however slow the
    /// peer holding a piece is (upstream stole from a peer 10x slower before reserving).
    #[test]
    fn test_no_steal_before_endgame() {
        let mut tracker = PieceTracker::new(make_test_chunk_tracker(5));
        let piece_4 = reserved(acquire(
            &mut tracker,
            peer(1),
            None,
            |p| p.get() == 4,
            &[],
            false,
            false,
        ));
        assert_eq!(piece_4, 4);
        std::thread::sleep(Duration::from_millis(20));
        // Peer 2 is fast (1 ms a piece, the piece has been in flight 20x that) and has only piece
        // 4; pieces 0-3 are still queued, so this is not the endgame.
        assert!(matches!(
            acquire(
                &mut tracker,
                peer(2),
                Some(Duration::from_millis(1)),
                |p| p.get() == 4,
                &[],
                false,
                false
            ),
            AcquireResult::NoneAvailable
        ));
        // A peer that has a queued piece gets it reserved, not stolen.
        assert!(matches!(
            acquire(
                &mut tracker,
                peer(2),
                Some(Duration::from_millis(1)),
                |_| true,
                &[],
                false,
                false
            ),
            AcquireResult::Reserved(_)
        ));
    }
}
