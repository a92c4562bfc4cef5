//! `shoal torrent FILE`: hash a blob once, write its profile .torrent, print infohash and magnet.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shoal_torrents::{hash_reader, BlobTorrent, Distribution};

use crate::cli::TorrentArgs;

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM_BYTES: u64 = 256 << 20;

#[derive(Serialize)]
struct Report<'a> {
    digest: String,
    size: u64,
    piece_length: u32,
    info_hash: String,
    magnet: String,
    name: &'a str,
    torrent: &'a Path,
}

pub(crate) fn run(args: TorrentArgs) -> anyhow::Result<()> {
    let distribution = Distribution {
        trackers: check_urls(&args.trackers, "tracker", &["http", "https", "udp"])?,
        webseeds: check_urls(&args.webseeds, "webseed", &["http", "https"])?,
    };
    for ws in &distribution.webseeds {
        if !ws.ends_with('/') {
            eprintln!("shoal: warning: webseed {ws} does not end in '/': clients will fetch it as the file itself");
        }
    }
    if let Some(name) = &args.name {
        check_name(name)?;
    }

    let file = File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let meta = file.metadata().with_context(|| format!("cannot stat {}", args.file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", args.file.display());
    }
    let size = meta.len();
    let bar = progress_bar(size);
    let hashed = hash_reader(file, size, &mut |done| bar.set_position(done))
        .with_context(|| format!("cannot hash {}", args.file.display()))?;
    bar.finish_and_clear();

    let torrent = match args.name {
        Some(name) => BlobTorrent::named(&hashed, name),
        None => BlobTorrent::from_hashed(&hashed),
    };
    let output = args.output.unwrap_or_else(|| PathBuf::from(format!("{}.torrent", torrent.name)));
    write_atomically(&output, &torrent.torrent_bytes(&distribution))?;

    let info_hash = torrent.info_hash();
    let magnet = torrent.magnet(&distribution).to_string();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = Report {
            digest: hashed.digest.to_string(),
            size,
            piece_length: hashed.piece_length.bytes(),
            info_hash: info_hash.hex(),
            magnet,
            name: &torrent.name,
            torrent: &output,
        };
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{info_hash}\n{magnet}")?;
        eprintln!("wrote {} ({} pieces of {} bytes)", output.display(), hashed.pieces.len(), hashed.piece_length);
    }
    Ok(())
}

fn progress_bar(size: u64) -> ProgressBar {
    if size < PROGRESS_FROM_BYTES || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("hashing {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("static template"),
    );
    bar
}

fn check_urls(urls: &[String], what: &str, schemes: &[&str]) -> anyhow::Result<Vec<String>> {
    for raw in urls {
        let url = url::Url::parse(raw).with_context(|| format!("{what} URL {raw:?} is not a valid URL"))?;
        if !schemes.contains(&url.scheme()) {
            bail!("{what} URL {raw:?}: scheme must be one of {}", schemes.join(", "));
        }
    }
    Ok(urls.to_vec())
}

/// A torrent name becomes a file name in every client: no separators, no `.`/`..`.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        bail!("torrent name {name:?} must be a plain file name (no '/', '\\', NUL, '.' or '..')");
    }
    Ok(())
}

/// Writes next to the target and renames, so a crash never leaves half a .torrent behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // 0666 before the umask, as any file a user creates (tempfile's own default is 0600).
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
