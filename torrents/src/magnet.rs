//! Magnet links (BEP 9) in the profile's shape: `xt`, `dn`, `xl`, then `tr`, `ws` and `xs`.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::InfoHash;

/// Everything but RFC 3986 unreserved characters is escaped, so a tracker URL's own `&` and `?`
/// can never be read as the magnet's.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A magnet link. Displays as `magnet:?xt=urn:btih:<40 hex>&dn=..&xl=..&tr=..&ws=..&xs=..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub trackers: Vec<String>,
    pub webseeds: Vec<String>,
    /// Where the .torrent itself can be fetched (`xs`), for clients that prefer it to BEP 9.
    pub torrent_url: Option<String>,
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.hex())?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", utf8_percent_encode(name, COMPONENT))?;
        }
        if let Some(size) = self.size {
            write!(f, "&xl={size}")?;
        }
        for (key, urls) in [("tr", &self.trackers), ("ws", &self.webseeds)] {
            for url in urls {
                write!(f, "&{key}={}", utf8_percent_encode(url, COMPONENT))?;
            }
        }
        if let Some(xs) = &self.torrent_url {
            write!(f, "&xs={}", utf8_percent_encode(xs, COMPONENT))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_profile_order_and_escapes_urls() {
        let m = Magnet {
            info_hash: InfoHash::from_bytes([0xab; 20]),
            name: Some("sha256-00".into()),
            size: Some(42),
            trackers: vec!["http://t:6969/announce?k=1&x=2".into()],
            webseeds: vec!["http://s:7000/webseed/".into()],
            torrent_url: Some("http://s:7000/v1/blobs/sha256:00/torrent".into()),
        };
        assert_eq!(
            m.to_string(),
            "magnet:?xt=urn:btih:abababababababababababababababababababab&dn=sha256-00&xl=42\
             &tr=http%3A%2F%2Ft%3A6969%2Fannounce%3Fk%3D1%26x%3D2\
             &ws=http%3A%2F%2Fs%3A7000%2Fwebseed%2F\
             &xs=http%3A%2F%2Fs%3A7000%2Fv1%2Fblobs%2Fsha256%3A00%2Ftorrent"
        );
    }
}
