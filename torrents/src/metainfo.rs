//! Canonical .torrent bytes for a blob, and the reading of .torrent files from anywhere.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::bencode::{self, Encode, Value};
use crate::rendezvous::rendezvous_order;
use crate::{BlobDigest, HashedBlob, InfoHash, Magnet, PieceLength};

fn info_hash_of(info_bytes: &[u8]) -> InfoHash {
    InfoHash::from_bytes(Sha1::digest(info_bytes).into())
}

/// How many trackers a blob's torrent names: its owner and two to fail over to (BEP 12 tiers).
pub const TRACKER_TIERS: usize = 3;

/// Where a torrent's peers and bytes come from: everything outside the info dictionary.
///
/// `trackers` are the tracker members. Each blob's torrent names its own owners among them:
/// the members in rendezvous order of its infohash, at most [`TRACKER_TIERS`], one BEP 12 tier
/// each (`announce` is the owner). Every party orders them the same way, so a swarm meets at its
/// owner, the trackers share the swarms between them without talking to each other, and a client
/// whose owner is down goes to the next tier by itself. Webseeds go into `url-list` (BEP 19). A
/// webseed base should end in `/` so that clients append the torrent name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    pub trackers: Vec<String>,
    pub webseeds: Vec<String>,
}

impl Distribution {
    /// Drops repeats while keeping the order given, so the same set always encodes the same.
    pub fn normalized(&self) -> Self {
        fn dedup(urls: &[String]) -> Vec<String> {
            let mut seen = Vec::new();
            for url in urls {
                if !seen.contains(url) {
                    seen.push(url.clone());
                }
            }
            seen
        }
        Self { trackers: dedup(&self.trackers), webseeds: dedup(&self.webseeds) }
    }

    /// What one blob's torrent names: the trackers in rendezvous order of `info_hash`, the
    /// first [`TRACKER_TIERS`] of them (owner first), and the webseeds as given.
    pub fn for_info_hash(&self, info_hash: InfoHash) -> Self {
        let d = self.normalized();
        let trackers = rendezvous_order(info_hash.as_bytes(), &d.trackers);
        Self { trackers: trackers.into_iter().take(TRACKER_TIERS).map(str::to_owned).collect(), webseeds: d.webseeds }
    }

    /// The magnet of a torrent handed out so: all a magnet needs is the infohash, name and size;
    /// its `tr=` are the torrent's tiers, in order.
    pub fn magnet(&self, info_hash: InfoHash, name: String, size: u64) -> Magnet {
        let d = self.for_info_hash(info_hash);
        Magnet {
            info_hash,
            name: Some(name),
            size: Some(size),
            trackers: d.trackers,
            webseeds: d.webseeds,
            torrent_url: None,
        }
    }
}

/// One blob's single-file v1 torrent, in the profile's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobTorrent {
    pub name: String,
    pub size: u64,
    pub piece_length: PieceLength,
    pub pieces: Vec<[u8; 20]>,
}

impl BlobTorrent {
    /// The profile's torrent of a hashed blob: named `sha256-<hex>`.
    pub fn from_hashed(blob: &HashedBlob) -> Self {
        Self::named(blob, blob.digest.torrent_name())
    }

    /// Same pieces under another name (`shoal torrent --name`): a different infohash.
    pub fn named(blob: &HashedBlob, name: String) -> Self {
        Self { name, size: blob.size, piece_length: blob.piece_length, pieces: blob.pieces.clone() }
    }

    /// The digest the name claims, if the name is the profile's.
    pub fn digest(&self) -> Option<BlobDigest> {
        BlobDigest::from_torrent_name(&self.name).ok()
    }

    /// The bencoded info dictionary: exactly `length`, `name`, `piece length`, `pieces`.
    pub fn info_bytes(&self) -> Vec<u8> {
        let mut pieces = Vec::with_capacity(self.pieces.len() * 20);
        self.pieces.iter().for_each(|p| pieces.extend_from_slice(p));
        let mut info = BTreeMap::new();
        info.insert(b"length".to_vec(), Encode::Int(self.size as i64));
        info.insert(b"name".to_vec(), Encode::str(&self.name));
        info.insert(b"piece length".to_vec(), Encode::Int(i64::from(self.piece_length.bytes())));
        info.insert(b"pieces".to_vec(), Encode::Bytes(pieces));
        Encode::Dict(info).to_bytes()
    }

    pub fn info_hash(&self) -> InfoHash {
        info_hash_of(&self.info_bytes())
    }

    /// The whole .torrent file. No `creation date` or `created by`: the same blob and the same
    /// distribution always give the same bytes.
    pub fn torrent_bytes(&self, distribution: &Distribution) -> Vec<u8> {
        // Encoded once: the trackers' order depends on its hash, and the file holds it.
        let info = self.info_bytes();
        let d = distribution.for_info_hash(info_hash_of(&info));
        let mut top = BTreeMap::new();
        if let Some(first) = d.trackers.first() {
            top.insert(b"announce".to_vec(), Encode::str(first));
            let tiers = d.trackers.iter().map(|t| Encode::List(vec![Encode::str(t)])).collect();
            top.insert(b"announce-list".to_vec(), Encode::List(tiers));
        }
        top.insert(b"info".to_vec(), Encode::Raw(info));
        if !d.webseeds.is_empty() {
            top.insert(b"url-list".to_vec(), Encode::List(d.webseeds.iter().map(|w| Encode::str(w)).collect()));
        }
        Encode::Dict(top).to_bytes()
    }

    pub fn magnet(&self, distribution: &Distribution) -> Magnet {
        distribution.magnet(self.info_hash(), self.name.clone(), self.size)
    }
}

/// Why a .torrent file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error(transparent)]
    Bencode(#[from] bencode::DecodeError),
    #[error("not a torrent: the top level is not a dictionary")]
    NotADictionary,
    #[error("not a torrent: no info dictionary")]
    NoInfo,
    #[error("invalid torrent: {0}")]
    Invalid(&'static str),
}

/// What `shoal magnet` needs from any .torrent file, ours or another tool's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedTorrent {
    /// SHA-1 of the info dictionary exactly as it appears in the file.
    pub info_hash: InfoHash,
    pub name: Option<String>,
    /// Total size: `length`, or the sum of `files` for a multi-file torrent.
    pub size: Option<u64>,
    /// `piece length`, as the file states it (not checked against the profile).
    pub piece_length: u64,
    /// The SHA-1 of each piece.
    pub pieces: Vec<[u8; 20]>,
    pub distribution: Distribution,
}

impl ParsedTorrent {
    pub fn parse(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let top = bencode::decode(bytes)?;
        if !matches!(top, Value::Dict(_)) {
            return Err(MetainfoError::NotADictionary);
        }
        let (info, info_raw) = top.get("info").ok_or(MetainfoError::NoInfo)?;
        if !matches!(info, Value::Dict(_)) {
            return Err(MetainfoError::Invalid("info is not a dictionary"));
        }
        if info.get("pieces").is_none() && info.get("file tree").is_some() {
            return Err(MetainfoError::Invalid("a BitTorrent v2-only torrent (BEP 52) has no v1 infohash"));
        }
        let name = match info.get("name") {
            Some((v, _)) => {
                let b = v.as_bytes().ok_or(MetainfoError::Invalid("name is not a string"))?;
                Some(String::from_utf8(b.to_vec()).map_err(|_| MetainfoError::Invalid("name is not UTF-8"))?)
            }
            None => None,
        };
        let size = match (info.get("length"), info.get("files")) {
            (Some((v, _)), _) => Some(non_negative(v)?),
            (None, Some((files, _))) => {
                let files = files.as_list().ok_or(MetainfoError::Invalid("files is not a list"))?;
                let mut total = 0u64;
                for f in files {
                    let (len, _) = f.get("length").ok_or(MetainfoError::Invalid("a file has no length"))?;
                    total = total.checked_add(non_negative(len)?).ok_or(MetainfoError::Invalid("sizes overflow"))?;
                }
                Some(total)
            }
            (None, None) => return Err(MetainfoError::Invalid("info has neither length nor files")),
        };
        let pieces = match info.get("pieces").and_then(|(v, _)| v.as_bytes()) {
            Some(p) if p.len() % 20 == 0 => {
                p.chunks_exact(20).map(|c| <[u8; 20]>::try_from(c).expect("20-byte chunk")).collect()
            }
            _ => return Err(MetainfoError::Invalid("pieces is missing or not a multiple of 20 bytes")),
        };
        let piece_length = match info.get("piece length") {
            Some((v, _)) => non_negative(v)?,
            None => return Err(MetainfoError::Invalid("info has no piece length")),
        };
        let mut trackers = Vec::new();
        if let Some((tiers, _)) = top.get("announce-list") {
            for tier in tiers.as_list().ok_or(MetainfoError::Invalid("announce-list is not a list"))? {
                for url in tier.as_list().ok_or(MetainfoError::Invalid("an announce-list tier is not a list"))? {
                    trackers.push(utf8(url, "a tracker URL is not a UTF-8 string")?);
                }
            }
        }
        if let Some((announce, _)) = top.get("announce") {
            let announce = utf8(announce, "announce is not a UTF-8 string")?;
            if !trackers.contains(&announce) {
                trackers.insert(0, announce);
            }
        }
        let webseeds = match top.get("url-list") {
            None => Vec::new(),
            Some((Value::Bytes(b""), _)) => Vec::new(),
            Some((v @ Value::Bytes(_), _)) => vec![utf8(v, "url-list is not UTF-8")?],
            Some((Value::List(urls), _)) => {
                urls.iter().map(|u| utf8(u, "a url-list entry is not a UTF-8 string")).collect::<Result<_, _>>()?
            }
            Some(_) => return Err(MetainfoError::Invalid("url-list is neither a string nor a list")),
        };
        Ok(Self {
            info_hash: info_hash_of(info_raw),
            name,
            size,
            piece_length,
            pieces,
            distribution: Distribution { trackers, webseeds }.normalized(),
        })
    }

    pub fn magnet(&self) -> Magnet {
        Magnet {
            info_hash: self.info_hash,
            name: self.name.clone(),
            size: self.size,
            trackers: self.distribution.trackers.clone(),
            webseeds: self.distribution.webseeds.clone(),
            torrent_url: None,
        }
    }
}

fn non_negative(v: &Value<'_>) -> Result<u64, MetainfoError> {
    v.as_int()
        .and_then(|i| u64::try_from(i).ok())
        .ok_or(MetainfoError::Invalid("a length is not a non-negative integer"))
}

fn utf8(v: &Value<'_>, what: &'static str) -> Result<String, MetainfoError> {
    let b = v.as_bytes().ok_or(MetainfoError::Invalid(what))?;
    String::from_utf8(b.to_vec()).map_err(|_| MetainfoError::Invalid(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlobHasher;

    fn blob(bytes: &[u8]) -> BlobTorrent {
        let mut h = BlobHasher::new(bytes.len() as u64);
        h.update(bytes);
        BlobTorrent::from_hashed(&h.finish())
    }

    fn dist() -> Distribution {
        Distribution {
            trackers: vec!["http://t1/announce".into(), "udp://t2:6969".into(), "http://t1/announce".into()],
            webseeds: vec!["http://seeder:7000/webseed/".into()],
        }
    }

    #[test]
    fn info_dict_holds_exactly_the_four_keys() {
        let t = blob(b"hello");
        let info = t.info_bytes();
        let v = bencode::decode(&info).unwrap();
        let Value::Dict(entries) = v else { panic!() };
        let keys: Vec<_> = entries.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(keys, [&b"length"[..], b"name", b"piece length", b"pieces"]);
    }

    #[test]
    fn parse_recovers_what_we_wrote() {
        let t = blob(b"hello");
        let bytes = t.torrent_bytes(&dist());
        let parsed = ParsedTorrent::parse(&bytes).unwrap();
        assert_eq!(parsed.info_hash, t.info_hash());
        assert_eq!(parsed.size, Some(5));
        assert_eq!(parsed.name.as_deref(), Some(t.name.as_str()));
        assert_eq!(parsed.piece_length, u64::from(t.piece_length.bytes()));
        assert_eq!(parsed.pieces, t.pieces);
        assert_eq!(parsed.distribution, dist().for_info_hash(t.info_hash()));
        assert_eq!(parsed.magnet(), t.magnet(&dist()));
    }

    #[test]
    fn each_torrent_names_its_owner_tracker_first_one_tier_each() {
        let trackers: Vec<String> = (0..5).map(|i| format!("http://tracker-{i}/announce")).collect();
        let d = Distribution { trackers: trackers.clone(), webseeds: vec![] };
        let mut owners = std::collections::HashSet::new();
        for content in [&b"a"[..], b"b", b"c", b"d", b"e", b"f", b"g", b"h"] {
            let t = blob(content);
            let bytes = t.torrent_bytes(&d);
            let top = bencode::decode(&bytes).unwrap();
            let order = crate::rendezvous_order(t.info_hash().as_bytes(), &trackers);
            let announce = top.get("announce").unwrap().0.as_bytes().unwrap().to_vec();
            assert_eq!(announce, order[0].as_bytes(), "announce is the owner");
            let tiers = top.get("announce-list").unwrap().0.as_list().unwrap();
            let tiers: Vec<Vec<u8>> =
                tiers.iter().map(|tier| tier.as_list().unwrap()[0].as_bytes().unwrap().to_vec()).collect();
            let expected: Vec<Vec<u8>> = order[..TRACKER_TIERS].iter().map(|t| t.as_bytes().to_vec()).collect();
            assert_eq!(tiers, expected, "one tier each, owner first, then the next two");
            assert_eq!(t.magnet(&d).trackers, order[..TRACKER_TIERS], "the magnet's tr= in the same order");
            owners.insert(order[0].to_owned());
        }
        assert!(owners.len() > 1, "different blobs, different owners");
    }

    #[test]
    fn no_trackers_means_no_announce_keys() {
        let bytes = blob(b"x").torrent_bytes(&Distribution::default());
        assert!(!bytes.windows(8).any(|w| w == b"announce"));
        assert!(!bytes.windows(8).any(|w| w == b"url-list"));
    }

    #[test]
    fn foreign_torrents_parse_and_hash_as_written() {
        // Unsorted info keys and an extra key: the infohash must still be of the raw bytes.
        let info = b"d4:name1:a6:lengthi3e12:piece lengthi32768e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei0ee";
        let file = [&b"d8:announce5:http:4:info"[..], info, b"8:url-list6:http:/e"].concat();
        let parsed = ParsedTorrent::parse(&file).unwrap();
        assert_eq!(parsed.info_hash, InfoHash::from_bytes(Sha1::digest(info).into()));
        assert_eq!(parsed.distribution.webseeds, ["http:/"]);
    }

    #[test]
    fn bad_torrents_get_clear_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"le", "not a dictionary"),
            (b"de", "no info"),
            (b"d4:infoi1ee", "info is not a dictionary"),
            (b"d4:infod4:name1:aee", "neither length nor files"),
            (b"d4:infod6:lengthi-1e6:pieces0:ee", "non-negative"),
            (b"d4:infod6:lengthi1e6:pieces3:abcee", "multiple of 20"),
            (b"d4:info", "malformed bencode"),
            (b"d4:infod9:file treede12:meta versioni2e4:name1:aee", "v2-only"),
        ];
        for (input, needle) in cases {
            let err = ParsedTorrent::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn mutated_torrents_never_panic() {
        let good = blob(&[5u8; 100_000]).torrent_bytes(&dist());
        let mut x = 0x2545f4914f6cdd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b"0123456789:ilde"[(next() % 15) as usize]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = ParsedTorrent::parse(&bytes);
        }
    }
}
