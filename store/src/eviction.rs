//! The cache policy's decision, free of I/O: which blobs to evict so the store fits its limit.
//!
//! The store may hold at most [`StoreLimit::max_bytes`]. When the stored bytes exceed the high
//! watermark, least-recently-used blobs go until the total is at or below the low watermark
//! (two marks, so one more ingest does not trigger another round at once). A pinned blob (being
//! served or fetched right now) is never chosen; if the pinned blobs alone keep the store over
//! the low watermark, every unpinned blob goes and the plan says how far it fell short. The
//! caller does the deleting (`cache.rs`); recency comes in as numbers, never from a clock here.

use shoal_torrents::BlobDigest;

/// Why a limit or a size was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("the store limit must be more than 0 bytes")]
    ZeroBytes,
    #[error("watermarks must satisfy 0 < low <= high <= 1; got low {low}, high {high}")]
    Watermarks { low: f64, high: f64 },
    #[error("{0:?} is not a size: expected bytes, or a number with KB/MB/GB/TB or KiB/MiB/GiB/TiB (e.g. 500MiB), or auto, or none")]
    Size(String),
}

/// How large the store may grow, and where eviction starts and stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoreLimit {
    max_bytes: u64,
    high: f64,
    low: f64,
}

impl StoreLimit {
    pub const DEFAULT_HIGH_WATERMARK: f64 = 0.95;
    pub const DEFAULT_LOW_WATERMARK: f64 = 0.85;

    /// `high` and `low` are fractions of `max_bytes`.
    pub fn new(max_bytes: u64, high: f64, low: f64) -> Result<Self, LimitError> {
        if max_bytes == 0 {
            return Err(LimitError::ZeroBytes);
        }
        // Written so that NaN fails too.
        if !(low > 0.0 && low <= high && high <= 1.0) {
            return Err(LimitError::Watermarks { low, high });
        }
        Ok(Self { max_bytes, high, low })
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Eviction starts when the store holds more than this.
    pub fn high_bytes(&self) -> u64 {
        (self.max_bytes as f64 * self.high) as u64
    }

    /// Eviction stops once the store holds at most this.
    pub fn low_bytes(&self) -> u64 {
        (self.max_bytes as f64 * self.low) as u64
    }
}

/// One stored blob as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub digest: BlobDigest,
    pub size: u64,
    /// Milliseconds since the Unix epoch of the last use (any monotonic scale works).
    pub last_access_ms: u64,
    /// Being served or fetched right now: never a victim.
    pub pinned: bool,
}

/// What to evict, in order, and what the store will hold afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub victims: Vec<BlobDigest>,
    pub stored_bytes: u64,
    pub bytes_after: u64,
}

impl Plan {
    /// True when pinned blobs keep the store above the low watermark even after the plan.
    pub fn falls_short(&self, limit: &StoreLimit) -> bool {
        !self.victims.is_empty() && self.bytes_after > limit.low_bytes()
    }
}

/// The blobs to evict, least recently used first (ties broken by digest, so the plan is a
/// function of its input). Empty unless the store is above the high watermark.
pub fn plan(entries: &[Entry], limit: &StoreLimit) -> Plan {
    let stored_bytes: u64 = entries.iter().map(|e| e.size).sum();
    let mut plan = Plan { victims: Vec::new(), stored_bytes, bytes_after: stored_bytes };
    if stored_bytes <= limit.high_bytes() {
        return plan;
    }
    let mut candidates: Vec<&Entry> = entries.iter().filter(|e| !e.pinned).collect();
    candidates.sort_by(|a, b| a.last_access_ms.cmp(&b.last_access_ms).then_with(|| a.digest.cmp(&b.digest)));
    for entry in candidates {
        if plan.bytes_after <= limit.low_bytes() {
            break;
        }
        plan.victims.push(entry.digest);
        plan.bytes_after -= entry.size;
    }
    plan
}

/// `--max-store-bytes` as given: a size, `auto` (a share of the filesystem's free space at
/// start, plus what is stored already: the default) or `none` (no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreSize {
    Auto,
    Unlimited,
    Bytes(u64),
}

impl std::str::FromStr for StoreSize {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<Self, LimitError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(StoreSize::Auto),
            "none" | "unlimited" => Ok(StoreSize::Unlimited),
            _ => parse_byte_size(text).map(StoreSize::Bytes),
        }
    }
}

impl StoreSize {
    /// The limit in bytes: `Auto` is what is `stored` plus `share` of the `free` bytes.
    pub fn resolve(self, stored: u64, free: u64, share: f64) -> Option<u64> {
        match self {
            StoreSize::Unlimited => None,
            StoreSize::Bytes(n) => Some(n),
            StoreSize::Auto => Some(stored.saturating_add((free as f64 * share) as u64).max(1)),
        }
    }
}

/// A size as flags take it: plain bytes (`1048576`), or a number (decimals allowed) with a
/// decimal (`KB`, `MB`, `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`, `TiB`) unit, any case,
/// optionally spaced (`10GiB`, `1.5 GB`). A bare `K`/`M`/`G` is refused: it is ambiguous.
pub fn parse_byte_size(text: &str) -> Result<u64, LimitError> {
    let refuse = || LimitError::Size(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(refuse()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(refuse());
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier).ok_or_else(refuse);
    }
    let value: f64 = number.parse().map_err(|_| refuse())?;
    let bytes = (value * multiplier as f64).round();
    if multiplier == 1 || !bytes.is_finite() || bytes >= u64::MAX as f64 {
        // Fractions of a byte, or too large.
        return Err(refuse());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> BlobDigest {
        format!("sha256:{}", hex::encode([n; 32])).parse().unwrap()
    }

    fn entry(n: u8, size: u64, last_access_ms: u64) -> Entry {
        Entry { digest: digest(n), size, last_access_ms, pinned: false }
    }

    fn limit(max: u64) -> StoreLimit {
        StoreLimit::new(max, 0.95, 0.85).unwrap()
    }

    #[test]
    fn nothing_goes_at_or_below_the_high_watermark() {
        let l = limit(1000);
        assert_eq!(l.high_bytes(), 950);
        assert_eq!(l.low_bytes(), 850);
        let entries = [entry(1, 500, 1), entry(2, 450, 2)];
        let p = plan(&entries, &l);
        assert!(p.victims.is_empty());
        assert_eq!((p.stored_bytes, p.bytes_after), (950, 950));
        assert!(plan(&[], &l).victims.is_empty());
    }

    #[test]
    fn least_recently_used_go_first_until_the_low_watermark() {
        // 1000 stored, high 950 exceeded; must fall to <= 850: the two oldest (100 + 100) do.
        let entries = [entry(1, 300, 50), entry(2, 100, 10), entry(3, 400, 40), entry(4, 100, 20), entry(5, 100, 30)];
        let p = plan(&entries, &limit(1000));
        assert_eq!(p.victims, vec![digest(2), digest(4)]);
        assert_eq!(p.bytes_after, 800);
        assert!(!p.falls_short(&limit(1000)));
    }

    #[test]
    fn a_large_old_blob_can_be_the_only_victim() {
        let entries = [entry(1, 600, 1), entry(2, 200, 2), entry(3, 200, 3)];
        assert_eq!(plan(&entries, &limit(1000)).victims, vec![digest(1)]);
    }

    #[test]
    fn pinned_blobs_are_skipped_and_younger_ones_go_instead() {
        let mut entries = vec![entry(1, 600, 1), entry(2, 200, 2), entry(3, 200, 3), entry(4, 100, 4)];
        entries[0].pinned = true;
        let p = plan(&entries, &limit(1000));
        // 1100 stored, 600 of it pinned; 2 then 3 bring it to 700 (2 alone leaves 900 > 850).
        assert_eq!(p.victims, vec![digest(2), digest(3)]);
        assert_eq!(p.bytes_after, 700);
    }

    #[test]
    fn when_pins_hold_the_store_up_every_unpinned_blob_goes_and_the_plan_says_so() {
        let mut entries = vec![entry(1, 900, 1), entry(2, 60, 2), entry(3, 40, 3)];
        entries[0].pinned = true;
        let l = limit(1000);
        let p = plan(&entries, &l);
        assert_eq!(p.victims, vec![digest(2), digest(3)]);
        assert_eq!(p.bytes_after, 900);
        assert!(p.falls_short(&l));
        entries[1].pinned = true;
        entries[2].pinned = true;
        let p = plan(&entries, &l);
        assert!(p.victims.is_empty());
        assert!(!p.falls_short(&l));
    }

    #[test]
    fn ties_in_recency_break_by_digest() {
        let entries = [entry(9, 500, 7), entry(3, 500, 7), entry(5, 500, 7)];
        assert_eq!(plan(&entries, &limit(1000)).victims, vec![digest(3), digest(5)]);
    }

    #[test]
    fn limits_refuse_nonsense() {
        assert_eq!(StoreLimit::new(0, 0.95, 0.85), Err(LimitError::ZeroBytes));
        for (high, low) in [(0.8, 0.9), (1.1, 0.5), (0.9, 0.0), (f64::NAN, 0.5), (0.9, -0.1)] {
            assert!(StoreLimit::new(100, high, low).is_err(), "{high} {low}");
        }
        let same = StoreLimit::new(100, 0.9, 0.9).unwrap();
        assert_eq!((same.high_bytes(), same.low_bytes()), (90, 90));
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_byte_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_byte_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_byte_size("500mib"), Ok(500 << 20));
        assert_eq!(parse_byte_size("16 KiB"), Ok(16 << 10));
        assert_eq!(parse_byte_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_byte_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_byte_size("0.5KiB"), Ok(512));
        assert_eq!(parse_byte_size("7B"), Ok(7));
        for bad in ["", "GiB", "10G", "10 M", "-5", "1.5", "1.2.3MB", ".5GB", "5.GB", "99999999999TiB", "10 GiBs"] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn store_sizes_are_auto_none_or_a_size() {
        assert_eq!("auto".parse::<StoreSize>().unwrap(), StoreSize::Auto);
        assert_eq!("None".parse::<StoreSize>().unwrap(), StoreSize::Unlimited);
        assert_eq!("10GiB".parse::<StoreSize>().unwrap(), StoreSize::Bytes(10 << 30));
        assert!("lots".parse::<StoreSize>().is_err());
        assert_eq!(StoreSize::Auto.resolve(500, 1000, 0.8), Some(1300), "stored, plus 80% of what is free");
        assert_eq!(StoreSize::Auto.resolve(0, 0, 0.8), Some(1), "never a zero limit");
        assert_eq!(StoreSize::Unlimited.resolve(5, 5, 0.8), None);
        assert_eq!(StoreSize::Bytes(7).resolve(5, 5, 0.8), Some(7));
    }
}
