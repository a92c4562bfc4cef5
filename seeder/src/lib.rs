//! The origin (not built yet): mirrors images from a registry, torrents and seeds every blob.
//!
//! Reserved by the workspace layout; the seeder issue fills it in. Nothing here is used yet.
