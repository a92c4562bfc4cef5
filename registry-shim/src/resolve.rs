//! Manifest policy: which manifest a request gets. Anonymous requests go through the pure
//! [`ManifestCache`] (digests forever, tags for their TTL, a stale tag only when upstream cannot
//! answer); a client's own credentials always go upstream and are never cached; whatever comes
//! from upstream must hash to the digest asked for.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use oci_client::secrets::RegistryAuth;
use prometheus::IntCounterVec;
use sha2::{Digest, Sha256};
use shoal_torrents::BlobDigest;
use shoal_upstream::Upstream;

use crate::error::{upstream_error, Subject};
use crate::manifests::{Manifest, ManifestCache, TagKey, TagLookup};
use crate::route::{ManifestRef, RepoName};
use crate::RegistryError;

/// Resolves manifest references against the cache and upstream.
pub(crate) struct ManifestResolver {
    upstream: Arc<Upstream>,
    cache: Mutex<ManifestCache>,
    /// Upstream manifest fetches that failed, by reason.
    failures: IntCounterVec,
}

impl ManifestResolver {
    pub(crate) fn new(upstream: Arc<Upstream>, cache: ManifestCache, failures: IntCounterVec) -> Self {
        Self { upstream, cache: Mutex::new(cache), failures }
    }

    /// The manifest `reference` names in `registry`/`name`, as `client` may read it.
    pub(crate) async fn resolve(
        &self,
        registry: &str,
        name: &RepoName,
        reference: &ManifestRef,
        client: Option<&RegistryAuth>,
    ) -> Result<Arc<Manifest>, RegistryError> {
        if let Some(auth) = client {
            // Resolved upstream every time, never cached: nothing a client may read with its
            // credentials is ever served from the cache to another client.
            return Ok(Arc::new(self.fetch(registry, name, reference, Some(auth)).await?));
        }
        let tag_key = match reference {
            ManifestRef::Digest(_) => None,
            ManifestRef::Tag(tag) => {
                Some(TagKey { registry: registry.to_owned(), repository: name.to_string(), tag: tag.clone() })
            }
        };
        let stale = match self.cached(reference, tag_key.as_ref()) {
            TagLookup::Fresh(m) => return Ok(m),
            TagLookup::Stale(m) => Some(m),
            TagLookup::Missing => None,
        };
        match self.fetch(registry, name, reference, None).await {
            Ok(fetched) => Ok(self.cache.lock().expect("manifest cache lock").insert(fetched, tag_key, Instant::now())),
            Err(e) => match stale {
                Some(m) if matches!(e, RegistryError::Unavailable(_)) => {
                    tracing::warn!(%registry, repository = %name, %reference, error = %e, "upstream unreachable: serving a stale tag");
                    Ok(m)
                }
                _ => Err(e),
            },
        }
    }

    /// What the cache knows of a manifest reference (digests never go stale).
    fn cached(&self, reference: &ManifestRef, tag: Option<&TagKey>) -> TagLookup {
        let mut cache = self.cache.lock().expect("manifest cache lock");
        match (reference, tag) {
            (ManifestRef::Digest(d), _) => {
                cache.by_digest(d, Instant::now()).map_or(TagLookup::Missing, TagLookup::Fresh)
            }
            (ManifestRef::Tag(_), Some(key)) => cache.tag(key, Instant::now()),
            (ManifestRef::Tag(_), None) => TagLookup::Missing,
        }
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
