use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{Error, Result, session::CheckedIncomingConnection, stream_connect::ConnectionKind};
use buffers::{ByteBuf, ByteBufOwned};
use futures::TryFutureExt;
use librqbit_core::{
    hash_id::Id20,
    lengths::{ChunkInfo, ValidPieceIndex},
    peer_id::try_decode_peer_id,
};
use parking_lot::RwLock;
use peer_binary_protocol::{
    Handshake, MAX_MSG_LEN, Message,
    extended::{
        ExtendedMessage, PeerExtendedMessageIds, handshake::ExtendedHandshake,
        ut_metadata::UtMetadata, ut_pex::UtPex,
    },
    serialize_piece_preamble,
};
use serde::{Deserialize, Serialize};
use serde_with::serde_as;
use tokio::time::timeout;
use tracing::{Instrument, debug, trace, trace_span};

use crate::{
    read_buf::ReadBuf,
    spawn_utils::BlockingSpawner,
    stream_connect::StreamConnector,
    type_aliases::{BoxAsyncReadVectored, BoxAsyncWrite},
};

pub trait PeerConnectionHandler {
    fn on_connected(&self, _connection_time: Duration) {}
    fn should_send_bitfield(&self) -> bool;
    fn serialize_bitfield_message_to_buf(&self, buf: &mut [u8]) -> anyhow::Result<usize>;
    fn on_handshake(&self, handshake: Handshake, ckind: ConnectionKind) -> anyhow::Result<()>;
    fn on_extended_handshake(
        &self,
        extended_handshake: &ExtendedHandshake<ByteBuf>,
    ) -> anyhow::Result<()>;
    async fn on_received_message(&self, msg: Message<'_>) -> anyhow::Result<()>;
    fn should_transmit_have(&self, id: ValidPieceIndex) -> bool;
    fn on_uploaded_bytes(&self, bytes: u32);
    fn read_chunk(&self, chunk: &ChunkInfo, buf: &mut [u8]) -> anyhow::Result<()>;
    fn update_my_extended_handshake(
        &self,
        _handshake: &mut ExtendedHandshake<ByteBuf>,
    ) -> anyhow::Result<()> {
        Ok(())
    }
    fn client_name_and_version(&self) -> &str {
        crate::client_name_and_version()
    }
}

#[derive(Debug)]
pub enum WriterRequest {
    Message(Message<'static>),
    UtMetadata(UtMetadata<ByteBufOwned>),
    UtPex(UtPex<ByteBufOwned>),
    ReadChunkRequest(ChunkInfo),
    Disconnect(anyhow::Result<()>),
}

#[serde_as]
#[derive(Default, Debug, Copy, Clone, Serialize, Deserialize, Eq, PartialEq)]
pub struct PeerConnectionOptions {
    #[serde_as(as = "Option<serde_with::DurationSeconds>")]
    pub connect_timeout: Option<Duration>,

    #[serde_as(as = "Option<serde_with::DurationSeconds>")]
    pub read_write_timeout: Option<Duration>,

    #[serde_as(as = "Option<serde_with::DurationSeconds>")]
    pub keep_alive_interval: Option<Duration>,

    /// The most chunk requests to keep outstanding per peer (default 128, and
    /// never more than the peer's reqq). A newly needed piece, such as the
    /// one at a stream's read position after a seek, is requested only after
    /// those, so a smaller window makes streams react faster to seeks.
    pub max_request_window: Option<usize>,
}

pub(crate) struct PeerConnection<H> {
    handler: H,
    addr: SocketAddr,
    info_hash: Id20,
    peer_id: Id20,
    options: PeerConnectionOptions,
    #[allow(dead_code)] // Shoal patch: chunk reads no longer go through it
    spawner: BlockingSpawner,
    connector: Arc<StreamConnector>,
}

#[cfg(not(feature = "miri"))]
pub(crate) async fn with_timeout<T>(
    name: &'static str,
    timeout_value: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> crate::Result<T> {
    // Shoal patch: poll once before arming the timer. Most reads and writes of a busy peer
    // complete at once (data already in the socket buffer, room to send); a timer armed and
    // cancelled for each of them (one per 16 KiB chunk) took the time driver's lock every time.
    // The deadline still covers every operation that has to wait.
    let mut fut = std::pin::pin!(fut);
    if let std::task::Poll::Ready(v) = futures::poll!(fut.as_mut()) {
        return v;
    }
    match timeout(timeout_value, fut).await {
        Ok(v) => v,
        Err(_) => Err(Error::Timeout(name)),
    }
}

#[cfg(feature = "miri")]
pub(crate) async fn with_timeout<T>(
    _name: &'static str,
    _timeout_value: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> crate::Result<T> {
    fut.await
}

struct ManagePeerArgs {
    handshake_supports_extended: bool,
    read_buf: ReadBuf,
    write_buf: Box<[u8; MAX_MSG_LEN]>,
    read: BoxAsyncReadVectored,
    write: BoxAsyncWrite,
    outgoing_chan: tokio::sync::mpsc::UnboundedReceiver<WriterRequest>,
    have_broadcast: tokio::sync::broadcast::Receiver<ValidPieceIndex>,
}

impl<H: PeerConnectionHandler> PeerConnection<H> {
    pub fn new(
        addr: SocketAddr,
        info_hash: Id20,
        peer_id: Id20,
        handler: H,
        options: Option<PeerConnectionOptions>,
        spawner: BlockingSpawner,
        connector: Arc<StreamConnector>,
    ) -> Self {
        PeerConnection {
            handler,
            addr,
            info_hash,
            peer_id,
            spawner,
            options: options.unwrap_or_default(),
            connector,
        }
    }

    // By the time this is called:
    // read_buf should start with valuable data. The handshake should be removed from it.
    pub async fn manage_peer_incoming(
        &self,
        outgoing_chan: tokio::sync::mpsc::UnboundedReceiver<WriterRequest>,
        mut incoming: CheckedIncomingConnection,
        have_broadcast: tokio::sync::broadcast::Receiver<ValidPieceIndex>,
    ) -> Result<()> {
        use tokio::io::AsyncWriteExt;

        let rwtimeout = self
            .options
            .read_write_timeout
            .unwrap_or_else(|| Duration::from_secs(10));

        if incoming.handshake.info_hash != self.info_hash {
            return Err(Error::WrongInfoHash);
        }

        if incoming.handshake.peer_id == self.peer_id {
            return Err(Error::ConnectingToOurselves);
        }

        trace!(
            "incoming connection: id={:?}",
            try_decode_peer_id(incoming.handshake.peer_id)
        );

        let mut write_buf = Box::new([0u8; MAX_MSG_LEN]);
        let my_handshake = Handshake::new(self.info_hash, self.peer_id);
        let hlen = my_handshake.serialize_unchecked_len(&mut *write_buf);
        with_timeout(
            "writing handshake",
            rwtimeout,
            incoming
                .writer
                .write_all(&write_buf[..hlen])
                .map_err(Error::WriteHandshake),
        )
        .await?;

        // What the peer supports is in the peer's handshake, not in ours.
        let handshake_supports_extended = incoming.handshake.supports_extended();

        self.handler
            .on_handshake(incoming.handshake, incoming.kind)
            .map_err(Error::Anyhow)?;

        self.manage_peer(ManagePeerArgs {
            handshake_supports_extended,
            read_buf: incoming.read_buf,
            write_buf,
            read: incoming.reader,
            write: incoming.writer,
            outgoing_chan,
            have_broadcast,
        })
        .await
    }

    pub async fn manage_peer_outgoing(
        &self,
        outgoing_chan: tokio::sync::mpsc::UnboundedReceiver<WriterRequest>,
        have_broadcast: tokio::sync::broadcast::Receiver<ValidPieceIndex>,
    ) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let rwtimeout = self
            .options
            .read_write_timeout
            .unwrap_or_else(|| Duration::from_secs(10));

        let connect_timeout = self
            .options
            .connect_timeout
            .unwrap_or_else(|| Duration::from_secs(10));

        let now = Instant::now();
        let (ckind, mut read, mut write) = with_timeout(
            "connecting",
            connect_timeout,
            self.connector.connect(self.addr),
        )
        .await?;

        async move {
            self.handler.on_connected(now.elapsed());

            let mut write_buf = Box::new([0u8; MAX_MSG_LEN]);
            let handshake = Handshake::new(self.info_hash, self.peer_id);
            let hsz = handshake.serialize_unchecked_len(&mut *write_buf);
            with_timeout(
                "writing",
                rwtimeout,
                write
                    .write_all(&write_buf[..hsz])
                    .map_err(Error::WriteHandshake),
            )
            .await?;

            let mut read_buf = ReadBuf::new();
            let h = read_buf.read_handshake(&mut read, rwtimeout).await?;
            let handshake_supports_extended = h.supports_extended();
            trace!(
                peer_id=?h.peer_id,
                decoded_id=?try_decode_peer_id(h.peer_id),
                "connected",
            );
            if h.info_hash != self.info_hash {
                return Err(Error::WrongInfoHash);
            }

            if h.peer_id == self.peer_id {
                return Err(Error::ConnectingToOurselves);
            }

            self.handler.on_handshake(h, ckind).map_err(Error::Anyhow)?;

            self.manage_peer(ManagePeerArgs {
                handshake_supports_extended,
                read_buf,
                write_buf,
                read,
                write,
                outgoing_chan,
                have_broadcast,
            })
            .await
        }
        .instrument(trace_span!("", kind=%ckind))
        .await
    }

    async fn manage_peer(&self, args: ManagePeerArgs) -> Result<()> {
        let ManagePeerArgs {
            handshake_supports_extended,
            mut read_buf,
            mut write_buf,
            mut read,
            mut write,
            mut outgoing_chan,
            mut have_broadcast,
        } = args;

        use tokio::io::AsyncWriteExt;

        let rwtimeout = self
            .options
            .read_write_timeout
            .unwrap_or_else(|| Duration::from_secs(10));

        let extended_handshake: RwLock<Option<PeerExtendedMessageIds>> = RwLock::new(None);
        let extended_handshake_ref = &extended_handshake;
        let supports_extended = handshake_supports_extended;

        if supports_extended {
            let mut my_extended = ExtendedHandshake::new();
            my_extended.v = Some(ByteBuf(self.handler.client_name_and_version().as_bytes()));
            my_extended.yourip = Some(self.addr.ip().into());
            self.handler
                .update_my_extended_handshake(&mut my_extended)
                .map_err(Error::Anyhow)?;
            let my_extended = Message::Extended(ExtendedMessage::Handshake(my_extended));
            trace!("sending extended handshake: {:?}", &my_extended);
            let esz = my_extended.serialize(&mut *write_buf, &Default::default)?;
            with_timeout(
                "writing extended handshake",
                rwtimeout,
                write.write_all(&write_buf[..esz]).map_err(Error::Write),
            )
            .await?;
        }

        let writer = async move {
            let keep_alive_interval = self
                .options
                .keep_alive_interval
                .unwrap_or_else(|| Duration::from_secs(120));

            if self.handler.should_send_bitfield() {
                let len = self
                    .handler
                    .serialize_bitfield_message_to_buf(&mut *write_buf)
                    .map_err(Error::Anyhow)?;
                with_timeout(
                    "writing bitfield",
                    rwtimeout,
                    write.write_all(&write_buf[..len]).map_err(Error::Write),
                )
                .await?;
                trace!("sent bitfield");
            }

            let len = Message::Unchoke.serialize(&mut *write_buf, &Default::default)?;
            with_timeout(
                "writing",
                rwtimeout,
                write.write_all(&write_buf[..len]).map_err(Error::Write),
            )
            .await?;
            trace!("sent unchoke");

            let mut broadcast_closed = false;
            // Shoal patch: chunk requests already queued behind the one being served go out in
            // the same write (see below); a message of another kind that was taken while
            // looking for them is served next.
            let mut batch = ChunkBatch::default();
            let mut pending: Option<WriterRequest> = None;

            loop {
                // Shoal patch: what is already queued is taken without a select! and a
                // keep-alive timer per message (see next_queued); only an idle writer waits.
                let queued = pending.take().or_else(|| next_queued(
                    &mut have_broadcast,
                    &mut broadcast_closed,
                    &mut outgoing_chan,
                    |id| self.handler.should_transmit_have(id),
                ));
                let req = if let Some(req) = queued { req } else { loop {
                    break tokio::select! {
                        r = have_broadcast.recv(), if !broadcast_closed => match r {
                            Ok(id) => {
                                if self.handler.should_transmit_have(id) {
                                     WriterRequest::Message(Message::Have(id.get()))
                                } else {
                                    continue
                                }
                            },
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                broadcast_closed = true;
                                debug!("broadcast channel closed, will not poll it anymore");
                                continue
                            },
                            _ => continue
                        },
                        r = timeout(keep_alive_interval, outgoing_chan.recv()) => match r {
                            Ok(Some(msg)) => msg,
                            Ok(None) => {
                                return Err(Error::TorrentIsNotLive);
                            }
                            Err(_) => WriterRequest::Message(Message::KeepAlive),
                        }
                    };
                } };

                // Shoal patch: tokio's cooperative budget instead of a yield per message (see
                // the reader).
                tokio::task::consume_budget().await;

                let mut uploaded_add = None;

                trace!("about to send: {:?}", &req);
                let ext_msg_ids = &|| {
                    extended_handshake_ref
                        .read()
                        .as_ref()
                        .map(|e| *e)
                        .unwrap_or_default()
                };

                let len = match req {
                    WriterRequest::Message(msg) => msg.serialize(&mut *write_buf, ext_msg_ids)?,
                    WriterRequest::UtMetadata(utm) => {
                        Message::Extended(ExtendedMessage::UtMetadata(utm.as_borrowed()))
                            .serialize(&mut *write_buf, ext_msg_ids)?
                    }
                    WriterRequest::UtPex(ut_pex) => {
                        Message::Extended(ExtendedMessage::UtPex(ut_pex.as_borrowed()))
                            .serialize(&mut *write_buf, ext_msg_ids)?
                    }
                    WriterRequest::ReadChunkRequest(chunk) => {
                        #[allow(unused_mut)]
                        let mut skip_reading_for_e2e_tests = false;

                        #[cfg(test)]
                        {
                            use tracing::warn;
                            // This is poor-mans fault injection for running e2e tests.
                            use crate::tests::test_util::TestPeerMetadata;
                            let tpm = TestPeerMetadata::from_peer_id(self.peer_id);
                            use rand::RngExt;
                            if rand::rng().random_bool(tpm.disconnect_probability()) {
                                return Err(Error::TestDisconnect);
                            }

                            #[allow(clippy::cast_possible_truncation)]
                            let sleep_ms = (rand::rng().random::<f64>()
                                * (tpm.max_random_sleep_ms as f64))
                                as u64;
                            if sleep_ms > 0 {
                                tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
                            }

                            if rand::rng().random_bool(tpm.bad_data_probability()) {
                                warn!(
                                    "will NOT actually read the data to simulate a malicious peer that sends garbage"
                                );
                                write_buf.fill(0);
                                skip_reading_for_e2e_tests = true;
                            }
                        }

                        // this whole section is an optimization
                        let preamble_len = serialize_piece_preamble(&chunk, &mut *write_buf);
                        let full_len = preamble_len + chunk.size as usize;
                        if !skip_reading_for_e2e_tests {
                            // Shoal patch: read the (at most 16 KiB) chunk on this worker.
                            // block_in_place per chunk handed the runtime to another thread
                            // for every request: most of a seeder's CPU was futex wake-ups.
                            self.handler
                                .read_chunk(&chunk, &mut write_buf[preamble_len..full_len])
                                .map_err(Error::ReadChunk)?;
                        }

                        uploaded_add = Some(chunk.size);
                        full_len
                    }
                    WriterRequest::Disconnect(res) => {
                        trace!("disconnect requested, closing writer");
                        match res {
                            Ok(()) => return Err(Error::Disconnect),
                            Err(e) => return Err(Error::DisconnectWithSource(e)),
                        }
                    }
                };

                // Shoal patch: one write for the chunk requests queued behind this one (up to
                // ChunkBatch::BYTES), where upstream made a write syscall per 16 KiB chunk. Not
                // under cfg(test): the e2e tests' fault injection works per request above.
                let mut out = &write_buf[..len];
                if let Some(first) = uploaded_add.filter(|_| !cfg!(test)) {
                    let (more, next) = batch
                        .fill(&write_buf[..len], &mut outgoing_chan, |chunk, buf| {
                            self.handler.read_chunk(chunk, buf)
                        })
                        .map_err(Error::ReadChunk)?;
                    pending = next;
                    if more > 0 {
                        out = batch.bytes();
                        uploaded_add = Some(first + more);
                    }
                }
                with_timeout(
                    "writing",
                    rwtimeout,
                    write.write_all(out).map_err(Error::Write),
                )
                .await?;

                if let Some(uploaded_add) = uploaded_add {
                    self.handler.on_uploaded_bytes(uploaded_add)
                }
            }

            // For type inference.
            #[allow(unreachable_code)]
            Ok::<_, Error>(())
        };

        let reader = async move {
            loop {
                let message = read_buf.read_message(&mut read, rwtimeout).await?;
                trace!("received: {:?}", &message);

                // Shoal patch: was yield_now() per message, which rescheduled this task and
                // made its worker poll the I/O driver (and wake the other one) for every
                // 16 KiB chunk. consume_budget() yields only once the task has used tokio's
                // cooperative budget, which keeps a busy peer from starving the others.
                tokio::task::consume_budget().await;

                if let Message::Extended(ExtendedMessage::Handshake(h)) = &message {
                    *extended_handshake_ref.write() = Some(h.peer_extended_messages());
                    self.handler
                        .on_extended_handshake(h)
                        .map_err(Error::Anyhow)?;
                } else {
                    self.handler
                        .on_received_message(message)
                        .await
                        .map_err(Error::Anyhow)?;
                }
            }

            // For type inference.
            #[allow(unreachable_code)]
            Ok::<_, Error>(())
        };

        tokio::select! {
            r = reader => {
                if let Err(e) = r.as_ref() {
                    trace!("reader finished with error: {e:#}");
                } else {
                    trace!("reader finished without error");
                }
                r
            }
            r = writer => {
                if let Err(e) = r.as_ref() {
                    trace!("writer finished with error: {e:#}");
                } else {
                    trace!("writer finished without error");
                }
                r
            }
        }
    }
}

/// Shoal patch: the writer's next message if one is already queued: a HAVE to broadcast first,
/// then the connection's own queue. Taken with try_recv, so a peer that keeps its writer busy
/// costs no select! and no keep-alive timer per message; None means wait for one.
fn next_queued(
    have_broadcast: &mut tokio::sync::broadcast::Receiver<ValidPieceIndex>,
    broadcast_closed: &mut bool,
    outgoing_chan: &mut tokio::sync::mpsc::UnboundedReceiver<WriterRequest>,
    should_transmit_have: impl Fn(ValidPieceIndex) -> bool,
) -> Option<WriterRequest> {
    use tokio::sync::broadcast::error::TryRecvError;
    while !*broadcast_closed {
        match have_broadcast.try_recv() {
            Ok(id) if should_transmit_have(id) => {
                return Some(WriterRequest::Message(Message::Have(id.get())));
            }
            Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
            Err(TryRecvError::Closed) => *broadcast_closed = true,
            Err(TryRecvError::Empty) => break,
        }
    }
    outgoing_chan.try_recv().ok()
}

/// Shoal patch: piece messages gathered for one write. The buffer is allocated at the first
/// batch a connection makes (a leech-only connection never pays for it) and reused after.
#[derive(Default)]
struct ChunkBatch {
    buf: Vec<u8>,
    used: usize,
}

impl ChunkBatch {
    /// Bytes of piece messages one write carries at most (about 8 chunks).
    const BYTES: usize = 128 * 1024;

    /// If a chunk request is queued, starts a batch with `first` (a serialized piece message)
    /// and appends a piece message per queued chunk request while they fit. Returns the chunk
    /// bytes added (0: no batch, send `first` alone) and a message of another kind taken from
    /// the queue on the way, to be served next.
    fn fill(
        &mut self,
        first: &[u8],
        queue: &mut tokio::sync::mpsc::UnboundedReceiver<WriterRequest>,
        mut read_chunk: impl FnMut(&ChunkInfo, &mut [u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<(u32, Option<WriterRequest>)> {
        let mut added = 0u32;
        self.used = 0;
        while self.used <= Self::BYTES {
            let chunk = match queue.try_recv() {
                Ok(WriterRequest::ReadChunkRequest(chunk)) => chunk,
                Ok(other) => return Ok((added, Some(other))),
                Err(_) => break,
            };
            if self.buf.is_empty() {
                self.buf = vec![0; Self::BYTES + 2 * MAX_MSG_LEN];
            }
            if self.used == 0 {
                self.buf[..first.len()].copy_from_slice(first);
                self.used = first.len();
            }
            let at = self.used;
            let preamble = serialize_piece_preamble(&chunk, &mut self.buf[at..]);
            let end = at + preamble + chunk.size as usize;
            read_chunk(&chunk, &mut self.buf[at + preamble..end])?;
            self.used = end;
            added += chunk.size;
        }
        Ok((added, None))
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

#[cfg(test)]
mod chunk_batch_tests {
    use super::*;
    use librqbit_core::lengths::Lengths;

    /// A chunk's bytes: its absolute index repeated, so a misplaced chunk shows.
    fn fake_read(chunk: &ChunkInfo, buf: &mut [u8]) -> anyhow::Result<()> {
        buf.fill(chunk.absolute_index as u8);
        Ok(())
    }

    #[test]
    fn queued_chunk_requests_join_one_write_and_another_message_waits_its_turn() {
        let lengths = Lengths::new(4 * 16384 * 8, 4 * 16384).unwrap();
        let chunks: Vec<ChunkInfo> = lengths
            .iter_chunk_infos(lengths.validate_piece_index(1).unwrap())
            .collect();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for c in &chunks[1..] {
            tx.send(WriterRequest::ReadChunkRequest(*c)).unwrap();
        }
        tx.send(WriterRequest::Message(Message::Have(3))).unwrap();
        tx.send(WriterRequest::ReadChunkRequest(chunks[0])).unwrap();

        let mut first = vec![0u8; MAX_MSG_LEN];
        let pre = serialize_piece_preamble(&chunks[0], &mut first);
        fake_read(&chunks[0], &mut first[pre..pre + 16384]).unwrap();
        first.truncate(pre + 16384);

        let mut batch = ChunkBatch::default();
        let (added, next) = batch.fill(&first, &mut rx, fake_read).unwrap();
        assert_eq!(added, 3 * 16384);
        assert!(matches!(next, Some(WriterRequest::Message(Message::Have(3)))));
        // Each message as upstream writes it alone, one after the other.
        let mut want = first.clone();
        for c in &chunks[1..] {
            let mut m = vec![0u8; MAX_MSG_LEN];
            let p = serialize_piece_preamble(c, &mut m);
            fake_read(c, &mut m[p..p + 16384]).unwrap();
            want.extend_from_slice(&m[..p + 16384]);
        }
        assert_eq!(batch.bytes(), &want[..]);

        // The request behind the HAVE is left for the next turn; with nothing queued after
        // it there is no batch.
        let (added, next) = batch.fill(&first, &mut rx, fake_read).unwrap();
        assert_eq!((added, next.is_none()), (16384, true));
        let (added, next) = batch.fill(&first, &mut rx, fake_read).unwrap();
        assert_eq!((added, next.is_none()), (0, true));
    }

    #[test]
    fn a_batch_stops_near_its_size() {
        let lengths = Lengths::new(64 * 16384, 64 * 16384).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for c in lengths.iter_chunk_infos(lengths.validate_piece_index(0).unwrap()) {
            tx.send(WriterRequest::ReadChunkRequest(c)).unwrap();
        }
        let first = vec![7u8; 100];
        let mut batch = ChunkBatch::default();
        let (added, _) = batch.fill(&first, &mut rx, fake_read).unwrap();
        assert!(batch.bytes().len() <= ChunkBatch::BYTES + MAX_MSG_LEN);
        assert_eq!(added as usize, 8 * 16384);
        assert_eq!(rx.len(), 64 - 8);
    }
}
