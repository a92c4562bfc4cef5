//! The store's side of a swarm download that is already on disk: the SHA-256 of the streamed
//! chunks is checked, and on a match the store adopts the file the feed hands over, with the
//! seeder's piece table when every byte came through librqbit, else with one hashed from disk.

use bytes::Bytes;
use shoal_store::blob_store::{BlobStore, StoreError};
use shoal_torrents::{hash_reader, BlobDigest, BlobTorrent, HashedBlob, InfoHash, PieceLength};
use tokio::sync::oneshot;

use crate::feed::LandedFile;

/// The piece table of the torrent a swarm download used.
pub(crate) struct TorrentTable {
    pub(crate) piece_length: u64,
    pub(crate) pieces: Vec<[u8; 20]>,
    pub(crate) info_hash: InfoHash,
}

/// Hashes the streamed `chunks`; when they match `digest`, calls `on_verified` and adopts the
/// landed file. Blocking.
pub(crate) fn adopt_landed(
    store: &BlobStore,
    digest: BlobDigest,
    size: u64,
    chunks: impl Iterator<Item = Result<Bytes, String>>,
    file: oneshot::Receiver<LandedFile>,
    table: TorrentTable,
    on_verified: impl FnOnce(),
) -> Result<HashedBlob, StoreError> {
    use sha2::{Digest, Sha256};
    let mut sha256 = Sha256::new();
    let mut seen = 0u64;
    for chunk in chunks {
        let chunk = chunk.map_err(|message| StoreError::Source { digest, message })?;
        seen += chunk.len() as u64;
        if seen > size {
            return Err(StoreError::WrongSize { digest, expected: size, actual: seen });
        }
        sha256.update(&chunk);
    }
    if seen != size {
        return Err(StoreError::WrongSize { digest, expected: size, actual: seen });
    }
    let actual = BlobDigest::from_bytes(sha256.finalize().into());
    if actual != digest {
        return Err(StoreError::DigestMismatch { expected: digest, actual });
    }
    on_verified();
    let lost = || StoreError::Source { digest, message: "the download's file was lost".into() };
    let landed = file.blocking_recv().map_err(|_| lost())?;
    let path = landed.file.path().to_owned();
    let from_swarm = if landed.all_from_swarm { swarm_table(digest, size, table) } else { None };
    let hashed = match from_swarm {
        Some(hashed) => hashed,
        None => {
            // Bytes from HTTP were never checked against the torrent's SHA-1s: take the piece
            // table (and, once more, the SHA-256) from what is on disk.
            let reader = std::fs::File::open(&path).map_err(|error| StoreError::Io { path: path.clone(), error })?;
            let hashed = hash_reader(reader, size, &mut |_| {}).map_err(|error| StoreError::Size { digest, error })?;
            if hashed.digest != digest {
                return Err(StoreError::DigestMismatch { expected: digest, actual: hashed.digest });
            }
            hashed
        }
    };
    store.adopt(&path, digest, size)?;
    landed.file.keep();
    Ok(hashed)
}

/// The blob as the torrent describes it, if the torrent is the profile's torrent of these
/// pieces (the same infohash): then the seeder's piece table can be seeded as it is.
fn swarm_table(digest: BlobDigest, size: u64, table: TorrentTable) -> Option<HashedBlob> {
    let piece_length = PieceLength::new(table.piece_length).ok()?;
    let blob = HashedBlob { digest, size, piece_length, pieces: table.pieces };
    (BlobTorrent::from_hashed(&blob).info_hash() == table.info_hash).then_some(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_piece_table_is_not_taken_as_ours() {
        let data = vec![7u8; 100_000];
        let hashed = hash_reader(&data[..], data.len() as u64, &mut |_| {}).unwrap();
        let info_hash = BlobTorrent::from_hashed(&hashed).info_hash();
        let table = |info_hash| TorrentTable {
            piece_length: u64::from(hashed.piece_length.bytes()),
            pieces: hashed.pieces.clone(),
            info_hash,
        };
        assert_eq!(swarm_table(hashed.digest, hashed.size, table(info_hash)), Some(hashed.clone()));
        let other = InfoHash::from_bytes([1; 20]);
        assert_eq!(swarm_table(hashed.digest, hashed.size, table(other)), None);
    }
}
