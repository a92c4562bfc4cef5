//! Shoal's origin: mirrors images from a registry, stores and torrents every blob, seeds it.
//!
//! Layers, bottom up: [`store`] (verified, content-addressed files), [`index`] (redb records of
//! what is stored and under which infohash), [`upstream`] (registries through oci-client),
//! [`mirror`] (image -> manifests -> blobs, single-flight per blob), [`seeding`] (one librqbit
//! session over the store, read-only), [`api`] (axum: torrents, magnets, webseeds, metrics),
//! [`ui`] (the live page at `/ui` and its JSON, `/v1/swarms`),
//! the cache policy ([`eviction`] decides, [`usage`] tracks leases and recency, [`cache`]
//! evicts), and [`service`], which wires them together for `shoal seeder`.

pub mod api;
pub mod cache;
pub mod eviction;
pub mod index;
pub mod metrics;
pub mod mirror;
pub mod requests;
pub mod seeding;
pub mod service;
pub mod store;
pub mod ui;
pub mod upstream;
pub mod usage;

pub use service::{run, SeederConfig, SeederError};
