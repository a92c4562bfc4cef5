//! Manifest policy: which manifest a request gets. Anonymous requests go through the pure
//! [`ManifestCache`] (digests forever, tags for their TTL, a stale tag only when upstream cannot
//! answer and it is young enough), backed by the index (`manifests`, `tags`), so what was
//! served before a restart is served after it while upstream is down. A client's own
//! credentials always go upstream and are never cached; whatever comes from upstream or the
//! index must hash to the digest asked for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use oci_client::secrets::RegistryAuth;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use shoal_store::index::{tag_key, BlobIndex};
use shoal_store::usage::now_ms;
use shoal_torrents::BlobDigest;
use shoal_upstream::Upstream;

use crate::error::{upstream_error, Subject};
use crate::manifests::{Manifest, ManifestCache, TagKey, TagLookup};
use crate::route::{ManifestRef, RepoName};
use crate::RegistryError;

/// How many manifests the index keeps (least recently confirmed go first).
const MAX_STORED_MANIFESTS: usize = 16_384;

/// A manifest to serve, and how old its tag is when it is served stale.
pub(crate) struct Resolved {
    pub manifest: Arc<Manifest>,
    /// Set when upstream could not confirm the tag: the time since it last did.
    pub stale_for: Option<Duration>,
}

/// Resolves manifest references against the cache, the index and upstream.
pub(crate) struct ManifestResolver {
    upstream: Arc<Upstream>,
    cache: Mutex<ManifestCache>,
    index: Arc<BlobIndex>,
    stale_tag_max_age: Duration,
    /// Upstream manifest fetches that failed, by reason.
    failures: IntCounterVec,
}

impl ManifestResolver {
    pub(crate) fn new(
        upstream: Arc<Upstream>,
        cache: ManifestCache,
        index: Arc<BlobIndex>,
        stale_tag_max_age: Duration,
        failures: IntCounterVec,
    ) -> Self {
        Self { upstream, cache: Mutex::new(cache), index, stale_tag_max_age, failures }
    }

    /// The manifest `reference` names in `registry`/`name`, as `client` may read it.
    pub(crate) async fn resolve(
        &self,
        registry: &str,
        name: &RepoName,
        reference: &ManifestRef,
        client: Option<&RegistryAuth>,
    ) -> Result<Resolved, RegistryError> {
        let fresh = |manifest| Ok(Resolved { manifest, stale_for: None });
        if let Some(auth) = client {
            // Resolved upstream every time, never cached: nothing a client may read with its
            // credentials is ever served from the cache to another client.
            return fresh(Arc::new(self.fetch(registry, name, reference, Some(auth)).await?));
        }
        let tag_key = match reference {
            ManifestRef::Digest(_) => None,
            ManifestRef::Tag(tag) => {
                Some(TagKey { registry: registry.to_owned(), repository: name.to_string(), tag: tag.clone() })
            }
        };
        let stale = match self.cached(reference, tag_key.as_ref(), now_ms()) {
            TagLookup::Fresh(m) => return fresh(m),
            TagLookup::Stale { manifest, confirmed_ms } => Some((manifest, confirmed_ms)),
            TagLookup::Missing => None,
        };
        let e = match self.fetch(registry, name, reference, None).await {
            Ok(fetched) => return fresh(self.remember(fetched, tag_key)),
            Err(e) => e,
        };
        let Some((manifest, confirmed_ms)) = stale.filter(|_| matches!(e, RegistryError::Unavailable(_))) else {
            return Err(e);
        };
        let age = Duration::from_millis(now_ms().saturating_sub(confirmed_ms));
        if age > self.stale_tag_max_age {
            tracing::warn!(%registry, repository = %name, %reference, age_secs = age.as_secs(), error = %e,
                "upstream unreachable and the cached tag is older than --stale-tag-max-age-secs: not serving it");
            return Err(RegistryError::Unavailable(format!(
                "{e}; the cached tag was last confirmed {}s ago, more than the {}s stale tags are served for",
                age.as_secs(),
                self.stale_tag_max_age.as_secs()
            )));
        }
        tracing::warn!(%registry, repository = %name, %reference, digest = %manifest.digest, age_secs = age.as_secs(),
            error = %e, "upstream unreachable: serving a stale tag");
        Ok(Resolved { manifest, stale_for: Some(age) })
    }

    /// Keeps a manifest just fetched (anonymously) in memory and in the index.
    fn remember(&self, fetched: Manifest, tag: Option<TagKey>) -> Arc<Manifest> {
        let now = now_ms();
        let key = tag.as_ref().map(|t| tag_key(&t.registry, &t.repository, &t.tag));
        if let Err(e) = self.index.put_manifest(
            &fetched.digest,
            &fetched.media_type,
            &fetched.bytes,
            key.as_deref(),
            now,
            MAX_STORED_MANIFESTS,
        ) {
            tracing::warn!(digest = %fetched.digest, error = %e, "cannot keep a manifest in the index; it will not survive a restart");
        }
        self.cache.lock().expect("manifest cache lock").insert(fetched, tag, now, now)
    }

    /// What memory, then the index, knows of a manifest reference (digests never go stale).
    fn cached(&self, reference: &ManifestRef, tag: Option<&TagKey>, now: u64) -> TagLookup {
        let in_memory = {
            let mut cache = self.cache.lock().expect("manifest cache lock");
            match (reference, tag) {
                (ManifestRef::Digest(d), _) => cache.by_digest(d, now).map_or(TagLookup::Missing, TagLookup::Fresh),
                (ManifestRef::Tag(_), Some(key)) => cache.tag(key, now),
                (ManifestRef::Tag(_), None) => TagLookup::Missing,
            }
        };
        if in_memory != TagLookup::Missing {
            return in_memory;
        }
        let stored = match (reference, tag) {
            (ManifestRef::Digest(d), _) => self.stored(d).map(|m| (m, None, now)),
            (ManifestRef::Tag(_), Some(key)) => {
                match self.index.tag(&tag_key(&key.registry, &key.repository, &key.tag)) {
                    Ok(Some(t)) => self.stored(&t.digest).map(|m| (m, Some(key.clone()), t.confirmed_ms)),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read a tag from the index");
                        None
                    }
                }
            }
            (ManifestRef::Tag(_), None) => None,
        };
        let Some((manifest, tag, confirmed_ms)) = stored else { return TagLookup::Missing };
        let mut cache = self.cache.lock().expect("manifest cache lock");
        let manifest = cache.insert(manifest, tag.clone(), confirmed_ms, now);
        match tag {
            // Fresh or stale by the age the index recorded.
            Some(key) => cache.tag(&key, now),
            None => TagLookup::Fresh(manifest),
        }
    }

    /// A manifest from the index, if its bytes still hash to its digest (else it is dropped).
    fn stored(&self, digest: &BlobDigest) -> Option<Manifest> {
        let stored = match self.index.manifest(digest) {
            Ok(stored) => stored?,
            Err(e) => {
                tracing::warn!(%digest, error = %e, "cannot read a manifest from the index");
                return None;
            }
        };
        if BlobDigest::from_bytes(Sha256::digest(&stored.bytes).into()) != *digest {
            tracing::error!(%digest, "a manifest in the index does not match its digest; dropping it");
            if let Err(e) = self.index.remove_manifest(digest) {
                tracing::warn!(%digest, error = %e, "cannot drop a corrupt manifest from the index");
            }
            return None;
        }
        Some(Manifest { digest: *digest, media_type: stored.media_type, bytes: Bytes::from(stored.bytes) })
    }

    async fn fetch(
        &self,
        registry: &str,
        name: &RepoName,
        reference: &ManifestRef,
        client: Option<&RegistryAuth>,
    ) -> Result<Manifest, RegistryError> {
        let sep = if matches!(reference, ManifestRef::Digest(_)) { "@" } else { ":" };
        let what = format!("{registry}/{name}{sep}{reference}");
        let image = Upstream::parse_reference(&what).map_err(|_| RegistryError::NameInvalid(what.clone()))?;
        let pulled = self.upstream.manifest_as(&image, client).await.map_err(|e| {
            self.failures.with_label_values(&[e.reason()]).inc();
            if !e.is_not_found() {
                tracing::warn!(%what, reason = e.reason(), error = %e, "upstream manifest fetch failed");
            }
            upstream_error(Subject::Manifest, &what, e)
        })?;
        let digest = BlobDigest::from_bytes(Sha256::digest(&pulled.bytes).into());
        if let ManifestRef::Digest(expected) = reference {
            if *expected != digest {
                self.failures.with_label_values(&["digest_mismatch"]).inc();
                tracing::error!(%what, actual = %digest, "upstream manifest does not match its digest");
                return Err(RegistryError::Unavailable(format!(
                    "upstream sent a manifest that does not match {expected}"
                )));
            }
        }
        Ok(Manifest { digest, media_type: pulled.media_type, bytes: pulled.bytes })
    }
}
