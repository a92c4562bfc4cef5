//! Pure manifest cache: manifests by digest (immutable), tags with a TTL, stale answers.
//!
//! No I/O and no clock of its own: callers pass `now_ms` (milliseconds since the Unix epoch,
//! the scale the index records confirmations in, so a tag read back after a restart keeps its
//! age). The HTTP side decides what to do with a [`TagLookup`]: fresh answers are served,
//! stale ones are refreshed upstream first and served as they are (with a warning) only when
//! upstream cannot answer and they are younger than `--stale-tag-max-age-secs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_torrents::BlobDigest;

/// A manifest as served: exact bytes (the digest is over them), media type, digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub digest: BlobDigest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// Which registry a tag belongs to (`ns=` in mirror mode; the default upstream otherwise) and
/// which repository in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TagKey {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TagLookup {
    Fresh(Arc<Manifest>),
    /// Known, but older than the TTL: ask upstream; serve this only if upstream fails.
    Stale {
        manifest: Arc<Manifest>,
        confirmed_ms: u64,
    },
    Missing,
}

/// Bounded in-memory manifest cache.
#[derive(Debug)]
pub(crate) struct ManifestCache {
    ttl: Duration,
    max_manifests: usize,
    /// Manifest and when it was last used.
    by_digest: HashMap<BlobDigest, (Arc<Manifest>, u64)>,
    /// Digest and when upstream last confirmed it.
    tags: HashMap<TagKey, (BlobDigest, u64)>,
}

impl ManifestCache {
    pub(crate) fn new(ttl: Duration, max_manifests: usize) -> Self {
        Self { ttl, max_manifests: max_manifests.max(1), by_digest: HashMap::new(), tags: HashMap::new() }
    }

    /// Remembers a manifest (and the tag it was fetched by, if any, as confirmed at
    /// `confirmed_ms`) as used at `now_ms`.
    pub(crate) fn insert(
        &mut self,
        manifest: Manifest,
        tag: Option<TagKey>,
        confirmed_ms: u64,
        now_ms: u64,
    ) -> Arc<Manifest> {
        let digest = manifest.digest;
        let manifest = Arc::new(manifest);
        self.by_digest.insert(digest, (Arc::clone(&manifest), now_ms));
        if let Some(tag) = tag {
            self.tags.insert(tag, (digest, confirmed_ms));
        }
        self.evict();
        manifest
    }

    pub(crate) fn by_digest(&mut self, digest: &BlobDigest, now_ms: u64) -> Option<Arc<Manifest>> {
        let (manifest, used) = self.by_digest.get_mut(digest)?;
        *used = now_ms;
        Some(Arc::clone(manifest))
    }

    pub(crate) fn tag(&mut self, key: &TagKey, now_ms: u64) -> TagLookup {
        let Some(&(digest, confirmed_ms)) = self.tags.get(key) else { return TagLookup::Missing };
        match self.by_digest(&digest, now_ms) {
            None => TagLookup::Missing,
            Some(m) if now_ms.saturating_sub(confirmed_ms) < self.ttl.as_millis() as u64 => TagLookup::Fresh(m),
            Some(manifest) => TagLookup::Stale { manifest, confirmed_ms },
        }
    }

    /// Drops the least recently used manifests beyond the cap, and tags that point nowhere.
    fn evict(&mut self) {
        while self.by_digest.len() > self.max_manifests {
            let oldest = self.by_digest.iter().min_by_key(|(_, (_, used))| *used).map(|(d, _)| *d);
            if let Some(d) = oldest {
                self.by_digest.remove(&d);
            }
        }
        let by_digest = &self.by_digest;
        self.tags.retain(|_, (d, _)| by_digest.contains_key(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(n: u8) -> Manifest {
        Manifest { digest: BlobDigest::from_bytes([n; 32]), media_type: "m".into(), bytes: Bytes::from(vec![n]) }
    }

    fn key(tag: &str) -> TagKey {
        TagKey { registry: "r".into(), repository: "a".into(), tag: tag.into() }
    }

    const S: u64 = 1000;

    #[test]
    fn tags_go_stale_after_the_ttl_but_are_kept() {
        let t0 = 1_700_000_000_000;
        let mut cache = ManifestCache::new(Duration::from_secs(30), 10);
        cache.insert(manifest(1), Some(key("v1")), t0, t0);
        assert!(matches!(cache.tag(&key("v1"), t0 + 29 * S), TagLookup::Fresh(_)));
        assert!(
            matches!(cache.tag(&key("v1"), t0 + 31 * S), TagLookup::Stale { confirmed_ms, .. } if confirmed_ms == t0)
        );
        assert_eq!(cache.tag(&key("v2"), t0), TagLookup::Missing);
        // Re-fetching refreshes the tag.
        cache.insert(manifest(1), Some(key("v1")), t0 + 40 * S, t0 + 40 * S);
        assert!(matches!(cache.tag(&key("v1"), t0 + 41 * S), TagLookup::Fresh(_)));
        // Read back from the index long after it was confirmed: stale at once.
        cache.insert(manifest(2), Some(key("v2")), t0, t0 + 100 * S);
        assert!(matches!(cache.tag(&key("v2"), t0 + 100 * S), TagLookup::Stale { .. }));
    }

    #[test]
    fn least_recently_used_manifests_go_first() {
        let t0 = 1_700_000_000_000;
        let mut cache = ManifestCache::new(Duration::from_secs(30), 2);
        cache.insert(manifest(1), Some(key("one")), t0, t0);
        cache.insert(manifest(2), None, t0 + S, t0 + S);
        assert!(cache.by_digest(&manifest(1).digest, t0 + 2 * S).is_some());
        cache.insert(manifest(3), None, t0 + 3 * S, t0 + 3 * S);
        assert!(cache.by_digest(&manifest(2).digest, t0 + 4 * S).is_none());
        assert!(cache.by_digest(&manifest(1).digest, t0 + 4 * S).is_some());
        cache.insert(manifest(4), None, t0 + 5 * S, t0 + 5 * S);
        cache.insert(manifest(5), None, t0 + 6 * S, t0 + 6 * S);
        assert_eq!(cache.tag(&key("one"), t0 + 7 * S), TagLookup::Missing);
    }
}
