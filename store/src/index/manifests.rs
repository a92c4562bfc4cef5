//! Manifests and tags in the index, so a shim serves what it served before a restart while
//! upstream is down: `manifests` (digest hex -> media type, exact bytes, when last confirmed)
//! and `tags` (`registry/repository:tag` -> digest hex, when upstream last confirmed it).
//!
//! Kept apart from the blob records on purpose: a manifest names blobs but does not own them.
//! Evicting a blob leaves the manifests that name it (the blob is fetched again on the next
//! pull); dropping a manifest beyond the cap drops the tags that point at it in the same
//! transaction, so no tag ever names a manifest the index does not hold.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use shoal_torrents::BlobDigest;

use super::{BlobIndex, IndexError};

/// (media type, bytes, confirmed at, in milliseconds since the Unix epoch).
const MANIFESTS: TableDefinition<&str, (&str, &[u8], u64)> = TableDefinition::new("manifests");
/// (digest hex, confirmed at, in milliseconds since the Unix epoch).
const TAGS: TableDefinition<&str, (&str, u64)> = TableDefinition::new("tags");

/// A manifest as the index holds it: the bytes its digest is over, and its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredManifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub confirmed_ms: u64,
}

/// What a tag pointed at when upstream last answered for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfirmedTag {
    pub digest: BlobDigest,
    pub confirmed_ms: u64,
}

/// A tag's key: `registry/repository:tag` (a repository has no `:`, so it is unambiguous).
pub fn tag_key(registry: &str, repository: &str, tag: &str) -> String {
    format!("{registry}/{repository}:{tag}")
}

pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), IndexError> {
    tx.open_table(MANIFESTS)?;
    tx.open_table(TAGS)?;
    Ok(())
}

impl BlobIndex {
    /// Records a manifest fetched from upstream (and the tag it was asked by, if any) as
    /// confirmed at `now_ms`. Beyond `max_manifests`, the least recently confirmed go, with
    /// their tags. One transaction.
    pub fn put_manifest(
        &self,
        digest: &BlobDigest,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
        now_ms: u64,
        max_manifests: usize,
    ) -> Result<(), IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_write()?;
        {
            let mut manifests = tx.open_table(MANIFESTS)?;
            manifests.insert(key.as_str(), (media_type, bytes, now_ms))?;
            let mut tags = tx.open_table(TAGS)?;
            if let Some(tag) = tag {
                tags.insert(tag, (key.as_str(), now_ms))?;
            }
            let excess = (manifests.len()? as usize).saturating_sub(max_manifests.max(1));
            if excess > 0 {
                let mut by_age: Vec<(u64, String)> = Vec::new();
                for entry in manifests.iter()? {
                    let (k, v) = entry?;
                    by_age.push((v.value().2, k.value().to_owned()));
                }
                by_age.sort();
                let dropped: Vec<String> = by_age.into_iter().take(excess).map(|(_, k)| k).collect();
                for k in &dropped {
                    manifests.remove(k.as_str())?;
                }
                tags.retain(|_, (d, _)| !dropped.iter().any(|k| k == d))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A manifest by digest, as recorded (the caller checks its bytes against the digest).
    pub fn manifest(&self, digest: &BlobDigest) -> Result<Option<StoredManifest>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MANIFESTS)?;
        let value = table.get(digest.hex().as_str())?;
        Ok(value.map(|v| {
            let (media_type, bytes, confirmed_ms) = v.value();
            StoredManifest { media_type: media_type.to_owned(), bytes: bytes.to_owned(), confirmed_ms }
        }))
    }

    /// What `tag` (see [`tag_key`]) last pointed at.
    pub fn tag(&self, tag: &str) -> Result<Option<ConfirmedTag>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TAGS)?;
        let Some(value) = table.get(tag)? else { return Ok(None) };
        let (hex, confirmed_ms) = value.value();
        let digest = format!("sha256:{hex}").parse().map_err(|e: shoal_torrents::ParseDigestError| {
            IndexError::Corrupt { key: tag.to_owned(), message: e.to_string() }
        })?;
        Ok(Some(ConfirmedTag { digest, confirmed_ms }))
    }

    /// Forgets a manifest whose bytes no longer match its digest, and the tags naming it.
    pub fn remove_manifest(&self, digest: &BlobDigest) -> Result<(), IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_write()?;
        {
            tx.open_table(MANIFESTS)?.remove(key.as_str())?;
            tx.open_table(TAGS)?.retain(|_, (d, _)| d != key)?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> BlobDigest {
        BlobDigest::from_bytes([n; 32])
    }

    #[test]
    fn manifests_and_tags_survive_reopening_and_the_cap_drops_the_oldest_with_their_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        {
            let index = BlobIndex::open(&path).unwrap();
            index.put_manifest(&digest(1), "m1", b"one", Some(&tag_key("r", "a", "v1")), 10, 2).unwrap();
            index.put_manifest(&digest(2), "m2", b"two", Some(&tag_key("r", "a", "v2")), 20, 2).unwrap();
        }
        let index = BlobIndex::open(&path).unwrap();
        let one = index.manifest(&digest(1)).unwrap().unwrap();
        assert_eq!((one.media_type.as_str(), one.bytes.as_slice(), one.confirmed_ms), ("m1", &b"one"[..], 10));
        assert_eq!(
            index.tag(&tag_key("r", "a", "v1")).unwrap(),
            Some(ConfirmedTag { digest: digest(1), confirmed_ms: 10 })
        );
        assert_eq!(index.tag(&tag_key("r", "a", "v3")).unwrap(), None);

        // Re-confirming v1 makes 2 the oldest; a third manifest pushes it (and v2) out.
        index.put_manifest(&digest(1), "m1", b"one", Some(&tag_key("r", "a", "v1")), 30, 2).unwrap();
        index.put_manifest(&digest(3), "m3", b"three", None, 40, 2).unwrap();
        assert!(index.manifest(&digest(2)).unwrap().is_none());
        assert_eq!(index.tag(&tag_key("r", "a", "v2")).unwrap(), None);
        assert_eq!(index.tag(&tag_key("r", "a", "v1")).unwrap().unwrap().confirmed_ms, 30);

        index.remove_manifest(&digest(1)).unwrap();
        assert!(index.manifest(&digest(1)).unwrap().is_none());
        assert_eq!(index.tag(&tag_key("r", "a", "v1")).unwrap(), None);
        assert!(index.manifest(&digest(3)).unwrap().is_some());
    }
}
