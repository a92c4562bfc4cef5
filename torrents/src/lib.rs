//! Shoal's torrent profile: turns a blob into a canonical v1 .torrent, its infohash and magnet.
//!
//! Everything the rest of Shoal agrees on rests here. The core is pure: [`BlobHasher`] is fed
//! bytes, [`BlobTorrent`] turns piece hashes into bencode, [`Magnet`] formats links. The only
//! code that touches threads or readers is [`hash_reader`], which drives the pure core over any
//! `std::io::Read` with SHA-256 and SHA-1 on separate cores.

pub mod bencode;
mod digest;
#[cfg(test)]
mod fuzz;
mod hasher;
mod magnet;
mod metainfo;
mod parallel;
mod profile;
mod rendezvous;
mod ring;

pub use digest::{BlobDigest, InfoHash, ParseDigestError};
pub use hasher::{BlobHasher, HashedBlob};
pub use magnet::Magnet;
pub use metainfo::{BlobTorrent, Distribution, MetainfoError, ParsedTorrent, TRACKER_TIERS};
pub use parallel::{hash_reader, hash_reader_with, HashError, HashProgress};
pub use profile::{PieceLength, PieceLengthError, PROFILE};
pub use rendezvous::{rendezvous_order, rendezvous_rank};
pub use ring::{MemberLiveness, RingError, SeederRing, DEFAULT_REPLICAS};
