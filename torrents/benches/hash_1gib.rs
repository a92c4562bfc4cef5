//! Benchmark: one-pass SHA-256 + SHA-1 pieces of a 1 GiB file, against mktorrent and openssl.
//!
//! `cargo bench -p shoal-torrents --bench hash_1gib` (or `scripts/bench-hash.sh`). Writes a 1 GiB
//! file (or uses $SHOAL_BENCH_FILE), warms the page cache, then times in the same run:
//! Shoal's `hash_reader`, `mktorrent -t 2` at the same piece length, and derives openssl's
//! single-core SHA-256 limit from `openssl speed -bytes 16384 sha256`.

// A benchmark prints its figures.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_torrents::{hash_reader, PieceLength};

const SIZE: u64 = 1 << 30;
const RUNS: usize = 5;

fn main() {
    // `cargo test --all-targets` also runs this target (without `--bench`): do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempdir();
    let path = std::env::var_os("SHOAL_BENCH_FILE").map(PathBuf::from).unwrap_or_else(|| {
        let p = dir.join("blob-1gib");
        write_file(&p);
        p
    });
    let size = std::fs::metadata(&path).expect("bench file").len();
    let pl = PieceLength::for_blob_size(size);
    warm(&path);

    let shoal = best_of(|| {
        let f = File::open(&path).unwrap();
        let start = Instant::now();
        let blob = hash_reader(f, size, &mut |_| {}).unwrap();
        assert_eq!(blob.pieces.len() as u64, pl.piece_count(size));
        start.elapsed()
    });
    let out = dir.join("m.torrent");
    let mktorrent = best_of(|| {
        let _ = std::fs::remove_file(&out);
        let start = Instant::now();
        let status = Command::new("mktorrent")
            .args(["-t", "2", "-l", &pl.log2().to_string(), "-n", "bench", "-o"])
            .arg(&out)
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("mktorrent is installed (apt-get install mktorrent)");
        assert!(status.success());
        start.elapsed()
    });
    let openssl_bps = openssl_sha256_bytes_per_sec();
    let openssl_limit = Duration::from_secs_f64(size as f64 / openssl_bps);

    let gib = size as f64 / (1u64 << 30) as f64;
    println!("file: {} ({gib:.2} GiB, piece length {pl}), best of {RUNS}, page cache warm", path.display());
    println!("shoal (SHA-256 + SHA-1 pieces, one pass):   {:>7.3} s", shoal.as_secs_f64());
    println!("mktorrent -t 2 (SHA-1 pieces only):         {:>7.3} s", mktorrent.as_secs_f64());
    println!("openssl speed sha256, one core (limit):     {:>7.3} s", openssl_limit.as_secs_f64());
    println!(
        "ratio shoal / mktorrent:                    {:>7.3}  (target <= 1.0)",
        shoal.as_secs_f64() / mktorrent.as_secs_f64()
    );
    println!("ratio shoal / openssl single-core SHA-256:  {:>7.3}", shoal.as_secs_f64() / openssl_limit.as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}

fn best_of(mut f: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| f()).min().unwrap()
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_file(path: &Path) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x243f6a8885a308d3u64;
    for _ in 0..SIZE >> 20 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        w.write_all(&block).unwrap();
    }
    w.flush().unwrap();
}

fn warm(path: &Path) {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
}

/// Parses the 16384-byte column of `openssl speed -bytes 16384 sha256` ("... 1955000.00k").
fn openssl_sha256_bytes_per_sec() -> f64 {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "-bytes", "16384", "sha256"])
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with("sha256")).expect("openssl speed printed a sha256 row");
    let kbytes: f64 =
        line.split_whitespace().last().and_then(|v| v.trim_end_matches('k').parse().ok()).expect("a rate in k");
    kbytes * 1000.0
}
