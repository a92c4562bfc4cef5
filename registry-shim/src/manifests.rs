//! Pure manifest cache: manifests by digest (immutable), tags with a TTL, stale answers.
//!
//! No I/O and no clock of its own: callers pass `now`. The HTTP side decides what to do with a
//! [`TagLookup`]: fresh answers are served, stale ones are refreshed upstream first and served
//! as they are (with a warning) only when upstream cannot answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    Stale(Arc<Manifest>),
    Missing,
}

/// Bounded in-memory manifest cache.
#[derive(Debug)]
pub(crate) struct ManifestCache {
    ttl: Duration,
    max_manifests: usize,
    by_digest: HashMap<BlobDigest, (Arc<Manifest>, Instant)>,
    tags: HashMap<TagKey, (BlobDigest, Instant)>,
}

impl ManifestCache {
    pub(crate) fn new(ttl: Duration, max_manifests: usize) -> Self {
        Self { ttl, max_manifests: max_manifests.max(1), by_digest: HashMap::new(), tags: HashMap::new() }
    }

    /// Remembers a manifest (and the tag it was fetched by, if any) as of `now`.
    pub(crate) fn insert(&mut self, manifest: Manifest, tag: Option<TagKey>, now: Instant) -> Arc<Manifest> {
        let digest = manifest.digest;
        let manifest = Arc::new(manifest);
        self.by_digest.insert(digest, (Arc::clone(&manifest), now));
        if let Some(tag) = tag {
            self.tags.insert(tag, (digest, now));
        }
        self.evict();
        manifest
    }

    pub(crate) fn by_digest(&mut self, digest: &BlobDigest, now: Instant) -> Option<Arc<Manifest>> {
        let (manifest, used) = self.by_digest.get_mut(digest)?;
        *used = now;
        Some(Arc::clone(manifest))
    }

    pub(crate) fn tag(&mut self, key: &TagKey, now: Instant) -> TagLookup {
        let Some(&(digest, fetched)) = self.tags.get(key) else { return TagLookup::Missing };
        match self.by_digest(&digest, now) {
            None => TagLookup::Missing,
            Some(m) if now.saturating_duration_since(fetched) < self.ttl => TagLookup::Fresh(m),
            Some(m) => TagLookup::Stale(m),
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

    #[test]
    fn tags_go_stale_after_the_ttl_but_are_kept() {
        let t0 = Instant::now();
        let mut cache = ManifestCache::new(Duration::from_secs(30), 10);
        cache.insert(manifest(1), Some(key("v1")), t0);
        assert!(matches!(cache.tag(&key("v1"), t0 + Duration::from_secs(29)), TagLookup::Fresh(_)));
        assert!(matches!(cache.tag(&key("v1"), t0 + Duration::from_secs(31)), TagLookup::Stale(_)));
        assert_eq!(cache.tag(&key("v2"), t0), TagLookup::Missing);
        // Re-fetching refreshes the tag.
        cache.insert(manifest(1), Some(key("v1")), t0 + Duration::from_secs(40));
        assert!(matches!(cache.tag(&key("v1"), t0 + Duration::from_secs(41)), TagLookup::Fresh(_)));
    }

    #[test]
    fn least_recently_used_manifests_go_first() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut cache = ManifestCache::new(Duration::from_secs(30), 2);
        cache.insert(manifest(1), Some(key("one")), t0);
        cache.insert(manifest(2), None, t0 + s);
        assert!(cache.by_digest(&manifest(1).digest, t0 + 2 * s).is_some());
        cache.insert(manifest(3), None, t0 + 3 * s);
        assert!(cache.by_digest(&manifest(2).digest, t0 + 4 * s).is_none());
        assert!(cache.by_digest(&manifest(1).digest, t0 + 4 * s).is_some());
        cache.insert(manifest(4), None, t0 + 5 * s);
        cache.insert(manifest(5), None, t0 + 6 * s);
        assert_eq!(cache.tag(&key("one"), t0 + 7 * s), TagLookup::Missing);
    }
}
