//! Headless Chromium (Debian's package) for the live pages' tests, and readers for the DOM it
//! dumps: elements by id, their attributes, `data-value` numbers and text.

use std::path::Path;
use std::process::Command;

use crate::{require_tool, run_ok};

/// Headless Chromium on `url` with its own throwaway profile and no background traffic; the
/// page gets 5 s of virtual time (several polls) before Chromium dumps or shoots it.
pub fn chromium(profile: &Path, url: &str, output: &[String]) -> Vec<u8> {
    let out = run_ok(
        Command::new("timeout")
            .arg("120")
            .arg(require_tool("chromium"))
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(output)
            .arg(url),
    );
    out.stdout
}

/// The opening tag of the element with this id, e.g. `<span id="x" data-value="3">`.
pub fn tag_with_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom.find(&format!(" id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id} in the DOM:\n{dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

pub fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag.find(&key).unwrap_or_else(|| panic!("no {name} in {tag}")) + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].to_owned()
}

/// `data-value` of the element with this id, as a number.
pub fn value_of(dom: &str, id: &str) -> u64 {
    let tag = tag_with_id(dom, id);
    attr(tag, "data-value").parse().unwrap_or_else(|e| panic!("#{id} data-value in {tag}: {e}"))
}

/// The text right inside the element with this id.
pub fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let tag = tag_with_id(dom, id);
    let at = dom.find(tag).unwrap() + tag.len();
    &dom[at..at + dom[at..].find('<').unwrap()]
}

/// Width and height from a PNG's IHDR, after checking the signature.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}
