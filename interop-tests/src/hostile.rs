//! Hostile BitTorrent peers for tests, on librqbit's wire library (`librqbit-peer-protocol`):
//! each listens on loopback, announces itself to a tracker as a seeder of one torrent, answers
//! the handshake, shows every piece, unchokes, and then misbehaves its own way. They count the
//! connections they got, so a test can tell they were tried.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use librqbit_buffers::ByteBuf;
use librqbit_core::Id20;
use librqbit_peer_protocol::{Handshake, Message, Piece};

/// How a hostile peer misbehaves once it has unchoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// Takes requests and never answers them (the connection stays open).
    StallAfterUnchoke,
    /// Sends HAVE for every piece, over and over, and serves nothing.
    FloodHave,
    /// Sends a message whose length prefix says 2 GiB, then garbage.
    Oversized,
    /// Sends 16 KiB blocks of random bytes for pieces nobody asked for.
    UnrequestedPieces,
    /// Answers the first request with half a block, then hangs up.
    DisconnectMidPiece,
}

/// A running hostile peer.
pub struct HostilePeer {
    pub addr: SocketAddr,
    pub hostility: Hostility,
    connections: Arc<AtomicUsize>,
}

impl HostilePeer {
    /// Starts a peer for `info_hash` (a torrent of `pieces` pieces) and announces it to the
    /// HTTP tracker at `announce` as a seeder.
    pub fn start(hostility: Hostility, announce: &str, info_hash: [u8; 20], pieces: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                counted.fetch_add(1, Ordering::Relaxed);
                std::thread::spawn(move || {
                    let _ = serve(stream, hostility, info_hash, pieces);
                });
            }
        });
        announce_as_seeder(announce, info_hash, addr.port(), hostility as u8);
        Self { addr, hostility, connections }
    }

    /// Connections this peer accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

fn announce_as_seeder(announce: &str, info_hash: [u8; 20], port: u16, n: u8) {
    let mut peer_id = *b"-HOSTILE-00000000000";
    peer_id[19] = b'a' + n;
    let url = format!(
        "{announce}?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=0&event=started&compact=1",
        percent(&info_hash),
        percent(&peer_id)
    );
    let out = std::process::Command::new("curl").args(["-sS", "-f", "--max-time", "10", &url]).output().unwrap();
    assert!(out.status.success(), "the hostile peer could not announce: {}", String::from_utf8_lossy(&out.stderr));
}

fn send(stream: &mut TcpStream, message: &Message<'_>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    let n = message.serialize(&mut buf, &Default::default).map_err(std::io::Error::other)?;
    stream.write_all(&buf[..n])
}

/// Reads one length-prefixed message; returns (id, payload). `None` at a keep-alive.
fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 {
        return Ok(None);
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    stream.read_exact(&mut body)?;
    Ok(Some((body[0], body[1..].to_vec())))
}

fn serve(mut stream: TcpStream, hostility: Hostility, info_hash: [u8; 20], pieces: u32) -> std::io::Result<()> {
    let mut theirs = [0u8; 68];
    stream.read_exact(&mut theirs)?;
    let (handshake, _) = Handshake::deserialize(&theirs).map_err(std::io::Error::other)?;
    if handshake.info_hash.0 != info_hash {
        return Ok(());
    }
    let mut ours = [0u8; 68];
    let mut mine = Handshake::new(Id20::new(info_hash), Id20::new(*b"-HOSTILE-peer-000000"));
    mine.reserved = 0; // no extensions: the misbehaviour starts right away
    let n = mine.serialize_unchecked_len(&mut ours);
    stream.write_all(&ours[..n])?;
    let mut bits = vec![0xffu8; pieces.div_ceil(8) as usize];
    if !pieces.is_multiple_of(8) {
        *bits.last_mut().unwrap() = 0xffu8 << (8 - pieces % 8);
    }
    send(&mut stream, &Message::Bitfield(ByteBuf(&bits)))?;
    send(&mut stream, &Message::Unchoke)?;
    match hostility {
        Hostility::StallAfterUnchoke => loop {
            read_message(&mut stream)?;
        },
        Hostility::FloodHave => {
            for round in 0..200 {
                for piece in 0..pieces {
                    send(&mut stream, &Message::Have(piece))?;
                }
                if round % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            loop {
                read_message(&mut stream)?;
            }
        }
        Hostility::Oversized => {
            stream.write_all(&0x8000_0000u32.to_be_bytes())?;
            stream.write_all(&[7])?;
            let garbage = vec![0x5au8; 64 * 1024];
            for _ in 0..64 {
                stream.write_all(&garbage)?;
            }
            Ok(())
        }
        Hostility::UnrequestedPieces => {
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut block = vec![0u8; 16 * 1024];
            for i in 0..400u32 {
                for b in block.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                send(&mut stream, &Message::Piece(Piece::from_data(i % pieces, 0, &block)))?;
            }
            loop {
                read_message(&mut stream)?;
            }
        }
        Hostility::DisconnectMidPiece => loop {
            if let Some((6, request)) = read_message(&mut stream)? {
                let (index, begin) = (&request[0..4], &request[4..8]);
                // A PIECE of 16 KiB announced, half of it sent, then gone.
                stream.write_all(&(9u32 + 16 * 1024).to_be_bytes())?;
                stream.write_all(&[7])?;
                stream.write_all(index)?;
                stream.write_all(begin)?;
                stream.write_all(&vec![0u8; 8 * 1024])?;
                return Ok(());
            }
        },
    }
}
