//! Shoal's verified blob store, shared by the origin (seeder) and every host's registry shim.
//!
//! Layers, bottom up: [`blob_store`] (content-addressed files, filled only through verified
//! ingest or adopt), [`index`] (redb records of what is stored, under which infohash, and which
//! images and manifests name it), [`usage`] (leases and recency in memory), [`eviction`] (the
//! pure plan), [`cache`] (eviction's I/O and restart repair, [`cache::CachedStore`]),
//! [`space`] (what the default store limit is computed from), and [`seeding`] (a librqbit
//! session seeding read-only from the store, with fast-resume). It depends on neither the
//! seeder nor the shim.

pub mod blob_store;
pub mod cache;
pub mod eviction;
pub mod index;
pub mod seeding;
pub mod space;
pub mod usage;

pub use blob_store::{serve_file, BlobStore, Chunk, StoreError, SERVE_CHUNK};
