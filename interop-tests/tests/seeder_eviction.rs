//! `shoal seeder --max-store-bytes`: the cache policy against a real upstream (Debian's
//! `docker-registry`, images pushed by skopeo). Least-recently-used blobs go once the store
//! passes its high watermark, until it is at or below the low one; a blob being streamed over
//! `/webseed` is kept; an evicted blob comes back from upstream byte for byte; a restart with a
//! smaller limit evicts before it is ready.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_interop_tests::registry::{curl, skopeo_push, start_registry, write_oci_layout, LayoutBlob};
use shoal_interop_tests::{free_port, sha256_file, spawn_seeder, wait_until, ChildGuard};
use shoal_torrents::BlobHasher;

const MAX: u64 = 16 << 20;

/// The seeder's arithmetic for the default watermarks (0.95 / 0.85).
fn high(max: u64) -> u64 {
    (max as f64 * 0.95) as u64
}

fn low(max: u64) -> u64 {
    (max as f64 * 0.85) as u64
}

fn total(blobs: &[&LayoutBlob]) -> u64 {
    blobs.iter().map(|b| b.size).sum()
}

fn stored_path(data: &Path, digest: &str) -> PathBuf {
    data.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn is_stored(data: &Path, blob: &LayoutBlob) -> bool {
    stored_path(data, &blob.digest).exists()
}

/// Bytes in the seeder's store, counted on disk.
fn store_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("blobs/sha256")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

fn metric(base: &str, name: &str) -> u64 {
    let (status, body, _) = curl(&format!("{base}/metrics"), &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

fn mirror(base: &str, image: &str) {
    let body = format!(r#"{{"image":"{image}"}}"#);
    let (status, out, _) =
        curl(&format!("{base}/v1/images"), &["-X", "POST", "-H", "content-type: application/json", "-d", &body]);
    assert_eq!(status, 200, "mirroring {image}: {}", String::from_utf8_lossy(&out));
}

fn sha256(bytes: &[u8]) -> String {
    let mut h = BlobHasher::new(bytes.len() as u64);
    h.update(bytes);
    h.finish().digest.to_string()
}

/// A webseed download that reads its headers and the first bytes, then stops reading until
/// [`HeldDownload::finish`]: the response stays in flight. Its receive buffer is pinned small,
/// so the kernel cannot take the whole blob off the server's hands (the server's send buffer
/// is at most `net.core.wmem_max`, 4 MiB here; the blob held is larger than that).
struct HeldDownload {
    stream: std::net::TcpStream,
    body: Vec<u8>,
    length: usize,
}

impl HeldDownload {
    fn start(base: &str, digest: &str) -> Self {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(16 << 10).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        });
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut held = Self { stream, body: Vec::new(), length: 0 };
        let name = digest.replace(':', "-");
        write!(held.stream, "GET /webseed/{name} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 8192];
        let header_end = loop {
            let n = held.stream.read(&mut buf).unwrap();
            assert!(n > 0, "the webseed closed before its headers");
            received.extend_from_slice(&buf[..n]);
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let head = String::from_utf8_lossy(&received[..header_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        held.length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a Content-Length");
        held.body = received[header_end..].to_vec();
        held
    }

    /// Reads the rest; returns the SHA-256 of the whole body.
    fn finish(mut self) -> String {
        let mut rest = vec![0u8; self.length - self.body.len()];
        self.stream.read_exact(&mut rest).unwrap();
        self.body.extend_from_slice(&rest);
        sha256(&self.body)
    }
}

fn start_seeder(data: &Path, registry_port: u16, max: &str) -> (ChildGuard, String) {
    spawn_seeder(
        data,
        &[
            "--bt-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--upstream".into(),
            format!("127.0.0.1:{registry_port}"),
            "--max-store-bytes".into(),
            max.into(),
        ],
    )
}

#[test]
fn seeder_evicts_least_recently_used_blobs_but_never_one_being_served() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port) = start_registry(&tmp.path().join("registry"), "");
    let layouts = [("a", vec![8 << 20, 2 << 20, 2 << 20], 41), ("b", vec![4 << 20], 42), ("c", vec![3 << 20], 43)];
    let mut images = Vec::new();
    for (tag, sizes, seed) in layouts {
        let layout = tmp.path().join(format!("layout-{tag}"));
        let (blobs, _) = write_oci_layout(&layout, tag, &sizes, seed);
        skopeo_push(&layout, tag, port, "cache/app");
        images.push(blobs);
    }
    let [a, b, c] = <[Vec<LayoutBlob>; 3]>::try_from(images).ok().unwrap();
    let (config_a, big, s1, s2) = (&a[0], &a[1], &a[2], &a[3]);
    let all_a: Vec<&LayoutBlob> = a.iter().collect();
    let all_b: Vec<&LayoutBlob> = b.iter().collect();
    let all_c: Vec<&LayoutBlob> = c.iter().collect();
    // The sizes make the scenario: image a fits; a + b does not; with `big` leased the three
    // least recently used other blobs must go; without the lease `big` alone would.
    let (a_bytes, b_bytes) = (total(&all_a), total(&all_b));
    assert!(a_bytes <= high(MAX) && a_bytes + b_bytes > high(MAX));
    assert!(a_bytes + b_bytes - config_a.size - s1.size > low(MAX));
    assert!(a_bytes + b_bytes - config_a.size - s1.size - s2.size <= low(MAX));
    assert!(a_bytes + b_bytes - config_a.size - big.size <= low(MAX));

    let data = tmp.path().join("seeder");
    let (seeder, base) = start_seeder(&data, port, "16MiB");
    let image = |tag: &str| format!("127.0.0.1:{port}/cache/app:{tag}");

    mirror(&base, &image("a"));
    assert!(a.iter().all(|blob| is_stored(&data, blob)));
    assert_eq!(store_bytes(&data), a_bytes);

    // Uses, oldest first: `big` (a webseed download left open), `s1` (a torrent request),
    // `s2` (a whole webseed download). `config_a` was last used when mirrored.
    let held = HeldDownload::start(&base, &big.digest);
    let (status, torrent_s1, _) = curl(&format!("{base}/v1/blobs/{}/torrent", s1.digest), &[]);
    assert_eq!(status, 200);
    let (status, body, _) = curl(&format!("{base}/webseed/{}", s2.digest.replace(':', "-")), &[]);
    assert_eq!((status, sha256(&body)), (200, s2.digest.clone()));

    // Image b pushes the store over its high watermark.
    mirror(&base, &image("b"));
    wait_until("eviction down to the low watermark, every evicted byte counted", Duration::from_secs(60), || {
        let stored = store_bytes(&data);
        stored <= low(MAX) && stored + metric(&base, "shoal_seeder_evicted_bytes_total") == a_bytes + b_bytes
    });
    assert!(is_stored(&data, big), "the blob being served was evicted");
    for gone in [config_a, s1, s2] {
        assert!(!is_stored(&data, gone), "{} (least recently used) is still stored", gone.digest);
    }
    assert!(b.iter().all(|blob| is_stored(&data, blob)), "the newest blobs were evicted");
    assert_eq!(metric(&base, "shoal_seeder_evicted_blobs_total"), 3);
    assert_eq!(metric(&base, "shoal_seeder_evicted_bytes_total"), config_a.size + s1.size + s2.size);
    assert_eq!(metric(&base, "shoal_seeder_stored_bytes"), store_bytes(&data));
    // An evicted blob is no webseed any more; the held download still completes intact.
    let (status, _, _) = curl(&format!("{base}/webseed/{}", s1.digest.replace(':', "-")), &[]);
    assert_eq!(status, 404);
    assert_eq!(held.finish(), big.digest);

    // Asked for with `repo`, an evicted blob is fetched again: the same torrent, the same bytes.
    let (status, again, _) = curl(&format!("{base}/v1/blobs/{}/torrent?repo=cache/app", s1.digest), &[]);
    assert_eq!(status, 200);
    assert_eq!(again, torrent_s1, "the re-fetched blob's torrent differs");
    assert_eq!(sha256_file(&stored_path(&data, &s1.digest)), s1.digest);
    assert_eq!(std::fs::read(stored_path(&data, &s1.digest)).unwrap(), std::fs::read(&s1.path).unwrap());
    let (status, body, _) = curl(&format!("{base}/webseed/{}", s1.digest.replace(':', "-")), &[]);
    assert_eq!((status, sha256(&body)), (200, s1.digest.clone()));

    // Its download finished, `big` is the least recently used blob: image c evicts it alone.
    let before_c = store_bytes(&data) + total(&all_c);
    assert!(before_c > high(MAX) && before_c - big.size <= low(MAX));
    mirror(&base, &image("c"));
    wait_until("the fourth eviction", Duration::from_secs(60), || {
        metric(&base, "shoal_seeder_evicted_blobs_total") == 4
    });
    assert!(store_bytes(&data) <= low(MAX));
    assert!(!is_stored(&data, big), "the least recently used blob is still stored");
    for kept in all_b.iter().chain(&all_c).chain([&s1]) {
        assert!(is_stored(&data, kept), "{} was evicted", kept.digest);
    }

    // Without `repo`, an evicted blob comes back from the repository it was seen in.
    let (status, _, _) = curl(&format!("{base}/v1/blobs/{}/torrent", s2.digest), &[]);
    assert_eq!(status, 200);
    assert_eq!(sha256_file(&stored_path(&data, &s2.digest)), s2.digest);

    // A restart (after kill -9) with a smaller limit evicts before it is ready: image b's
    // blobs and then `s1` are the least recently used.
    drop(seeder);
    let small = 8 << 20;
    let stored = store_bytes(&data);
    assert!(stored > high(small) && stored - b_bytes > low(small) && stored - b_bytes - s1.size <= low(small));
    let (_seeder, base) = start_seeder(&data, port, "8MiB");
    assert!(store_bytes(&data) <= low(small), "{} > {}", store_bytes(&data), low(small));
    for gone in all_b.iter().chain([&s1]) {
        assert!(!is_stored(&data, gone), "{} survived the restart", gone.digest);
    }
    for kept in all_c.iter().chain([&s2]) {
        assert!(is_stored(&data, kept), "{} was evicted at restart", kept.digest);
    }
    assert_eq!(metric(&base, "shoal_seeder_evicted_blobs_total"), 3);
    assert_eq!(metric(&base, "shoal_seeder_blobs"), 3);
    // What is left is seeded and served.
    let (status, body, _) = curl(&format!("{base}/webseed/{}", c[1].digest.replace(':', "-")), &[]);
    assert_eq!((status, sha256(&body)), (200, c[1].digest.clone()));
    // The librqbit session holds exactly the stored blobs: no .bitv of an evicted one.
    let bitv = std::fs::read_dir(data.join("bittorrent"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".bitv"))
        .count();
    assert_eq!(bitv, 3);
}
