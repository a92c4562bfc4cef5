//! The seeder's redb index: what is stored, under which infohash, and which images name it.
//!
//! Tables: `blobs` (digest hex -> [`BlobRecord`] as JSON), `pieces` (digest hex -> the SHA-1
//! pieces, 20 bytes each, so a .torrent is rebuilt without reading the blob), `infohashes`
//! (infohash hex -> digest hex), `images` (image reference -> [`ImageRecord`] as JSON),
//! `mirror_jobs` ([`jobs`]) and
//! `evicted` (digest hex -> the repositories of a blob no longer stored, as JSON, so it can be
//! fetched again without being told where from); and the shim's `manifests` and `tags`
//! ([`manifests`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use shoal_torrents::{BlobDigest, BlobTorrent, HashedBlob, InfoHash, PieceLength};

use crate::usage::now_ms;

mod jobs;
mod manifests;

pub use jobs::MirrorJob;
pub use manifests::{tag_key, ConfirmedTag, StoredManifest};

const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
const PIECES: TableDefinition<&str, &[u8]> = TableDefinition::new("pieces");
const INFOHASHES: TableDefinition<&str, &str> = TableDefinition::new("infohashes");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const EVICTED: TableDefinition<&str, &[u8]> = TableDefinition::new("evicted");

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index database: {0}")]
    Db(redb::Error),
    #[error("index record for {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
}

// By hand, not `#[from]`: the variant formats the redb error, so it must not also chain it.
impl From<redb::Error> for IndexError {
    fn from(e: redb::Error) -> Self {
        IndexError::Db(e)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for IndexError {
            fn from(e: $t) -> Self {
                IndexError::Db(e.into())
            }
        }
    )*};
}
from_redb!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// What the index knows of one stored blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    pub piece_length: u32,
    pub info_hash: String,
    /// Repositories (`registry/repo`) this blob was seen in, for re-fetching after eviction.
    pub repos: BTreeSet<String>,
    /// Milliseconds since the Unix epoch of the last recorded use. Records written before this
    /// was milliseconds hold seconds under `last_access`: read as milliseconds they fall in
    /// January 1970, i.e. older than any later use, which keeps the least-recently-used order.
    #[serde(alias = "last_access")]
    pub last_access_ms: u64,
}

/// One blob as an image lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBlob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// What one mirrored manifest (a single-platform image manifest) refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub digest: String,
    pub platform: Option<String>,
    pub config: ImageBlob,
    pub layers: Vec<ImageBlob>,
}

/// An image reference as mirrored: its top manifest digest (an index or a manifest), and every
/// image manifest under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<ManifestRecord>,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The redb database under the data directory.
pub struct BlobIndex {
    db: Database,
}

impl BlobIndex {
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        {
            tx.open_table(BLOBS)?;
            tx.open_table(PIECES)?;
            tx.open_table(INFOHASHES)?;
            tx.open_table(IMAGES)?;
            tx.open_table(EVICTED)?;
            manifests::create_tables(&tx)?;
            jobs::create_tables(&tx)?;
        }
        tx.commit()?;
        Ok(Self { db })
    }

    /// Records a freshly stored blob (or one seen again in another repository).
    pub fn put_blob(&self, hashed: &HashedBlob, repo: Option<&str>) -> Result<BlobRecord, IndexError> {
        let key = hashed.digest.hex();
        let info_hash = BlobTorrent::from_hashed(hashed).info_hash().hex();
        let tx = self.db.begin_write()?;
        let record = {
            let mut blobs = tx.open_table(BLOBS)?;
            let mut record = match blobs.get(key.as_str())? {
                Some(v) => decode::<BlobRecord>(&key, v.value())?,
                None => BlobRecord {
                    size: hashed.size,
                    piece_length: hashed.piece_length.bytes(),
                    info_hash: info_hash.clone(),
                    repos: BTreeSet::new(),
                    last_access_ms: 0,
                },
            };
            record.repos.extend(repo.map(str::to_owned));
            record.last_access_ms = now_ms();
            blobs.insert(key.as_str(), encode(&record).as_slice())?;
            let flat: Vec<u8> = hashed.pieces.iter().flatten().copied().collect();
            tx.open_table(PIECES)?.insert(key.as_str(), flat.as_slice())?;
            tx.open_table(INFOHASHES)?.insert(info_hash.as_str(), key.as_str())?;
            tx.open_table(EVICTED)?.remove(key.as_str())?;
            record
        };
        tx.commit()?;
        Ok(record)
    }

    /// Adds a repository to a stored blob's record (no-op if the blob is unknown).
    pub fn touch(&self, digest: &BlobDigest, repo: Option<&str>) -> Result<(), IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_write()?;
        {
            let mut blobs = tx.open_table(BLOBS)?;
            let existing = blobs.get(key.as_str())?.map(|v| decode::<BlobRecord>(&key, v.value()));
            if let Some(record) = existing {
                let mut record = record?;
                record.repos.extend(repo.map(str::to_owned));
                record.last_access_ms = now_ms();
                blobs.insert(key.as_str(), encode(&record).as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn blob(&self, digest: &BlobDigest) -> Result<Option<BlobRecord>, IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_read()?;
        let blobs = tx.open_table(BLOBS)?;
        let value = blobs.get(key.as_str())?;
        value.map(|v| decode(&key, v.value())).transpose()
    }

    /// Everything needed to rebuild the blob's torrent without touching its bytes.
    pub fn hashed(&self, digest: &BlobDigest) -> Result<Option<HashedBlob>, IndexError> {
        let Some(record) = self.blob(digest)? else { return Ok(None) };
        let key = digest.hex();
        let tx = self.db.begin_read()?;
        let pieces = tx.open_table(PIECES)?;
        let Some(flat) = pieces.get(key.as_str())? else { return Ok(None) };
        let flat = flat.value();
        if !flat.len().is_multiple_of(20) {
            return Err(IndexError::Corrupt { key, message: "pieces are not a multiple of 20 bytes".into() });
        }
        let piece_length = PieceLength::new(u64::from(record.piece_length))
            .map_err(|e| IndexError::Corrupt { key: key.clone(), message: e.to_string() })?;
        Ok(Some(HashedBlob {
            digest: *digest,
            size: record.size,
            piece_length,
            pieces: flat.chunks_exact(20).map(|c| c.try_into().expect("20 bytes")).collect(),
        }))
    }

    pub fn digest_of(&self, info_hash: &InfoHash) -> Result<Option<BlobDigest>, IndexError> {
        let key = info_hash.hex();
        let tx = self.db.begin_read()?;
        let table = tx.open_table(INFOHASHES)?;
        let value = table.get(key.as_str())?;
        value
            .map(|v| {
                format!("sha256:{}", v.value()).parse().map_err(|e: shoal_torrents::ParseDigestError| {
                    IndexError::Corrupt { key: key.clone(), message: e.to_string() }
                })
            })
            .transpose()
    }

    /// Every blob record, keyed by digest.
    pub fn blobs(&self) -> Result<Vec<(BlobDigest, BlobRecord)>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(BLOBS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let key = k.value().to_owned();
            let digest = format!("sha256:{key}").parse().map_err(|e: shoal_torrents::ParseDigestError| {
                IndexError::Corrupt { key: key.clone(), message: e.to_string() }
            })?;
            out.push((digest, decode(&key, v.value())?));
        }
        Ok(out)
    }

    /// Forgets a blob (after eviction or when its file vanished), remembering the repositories
    /// it was seen in (see [`Self::evicted_repos`]). One transaction: a crash leaves either
    /// the whole record or none of it.
    pub fn remove_blob(&self, digest: &BlobDigest) -> Result<(), IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_write()?;
        {
            let mut blobs = tx.open_table(BLOBS)?;
            let removed = blobs.remove(key.as_str())?.map(|v| decode::<BlobRecord>(&key, v.value()));
            if let Some(record) = removed {
                let record = record?;
                tx.open_table(INFOHASHES)?.remove(record.info_hash.as_str())?;
                if !record.repos.is_empty() {
                    tx.open_table(EVICTED)?.insert(key.as_str(), encode(&record.repos).as_slice())?;
                }
            }
            tx.open_table(PIECES)?.remove(key.as_str())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The repositories (`registry/repo`) a blob that is no longer stored was seen in.
    pub fn evicted_repos(&self, digest: &BlobDigest) -> Result<Option<BTreeSet<String>>, IndexError> {
        let key = digest.hex();
        let tx = self.db.begin_read()?;
        let table = tx.open_table(EVICTED)?;
        let value = table.get(key.as_str())?;
        value.map(|v| decode(&key, v.value())).transpose()
    }

    /// Writes a batch of uses (digest, milliseconds) in one transaction; a record keeps the
    /// latest time it has seen, and unknown digests are skipped.
    pub fn record_accesses(&self, accesses: &[(BlobDigest, u64)]) -> Result<(), IndexError> {
        if accesses.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut blobs = tx.open_table(BLOBS)?;
            for (digest, at_ms) in accesses {
                let key = digest.hex();
                let existing = blobs.get(key.as_str())?.map(|v| decode::<BlobRecord>(&key, v.value()));
                if let Some(record) = existing {
                    let mut record = record?;
                    if *at_ms > record.last_access_ms {
                        record.last_access_ms = *at_ms;
                        blobs.insert(key.as_str(), encode(&record).as_slice())?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn put_image(&self, image: &ImageRecord) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(IMAGES)?.insert(image.reference.as_str(), encode(image).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    pub fn image(&self, reference: &str) -> Result<Option<ImageRecord>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(IMAGES)?;
        let value = table.get(reference)?;
        value.map(|v| decode(reference, v.value())).transpose()
    }

    /// Every mirrored image reference, by reference.
    pub fn images(&self) -> Result<Vec<ImageRecord>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(IMAGES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push(decode(key.value(), value.value())?);
        }
        Ok(out)
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("index records serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, IndexError> {
    serde_json::from_slice(bytes).map_err(|e| IndexError::Corrupt { key: key.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_torrents::BlobHasher;

    fn hashed(data: &[u8]) -> HashedBlob {
        let mut h = BlobHasher::new(data.len() as u64);
        h.update(data);
        h.finish()
    }

    #[test]
    fn blobs_round_trip_with_their_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let index = BlobIndex::open(&dir.path().join("index.redb")).unwrap();
        let blob = hashed(&vec![7u8; 100_000]);
        let record = index.put_blob(&blob, Some("127.0.0.1:5000/app")).unwrap();
        index.put_blob(&blob, Some("127.0.0.1:5000/other")).unwrap();
        assert_eq!(index.hashed(&blob.digest).unwrap().unwrap(), blob);
        let again = index.blob(&blob.digest).unwrap().unwrap();
        assert_eq!(again.repos.len(), 2);
        let ih: InfoHash = record.info_hash.parse().unwrap();
        assert_eq!(ih, BlobTorrent::from_hashed(&blob).info_hash());
        assert_eq!(index.digest_of(&ih).unwrap(), Some(blob.digest));
        assert_eq!(index.blobs().unwrap().len(), 1);
        index.remove_blob(&blob.digest).unwrap();
        assert!(index.blob(&blob.digest).unwrap().is_none());
        assert!(index.digest_of(&ih).unwrap().is_none());
        assert!(index.hashed(&blob.digest).unwrap().is_none());
        // Where it came from is remembered until it is stored again.
        let repos = index.evicted_repos(&blob.digest).unwrap().unwrap();
        assert_eq!(repos.into_iter().collect::<Vec<_>>(), ["127.0.0.1:5000/app", "127.0.0.1:5000/other"]);
        index.put_blob(&blob, None).unwrap();
        assert!(index.evicted_repos(&blob.digest).unwrap().is_none());
    }

    #[test]
    fn accesses_keep_the_latest_time_and_old_records_read_as_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let index = BlobIndex::open(&dir.path().join("index.redb")).unwrap();
        let blob = hashed(b"accessed");
        let stored_at = index.put_blob(&blob, None).unwrap().last_access_ms;
        assert!(stored_at > 1_600_000_000_000, "milliseconds: {stored_at}");
        let later = stored_at + 5_000;
        let unknown = hashed(b"never stored").digest;
        index.record_accesses(&[(blob.digest, later), (unknown, later)]).unwrap();
        index.record_accesses(&[(blob.digest, stored_at)]).unwrap();
        assert_eq!(index.blob(&blob.digest).unwrap().unwrap().last_access_ms, later);
        assert!(index.blob(&unknown).unwrap().is_none());
        // A record from before milliseconds (seconds under `last_access`).
        let old: BlobRecord = serde_json::from_str(
            r#"{"size":1,"piece_length":32768,"info_hash":"00","repos":[],"last_access":1700000000}"#,
        )
        .unwrap();
        assert_eq!(old.last_access_ms, 1_700_000_000);
        assert!(old.last_access_ms < stored_at);
    }

    #[test]
    fn images_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let blob = ImageBlob { digest: "sha256:00".into(), size: 1, media_type: "x".into() };
        let image = ImageRecord {
            reference: "r/app:1".into(),
            digest: "sha256:11".into(),
            media_type: "m".into(),
            manifests: vec![ManifestRecord {
                digest: "sha256:11".into(),
                platform: None,
                config: blob.clone(),
                layers: vec![blob],
            }],
        };
        let index = BlobIndex::open(&path).unwrap();
        index.put_image(&image).unwrap();
        drop(index);
        let index = BlobIndex::open(&path).unwrap();
        assert_eq!(index.image("r/app:1").unwrap(), Some(image.clone()));
        assert_eq!(index.images().unwrap(), vec![image]);
    }
}
