//! The profile's piece-length table: a pure function of the blob size, versioned by [`PROFILE`].

use std::fmt;

/// The name of this torrent profile. Changing the piece-length table or the info keys makes a
/// new profile with a new name; it is never a silent change (infohashes would move).
pub const PROFILE: &str = "shoal-v1";

/// Fewest bytes per piece: 32 KiB, the smallest piece mktorrent 1.1 can make (`-l 15`), so that
/// every torrent of this profile can be reproduced with stock tools.
const MIN_LOG2: u32 = 15;
/// Most bytes per piece: 16 MiB. Larger pieces hurt swarming more than piece count costs.
const MAX_LOG2: u32 = 24;
/// The table keeps a blob at no more than this many pieces until pieces reach 16 MiB.
pub(crate) const MAX_PIECES: u64 = 2048;

/// Bytes per piece: a power of two from 32 KiB to 16 MiB.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceLength(u32);

/// Why a piece length was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("piece length {0} is not a power of two between 32 KiB and 16 MiB")]
pub struct PieceLengthError(pub u64);

impl PieceLength {
    /// The profile's piece length for a blob of `size` bytes: the smallest power of two of at
    /// least 32 KiB that keeps the blob within [`MAX_PIECES`] pieces, capped at 16 MiB.
    ///
    /// | blob size        | piece length |
    /// |------------------|--------------|
    /// | up to 64 MiB     | 32 KiB       |
    /// | up to 128 MiB    | 64 KiB       |
    /// | up to 256 MiB    | 128 KiB      |
    /// | up to 512 MiB    | 256 KiB      |
    /// | up to 1 GiB      | 512 KiB      |
    /// | up to 2 GiB      | 1 MiB        |
    /// | ...doubling...   | ...          |
    /// | over 16 GiB      | 16 MiB       |
    pub fn for_blob_size(size: u64) -> Self {
        let mut log2 = MIN_LOG2;
        while log2 < MAX_LOG2 && size > MAX_PIECES << log2 {
            log2 += 1;
        }
        Self(1 << log2)
    }

    /// Accepts a piece length from outside (a flag, a parsed torrent) if the profile allows it.
    pub fn new(bytes: u64) -> Result<Self, PieceLengthError> {
        if bytes.is_power_of_two() && (1u64 << MIN_LOG2..=1u64 << MAX_LOG2).contains(&bytes) {
            Ok(Self(bytes as u32))
        } else {
            Err(PieceLengthError(bytes))
        }
    }

    pub fn bytes(self) -> u32 {
        self.0
    }

    /// log2 of the length, the form mktorrent's `-l` takes.
    pub fn log2(self) -> u32 {
        self.0.trailing_zeros()
    }

    /// How many pieces a blob of `size` bytes has (zero for an empty blob).
    pub fn piece_count(self, size: u64) -> u64 {
        size.div_ceil(u64::from(self.0))
    }
}

impl fmt::Display for PieceLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for PieceLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PieceLength({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn table_matches_the_documented_rows() {
        let rows = [
            (0, 32 * KIB),
            (1, 32 * KIB),
            (64 * MIB, 32 * KIB),
            (64 * MIB + 1, 64 * KIB),
            (128 * MIB, 64 * KIB),
            (256 * MIB, 128 * KIB),
            (512 * MIB, 256 * KIB),
            (GIB, 512 * KIB),
            (GIB + 1, MIB),
            (2 * GIB, MIB),
            (32 * GIB, 16 * MIB),
            (32 * GIB + 1, 16 * MIB),
            (u64::MAX, 16 * MIB),
        ];
        for (size, expected) in rows {
            assert_eq!(u64::from(PieceLength::for_blob_size(size).bytes()), expected, "size {size}");
        }
    }

    #[test]
    fn pieces_stay_within_bounds_until_the_cap() {
        for shift in 0..40 {
            for size in [(1u64 << shift) - 1, 1 << shift, (1 << shift) + 1] {
                let pl = PieceLength::for_blob_size(size);
                let n = pl.piece_count(size);
                assert!(n <= MAX_PIECES || pl.log2() == MAX_LOG2, "size {size} gives {n} pieces");
                if pl.bytes() > 32 * 1024 {
                    assert!(n > MAX_PIECES / 2, "size {size}: piece length {pl} is larger than needed");
                }
            }
        }
    }

    #[test]
    fn new_checks_the_range() {
        assert!(PieceLength::new(32 * KIB).is_ok());
        assert!(PieceLength::new(16 * MIB).is_ok());
        assert!(PieceLength::new(16 * KIB).is_err());
        assert!(PieceLength::new(32 * MIB).is_err());
        assert!(PieceLength::new(48 * KIB).is_err());
        assert_eq!(PieceLength::new(256 * KIB).unwrap().log2(), 18);
        assert_eq!(PieceLength::new(32 * KIB).unwrap().piece_count(0), 0);
        assert_eq!(PieceLength::new(32 * KIB).unwrap().piece_count(32 * KIB + 1), 2);
    }
}
