//! The verifying pump: a miss's chunks go to the store (which hashes them) and to the client,
//! and the client's last chunk is held back until the store says the SHA-256 matched.
//!
//! So a client never completes a response with unverified bytes: on a mismatch, a short source
//! or a store failure its stream ends in an error instead of the last chunk. A client that goes
//! away does not stop the pump (the cache still wants the blob). The store side is passed in as
//! a channel, a "verified" signal and the future of its result, so this is tested without one.

use std::future::Future;
use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

/// The store's side of a pump.
pub(crate) struct StoreSide<F> {
    /// Every chunk, in order (an `Err` is the source's failure, passed on to end the ingest).
    pub(crate) chunks: mpsc::Sender<Result<Bytes, String>>,
    /// Fired once the streamed bytes have matched the digest (before fsync and rename).
    pub(crate) verified: oneshot::Receiver<()>,
    /// The store's result: the blob stored, or why not.
    pub(crate) stored: F,
}

/// Runs the pump to its end and returns the store's result.
pub(crate) async fn pump<T, E, F>(
    mut source: impl Stream<Item = Result<Bytes, io::Error>> + Unpin,
    store: StoreSide<F>,
    client: mpsc::Sender<Result<Bytes, io::Error>>,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let StoreSide { chunks: store_tx, verified, stored } = store;
    let mut held: Option<Bytes> = None;
    let mut client = Some(client);
    while let Some(chunk) = source.next().await {
        let chunk = chunk.map_err(|e| e.to_string());
        let failed = chunk.is_err();
        if store_tx.send(chunk.clone()).await.is_err() {
            break; // the store gave up (too long, disk error): its result says why
        }
        if let Ok(bytes) = chunk {
            if let Some(previous) = held.replace(bytes) {
                if let Some(c) = &client {
                    if c.send(Ok(previous)).await.is_err() {
                        client = None;
                    }
                }
            }
        }
        if failed {
            break;
        }
    }
    drop(store_tx);
    // The last chunk goes out as soon as the streamed bytes have matched; the store's fsync
    // and rename then happen without the client waiting on them.
    if verified.await.is_ok() {
        if let (Some(c), Some(last)) = (client.take(), held.take()) {
            let _ = c.send(Ok(last)).await;
        }
    }
    let result = stored.await;
    if let Some(c) = client {
        let last = match &result {
            Ok(_) => held.map(Ok),
            Err(e) => Some(Err(io::Error::other(format!("the blob failed verification: {e}")))),
        };
        if let Some(last) = last {
            let _ = c.send(last).await;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// A store side that hashes what it gets on a thread, like the real ingest, and signals
    /// `verified` only when the SHA-256 matches `expected`.
    fn hashing_store(
        expected: [u8; 32],
    ) -> (StoreSide<impl Future<Output = Result<usize, String>>>, std::sync::mpsc::Receiver<()>) {
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, String>>(4);
        let (verified_tx, verified_rx) = oneshot::channel();
        let (hashed_tx, hashed_rx) = std::sync::mpsc::channel();
        let task = tokio::task::spawn_blocking(move || {
            let mut sha = Sha256::new();
            let mut n = 0;
            while let Some(chunk) = rx.blocking_recv() {
                let chunk = chunk?;
                n += chunk.len();
                sha.update(&chunk);
            }
            let _ = hashed_tx.send(());
            if <[u8; 32]>::from(sha.finalize()) != expected {
                return Err("digest mismatch".to_owned());
            }
            let _ = verified_tx.send(());
            Ok(n)
        });
        let stored = async move { task.await.map_err(|e| e.to_string())? };
        (StoreSide { chunks: tx, verified: verified_rx, stored }, hashed_rx)
    }

    fn source(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        futures_util::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    async fn drain(mut rx: mpsc::Receiver<Result<Bytes, io::Error>>) -> (Vec<u8>, Option<String>) {
        let mut got = Vec::new();
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Ok(b) => got.extend_from_slice(&b),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
        (got, None)
    }

    #[tokio::test]
    async fn a_matching_blob_reaches_the_client_whole() {
        let (store, _) = hashing_store(Sha256::digest(b"abcdef").into());
        let (tx, rx) = mpsc::channel(16);
        let client = tokio::spawn(drain(rx));
        let stored = pump(source(&[b"ab", b"cd", b"ef"]), store, tx).await;
        assert_eq!(stored, Ok(6));
        assert_eq!(client.await.unwrap(), (b"abcdef".to_vec(), None));
    }

    #[tokio::test]
    async fn a_mismatch_withholds_the_last_chunk_and_ends_in_an_error() {
        let (store, _) = hashing_store(Sha256::digest(b"something else").into());
        let (tx, rx) = mpsc::channel(16);
        let client = tokio::spawn(drain(rx));
        let stored = pump(source(&[b"ab", b"cd", b"ef"]), store, tx).await;
        assert!(stored.is_err());
        let (got, error) = client.await.unwrap();
        assert_eq!(got, b"abcd", "the last chunk never left");
        assert!(error.unwrap().contains("failed verification"));
    }

    #[tokio::test]
    async fn the_last_chunk_waits_for_the_verdict() {
        let (store, hashed) = hashing_store(Sha256::digest(b"abcd").into());
        let (tx, mut rx) = mpsc::channel(16);
        let pumping = tokio::spawn(pump(source(&[b"ab", b"cd"]), store, tx));
        assert_eq!(rx.recv().await.unwrap().unwrap(), Bytes::from_static(b"ab"));
        let last = rx.recv().await.unwrap().unwrap();
        // The store had hashed everything before the client got the last chunk.
        assert!(hashed.try_recv().is_ok());
        assert_eq!(last, Bytes::from_static(b"cd"));
        assert_eq!(pumping.await.unwrap(), Ok(4));
    }

    #[tokio::test]
    async fn a_source_error_reaches_store_and_client() {
        let (store, _) = hashing_store(Sha256::digest(b"abcd").into());
        let (tx, rx) = mpsc::channel(16);
        let client = tokio::spawn(drain(rx));
        let broken = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err(io::Error::other("cut"))]);
        let stored = pump(broken, store, tx).await;
        assert_eq!(stored, Err("cut".to_owned()));
        let (got, error) = client.await.unwrap();
        assert!(got.is_empty(), "not even the first chunk: it was the last one held");
        assert!(error.is_some());
    }

    #[tokio::test]
    async fn a_client_that_leaves_does_not_stop_the_store() {
        let (store, _) = hashing_store(Sha256::digest(b"abcdef").into());
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        assert_eq!(pump(source(&[b"ab", b"cd", b"ef"]), store, tx).await, Ok(6));
    }
}
