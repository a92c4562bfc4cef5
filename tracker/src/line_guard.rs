//! A connection wrapper that answers over-long request lines itself, with a bencoded
//! `failure reason`, before hyper sees them.
//!
//! hyper (through the `http` crate) cannot represent a URI of 64 KiB or more and would answer
//! `414` with an empty body; clients and the conformance tests expect a tracker to answer every
//! announce with bencode. So any line longer than [`MAX_LINE`] is drained up to the end of its
//! request head, answered here, and the connection is closed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::query::RequestError;
use crate::service::{Refusal, Tracker};

/// Longest request or header line passed on (the announce parser refuses queries over 8 KiB
/// with its own failure reason, so this only catches what hyper could not carry).
pub(crate) const MAX_LINE: usize = 16 * 1024;

enum State {
    Pass,
    /// Discarding input until the end of the request head, so that closing the socket sends a
    /// FIN rather than a reset that could destroy our answer in flight.
    Draining {
        tail: u32,
    },
    Answering {
        written: usize,
    },
    Done,
}

pub(crate) struct LineGuard<S> {
    inner: S,
    line: usize,
    state: State,
    tracker: Arc<Tracker>,
    answer: Vec<u8>,
}

impl<S> LineGuard<S> {
    pub(crate) fn new(inner: S, tracker: Arc<Tracker>) -> Self {
        Self { inner, line: 0, state: State::Pass, tracker, answer: Vec::new() }
    }

    /// The whole HTTP answer to an over-long line (counted as a failure in the metrics).
    fn refuse(&mut self) {
        let body = self.tracker.refuse(Refusal::Request(RequestError::QueryTooLong));
        self.answer =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
        self.answer.extend_from_slice(&body);
    }
}

/// Feeds bytes to the end-of-head matcher; returns true once `\r\n\r\n` (or `\n\n`) was seen.
/// `tail`: 0 inside a line, 1 right after a `\n`, 2 after `\n\r`.
fn head_ends(tail: &mut u32, bytes: &[u8]) -> bool {
    for &b in bytes {
        *tail = match (b, *tail) {
            (b'\n', 1 | 2) => return true,
            (b'\n', _) => 1,
            (b'\r', 1) => 2,
            _ => 0,
        };
    }
    false
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LineGuard<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Pass => {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let new = &buf.filled()[before..];
                    let mut over_at = None;
                    let mut start = 0;
                    for (i, _) in new.iter().enumerate().filter(|(_, &b)| b == b'\n') {
                        if this.line + (i - start) > MAX_LINE {
                            over_at = Some(i);
                            break;
                        }
                        this.line = 0;
                        start = i + 1;
                    }
                    if over_at.is_none() {
                        this.line += new.len() - start;
                        if this.line <= MAX_LINE {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    let mut tail = 0;
                    let ended = over_at.is_some_and(|i| head_ends(&mut tail, &new[i..]));
                    buf.set_filled(before);
                    this.refuse();
                    this.state = if ended { State::Answering { written: 0 } } else { State::Draining { tail } };
                }
                State::Draining { tail } => {
                    let mut scratch = [0u8; 4096];
                    let mut rb = ReadBuf::new(&mut scratch);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                    if rb.filled().is_empty() || head_ends(tail, rb.filled()) {
                        this.state = State::Answering { written: 0 };
                    }
                }
                State::Answering { written } => {
                    while *written < this.answer.len() {
                        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.answer[*written..]))?;
                        if n == 0 {
                            break;
                        }
                        *written += n;
                    }
                    ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
                    this.state = State::Done;
                }
                // End of stream for hyper: it saw no complete request and closes quietly.
                State::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LineGuard<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.state {
            State::Pass => Pin::new(&mut self.inner).poll_write(cx, data),
            _ => Poll::Ready(Ok(data.len())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.state {
            State::Pass => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            _ => Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_head() {
        let mut tail = 0;
        assert!(!head_ends(&mut tail, b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(head_ends(&mut tail, b"\r\n"));
        let mut tail = 0;
        assert!(head_ends(&mut tail, b"a\n\n"));
        let mut tail = 0;
        assert!(!head_ends(&mut tail, b"a\r\nb\r\nc"));
    }
}
