//! A miss's bytes in order, from whichever sources it takes: the swarm while it keeps up, then
//! the rest over HTTP (the torrent's webseeds, then the upstream registry) from the byte reached;
//! and the file that ends up holding them all, handed to the store ([`LandedFile`]).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use shoal_store::blob_store::BlobStore;
use shoal_torrents::BlobDigest;
use shoal_upstream::Upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::ShimMetrics;
use crate::origin::Source as SourceKind;
use crate::pulls::Pull;
use crate::stall::Verdict;
use crate::swarm::{Download, Swarm};

/// A file holding a whole blob, handed from the feed to the store.
pub(crate) struct LandedFile {
    pub(crate) file: DiscardOnDrop,
    /// Every byte came through librqbit (each piece checked against the torrent's SHA-1), so
    /// the torrent's piece table is the file's; otherwise it is hashed again from disk.
    pub(crate) all_from_swarm: bool,
}

/// A file that is deleted when dropped, unless it was taken into the store.
pub(crate) struct DiscardOnDrop(Option<PathBuf>);

impl DiscardOnDrop {
    pub(crate) fn path(&self) -> &std::path::Path {
        self.0.as_deref().expect("a live file")
    }

    pub(crate) fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for DiscardOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a discarded download");
                }
            }
        }
    }
}

/// Delivers one blob's bytes in order: from the swarm while it keeps up, then the rest over
/// HTTP, from the torrent's webseeds and finally the upstream registry; and hands the file that
/// holds them all to the store.
pub(crate) struct Feed {
    pub(crate) swarm: Arc<Swarm>,
    pub(crate) store: Arc<BlobStore>,
    pub(crate) metrics: Arc<ShimMetrics>,
    /// This download's record on the live page.
    pub(crate) pull: Arc<Pull>,
    pub(crate) upstream: Arc<Upstream>,
    /// Where its blocking copy runs (the shim's task tree).
    pub(crate) tasks: shoal_tasks::Tasks,
    pub(crate) reference: oci_client::Reference,
    pub(crate) digest: BlobDigest,
    pub(crate) size: u64,
    pub(crate) webseeds: Vec<String>,
    pub(crate) in_session: Arc<Mutex<Option<usize>>>,
    pub(crate) tx: mpsc::Sender<Result<Bytes, io::Error>>,
    /// librqbit's file of this download.
    pub(crate) partial: PathBuf,
    /// After a fallback to HTTP: the file being assembled (the swarm's verified prefix, then
    /// every byte sent since).
    pub(crate) assembly: Option<(DiscardOnDrop, tokio::fs::File)>,
}

/// What became of one attempt to deliver bytes.
enum Fed {
    /// Everything up to `size` was delivered.
    Done,
    /// This source stopped early; try the next from the offset reached.
    Short,
    /// The client side is gone (the store gave up): stop.
    Gone,
}

impl Feed {
    pub(crate) async fn run(mut self, download: Option<Download>, landed: oneshot::Sender<LandedFile>) {
        let mut offset = 0u64;
        if let Some(download) = download {
            let fed = self.feed_from_swarm(download, &mut offset).await;
            let id = self.in_session.lock().expect("download lock").take();
            match (fed, id) {
                (Fed::Gone, Some(id)) => return self.swarm.drop_download(id).await,
                (Fed::Gone, None) => return,
                (Fed::Done, Some(id)) => {
                    // Every piece is verified and written: librqbit's file is the blob.
                    self.swarm.forget_download(id).await;
                    let file = DiscardOnDrop(Some(self.partial.clone()));
                    let _ = landed.send(LandedFile { file, all_from_swarm: true });
                    return;
                }
                (Fed::Done, None) => return, // cannot happen: the id is only taken here
                (Fed::Short, id) => {
                    if let Some(id) = id {
                        self.swarm.forget_download(id).await;
                    }
                    if let Err(e) = self.start_assembly(offset).await {
                        tracing::error!(digest = %self.digest, error = %e, "cannot keep the swarm's bytes");
                        let _ = self.tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        } else if let Err(e) = self.start_assembly(0).await {
            let _ = self.tx.send(Err(e)).await;
            return;
        }
        let webseeds = std::mem::take(&mut self.webseeds);
        let mut fed = Fed::Short;
        for base in &webseeds {
            let url = if base.ends_with('/') { format!("{base}{}", self.digest.torrent_name()) } else { base.clone() };
            fed = self.feed_from_webseed(&url, &mut offset).await;
            if !matches!(fed, Fed::Short) {
                break;
            }
        }
        if matches!(fed, Fed::Short) {
            fed = self.feed_from_upstream(&mut offset).await;
        }
        match fed {
            Fed::Done => {
                let Some((file, mut writer)) = self.assembly.take() else { return };
                if let Err(e) = writer.flush().await {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
                drop(writer);
                let _ = landed.send(LandedFile { file, all_from_swarm: false });
            }
            Fed::Gone => {}
            Fed::Short => {
                let message = format!("no source delivered {} past byte {offset}", self.digest);
                let _ = self.tx.send(Err(io::Error::other(message))).await;
            }
        }
    }

    /// Starts the file the HTTP bytes are appended to, with the first `prefix` bytes (verified
    /// pieces the swarm delivered) copied from librqbit's file, which is then removed.
    async fn start_assembly(&mut self, prefix: u64) -> Result<(), io::Error> {
        let path = self.store.temp_path(&self.digest);
        let file = DiscardOnDrop(Some(path.clone()));
        let partial = DiscardOnDrop(Some(self.partial.clone()));
        let copy = self.tasks.spawn_blocking("blob-assembly", move || -> io::Result<std::fs::File> {
            let mut out = std::fs::File::create(&path)?;
            if prefix > 0 {
                let source = std::fs::File::open(partial.path())?;
                let copied = io::copy(&mut io::Read::take(source, prefix), &mut out)?;
                if copied != prefix {
                    return Err(io::Error::other(format!("the swarm's file ends at byte {copied}, not {prefix}")));
                }
            }
            Ok(out)
        });
        let out = copy.await.map_err(io::Error::other)??;
        self.assembly = Some((file, tokio::fs::File::from_std(out)));
        Ok(())
    }

    async fn send(&mut self, chunk: Bytes, offset: &mut u64, source: SourceKind) -> bool {
        if let Some((_, writer)) = &mut self.assembly {
            if let Err(e) = writer.write_all(&chunk).await {
                tracing::error!(digest = %self.digest, error = %e, "cannot write the blob's bytes");
                let _ = self.tx.send(Err(e)).await;
                return false;
            }
        }
        *offset += chunk.len() as u64;
        self.metrics.bytes(source).inc_by(chunk.len() as u64);
        self.pull.count(source, chunk.len() as u64);
        self.tx.send(Ok(chunk)).await.is_ok()
    }

    async fn feed_from_swarm(&mut self, download: Download, offset: &mut u64) -> Fed {
        let mut stream = download.stream;
        let policy = self.swarm.stall_policy();
        let mut progress = (download.progress)();
        let mut quiet_since = Instant::now();
        while *offset < self.size {
            let mut buf = bytes::BytesMut::with_capacity(256 * 1024);
            match tokio::time::timeout(policy.quiet, stream.read_buf(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {
                    quiet_since = Instant::now();
                    if !self.send(buf.freeze(), offset, SourceKind::Peers).await {
                        return Fed::Gone;
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(digest = %self.digest, offset = *offset, error = %e, "swarm stream failed; falling back to HTTP");
                    return Fed::Short;
                }
                Err(_) => {
                    // The stream waits for the piece at `offset`; while other pieces keep
                    // arriving, the swarm is working (hosts that start together all want the
                    // same next piece from the one host that has it yet) and HTTP would only
                    // add load.
                    let now = (download.progress)();
                    if now > progress {
                        progress = now;
                        quiet_since = Instant::now();
                        tracing::debug!(digest = %self.digest, offset = *offset, "stream waits on one piece; the swarm still delivers others");
                        continue;
                    }
                    match policy.judge(quiet_since.elapsed(), &(download.supply)()) {
                        Verdict::Wait(why) => {
                            tracing::debug!(digest = %self.digest, offset = *offset, why = %why, "the swarm is quiet; waiting on it");
                        }
                        Verdict::Stalled(why) => {
                            tracing::info!(digest = %self.digest, offset = *offset, why = %why, "swarm stalled; fetching the rest over HTTP");
                            return Fed::Short;
                        }
                    }
                }
            }
        }
        if *offset == self.size {
            Fed::Done
        } else {
            Fed::Short
        }
    }

    async fn feed_from_webseed(&mut self, url: &str, offset: &mut u64) -> Fed {
        let request = self.swarm.http().get(url).header(reqwest::header::RANGE, format!("bytes={offset}-"));
        let response = match request.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::PARTIAL_CONTENT => r,
            Ok(r) if r.status().is_success() && *offset == 0 => r,
            Ok(r) => {
                tracing::warn!(%url, status = %r.status(), "webseed refused the range");
                return Fed::Short;
            }
            Err(e) => {
                tracing::warn!(%url, error = %e, "webseed unreachable");
                return Fed::Short;
            }
        };
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    let room = (self.size - *offset) as usize;
                    let chunk = if chunk.len() > room { chunk.slice(..room) } else { chunk };
                    if !self.send(chunk, offset, SourceKind::Webseed).await {
                        return Fed::Gone;
                    }
                    if *offset == self.size {
                        return Fed::Done;
                    }
                }
                Err(e) => {
                    tracing::warn!(%url, offset = *offset, error = %e, "webseed transfer broke");
                    return Fed::Short;
                }
            }
        }
        if *offset == self.size {
            Fed::Done
        } else {
            Fed::Short
        }
    }

    async fn feed_from_upstream(&mut self, offset: &mut u64) -> Fed {
        let stream = match self.upstream.blob_from(&self.reference, &self.digest, Some(self.size), *offset).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(digest = %self.digest, offset = *offset, error = %e, "upstream cannot serve the rest");
                return Fed::Short;
            }
        };
        let mut chunks = stream.chunks;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    if !self.send(chunk, offset, SourceKind::Upstream).await {
                        return Fed::Gone;
                    }
                }
                Err(e) => {
                    tracing::warn!(digest = %self.digest, offset = *offset, error = %e, "upstream transfer broke");
                    return Fed::Short;
                }
            }
        }
        if *offset >= self.size {
            Fed::Done
        } else {
            Fed::Short
        }
    }
}
