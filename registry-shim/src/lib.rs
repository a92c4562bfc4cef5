//! The per-host registry shim: a Distribution v2 pull API whose blobs arrive over the swarm.
//!
//! Layers: [`route`] (paths -> typed requests, names and references validated), [`media`]
//! (Accept negotiation), [`manifests`] (pure cache: digests, tag TTLs, stale answers), [`auth`]
//! (a client's `Authorization` for its own upstream calls), [`blobs`] (verified cache hits;
//! misses streamed while stored and verified, single-flight), `feed` (a miss's bytes from the
//! swarm, then webseeds, then upstream), [`cache`]
//! (the store's index and LRU eviction), [`private`] (blobs fetched with a client's credentials),
//! `http` (the axum edge and OCI error envelopes) and [`service`] (config and binding). Upstream
//! access, the content-addressed store and the cache policy are the seeder's
//! ([`shoal_seeder::upstream`], [`shoal_seeder::store`], [`shoal_seeder::cache`]), so both verify
//! and evict blobs the same way.

pub mod auth;
pub mod cache;
mod error;
mod feed;
mod fetch;
mod http;
mod landing;
pub mod manifests;
pub mod media;
pub mod metrics;
pub mod origin;
pub mod private;
mod pump;
mod resolve;
pub mod route;
pub mod service;
pub mod swarm;

pub use error::RegistryError;
pub use service::{run, BoundShim, ShimConfig, ShimError};
