//! `shoal seeder` super-seeds (BEP 16) and stock clients still download from it: a peer that
//! connects alone is shown every piece; one that connects while others download is shown only a
//! few, checked on the wire with a raw BitTorrent handshake; three aria2c started together all
//! finish with the right SHA-256.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_interop_tests::registry::{skopeo_push, start_registry, write_oci_layout};
use shoal_interop_tests::{
    aria2c_command, assert_aria2c_succeeded, free_port, require_tool, sha256_file, spawn_seeder,
};
use shoal_torrents::{hash_reader, BlobTorrent, Distribution};

/// Connects to a BitTorrent peer, handshakes for `info_hash` and returns the bitfield it sends
/// first, as (pieces set, pieces in all).
fn bitfield_shown(addr: &str, info_hash: &[u8; 20], pieces: usize) -> (usize, usize) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut handshake = vec![19u8];
    handshake.extend_from_slice(b"BitTorrent protocol");
    handshake.extend_from_slice(&[0; 8]);
    handshake.extend_from_slice(info_hash);
    handshake.extend_from_slice(b"-PR0001-superseedtst");
    conn.write_all(&handshake).unwrap();
    let mut reply = [0u8; 68];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[28..48], info_hash, "the seeder answers for the torrent");
    loop {
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).unwrap();
        let len = u32::from_be_bytes(len) as usize;
        let mut message = vec![0u8; len];
        conn.read_exact(&mut message).unwrap();
        match message.first() {
            Some(5) => {
                let set = message[1..].iter().map(|b| b.count_ones() as usize).sum();
                assert_eq!(message.len() - 1, pieces.div_ceil(8), "bitfield length");
                return (set, pieces);
            }
            Some(_) => continue,
            None => continue, // keep-alive
        }
    }
}

#[test]
fn stock_clients_download_from_a_super_seeding_seeder() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (blobs, _) = write_oci_layout(&layout, "v1", &[16 << 20], 7);
    let (_registry, rport) = start_registry(&tmp.path().join("registry"), "");
    skopeo_push(&layout, "v1", rport, "team/super");
    let layer = &blobs[1];
    let hashed = hash_reader(std::fs::File::open(&layer.path).unwrap(), layer.size, &mut |_| {}).unwrap();
    let torrent = BlobTorrent::from_hashed(&hashed);
    let pieces = hashed.pieces.len();
    assert!(pieces >= 32, "enough pieces to show a few at a time: {pieces}");

    let tracker = shoal_tracker::spawn(shoal_tracker::TrackerConfig::loopback()).unwrap();
    let announce = tracker.announce_url();
    let bt = format!("127.0.0.1:{}", free_port());
    let image = format!("127.0.0.1:{rport}/team/super:v1");
    let (_seeder, base) = spawn_seeder(
        &tmp.path().join("seeder"),
        &["--bt-listen".into(), bt.clone(), "--tracker".into(), announce.clone(), "--image".into(), image.clone()],
    );
    let mirrored = Instant::now();
    while Command::new(require_tool("curl"))
        .args(["-sf", "-o", "/dev/null", &format!("{base}/v1/images/{image}")])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        assert!(mirrored.elapsed() < Duration::from_secs(60), "the seeder mirrored the image in time");
        std::thread::sleep(Duration::from_millis(100));
    }
    let info_hash = *torrent.info_hash().as_bytes();

    // A newcomer, even alone, is shown a few pieces first: the hosts of a burst connect tens of
    // milliseconds apart. The seeder may still be adding the torrent right after the mirror;
    // retry until it answers.
    let alone = Instant::now();
    let shown = loop {
        match std::panic::catch_unwind(|| bitfield_shown(&bt, &info_hash, pieces)) {
            Ok(shown) => break shown,
            Err(_) if alone.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => std::panic::resume_unwind(e),
        }
    };
    assert!(shown.0 > 0 && shown.0 <= pieces / 4, "a newcomer is shown a few pieces: {shown:?}");

    // One aria2c alone: shown the rest once it has downloaded alone for 200 ms (a burst of
    // HAVEs a stock client must take), and done.
    let file = tmp.path().join("layer.torrent");
    std::fs::write(&file, torrent.torrent_bytes(&Distribution { trackers: vec![announce], webseeds: vec![] })).unwrap();
    let lone_dir = tmp.path().join("dl-alone");
    let (mut lone, lone_log) = aria2c_command(&lone_dir, file.as_os_str(), &[]);
    assert_aria2c_succeeded(file.as_os_str(), &lone.output().unwrap(), &lone_log);
    assert_eq!(sha256_file(&lone_dir.join(torrent.name.as_str())), layer.digest);

    // Three aria2c at once, each held to 2 MiB/s so they overlap for seconds.
    let downloads: Vec<_> = (0..3)
        .map(|i| {
            let dir = tmp.path().join(format!("dl-{i}"));
            let (mut cmd, log) = aria2c_command(&dir, file.as_os_str(), &["--max-download-limit=2M"]);
            (dir, log, std::thread::spawn(move || cmd.output().unwrap()))
        })
        .collect();

    // While they download, a newcomer is shown only a few pieces.
    let started = Instant::now();
    let partial = loop {
        let (set, _) = bitfield_shown(&bt, &info_hash, pieces);
        if set < pieces {
            break set;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "a newcomer was shown a few pieces while others download");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(partial > 0 && partial <= pieces / 4, "shown {partial} of {pieces} pieces");

    for (dir, log, download) in downloads {
        assert_aria2c_succeeded(file.as_os_str(), &download.join().unwrap(), &log);
        let got = dir.join(torrent.name.as_str());
        assert_eq!(sha256_file(&got), layer.digest, "aria2c's download matches the digest");
    }
}
