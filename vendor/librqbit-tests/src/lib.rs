//! Runs the unit tests of the pure cores of Shoal's librqbit patches in the workspace.
//!
//! `vendor/librqbit` is not a workspace member (its own tests would need its whole dev setup,
//! and upstream's picker tests no longer hold, see `vendor/librqbit/SHOAL-PATCHES.md`), so the
//! pure modules are compiled here once more, against the same type aliases, with their tests.

/// The aliases librqbit's `type_aliases.rs` defines, for the included modules.
mod type_aliases {
    pub type BF = bitvec::boxed::BitBox<u8, bitvec::order::Msb0>;
    pub type PeerHandle = std::net::SocketAddr;
}

#[allow(dead_code)]
#[path = "../../librqbit/src/torrent_state/live/super_seed.rs"]
mod super_seed;

#[allow(dead_code)]
#[path = "../../librqbit/src/torrent_state/live/rate_window.rs"]
mod rate_window;
