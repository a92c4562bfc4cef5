//! The per-host registry shim (not built yet): Distribution v2 pull API over the swarm.
//!
//! Reserved by the workspace layout; the shim issue fills it in. Nothing here is used yet.
