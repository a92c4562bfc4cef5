//! Fuzz targets (proptest, stable) for the files `shoal node install` reads before it edits
//! them: hosts.toml, daemon.json, containerd's config.toml. Never a panic; an edit that is made
//! keeps the shim first and every host or key the file had, and a second edit is a no-op.

use proptest::prelude::*;

use crate::containerd_config::{check, fixed};
use crate::daemon_json::{mirrors, with_mirror_first, DaemonJsonEdit};
use crate::hosts_toml::{host_order, with_shim_first, HostsTomlEdit, Namespace};

const SHIM: &str = "http://127.0.0.1:5000";

const CORPUS: &[&str] = &[
    "",
    "server = \"https://r\"\n",
    "[host.\"https://m\"]\n",
    "[host]\n",
    "host = []\n",
    "[[host]]\n",
    "host.\"https://m\".capabilities = [\"pull\"]\n",
    "[host.\"https://m\"]\n[host.\"https://m\".header]\nx = \"y\"\n",
    "[host.\"http://127.0.0.1:5000\"]\n",
    "version = 3\n[plugins.'io.containerd.cri.v1.images']\nuse_local_image_pull = \"yes\"\n",
    "version = 2\n[plugins]\n\"io.containerd.grpc.v1.cri\" = 1\n",
    "version = 2\nplugins = { \"io.containerd.grpc.v1.cri\" = { registry = { config_path = \"\" } } }\n",
    "{}",
    "{\"registry-mirrors\": null}",
    "{\"registry-mirrors\": [\"http://127.0.0.1:5000/\"], \"a\": {\"b\": [1, 2.5, -3, 1e400]}}",
    "{\"a\": 1, \"a\": 2}",
    "[1]",
    "\"x\"",
];

fn check_hosts_toml(text: &str) {
    let namespace = Namespace::parse_registry("ghcr.io").unwrap();
    let Ok(HostsTomlEdit::Write(edited)) = with_shim_first(Some(text), &namespace, SHIM) else { return };
    let before = host_order(text).unwrap_or_default();
    let after = host_order(&edited).expect("an edit re-parses");
    assert_eq!(after.first().map(String::as_str), Some(SHIM), "{text:?} -> {edited:?}");
    assert_eq!(&after[1..], &before[..], "{text:?} -> {edited:?}");
    assert!(matches!(
        with_shim_first(Some(&edited), &namespace, SHIM),
        Ok(HostsTomlEdit::AlreadyPresent { first: true })
    ));
}

fn check_daemon_json(text: &str) {
    let Ok(DaemonJsonEdit::Write(edited)) = with_mirror_first(Some(text), SHIM) else { return };
    let listed = mirrors(&edited).expect("an edit re-parses");
    assert_eq!(listed.first().map(String::as_str), Some(SHIM), "{text:?} -> {edited:?}");
    assert_eq!(with_mirror_first(Some(&edited), SHIM), Ok(DaemonJsonEdit::AlreadyPresent));
}

fn check_containerd_config(text: &str) {
    let dir = "/etc/containerd/certs.d";
    if let Ok(once) = fixed(Some(text), dir, None) {
        let (_, findings) = check(Some(&once), dir, None).expect("a fixed config re-parses");
        assert!(findings.iter().all(|f| !f.fixable()), "{text:?} -> {once:?}: {findings:?}");
        assert_eq!(fixed(Some(&once), dir, None).as_ref(), Ok(&once));
    }
}

fn check_all(text: &str) {
    check_hosts_toml(text);
    check_daemon_json(text);
    check_containerd_config(text);
}

#[test]
fn the_corpus_is_edited_or_refused_cleanly() {
    for text in CORPUS {
        check_all(text);
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check_all(&text);
    }

    #[test]
    fn toml_like_text_is_edited_safely(text in "(\\[{1,2}host(\\.\"[a-z:/.]{0,12}\")?\\]{1,2}\n|server = \"[a-z:/]{0,10}\"\n|version = [0-4]\n|capabilities = \\[\"pull\"\\]\n|[a-z_.\"']{1,20} = (1|true|\"x\"|\\[\\]|\\{\\})\n|\\[plugins\\.[a-z.'\"]{1,30}\\]\n){0,8}") {
        check_hosts_toml(&text);
        check_containerd_config(&text);
        check_containerd_config(&format!("version = 2\n{text}"));
        check_containerd_config(&format!("version = 3\n{text}"));
    }

    #[test]
    fn json_like_text_is_edited_safely(text in "\\{(\"[a-z-]{0,16}\": ?(1|true|null|\"x\"|\\[\\]|\\[\"[a-z:/]{0,10}\"\\]|\\{\\}), ?){0,6}\"[a-z-]{1,16}\": ?(0|\\[\\])\\}") {
        check_daemon_json(&text);
    }
}
