//! Parsing of Distribution v2 request paths into typed routes: repository names, tags, digests.
//!
//! Pure: no HTTP types. The edge maps a parse failure to the OCI error envelope.

use std::fmt;

use shoal_torrents::BlobDigest;

use crate::RegistryError;

/// A repository name as the distribution spec allows it: lowercase path components joined by
/// `/`, each `[a-z0-9]+` optionally separated by `.`, `_`, `__` or runs of `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RepoName(String);

impl RepoName {
    /// The spec caps the whole name (with registry host) at 255 characters.
    const MAX_LEN: usize = 255;

    pub(crate) fn parse(name: &str) -> Result<Self, RegistryError> {
        let invalid = || RegistryError::NameInvalid(name.chars().take(64).collect());
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(invalid());
        }
        if !name.split('/').all(valid_component) {
            return Err(invalid());
        }
        Ok(Self(name.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoName({})", self.0)
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(&b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or any number of "-".
        let start = i;
        while i < b.len() && !alnum(&b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// What a manifest request names: a tag (mutable) or a digest (immutable).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum ManifestRef {
    Tag(String),
    Digest(BlobDigest),
}

impl ManifestRef {
    pub(crate) fn parse(s: &str) -> Result<Self, RegistryError> {
        if s.contains(':') {
            return s.parse().map(Self::Digest).map_err(|_| RegistryError::DigestInvalid(s.chars().take(80).collect()));
        }
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter().all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self::Tag(s.to_owned()))
        } else {
            Err(RegistryError::ManifestInvalid(format!("invalid tag {:?}", s.chars().take(64).collect::<String>())))
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A request path under `/v2/`, parsed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    /// `/v2/`: the API version check.
    Base,
    Manifest {
        name: RepoName,
        reference: ManifestRef,
    },
    Blob {
        name: RepoName,
        digest: BlobDigest,
    },
    /// `/v2/<name>/tags/list`: content discovery, proxied to upstream.
    Tags {
        name: RepoName,
    },
    /// `/v2/_catalog`: the repositories this shim holds blobs of.
    Catalog,
    /// Paths of the push API (uploads): refused as UNSUPPORTED.
    Unsupported,
}

/// Most entries one listing page gives, whatever `n` asks for (Distribution's default cap).
pub(crate) const MAX_PAGE: usize = 1000;

/// The `n` and `last` of a listing (`tags/list`, `_catalog`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Page {
    /// At most this many entries; `None`: up to [`MAX_PAGE`].
    pub n: Option<usize>,
    /// Entries after this one (in lexical order).
    pub last: Option<String>,
}

impl Page {
    /// Reads `n` and `last` from a query string; a bad `n` is `PAGINATION_NUMBER_INVALID`.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, RegistryError> {
        let mut page = Page::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "n" => {
                    let n: usize = value.parse().map_err(|_| {
                        RegistryError::PaginationInvalid(format!("n must be a non-negative integer, not {value:?}"))
                    })?;
                    page.n = Some(n.min(MAX_PAGE));
                }
                "last" => page.last = Some(value.into_owned()).filter(|l| !l.is_empty()),
                _ => {}
            }
        }
        Ok(page)
    }

    /// The page of `entries` (sorted, deduplicated) after `last`, and whether more follow.
    pub(crate) fn of(&self, entries: &[String]) -> (Vec<String>, bool) {
        let n = self.n.unwrap_or(MAX_PAGE);
        let after = entries.iter().filter(|e| self.last.as_ref().is_none_or(|l| e.as_str() > l.as_str()));
        let mut page: Vec<String> = after.take(n + 1).cloned().collect();
        let more = page.len() > n;
        page.truncate(n);
        (page, more)
    }

    /// The `Link` header of the next page after `entries` (relative, as Distribution sends it),
    /// keeping `ns` for a mirror request.
    pub(crate) fn next_link(&self, path: &str, entries: &[String], ns: Option<&str>) -> Option<String> {
        let last = entries.last()?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(ns) = ns {
            query.append_pair("ns", ns);
        }
        query.append_pair("n", &self.n.unwrap_or(MAX_PAGE).to_string()).append_pair("last", last);
        Some(format!("<{path}?{}>; rel=\"next\"", query.finish()))
    }
}

impl Route {
    /// Parses the path after `/v2/` (the name may hold several `/`-separated components).
    pub(crate) fn parse(rest: &str) -> Result<Self, RegistryError> {
        if rest.is_empty() {
            return Ok(Route::Base);
        }
        if rest.contains("/blobs/uploads") {
            return Ok(Route::Unsupported);
        }
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Route::Tags { name: RepoName::parse(name)? });
        }
        if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
            return Ok(Route::Manifest { name: RepoName::parse(name)?, reference: ManifestRef::parse(reference)? });
        }
        if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
            let name = RepoName::parse(name)?;
            let digest = digest.parse().map_err(|_| RegistryError::DigestInvalid(digest.chars().take(80).collect()))?;
            return Ok(Route::Blob { name, digest });
        }
        Err(RegistryError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn names_follow_the_spec() {
        for ok in ["a", "library/ubuntu", "my-org/my.repo/x__y", "a-----b", "0/1/2"] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a/", "/a", "a//b", "-a", "a-", "a..b", "a___b", "..", "a/../b", "a b", "a%2fb"] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn routes_parse_multi_segment_names() {
        assert_eq!(Route::parse("").unwrap(), Route::Base);
        let r = Route::parse("org/team/app/manifests/v1.2").unwrap();
        assert_eq!(
            r,
            Route::Manifest {
                name: RepoName::parse("org/team/app").unwrap(),
                reference: ManifestRef::Tag("v1.2".into())
            }
        );
        let r = Route::parse(&format!("a/b/blobs/{D}")).unwrap();
        assert!(matches!(r, Route::Blob { .. }));
        let r = Route::parse(&format!("a/manifests/{D}")).unwrap();
        assert!(matches!(r, Route::Manifest { reference: ManifestRef::Digest(_), .. }));
    }

    #[test]
    fn bad_paths_get_the_right_error() {
        assert!(matches!(Route::parse("a/blobs/sha256:xyz"), Err(RegistryError::DigestInvalid(_))));
        assert!(matches!(Route::parse("a/blobs/md5:00"), Err(RegistryError::DigestInvalid(_))));
        assert!(matches!(Route::parse("UPPER/manifests/x"), Err(RegistryError::NameInvalid(_))));
        assert!(matches!(Route::parse("a/manifests/-bad"), Err(RegistryError::ManifestInvalid(_))));
        assert!(matches!(Route::parse("a/nothing"), Err(RegistryError::NotFound)));
        assert_eq!(Route::parse("a/blobs/uploads/").unwrap(), Route::Unsupported);
        assert_eq!(Route::parse("a/b/tags/list").unwrap(), Route::Tags { name: RepoName::parse("a/b").unwrap() });
        assert_eq!(Route::parse("_catalog").unwrap(), Route::Catalog);
        assert!(matches!(Route::parse("A/tags/list"), Err(RegistryError::NameInvalid(_))));
    }

    #[test]
    fn pages_take_n_after_last_and_say_whether_more_follow() {
        let entries: Vec<String> = ["a", "b", "c", "d"].map(String::from).into();
        let page = |q: &str| Page::parse(Some(q)).unwrap();
        assert_eq!(page("n=2").of(&entries), (vec!["a".to_owned(), "b".to_owned()], true));
        assert_eq!(page("n=2&last=b").of(&entries), (vec!["c".to_owned(), "d".to_owned()], false));
        assert_eq!(page("last=bb").of(&entries).0, ["c", "d"]);
        assert_eq!(page("n=0").of(&entries), (vec![], true));
        assert_eq!(page("").of(&entries).0.len(), 4);
        assert_eq!(page("n=999999").n, Some(MAX_PAGE));
        assert!(matches!(Page::parse(Some("n=-1")), Err(RegistryError::PaginationInvalid(_))));
        assert!(matches!(Page::parse(Some("n=x")), Err(RegistryError::PaginationInvalid(_))));
        let link = page("n=2").next_link("/v2/a/tags/list", &entries[..2], Some("docker.io")).unwrap();
        assert_eq!(link, "</v2/a/tags/list?ns=docker.io&n=2&last=b>; rel=\"next\"");
        assert_eq!(page("n=2").next_link("/v2/_catalog", &[], None), None);
    }
}
