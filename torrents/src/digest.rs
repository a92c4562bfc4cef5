//! The two identifiers Shoal deals in: a blob's SHA-256 digest and a torrent's v1 infohash.

use std::fmt;
use std::str::FromStr;

/// Why a digest or infohash string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDigestError {
    #[error("unsupported digest algorithm {0:?}: only sha256 is supported")]
    Algorithm(String),
    #[error("a digest is \"sha256:\" followed by 64 lowercase hex characters")]
    Format,
    #[error("an infohash is 40 hex characters")]
    InfoHashFormat,
}

/// The SHA-256 digest of an OCI blob: the name everything in Shoal is keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobDigest([u8; 32]);

impl BlobDigest {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The torrent `name` of this blob: `sha256-<hex>`, a valid file name on every system.
    pub fn torrent_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// Parses a torrent/webseed name of the form `sha256-<hex>`.
    pub fn from_torrent_name(name: &str) -> Result<Self, ParseDigestError> {
        let hex = name.strip_prefix("sha256-").ok_or(ParseDigestError::Format)?;
        Self::from_hex(hex)
    }

    fn from_hex(hex: &str) -> Result<Self, ParseDigestError> {
        // Lowercase only: OCI digests are canonical lowercase, and accepting both would give one
        // blob two names (and two paths on disk).
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(ParseDigestError::Format);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| ParseDigestError::Format)?;
        Ok(Self(out))
    }
}

impl FromStr for BlobDigest {
    type Err = ParseDigestError;

    /// Parses `sha256:<64 lowercase hex>`, the OCI form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = s.split_once(':').ok_or(ParseDigestError::Format)?;
        if algorithm != "sha256" {
            return Err(ParseDigestError::Algorithm(algorithm.chars().take(32).collect()));
        }
        Self::from_hex(hex)
    }
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobDigest({self})")
    }
}

/// A BitTorrent v1 infohash: the SHA-1 of the bencoded info dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash([u8; 20]);

impl InfoHash {
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// From raw bytes as a tracker receives them; `None` unless exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// 40 lowercase hex characters.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for InfoHash {
    type Err = ParseDigestError;

    /// Parses 40 hex characters (either case, as magnet links and clients vary).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 20];
        if s.len() != 40 {
            return Err(ParseDigestError::InfoHashFormat);
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseDigestError::InfoHashFormat)?;
        Ok(Self(out))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_round_trips_through_both_spellings() {
        let d: BlobDigest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(BlobDigest::from_torrent_name(&d.torrent_name()).unwrap(), d);
        assert!(d.torrent_name().starts_with("sha256-e3b0"));
    }

    #[test]
    fn digest_rejects_bad_input() {
        assert_eq!("sha512:00".parse::<BlobDigest>(), Err(ParseDigestError::Algorithm("sha512".into())));
        assert_eq!("sha256:abc".parse::<BlobDigest>(), Err(ParseDigestError::Format));
        assert_eq!(
            EMPTY.to_uppercase().replace("SHA256", "sha256").parse::<BlobDigest>(),
            Err(ParseDigestError::Format)
        );
        assert_eq!("e3b0".parse::<BlobDigest>(), Err(ParseDigestError::Format));
        assert!(BlobDigest::from_torrent_name("sha256-../../etc/passwd").is_err());
        assert!(BlobDigest::from_torrent_name(&format!("sha256-{}/x", &EMPTY[7..])).is_err());
    }

    #[test]
    fn infohash_parses_either_case() {
        let h: InfoHash = "9D4EAE97FC2FEE4EEB37D8A77E1F9F25B002754B".parse().unwrap();
        assert_eq!(h.to_string(), "9d4eae97fc2fee4eeb37d8a77e1f9f25b002754b");
        assert!("9d4e".parse::<InfoHash>().is_err());
        assert!(InfoHash::from_slice(&[0; 19]).is_none());
    }
}
