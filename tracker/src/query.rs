//! Parsing of raw announce and scrape query strings (BEP 3, BEP 23, BEP 48).
//!
//! `info_hash` and `peer_id` are arbitrary bytes, percent-encoded by some clients and partly
//! sent raw by others, so the query is decoded here byte by byte rather than through a UTF-8
//! form decoder: `%xx` in either case is one byte, `+` is the byte 0x2B (not a space), and any
//! other byte stands for itself.

use std::net::IpAddr;

use shoal_torrents::InfoHash;

use crate::swarm::Event;

/// Queries longer than this are refused before any parsing (a real announce is under 400).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Most infohashes one scrape may ask for (the number that fits a UDP scrape, BEP 15).
pub const MAX_SCRAPE_HASHES: usize = 74;

/// Why a request cannot be served. The text goes to clients as `failure reason`: it names the
/// parameter at fault and nothing about the tracker's insides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("missing info_hash")]
    MissingInfoHash,
    #[error("info_hash must be 20 bytes")]
    InvalidInfoHash,
    #[error("missing peer_id")]
    MissingPeerId,
    #[error("peer_id must be 20 bytes")]
    InvalidPeerId,
    #[error("missing port")]
    MissingPort,
    #[error("port must be a number from 1 to 65535")]
    InvalidPort,
    #[error("invalid number in {0}")]
    InvalidNumber(&'static str),
    #[error("invalid ip")]
    InvalidIp,
    #[error("malformed percent-encoding in {0}")]
    BadPercentEncoding(&'static str),
    #[error("request too long")]
    QueryTooLong,
    #[error("too many info_hash values in one scrape")]
    TooManyInfoHashes,
    #[error("full scrape is not supported; name at least one info_hash")]
    FullScrapeDisabled,
}

impl RequestError {
    /// A short fixed label for the failures metric.
    pub fn label(&self) -> &'static str {
        match self {
            RequestError::MissingInfoHash => "missing_info_hash",
            RequestError::InvalidInfoHash => "invalid_info_hash",
            RequestError::MissingPeerId => "missing_peer_id",
            RequestError::InvalidPeerId => "invalid_peer_id",
            RequestError::MissingPort => "missing_port",
            RequestError::InvalidPort => "invalid_port",
            RequestError::InvalidNumber(_) => "invalid_number",
            RequestError::InvalidIp => "invalid_ip",
            RequestError::BadPercentEncoding(_) => "bad_percent_encoding",
            RequestError::QueryTooLong => "query_too_long",
            RequestError::TooManyInfoHashes => "too_many_info_hashes",
            RequestError::FullScrapeDisabled => "full_scrape",
        }
    }
}

/// A parsed announce query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceQuery {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Absent `left` is read as "still downloading".
    pub left: Option<u64>,
    pub event: Event,
    /// `None` when absent or negative (the client leaves it to the tracker).
    pub numwant: Option<u32>,
    /// Compact form unless the client sends `compact=0`.
    pub compact: bool,
    pub no_peer_id: bool,
    pub key: Option<u32>,
    /// Parsed for validation; the tracker uses the connection's address instead (README.md).
    pub ip: Option<IpAddr>,
}

/// Splits `a=b&c=d` into raw (undecoded) key and value pairs; empty pieces are skipped.
fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| match p.iter().position(|&b| b == b'=') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (p, &p[p.len()..]),
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte of a percent-encoded value at `*i` (`%xx` in either case, anything else as it is),
/// advancing `*i` past it.
fn next_byte(raw: &[u8], i: &mut usize, param: &'static str) -> Result<u8, RequestError> {
    if raw[*i] != b'%' {
        *i += 1;
        return Ok(raw[*i - 1]);
    }
    match (raw.get(*i + 1).copied().and_then(hex_value), raw.get(*i + 2).copied().and_then(hex_value)) {
        (Some(hi), Some(lo)) => {
            *i += 3;
            Ok(hi << 4 | lo)
        }
        _ => Err(RequestError::BadPercentEncoding(param)),
    }
}

/// Decodes a percent-encoded value into exactly 20 bytes.
/// `Ok(None)` means well-formed but of the wrong length.
fn decode_20(raw: &[u8], param: &'static str) -> Result<Option<[u8; 20]>, RequestError> {
    let mut out = [0u8; 20];
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let byte = next_byte(raw, &mut i, param)?;
        if n == 20 {
            // Keep checking the encoding so that a bad escape is reported as such.
            n += 1;
            continue;
        }
        if n < 20 {
            out[n] = byte;
            n += 1;
        }
    }
    Ok((n == 20).then_some(out))
}

/// Decodes a short ASCII value (numbers, event names, addresses) into `buf`.
fn decode_small<'b>(raw: &[u8], buf: &'b mut [u8; 64], param: &'static str) -> Result<&'b [u8], RequestError> {
    if !raw.contains(&b'%') {
        let n = raw.len().min(buf.len());
        buf[..n].copy_from_slice(&raw[..n]);
        return if raw.len() > buf.len() { Err(RequestError::InvalidNumber(param)) } else { Ok(&buf[..n]) };
    }
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let byte = next_byte(raw, &mut i, param)?;
        *buf.get_mut(n).ok_or(RequestError::InvalidNumber(param))? = byte;
        n += 1;
    }
    Ok(&buf[..n])
}

fn parse_u64(raw: &[u8], param: &'static str) -> Result<u64, RequestError> {
    let mut buf = [0u8; 64];
    let digits = decode_small(raw, &mut buf, param)?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::InvalidNumber(param));
    }
    digits
        .iter()
        .try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or(RequestError::InvalidNumber(param))
}

/// Parses an announce query (the part of the URL after `?`, undecoded).
pub fn parse_announce(query: &[u8]) -> Result<AnnounceQuery, RequestError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(RequestError::QueryTooLong);
    }
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut q = AnnounceQuery {
        info_hash: InfoHash::from_bytes([0; 20]),
        peer_id: [0; 20],
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: None,
        event: Event::None,
        numwant: None,
        compact: true,
        no_peer_id: false,
        key: None,
        ip: None,
    };
    for (key, raw) in pairs(query) {
        match key {
            b"info_hash" => {
                info_hash = Some(decode_20(raw, "info_hash")?.ok_or(RequestError::InvalidInfoHash)?);
            }
            b"peer_id" => {
                peer_id = Some(decode_20(raw, "peer_id")?.ok_or(RequestError::InvalidPeerId)?);
            }
            b"port" => {
                let p = parse_u64(raw, "port").map_err(|_| RequestError::InvalidPort)?;
                port = Some(u16::try_from(p).ok().filter(|&p| p != 0).ok_or(RequestError::InvalidPort)?);
            }
            b"uploaded" => q.uploaded = parse_u64(raw, "uploaded")?,
            b"downloaded" => q.downloaded = parse_u64(raw, "downloaded")?,
            b"left" => q.left = Some(parse_u64(raw, "left")?),
            b"event" => {
                let mut buf = [0u8; 64];
                // Unknown events (libtorrent's `paused`, typos) are plain announces.
                q.event = match decode_small(raw, &mut buf, "event").unwrap_or(b"") {
                    b"started" => Event::Started,
                    b"completed" => Event::Completed,
                    b"stopped" => Event::Stopped,
                    _ => Event::None,
                };
            }
            b"numwant" | b"num_want" => {
                let mut buf = [0u8; 64];
                let v = decode_small(raw, &mut buf, "numwant")?;
                q.numwant = match v.strip_prefix(b"-") {
                    Some(rest) if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) => None,
                    _ => Some(u32::try_from(parse_u64(v, "numwant")?).unwrap_or(u32::MAX)),
                };
            }
            b"compact" => q.compact = raw != b"0",
            b"no_peer_id" => q.no_peer_id = raw != b"0",
            b"key" => {
                // Clients send 32 bits in hex (libtorrent, transmission) or decimal: keep what parses.
                let mut buf = [0u8; 64];
                let v = decode_small(raw, &mut buf, "key")?;
                q.key = std::str::from_utf8(v).ok().and_then(|s| u32::from_str_radix(s, 16).ok());
            }
            b"ip" => {
                let mut buf = [0u8; 64];
                let v = decode_small(raw, &mut buf, "ip").map_err(|_| RequestError::InvalidIp)?;
                // Host names are allowed by BEP 3; only literal addresses are kept.
                q.ip = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            }
            _ => {}
        }
    }
    q.info_hash = InfoHash::from_bytes(info_hash.ok_or(RequestError::MissingInfoHash)?);
    q.peer_id = peer_id.ok_or(RequestError::MissingPeerId)?;
    q.port = port.ok_or(RequestError::MissingPort)?;
    Ok(q)
}

/// Parses a scrape query: one or more `info_hash` values.
pub fn parse_scrape(query: &[u8]) -> Result<Vec<InfoHash>, RequestError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(RequestError::QueryTooLong);
    }
    let mut hashes = Vec::new();
    for (key, raw) in pairs(query) {
        if key == b"info_hash" {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(RequestError::TooManyInfoHashes);
            }
            let hash = decode_20(raw, "info_hash")?.ok_or(RequestError::InvalidInfoHash)?;
            let hash = InfoHash::from_bytes(hash);
            if !hashes.contains(&hash) {
                hashes.push(hash);
            }
        }
    }
    if hashes.is_empty() {
        return Err(RequestError::FullScrapeDisabled);
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_ENC: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
    const HASH: [u8; 20] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12, 0x34, 0x56,
        0x78, 0x9a,
    ];

    fn base(extra: &str) -> String {
        format!("info_hash={HASH_ENC}&peer_id=-TR3000-abcdefghijkl&port=51413{extra}")
    }

    #[test]
    fn parses_a_typical_announce() {
        let q = parse_announce(
            base("&uploaded=1&downloaded=2&left=3&event=started&numwant=80&key=1A2B3C4D&compact=1").as_bytes(),
        )
        .unwrap();
        assert_eq!(q.info_hash.as_bytes(), &HASH);
        assert_eq!(&q.peer_id, b"-TR3000-abcdefghijkl");
        assert_eq!((q.port, q.uploaded, q.downloaded, q.left), (51413, 1, 2, Some(3)));
        assert_eq!(
            (q.event, q.numwant, q.key, q.compact, q.no_peer_id),
            (Event::Started, Some(80), Some(0x1A2B3C4D), true, false)
        );
    }

    #[test]
    fn lowercase_escapes_and_plus_are_bytes() {
        // Only the escapes change case: `%9a` is the byte 0x9A like `%9A`.
        let lower = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a";
        let q =
            parse_announce(format!("info_hash={lower}&peer_id=-qB4500-++++++%2b%2B%2b+++&port=1").as_bytes()).unwrap();
        assert_eq!(q.info_hash.as_bytes(), &HASH);
        assert_eq!(&q.peer_id, b"-qB4500-++++++++++++");
    }

    #[test]
    fn transmission_unescaped_peer_id_bytes_parse() {
        // Transmission leaves RFC 3986 unreserved bytes raw and escapes the rest, mixed freely.
        let q = parse_announce(
            format!("info_hash={HASH_ENC}&peer_id=-TR2940-%01k.~_z%FF9a%20bc&port=51413&event=paused").as_bytes(),
        )
        .unwrap();
        assert_eq!(&q.peer_id, b"-TR2940-\x01k.~_z\xff9a bc");
        assert_eq!(q.event, Event::None);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases: &[(&str, RequestError)] = &[
            ("peer_id=-TR3000-abcdefghijkl&port=1", RequestError::MissingInfoHash),
            ("info_hash=abc&peer_id=-TR3000-abcdefghijkl&port=1", RequestError::InvalidInfoHash),
            ("info_hash=%zz&peer_id=-TR3000-abcdefghijkl&port=1", RequestError::BadPercentEncoding("info_hash")),
            ("info_hash=%1", RequestError::BadPercentEncoding("info_hash")),
        ];
        for (q, want) in cases {
            assert_eq!(parse_announce(q.as_bytes()), Err(*want), "{q}");
        }
        assert_eq!(
            parse_announce(base("").replace("port=51413", "port=65536").as_bytes()),
            Err(RequestError::InvalidPort)
        );
        assert_eq!(parse_announce(base("").replace("port=51413", "port=0").as_bytes()), Err(RequestError::InvalidPort));
        assert_eq!(
            parse_announce(base("").replace("port=51413", "port=-1").as_bytes()),
            Err(RequestError::InvalidPort)
        );
        assert_eq!(parse_announce(base("").replace("&port=51413", "").as_bytes()), Err(RequestError::MissingPort));
        assert_eq!(parse_announce(base("&left=x").as_bytes()), Err(RequestError::InvalidNumber("left")));
        assert_eq!(
            parse_announce(base("&uploaded=99999999999999999999999").as_bytes()),
            Err(RequestError::InvalidNumber("uploaded"))
        );
        assert_eq!(parse_announce("x".repeat(100_000).as_bytes()), Err(RequestError::QueryTooLong));
    }

    #[test]
    fn numwant_forms() {
        let numwant = |v: &str| parse_announce(base(&format!("&numwant={v}")).as_bytes()).unwrap().numwant;
        assert_eq!(numwant("0"), Some(0));
        assert_eq!(numwant("-1"), None);
        assert_eq!(numwant("1000000"), Some(1_000_000));
        assert_eq!(numwant("99999999999"), Some(u32::MAX));
    }

    #[test]
    fn compact_and_peer_id_flags() {
        let q = parse_announce(base("&compact=0&no_peer_id=1").as_bytes()).unwrap();
        assert!(!q.compact && q.no_peer_id);
        let q = parse_announce(base("").as_bytes()).unwrap();
        assert!(q.compact && !q.no_peer_id && q.left.is_none());
    }

    #[test]
    fn scrape_takes_one_or_many_hashes() {
        let one = parse_scrape(format!("info_hash={HASH_ENC}").as_bytes()).unwrap();
        assert_eq!(one, vec![InfoHash::from_bytes(HASH)]);
        let two = parse_scrape(format!("info_hash={HASH_ENC}&info_hash={}", "a".repeat(20)).as_bytes()).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(parse_scrape(b""), Err(RequestError::FullScrapeDisabled));
        let many: Vec<String> = (0..75).map(|i| format!("info_hash={:020}", i)).collect();
        assert_eq!(parse_scrape(many.join("&").as_bytes()), Err(RequestError::TooManyInfoHashes));
    }
}
