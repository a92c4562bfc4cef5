//! `shoal magnet TORRENT`: the magnet link of any .torrent file.

use anyhow::Context;
use shoal_torrents::ParsedTorrent;

use crate::cli::MagnetArgs;

/// .torrent files are small; anything this large is not one and is refused before reading.
const MAX_TORRENT_BYTES: u64 = 64 << 20;

pub(crate) fn run(args: MagnetArgs) -> anyhow::Result<()> {
    let path = &args.torrent;
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    anyhow::ensure!(len <= MAX_TORRENT_BYTES, "{} is {len} bytes: too large to be a .torrent", path.display());
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let torrent =
        ParsedTorrent::parse(&bytes).with_context(|| format!("{} is not a valid .torrent", path.display()))?;
    println!("{}", torrent.magnet());
    Ok(())
}
