//! Shoal's BitTorrent tracker (being built by the tracker issue).
