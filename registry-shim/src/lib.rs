//! The per-host registry shim: a Distribution v2 pull API whose blobs arrive over the swarm.
//!
//! Layers: [`route`] (paths -> typed requests, names and references validated), [`media`]
//! (Accept negotiation), [`manifests`] (pure cache: digests, tag TTLs, stale answers), [`blobs`]
//! (verified cache hits; misses streamed while stored and verified, single-flight), `http` (the
//! axum edge and OCI error envelopes) and [`service`] (config and binding). Upstream access and
//! the content-addressed store are the seeder's ([`shoal_seeder::upstream`],
//! [`shoal_seeder::store`]), so both verify blobs the same way.
//!
//! Not built yet: blob misses come from the upstream registry, not yet from the swarm (seeder
//! torrent + librqbit + webseed fallback), and blobs are not seeded onward.

pub mod blobs;
mod error;
mod http;
pub mod manifests;
pub mod media;
pub mod metrics;
pub mod route;
pub mod service;
pub mod swarm;

pub use error::RegistryError;
pub use service::{run, BoundShim, ShimConfig, ShimError};
