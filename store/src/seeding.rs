//! Seeding: one librqbit session that seeds every stored blob straight from the store.
//!
//! librqbit opens the files it seeds read-write and calls `set_len` on them. A hard link or
//! the store file itself handed to its filesystem storage would let a bug, a stale bitfield or
//! a peer's bad piece write into a verified blob (a hard link shares the inode, so it protects
//! nothing). Instead the session gets [`StoreStorageFactory`]: a storage that maps the torrent's
//! single file `sha256-<hex>` to `DATA/blobs/sha256/<hex>`, opens it read-only, refuses every
//! write and never resizes or deletes it. The blob's torrent is our own bytes
//! ([`BlobTorrent::torrent_bytes`]), never librqbit's `create_torrent`.
//!
//! No second hashing: the store hashed every piece on the way in, so before adding a blob we
//! write librqbit's fast-resume bitfield (`<infohash>.bitv`, all pieces present) into its
//! persistence folder. librqbit then spot-checks a few pieces instead of re-hashing the blob,
//! and a restart restores every torrent from its own session file without re-hashing either.
//! (This relies on librqbit 9.1's JSON persistence layout: a raw MSB-first bitfield file named
//! by the lowercase hex infohash.)
//!
//! Eviction takes a blob out of the session first ([`Seeding::unseed`]: librqbit's `delete`
//! without deleting files, which also drops it from librqbit's persistence and its `.bitv`), so
//! librqbit never holds a torrent whose file is gone. [`Seeding::uploaded_by_torrent`] lets the
//! cache count uploads to peers as uses of a blob (reads in the storage would not do: librqbit
//! spot-checks pieces of every torrent at start, which is no use).

use std::any::TypeId;
use std::collections::HashSet;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use librqbit::api::TorrentIdOrHash;
use librqbit::dht::Id20;
use librqbit::storage::filesystem::FilesystemStorageFactory;
use librqbit::storage::{BoxStorageFactory, StorageFactory, StorageFactoryExt, TorrentStorage};
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, ListenerMode, ListenerOptions, ManagedTorrentShared, Session,
    SessionOptions, SessionPersistenceConfig, TorrentMetadata,
};
use shoal_torrents::{BlobDigest, BlobTorrent, Distribution, HashedBlob, InfoHash};

/// Why the BitTorrent side failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedingError {
    #[error("starting the BitTorrent session: {0}")]
    Start(String),
    #[error("seeding blob {digest}: {message}")]
    Add { digest: BlobDigest, message: String },
    #[error("removing blob {digest} from the BitTorrent session: {message}")]
    Remove { digest: BlobDigest, message: String },
    #[error("writing the fast-resume bitfield {path}: {error}")]
    Bitfield { path: PathBuf, error: std::io::Error },
}

/// One torrent of the session, sampled (for the live pages).
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentSample {
    pub info_hash: InfoHash,
    /// librqbit's state: `initializing`, `live`, `paused` or `error`.
    pub state: String,
    /// Peers connected now.
    pub peers_live: u32,
    /// Distinct peers this torrent has seen since it was added.
    pub peers_seen: u32,
    /// Bytes uploaded to peers since the torrent was added to the session.
    pub uploaded_bytes: u64,
    /// librqbit's current upload-speed estimate.
    pub upload_bytes_per_s: u64,
    /// The peers connected now, most uploaded-to first.
    pub peers: Vec<PeerSample>,
}

/// One connected peer of a torrent.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PeerSample {
    /// `ip:port` as connected.
    pub addr: String,
    /// What the peer's handshake calls its client, when it says.
    pub client: Option<String>,
    /// Bytes this session sent the peer.
    pub uploaded_bytes: u64,
    /// Bytes this session got from the peer.
    pub downloaded_bytes: u64,
}

/// How the session talks to peers and trackers.
#[derive(Clone, Debug)]
pub struct SeedingConfig {
    /// Where peers connect (TCP).
    pub listen: SocketAddr,
    /// The port announced to trackers; defaults to the listen port.
    pub announce_port: Option<u16>,
    /// Trackers written into every torrent.
    pub trackers: Vec<String>,
    pub dht: bool,
    pub local_service_discovery: bool,
    /// Download only, upload nothing (tests of a swarm without its origin; a leech-only host).
    pub disable_upload: bool,
    /// Super-seed complete torrents (BEP 16, see `librqbit::SessionOptions::super_seed`): for
    /// an origin many hosts download from at once; a host that seeds onward leaves it off.
    pub super_seed: bool,
    /// Most bytes per second sent to peers over all torrents (`--max-upload-rate`); `None`:
    /// no cap. librqbit's session-wide token bucket, taken per 16 KiB chunk.
    pub max_upload_rate: Option<std::num::NonZeroU32>,
    /// Most bytes per second requested from peers over all torrents (`--max-download-rate`).
    pub max_download_rate: Option<std::num::NonZeroU32>,
}

impl SeedingConfig {
    /// A session listening on `listen` that announces to `trackers` only: no DHT, no local
    /// discovery, uploads on, no super-seeding (what tests, benches and a plain host start from).
    pub fn tracker_only(listen: SocketAddr, trackers: Vec<String>) -> Self {
        Self {
            listen,
            announce_port: None,
            trackers,
            dht: false,
            local_service_discovery: false,
            disable_upload: false,
            super_seed: false,
            max_upload_rate: None,
            max_download_rate: None,
        }
    }
}

/// The librqbit session seeding the store.
pub struct Seeding {
    session: Arc<Session>,
    blobs_dir: PathBuf,
    state_dir: PathBuf,
    trackers: Vec<String>,
    /// Ids for new torrents. librqbit 9.1's JSON persistence derives a new id from the ids it
    /// has stored, and stores a torrent only once its add completes, so two concurrent adds got
    /// the same id and the second replaced the first ("bug: torrent is in empty state").
    next_id: std::sync::atomic::AtomicUsize,
}

impl Seeding {
    /// Starts the session; torrents seeded before a restart come back from its own
    /// persistence (fast-resume), without re-hashing.
    pub async fn start(blobs_dir: &Path, state_dir: &Path, config: &SeedingConfig) -> Result<Self, SeedingError> {
        let start_error = |e: &dyn std::fmt::Display| SeedingError::Start(e.to_string());
        std::fs::create_dir_all(state_dir).map_err(|e| start_error(&e))?;
        match librqbit::try_increase_nofile_limit() {
            Ok(limit) => tracing::debug!(limit, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
        }
        let announce_port = config.announce_port.unwrap_or(config.listen.port());
        let options = SessionOptions {
            dht: if config.dht { Some(Default::default()) } else { None },
            disable_local_service_discovery: !config.local_service_discovery,
            fastresume: true,
            persistence: Some(SessionPersistenceConfig::Json { folder: Some(state_dir.to_owned()) }),
            listen: Some(ListenerOptions {
                mode: ListenerMode::TcpOnly,
                listen_addr: config.listen,
                announce_port: Some(announce_port),
                ipv4_only: config.listen.is_ipv4(),
                ..Default::default()
            }),
            default_storage_factory: Some(StoreStorageFactory { blobs_dir: blobs_dir.to_owned() }.boxed()),
            trackers: HashSet::new(),
            ipv4_only: config.listen.is_ipv4(),
            disable_upload: config.disable_upload,
            super_seed: config.super_seed,
            ratelimits: librqbit::limits::LimitsConfig {
                upload_bps: config.max_upload_rate,
                download_bps: config.max_download_rate,
            },
            ..Default::default()
        };
        let session = Session::new_with_opts(state_dir.join("unused-output"), options)
            .await
            .map_err(|e| SeedingError::Start(format!("{e:#}")))?;
        let next_id = session.with_torrents(|torrents| torrents.map(|(id, _)| id + 1).max().unwrap_or(0));
        Ok(Self {
            session,
            blobs_dir: blobs_dir.to_owned(),
            state_dir: state_dir.to_owned(),
            trackers: config.trackers.clone(),
            next_id: next_id.into(),
        })
    }

    /// A torrent id no other add of this session gets; pass it as `preferred_id`.
    pub fn next_torrent_id(&self) -> usize {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Seeds a stored blob (a no-op if it already is); true when the session took it on now.
    /// The caller logs it: the seeder and a shim in one `shoal up` share this code, and a line
    /// that does not say which read as one blob seeded twice.
    pub async fn seed(&self, blob: &HashedBlob) -> Result<bool, SeedingError> {
        self.seed_as(blob, None).await
    }

    /// [`Seeding::seed`], super-seeding or not whatever the session does (`None`: as the
    /// session): one seeder of a ring super-seeds a blob, its replicas show every piece.
    pub async fn seed_as(&self, blob: &HashedBlob, super_seed: Option<bool>) -> Result<bool, SeedingError> {
        let torrent = BlobTorrent::from_hashed(blob);
        let info_hash = torrent.info_hash();
        self.write_complete_bitfield(&info_hash.hex(), blob.pieces.len())?;
        let bytes = torrent.torrent_bytes(&Distribution { trackers: self.trackers.clone(), webseeds: Vec::new() });
        let options = AddTorrentOptions {
            overwrite: true,
            output_folder: Some(self.blobs_dir.to_string_lossy().into_owned()),
            preferred_id: Some(self.next_torrent_id()),
            super_seed,
            ..Default::default()
        };
        let response = self
            .session
            .add_torrent(AddTorrent::from_bytes(bytes), Some(options))
            .await
            .map_err(|e| SeedingError::Add { digest: blob.digest, message: format!("{e:#}") })?;
        match response {
            AddTorrentResponse::Added(id, _) => {
                tracing::debug!(digest = %blob.digest, %info_hash, id, "added to the BitTorrent session");
                Ok(true)
            }
            AddTorrentResponse::AlreadyManaged(..) => Ok(false),
            AddTorrentResponse::ListOnly(_) => Ok(false),
        }
    }

    /// Stops seeding a blob and forgets it in librqbit's persistence (its `.bitv` included);
    /// never touches the blob's file. A blob the session does not hold is fine.
    pub async fn unseed(&self, digest: &BlobDigest, info_hash: &InfoHash) -> Result<(), SeedingError> {
        let id = TorrentIdOrHash::Hash(Id20::new(*info_hash.as_bytes()));
        if self.session.get(id).is_some() {
            self.session
                .delete(id, false)
                .await
                .map_err(|e| SeedingError::Remove { digest: *digest, message: format!("{e:#}") })?;
            tracing::debug!(%digest, %info_hash, "stopped seeding");
        }
        // Ours, if librqbit never took the torrent over (or a crash came in between).
        let bitv = self.state_dir.join(format!("{}.bitv", info_hash.hex()));
        match std::fs::remove_file(&bitv) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SeedingError::Bitfield { path: bitv, error: e }),
            _ => Ok(()),
        }
    }

    /// The librqbit session, for a shim that also downloads through it.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Bytes uploaded to peers since the session started.
    pub fn uploaded_bytes(&self) -> u64 {
        self.session.stats_snapshot().counters.uploaded_bytes
    }

    /// Bytes uploaded to peers per torrent since it was added to this session.
    pub fn uploaded_by_torrent(&self) -> Vec<(InfoHash, u64)> {
        self.session.with_torrents(|torrents| {
            torrents.map(|(_, t)| (InfoHash::from_bytes(t.info_hash().0), t.stats().uploaded_bytes)).collect()
        })
    }

    /// Every torrent of the session, with its live peers, sampled from librqbit's stats.
    pub fn torrent_samples(&self) -> Vec<TorrentSample> {
        self.session.with_torrents(|torrents| {
            torrents
                .map(|(_, t)| {
                    let stats = t.stats();
                    let peers = stats.live.as_ref().map(|l| &l.snapshot.peer_stats);
                    let peer_list = t.live().map_or_else(Vec::new, |live| {
                        // The default filter: peers connected now.
                        let mut list: Vec<PeerSample> = live
                            .per_peer_stats_snapshot(Default::default())
                            .peers
                            .into_iter()
                            .map(|(addr, p)| PeerSample {
                                addr,
                                client: p.client_name,
                                uploaded_bytes: p.counters.uploaded_bytes,
                                downloaded_bytes: p.counters.fetched_bytes,
                            })
                            .collect();
                        list.sort_by(|a, b| b.uploaded_bytes.cmp(&a.uploaded_bytes).then_with(|| a.addr.cmp(&b.addr)));
                        list
                    });
                    TorrentSample {
                        info_hash: InfoHash::from_bytes(t.info_hash().0),
                        state: stats.state.to_string(),
                        peers_live: peers.map_or(0, |p| p.live),
                        peers_seen: peers.map_or(0, |p| p.seen),
                        uploaded_bytes: stats.uploaded_bytes,
                        upload_bytes_per_s: stats.live.as_ref().map_or(0, |l| l.upload_speed.as_bytes()),
                        peers: peer_list,
                    }
                })
                .collect()
        })
    }

    /// How many torrents have finished initialising and serve peers.
    pub fn live_torrents(&self) -> usize {
        self.session.with_torrents(|torrents| torrents.filter(|(_, t)| t.live().is_some()).count())
    }

    /// How many torrents the session holds.
    pub fn torrent_count(&self) -> usize {
        self.session.with_torrents(|torrents| torrents.count())
    }

    pub async fn stop(&self) {
        self.session.stop().await;
    }

    /// The fast-resume bitfield saying every piece is present, unless librqbit already has one.
    fn write_complete_bitfield(&self, info_hash_hex: &str, pieces: usize) -> Result<(), SeedingError> {
        let path = self.state_dir.join(format!("{info_hash_hex}.bitv"));
        if path.exists() {
            return Ok(());
        }
        let tmp = self.state_dir.join(format!("{info_hash_hex}.bitv.tmp"));
        std::fs::write(&tmp, complete_bitfield(pieces))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|error| SeedingError::Bitfield { path, error })
    }
}

/// A bitfield of `pieces` set bits, most significant bit first, spare bits clear.
fn complete_bitfield(pieces: usize) -> Vec<u8> {
    let mut bits = vec![0xffu8; pieces.div_ceil(8)];
    if !pieces.is_multiple_of(8) {
        *bits.last_mut().expect("at least one byte") = 0xffu8 << (8 - pieces % 8);
    }
    bits
}

/// Hands librqbit the store's files, read-only.
#[derive(Clone)]
pub struct StoreStorageFactory {
    blobs_dir: PathBuf,
}

impl StorageFactory for StoreStorageFactory {
    type Storage = StoreStorage;

    fn create(&self, _shared: &ManagedTorrentShared, metadata: &TorrentMetadata) -> anyhow::Result<StoreStorage> {
        let mut paths = Vec::new();
        for file in metadata.file_infos.iter() {
            let name = file.relative_filename.to_str().unwrap_or_default();
            let digest = BlobDigest::from_torrent_name(name)
                .map_err(|e| anyhow::anyhow!("{name:?} is not a blob torrent's file name: {e}"))?;
            paths.push(self.blobs_dir.join(digest.hex()));
        }
        Ok(StoreStorage { paths, files: Vec::new() })
    }

    /// librqbit 9.1's JSON persistence refuses to record torrents whose storage is not its
    /// filesystem one; ours is a filesystem storage too (same files, same paths on restore,
    /// which always goes through this factory as the session default), so it answers yes.
    fn is_type_id(&self, type_id: TypeId) -> bool {
        type_id == TypeId::of::<Self>() || type_id == TypeId::of::<FilesystemStorageFactory>()
    }

    fn clone_box(&self) -> BoxStorageFactory {
        self.clone().boxed()
    }
}

/// One blob's file, opened read-only.
pub struct StoreStorage {
    paths: Vec<PathBuf>,
    files: Vec<Arc<File>>,
}

impl StoreStorage {
    fn file(&self, file_id: usize) -> anyhow::Result<&File> {
        self.files
            .get(file_id)
            .map(|f| &**f)
            .ok_or_else(|| anyhow::anyhow!("no file {file_id} (storage not initialised)"))
    }
}

impl TorrentStorage for StoreStorage {
    fn init(&mut self, _shared: &ManagedTorrentShared, _metadata: &TorrentMetadata) -> anyhow::Result<()> {
        self.files = self
            .paths
            .iter()
            .map(|p| File::open(p).map(Arc::new).map_err(|e| anyhow::anyhow!("opening {}: {e}", p.display())))
            .collect::<anyhow::Result<_>>()?;
        Ok(())
    }

    fn pread_exact(&self, file_id: usize, offset: u64, buf: &mut [u8]) -> anyhow::Result<()> {
        Ok(self.file(file_id)?.read_exact_at(buf, offset)?)
    }

    fn pwrite_all(&self, file_id: usize, offset: u64, buf: &[u8]) -> anyhow::Result<()> {
        anyhow::bail!(
            "refusing to write {} bytes at {offset} into the stored blob {:?}: the store is read-only to BitTorrent",
            buf.len(),
            self.paths.get(file_id)
        )
    }

    fn remove_file(&self, _file_id: usize, _filename: &Path) -> anyhow::Result<()> {
        // Eviction removes blobs through the store, never through librqbit.
        Ok(())
    }

    fn remove_directory_if_empty(&self, _path: &Path) -> anyhow::Result<()> {
        Ok(())
    }

    fn ensure_file_length(&self, file_id: usize, length: u64) -> anyhow::Result<()> {
        let actual = self.file(file_id)?.metadata()?.len();
        anyhow::ensure!(actual == length, "stored blob is {actual} bytes, the torrent says {length}; not resizing it");
        Ok(())
    }

    fn take(&self) -> anyhow::Result<Box<dyn TorrentStorage>> {
        Ok(Box::new(StoreStorage { paths: self.paths.clone(), files: self.files.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_bitfields_set_exactly_the_pieces() {
        assert_eq!(complete_bitfield(0), Vec::<u8>::new());
        assert_eq!(complete_bitfield(1), vec![0x80]);
        assert_eq!(complete_bitfield(8), vec![0xff]);
        assert_eq!(complete_bitfield(11), vec![0xff, 0xe0]);
    }
}
