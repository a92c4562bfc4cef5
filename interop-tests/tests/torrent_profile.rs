//! The torrent profile against stock tools: mktorrent and libtorrent compute our infohashes,
//! transmission-create cannot (it adds `private`), and aria2c downloads over our webseed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::{require_tool, run_ok, sha256_file, system_python, write_blob};
use shoal_torrents::{hash_reader, BlobTorrent, Distribution, HashedBlob, ParsedTorrent};

const PIECE: usize = 32 * 1024;

/// The edge sizes the profile must get right, named for failure messages.
const EDGES: [(&str, usize); 5] = [
    ("0 bytes", 0),
    ("1 byte", 1),
    ("exactly one piece", PIECE),
    ("an exact multiple of the piece length", 4 * PIECE),
    ("one byte over a multiple", 4 * PIECE + 1),
];

fn hash(path: &Path) -> HashedBlob {
    let f = std::fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    hash_reader(f, size, &mut |_| {}).unwrap()
}

fn info_hash_of_file(torrent: &Path) -> String {
    ParsedTorrent::parse(&std::fs::read(torrent).unwrap()).unwrap().info_hash.hex()
}

#[test]
fn mktorrent_computes_our_infohash() {
    let mktorrent = require_tool("mktorrent");
    let dir = tempfile::tempdir().unwrap();
    // Sizes that select larger piece lengths too, so the table itself is cross-checked.
    let more = [("65 MiB (64 KiB pieces)", (65 << 20) + 7)];
    for (i, (what, len)) in EDGES.iter().chain(more.iter()).enumerate() {
        let blob = write_blob(dir.path(), &format!("blob{i}"), *len, i as u64 + 1);
        let hashed = hash(&blob);
        let ours = BlobTorrent::from_hashed(&hashed);
        let out = dir.path().join(format!("blob{i}.torrent"));
        run_ok(
            Command::new(&mktorrent)
                .arg("-l")
                .arg(hashed.piece_length.log2().to_string())
                .arg("-n")
                .arg(&ours.name)
                .arg("-o")
                .arg(&out)
                .arg(&blob),
        );
        assert_eq!(info_hash_of_file(&out), ours.info_hash().hex(), "mktorrent disagrees for {what}");
    }
}

/// Creates a v1-only torrent of `path` named `name` with libtorrent and prints its infohash.
const LIBTORRENT_CREATE: &str = r#"
import os, sys, libtorrent as lt
path, name, piece = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.path.join(os.path.dirname(path), "lt-root")
os.makedirs(root, exist_ok=True)
link = os.path.join(root, name)
if not os.path.exists(link):
    os.symlink(path, link)
fs = lt.file_storage()
fs.add_file(name, os.path.getsize(path))
t = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(t, root)
print(lt.torrent_info(t.generate()).info_hash())
"#;

fn libtorrent_info_hash(path: &Path, name: &str, piece: u32) -> std::process::Output {
    Command::new(system_python())
        .args(["-c", LIBTORRENT_CREATE])
        .arg(path)
        .arg(name)
        .arg(piece.to_string())
        .output()
        .unwrap()
}

#[test]
fn libtorrent_computes_our_infohash() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, len)) in EDGES.iter().enumerate() {
        let blob = write_blob(dir.path(), &format!("blob{i}"), *len, 100 + i as u64);
        let hashed = hash(&blob);
        let ours = BlobTorrent::from_hashed(&hashed);
        let out = libtorrent_info_hash(&blob, &ours.name, hashed.piece_length.bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        if *len == 0 {
            // libtorrent refuses to create (or load) a torrent of zero bytes, so the empty blob
            // is never a swarm; docs/torrent-profile.md says how Shoal serves it instead.
            assert!(!out.status.success() && stderr.contains("invalid length"), "libtorrent on 0 bytes: {stderr}");
            continue;
        }
        assert!(out.status.success(), "libtorrent failed for {what}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            ours.info_hash().hex(),
            "libtorrent disagrees for {what}"
        );
    }
}

#[test]
fn transmission_create_cannot_match_because_it_adds_private() {
    let tc = require_tool("transmission-create");
    let dir = tempfile::tempdir().unwrap();
    let blob = write_blob(dir.path(), "blob", 3 * PIECE + 5, 7);
    let hashed = hash(&blob);
    let ours = BlobTorrent::from_hashed(&hashed);
    // transmission-create names the torrent after the file, so give the file the profile name.
    let named = dir.path().join(&ours.name);
    std::fs::rename(&blob, &named).unwrap();
    let out = dir.path().join("t.torrent");
    run_ok(
        Command::new(tc)
            .arg("-s")
            .arg((hashed.piece_length.bytes() / 1024).to_string())
            .arg("-o")
            .arg(&out)
            .arg(&named)
            .stdout(Stdio::null()),
    );
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.windows(9).any(|w| w == b"7:private"), "transmission-create no longer writes private");
    assert_ne!(info_hash_of_file(&out), ours.info_hash().hex());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2c_downloads_over_the_webseed_alone() {
    let aria2c = require_tool("aria2c");
    let served = tempfile::tempdir().unwrap();
    let len = 5 * PIECE * 7 + 1234; // 36 pieces, the last one short
    let blob = write_blob(served.path(), "src", len, 42);
    let hashed = hash(&blob);
    let torrent = BlobTorrent::from_hashed(&hashed);
    // The webseed serves the blob under its torrent name, as the seeder's /webseed/ will.
    std::fs::rename(&blob, served.path().join(&torrent.name)).unwrap();

    let app = axum::Router::new().nest_service("/webseed", tower_http::services::ServeDir::new(served.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let work = tempfile::tempdir().unwrap();
    let distribution = Distribution { trackers: vec![], webseeds: vec![format!("http://{addr}/webseed/")] };
    let torrent_path = work.path().join("blob.torrent");
    std::fs::write(&torrent_path, torrent.torrent_bytes(&distribution)).unwrap();
    let out_dir = work.path().join("out");

    let mut cmd = tokio::process::Command::new(aria2c);
    cmd.arg("--dir")
        .arg(&out_dir)
        .args(shoal_interop_tests::ARIA2C_NO_DISCOVERY)
        .args(["--seed-time=0", "--follow-torrent=mem", "--console-log-level=warn", "--summary-interval=0"])
        .arg(&torrent_path)
        .kill_on_drop(true);
    let out =
        tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("aria2c finished in time").unwrap();
    assert!(out.status.success(), "aria2c failed: {}", String::from_utf8_lossy(&out.stdout));
    let got = out_dir.join(&torrent.name);
    assert_eq!(sha256_file(&got), hashed.digest.to_string());
}
