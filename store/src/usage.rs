//! Which blobs are in use right now (leases) and when each was last used (recency), in memory.
//!
//! A [`Lease`] is held for as long as a blob is being served (a webseed response body, until
//! it is dropped) or fetched and ingested on demand. Eviction claims a blob first
//! ([`BlobUsage::claim`]), which fails while any lease is held, and new leases wait until a
//! claim is released, so a blob is never deleted under a reader and a reader never starts on a
//! blob being deleted.
//!
//! Recency is recorded here on every use (webseed and torrent requests, BitTorrent reads: too
//! many for one database write each) and written to the index in batches by
//! [`BlobUsage::take_accesses`]'s caller; eviction reads the newer of the two.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes, HttpBody};
use shoal_torrents::BlobDigest;
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch, the scale of every access time.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Default)]
struct State {
    leases: HashMap<BlobDigest, usize>,
    claimed: HashSet<BlobDigest>,
    /// Accesses not yet written to the index.
    accesses: HashMap<BlobDigest, u64>,
}

/// Leases and recent accesses of every blob.
#[derive(Default)]
pub struct BlobUsage {
    state: Mutex<State>,
    released: Notify,
}

impl BlobUsage {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("usage lock")
    }

    /// Leases `digest` (stored or not yet), waiting while it is being evicted.
    pub async fn lease(self: &Arc<Self>, digest: BlobDigest) -> Lease {
        loop {
            // Created before the check: a release in between still wakes it.
            let released = self.released.notified();
            {
                let mut state = self.state();
                if !state.claimed.contains(&digest) {
                    *state.leases.entry(digest).or_default() += 1;
                    return Lease { usage: Arc::clone(self), digest };
                }
            }
            released.await;
        }
    }

    pub fn is_leased(&self, digest: &BlobDigest) -> bool {
        self.state().leases.contains_key(digest)
    }

    /// Claims `digest` for eviction, unless it is leased (or already claimed).
    pub fn claim(self: &Arc<Self>, digest: BlobDigest) -> Option<Claim> {
        let mut state = self.state();
        if state.leases.contains_key(&digest) || !state.claimed.insert(digest) {
            return None;
        }
        Some(Claim { usage: Arc::clone(self), digest })
    }

    /// Records a use of `digest` at `at_ms`.
    pub fn touch(&self, digest: BlobDigest, at_ms: u64) {
        let mut state = self.state();
        let last = state.accesses.entry(digest).or_default();
        *last = (*last).max(at_ms);
    }

    /// The last use recorded here and not yet written to the index.
    pub fn recent_access(&self, digest: &BlobDigest) -> Option<u64> {
        self.state().accesses.get(digest).copied()
    }

    /// Hands over the accesses recorded since the last call, for one batched index write.
    pub fn take_accesses(&self) -> Vec<(BlobDigest, u64)> {
        self.state().accesses.drain().collect()
    }
}

/// A blob in use; released on drop.
pub struct Lease {
    usage: Arc<BlobUsage>,
    digest: BlobDigest,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut state = self.usage.state();
        if let Some(n) = state.leases.get_mut(&self.digest) {
            *n -= 1;
            if *n == 0 {
                state.leases.remove(&self.digest);
            }
        }
    }
}

/// A response body that keeps its blob leased until it is finished or dropped (a file served
/// from the store: the seeder's webseed, the shim's cache hits).
pub struct LeasedBody {
    body: Body,
    _lease: Lease,
}

impl LeasedBody {
    pub fn new(body: Body, lease: Lease) -> Self {
        Self { body, _lease: lease }
    }
}

impl HttpBody for LeasedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A blob being evicted; new leases of it wait until this is dropped.
pub struct Claim {
    usage: Arc<BlobUsage>,
    digest: BlobDigest,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.usage.state().claimed.remove(&self.digest);
        self.usage.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn digest(n: u8) -> BlobDigest {
        format!("sha256:{}", hex::encode([n; 32])).parse().unwrap()
    }

    #[tokio::test]
    async fn a_leased_blob_cannot_be_claimed_until_every_lease_is_gone() {
        let usage = Arc::new(BlobUsage::default());
        let first = usage.lease(digest(1)).await;
        let second = usage.lease(digest(1)).await;
        assert!(usage.is_leased(&digest(1)));
        assert!(usage.claim(digest(1)).is_none());
        drop(first);
        assert!(usage.claim(digest(1)).is_none());
        drop(second);
        assert!(!usage.is_leased(&digest(1)));
        let claim = usage.claim(digest(1)).expect("claimable once released");
        assert!(usage.claim(digest(1)).is_none(), "claimed twice");
        assert!(usage.claim(digest(2)).is_some(), "claims are per blob");
        drop(claim);
    }

    #[tokio::test]
    async fn a_lease_waits_for_an_eviction_in_progress() {
        let usage = Arc::new(BlobUsage::default());
        let claim = usage.claim(digest(1)).unwrap();
        let waiter = tokio::spawn({
            let usage = Arc::clone(&usage);
            async move { usage.lease(digest(1)).await }
        });
        // Leasing another blob is not held up.
        drop(usage.lease(digest(2)).await);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "leased a blob while it was being evicted");
        drop(claim);
        let lease = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("lease after release").unwrap();
        assert!(usage.is_leased(&digest(1)));
        drop(lease);
    }

    #[test]
    fn accesses_keep_the_latest_and_are_taken_once() {
        let usage = BlobUsage::default();
        usage.touch(digest(1), 10);
        usage.touch(digest(1), 5);
        usage.touch(digest(2), 7);
        assert_eq!(usage.recent_access(&digest(1)), Some(10));
        let mut taken = usage.take_accesses();
        taken.sort();
        assert_eq!(taken, vec![(digest(1), 10), (digest(2), 7)]);
        assert!(usage.take_accesses().is_empty());
        assert_eq!(usage.recent_access(&digest(1)), None);
    }
}
