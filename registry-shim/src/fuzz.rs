//! Fuzz targets (proptest, stable) for what a registry client sends the shim: the path after
//! `/v2/` (names, references, digests), the `n`/`last` query, `Authorization` headers and
//! `Accept` lists. Every input is parsed or refused, never a panic; a parsed name has only
//! components of the Distribution grammar (so no `..` reaches a path), and a parsed digest is
//! 64 lowercase hex. `CORPUS` holds edge cases run first; proptest keeps failures in
//! `proptest-regressions/` (checked in).

use proptest::prelude::*;

use crate::auth::parse_authorization;
use crate::media::accepted;
use crate::route::{Page, RepoName, Route};

const CORPUS: &[&str] = &[
    "",
    "/",
    "//",
    "../manifests/v1",
    "a/../b/manifests/v1",
    "a/manifests/",
    "a/manifests/..",
    "a/blobs/sha256:",
    "a/blobs/sha256:../../etc/passwd",
    "a/blobs/SHA256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    "a/blobs/uploads/",
    "_catalog",
    "a/tags/list",
    "/tags/list",
    "a//b/manifests/v1",
    "a/manifests/v1/manifests/v2",
    "a/manifests/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "a/manifests/-tag",
    "a/manifests/t\u{0}ag",
];

/// Paths built from the pieces the router knows, so the parsers go past the first check.
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("manifests".to_owned()),
        Just("blobs".to_owned()),
        Just("tags".to_owned()),
        Just("list".to_owned()),
        Just("uploads".to_owned()),
        Just("..".to_owned()),
        Just("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned()),
        "[a-z0-9._-]{0,12}",
        "[ -~]{0,8}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.join("/"))
}

fn check_path(path: &str) {
    let name = match Route::parse(path) {
        Ok(Route::Manifest { name, .. } | Route::Tags { name }) => name,
        Ok(Route::Blob { name, digest }) => {
            let hex = digest.hex();
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            name
        }
        _ => return,
    };
    for component in name.as_str().split('/') {
        assert!(!component.is_empty() && component != "." && component != "..", "{path:?} gave name {name}");
    }
    assert_eq!(RepoName::parse(name.as_str()).unwrap(), name, "a parsed name re-parses the same");
}

#[test]
fn the_corpus_is_parsed_or_refused_cleanly() {
    for path in CORPUS {
        check_path(path);
    }
}

proptest! {
    #[test]
    fn arbitrary_paths_never_panic(path in "\\PC{0,200}") {
        check_path(&path);
    }

    #[test]
    fn path_like_strings_parse_to_safe_names(path in path_like()) {
        check_path(&path);
    }

    #[test]
    fn arbitrary_queries_authorization_and_accept_never_panic(
        query in "\\PC{0,120}",
        header in proptest::collection::vec(any::<u8>(), 0..200),
        accept in proptest::collection::vec("[ -~]{0,80}", 0..4),
    ) {
        let _ = Page::parse(Some(&query));
        let _ = parse_authorization(&header);
        let mut basic = b"Basic ".to_vec();
        basic.extend_from_slice(&header);
        let _ = parse_authorization(&basic);
        let headers: Vec<&str> = accept.iter().map(String::as_str).collect();
        let _ = accepted(&headers);
    }
}
