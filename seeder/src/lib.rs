//! Shoal's origin: mirrors images from a registry, stores and torrents every blob, seeds it.
//!
//! The store, its index, the cache policy and the read-only seeding session are
//! [`shoal_store`]'s; registries are reached through [`shoal_upstream`]. This crate is the
//! origin itself: [`allow`] (which upstream repositories may be mirrored), [`mirror`] (image ->
//! manifests -> blobs, single-flight per blob), [`jobs`]
//! (every image to mirror as a job in the index: retried with backoff, resumed after a
//! restart, listed at `/v1/jobs`), `requests`
//! (mirror jobs from the API and the notification endpoint), `api` (axum: torrents, magnets,
//! webseeds, metrics), `ui` (the live page at `/ui` and its JSON, `/v1/swarms`), `scrape` (the
//! tracker's counts for the page), `ring` (this seeder among the seeders' ring: what it owns,
//! forwarding to the owners of what it does not), [`metrics`] and [`service`], which wires
//! them together for `shoal seeder`.

pub mod allow;
mod api;
#[cfg(test)]
mod fuzz;
pub mod jobs;
pub mod metrics;
pub mod mirror;
mod requests;
mod ring;
mod scrape;
pub mod service;
mod ui;

pub use allow::MirrorAllowList;
pub use jobs::RetryPolicy;
pub use service::{bind, BoundSeeder, SeederConfig, SeederError};
