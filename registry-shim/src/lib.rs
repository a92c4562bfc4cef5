//! The per-host registry shim: a Distribution v2 pull API whose blobs arrive over the swarm.
//!
//! Built so far: the pure protocol core — request routes and name/reference validation
//! ([`route`]), the OCI error codes ([`RegistryError`]), manifest media types and Accept
//! negotiation ([`media`]), and the manifest cache with tag TTLs and stale answers
//! ([`manifests`]). The HTTP edge, the blob cache and the swarm download come next; they reuse
//! the seeder's upstream client and store.

mod error;
pub mod manifests;
pub mod media;
pub mod route;

pub use error::RegistryError;
