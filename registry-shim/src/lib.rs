//! The per-host registry shim: a Distribution v2 pull API whose blobs arrive over the swarm.
//!
//! Pure core: `route` (paths -> typed requests, names and references validated), `media`
//! (Accept negotiation), `manifests` (the manifest cache: digests, tag TTLs, stale answers),
//! `auth` (a client's `Authorization` for its own upstream calls), `origin` (where a blob is
//! asked from, where its bytes came from). Around it, one direction from the edge down: `http`
//! (the axum edge, OCI error envelopes, status codes) -> `resolve` (manifest policy) and `fetch`
//! (blob hits, and misses in one single-flight per blob) -> `pump` (the verifying pump: the last
//! chunk only after SHA-256 matched), `feed` (a miss's bytes from the swarm, then webseeds, then
//! upstream) and `landing` (the store adopting what librqbit wrote) -> `swarm` (the librqbit
//! session), `cache` (the shim's store index and LRU eviction), `private` (blobs fetched with a
//! client's credentials). `pulls` (the newest downloads and their bytes by source) and `ui`
//! (the live page at `/ui`, its JSON at `/v1/pulls`) show what the host did. `stall` (pure) decides
//! when a quiet swarm download falls back to HTTP. `service` binds and
//! serves it. The store, its index and the cache
//! policy are [`shoal_store`]'s, upstream access is [`shoal_upstream`]'s, shared with the seeder,
//! so both verify and evict blobs the same way.

mod auth;
mod cache;
mod error;
mod feed;
mod fetch;
#[cfg(test)]
mod fuzz;
mod http;
mod landing;
mod manifests;
mod media;
mod metrics;
mod origin;
mod private;
mod pulls;
mod pump;
mod resolve;
mod route;
mod service;
mod stall;
mod swarm;
mod ui;

pub use error::RegistryError;
pub use metrics::ShimMetrics;
pub use origin::Source;
pub use service::{BoundShim, ShimConfig, ShimError, DEFAULT_MIRROR_MISS_TIMEOUT, DEFAULT_STALE_TAG_MAX_AGE};
pub use swarm::{
    SeederTrust, SwarmConfig, DEFAULT_PEER_REQUEST_WINDOW, DEFAULT_STALL_TIMEOUT, DEFAULT_TORRENT_TIMEOUT,
    DEFAULT_UNCHOKE_WAIT,
};
