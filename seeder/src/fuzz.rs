//! Fuzz targets (proptest, stable) for what reaches the seeder from outside: API path segments
//! (digests, webseed names, repositories, `ns`), the registry's notification envelope, and the
//! tracker's scrape replies. Every input is parsed or refused, never a panic; a webseed name
//! that parses maps to exactly one store file name (no path can escape), a notification names
//! only images of valid repositories. `CORPUS` holds edge cases run first; proptest keeps
//! failures in `proptest-regressions/` (checked in).

use proptest::prelude::*;

use crate::requests::{blob_digest, pushed_images, registry, repository, webseed_name};
use crate::scrape::{parse_scrape, scrape_base};

const CORPUS: &[&[u8]] = &[
    b"",
    b"{}",
    b"{\"events\":null}",
    b"{\"events\":[{}]}",
    b"{\"events\":[{\"action\":\"push\",\"target\":{\"repository\":\"../x\",\"digest\":\"sha256:00\"}}]}",
    b"{\"events\":[{\"action\":\"push\",\"target\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"repository\":\"a\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},\"request\":{\"host\":\"r:5000\"}}]}",
    b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei-1eeee",
    b"d5:filesd3:abcd8:completei1eeee",
    b"d14:failure reason4:nopee",
];

fn check(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let _ = blob_digest(&text);
    let _ = repository(&text);
    let _ = registry(&text);
    if let Ok(digest) = webseed_name(&text) {
        // The only file a webseed name can name: the store's own for that digest.
        assert_eq!(text, digest.torrent_name(), "a webseed name that is not the canonical one parsed");
    }
    if let Ok(images) = pushed_images(input) {
        for image in images {
            assert!(!image.contains("..") && !image.contains(' '), "a notification named {image:?}");
        }
    }
    let _ = parse_scrape(input);
    let _ = scrape_base(&text);
}

#[test]
fn the_corpus_is_parsed_or_refused_cleanly() {
    for input in CORPUS {
        check(input);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&input);
    }

    #[test]
    fn webseed_names_and_digests_near_the_real_shape(hex in "[0-9a-fA-F./%-]{0,70}", sep in "[-:_/]") {
        check(format!("sha256{sep}{hex}").as_bytes());
    }

    #[test]
    fn notification_like_json_never_panics(
        repo in "[a-z0-9./_-]{0,20}",
        digest in "[a-z0-9:]{0,72}",
        host in "[a-z0-9.:/@-]{0,20}",
        action in "(push|pull|delete|x)",
    ) {
        let body = format!(
            r#"{{"events":[{{"action":"{action}","target":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"{repo}","digest":"{digest}"}},"request":{{"host":"{host}"}}}}]}}"#
        );
        check(body.as_bytes());
    }
}
