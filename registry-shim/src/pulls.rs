//! What this host pulled lately, for the live page: one record per blob download (a cache miss
//! this shim led), with the bytes each source delivered, kept for the newest [`KEPT`].
//!
//! A [`Pull`] is shared by the download's tasks: the feed counts bytes into it as they arrive
//! (atomics, no lock on the byte path) and the download's end sets its outcome once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use shoal_torrents::BlobDigest;

use crate::origin::Source;

/// Downloads the page lists, newest first.
const KEPT: usize = 100;

/// One blob download in progress or done.
#[derive(Debug)]
pub(crate) struct Pull {
    digest: BlobDigest,
    repository: String,
    started_at_ms: u64,
    size: AtomicU64,
    /// Indexed like [`source_index`].
    bytes: [AtomicU64; 3],
    ended: Mutex<Option<Ended>>,
}

#[derive(Clone, Debug)]
struct Ended {
    at_ms: u64,
    error: Option<String>,
}

fn source_index(source: Source) -> usize {
    match source {
        Source::Peers => 0,
        Source::Webseed => 1,
        Source::Upstream => 2,
    }
}

impl Pull {
    pub(crate) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// `n` more bytes from `source`.
    pub(crate) fn count(&self, source: Source, n: u64) {
        self.bytes[source_index(source)].fetch_add(n, Ordering::Relaxed);
    }

    /// The download's outcome (the first one set stays).
    pub(crate) fn end(&self, at_ms: u64, error: Option<String>) {
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.get_or_insert(Ended { at_ms, error });
    }

    fn record(&self) -> PullRecord {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let bytes = |s: Source| self.bytes[source_index(s)].load(Ordering::Relaxed);
        PullRecord {
            digest: self.digest.to_string(),
            repository: self.repository.clone(),
            size: self.size.load(Ordering::Relaxed),
            started_at_ms: self.started_at_ms,
            ended_at_ms: ended.as_ref().map(|e| e.at_ms),
            state: match &ended {
                None => PullState::Pulling,
                Some(Ended { error: None, .. }) => PullState::Done,
                Some(Ended { error: Some(_), .. }) => PullState::Failed,
            },
            error: ended.and_then(|e| e.error),
            from_peers: bytes(Source::Peers),
            from_webseed: bytes(Source::Webseed),
            from_upstream: bytes(Source::Upstream),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PullState {
    Pulling,
    Done,
    Failed,
}

/// One download as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PullRecord {
    pub digest: String,
    /// `registry/repository` it was pulled for.
    pub repository: String,
    pub size: u64,
    pub started_at_ms: u64,
    pub ended_at_ms: Option<u64>,
    pub state: PullState,
    pub error: Option<String>,
    pub from_peers: u64,
    pub from_webseed: u64,
    pub from_upstream: u64,
}

/// The newest downloads.
#[derive(Debug, Default)]
pub(crate) struct PullLog(Mutex<VecDeque<Arc<Pull>>>);

impl PullLog {
    /// Records a download starting now (`now_ms`), dropping the oldest beyond [`KEPT`].
    pub(crate) fn start(&self, digest: BlobDigest, repository: String, now_ms: u64) -> Arc<Pull> {
        let pull = Arc::new(Pull {
            digest,
            repository,
            started_at_ms: now_ms,
            size: AtomicU64::new(0),
            bytes: Default::default(),
            ended: Mutex::new(None),
        });
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == KEPT {
            log.pop_back();
        }
        log.push_front(Arc::clone(&pull));
        pull
    }

    /// Newest first.
    pub(crate) fn records(&self) -> Vec<PullRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|p| p.record()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> BlobDigest {
        BlobDigest::from_bytes([n; 32])
    }

    #[test]
    fn a_pull_counts_bytes_by_source_and_keeps_its_first_outcome() {
        let log = PullLog::default();
        let pull = log.start(digest(1), "r/app".into(), 1000);
        pull.set_size(30);
        pull.count(Source::Peers, 10);
        pull.count(Source::Upstream, 5);
        pull.count(Source::Peers, 15);
        let record = &log.records()[0];
        assert_eq!((record.state, record.ended_at_ms), (PullState::Pulling, None));
        assert_eq!((record.from_peers, record.from_webseed, record.from_upstream, record.size), (25, 0, 5, 30));
        pull.end(1500, None);
        pull.end(1600, Some("late".into()));
        let record = &log.records()[0];
        assert_eq!((record.state, record.ended_at_ms, record.error.clone()), (PullState::Done, Some(1500), None));
        assert_eq!(serde_json::to_value(record).unwrap()["state"], "done");

        let failed = log.start(digest(2), "r/app".into(), 2000);
        failed.end(2100, Some("no source delivered".into()));
        let records = log.records();
        assert_eq!(records[0].digest, digest(2).to_string(), "newest first");
        assert_eq!(records[0].state, PullState::Failed);
    }

    #[test]
    fn the_log_keeps_the_newest() {
        let log = PullLog::default();
        for i in 0..(KEPT as u64 + 5) {
            log.start(digest(1), format!("r/{i}"), i);
        }
        let records = log.records();
        assert_eq!(records.len(), KEPT);
        assert_eq!(records[0].started_at_ms, KEPT as u64 + 4);
        assert_eq!(records[KEPT - 1].started_at_ms, 5);
    }
}
