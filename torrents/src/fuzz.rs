//! Fuzz targets (proptest, stable) for this crate's parsers of untrusted bytes: the bencode
//! decoder and `ParsedTorrent::parse` (any client's `.torrent`). Arbitrary bytes, bencode-like
//! token soup, and mutations of a real torrent must give a value or an error, never a panic,
//! and a dictionary's raw values must lie inside the input. `CORPUS` holds the edge cases run
//! first; proptest keeps any failure it finds in `proptest-regressions/` (checked in).

use proptest::prelude::*;

use crate::bencode::{self, Value};
use crate::{BlobHasher, BlobTorrent, Distribution, ParsedTorrent};

const CORPUS: &[&[u8]] = &[
    b"",
    b"i",
    b"ie",
    b"i-e",
    b"i-0e",
    b"i01e",
    b"i99999999999999999999999e",
    b"0:",
    b"1:",
    b"4294967296:",
    b"99999999999999999999:",
    b"l",
    b"le",
    b"lle",
    b"d",
    b"de",
    b"d1:ae",
    b"d1:b0:1:a0:e",
    b"d1:a0:1:a0:e",
    b"d4:infod6:lengthi-1e4:name0:12:piece lengthi0e6:pieces0:ee",
    b"d4:infod6:lengthi1e4:name1:x12:piece lengthi32768e6:pieces19:0123456789012345678ee",
];

/// A real profile torrent's bytes, to mutate.
fn real_torrent() -> Vec<u8> {
    let mut hasher = BlobHasher::new(100_000);
    hasher.update(&[7u8; 100_000]);
    let distribution = Distribution { trackers: vec!["http://t/announce".into()], webseeds: vec!["http://w/".into()] };
    BlobTorrent::from_hashed(&hasher.finish()).torrent_bytes(&distribution)
}

/// Bytes drawn from bencode's own alphabet, so the decoder goes deep instead of failing at byte 0.
fn bencode_like() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(b'd'), Just(b'l'), Just(b'e'), Just(b'i'), Just(b':'), Just(b'-'), b'0'..=b'9', b'a'..=b'z'],
        0..256,
    )
}

/// A real torrent with up to 8 bytes replaced, and maybe cut short.
fn mutated_torrent() -> impl Strategy<Value = Vec<u8>> {
    let base = real_torrent();
    let len = base.len();
    (proptest::collection::vec((0..len, any::<u8>()), 0..8), 0..=len).prop_map(move |(edits, cut)| {
        let mut bytes = base.clone();
        for (at, byte) in edits {
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(1));
        bytes
    })
}

fn check_decode(bytes: &[u8]) {
    // A dictionary's raw values (what the infohash is computed over) lie inside the input.
    if let Ok(Value::Dict(entries)) = bencode::decode(bytes) {
        for (_, _, raw) in entries {
            let start = raw.as_ptr() as usize - bytes.as_ptr() as usize;
            assert!(start + raw.len() <= bytes.len());
        }
    }
    let _ = ParsedTorrent::parse(bytes);
}

#[test]
fn the_corpus_decodes_or_fails_cleanly() {
    for input in CORPUS {
        check_decode(input);
    }
    assert!(ParsedTorrent::parse(&real_torrent()).is_ok());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_decode(&bytes);
    }

    #[test]
    fn bencode_like_bytes_never_panic(bytes in bencode_like()) {
        check_decode(&bytes);
    }

    #[test]
    fn mutated_torrents_parse_or_fail_cleanly(bytes in mutated_torrent()) {
        check_decode(&bytes);
    }
}
