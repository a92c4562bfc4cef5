//! Command-line surface of `shoal`: every flag has an environment-variable twin.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(name = "shoal", version, about = "OCI image blobs over plain BitTorrent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make the profile's .torrent of a file; print its infohash and magnet.
    Torrent(TorrentArgs),
    /// Print the magnet link of an existing .torrent file.
    Magnet(MagnetArgs),
}

#[derive(Args, Debug)]
pub struct TorrentArgs {
    /// The blob to torrent.
    #[arg(env = "SHOAL_TORRENT_FILE")]
    pub file: PathBuf,
    /// Tracker announce URL (repeat for several; all go into one announce-list tier).
    #[arg(long = "tracker", env = "SHOAL_TRACKERS", value_delimiter = ',')]
    pub trackers: Vec<String>,
    /// Webseed base URL for BEP 19 `url-list` (repeat for several); end it in `/`.
    #[arg(long = "webseed", env = "SHOAL_WEBSEEDS", value_delimiter = ',')]
    pub webseeds: Vec<String>,
    /// Where to write the .torrent [default: ./<name>.torrent].
    #[arg(short = 'o', long = "output", env = "SHOAL_TORRENT_OUTPUT")]
    pub output: Option<PathBuf>,
    /// Torrent name instead of the profile's `sha256-<hex>` (changes the infohash).
    #[arg(long, env = "SHOAL_TORRENT_NAME")]
    pub name: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long, env = "SHOAL_JSON")]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct MagnetArgs {
    /// The .torrent file to read (any tool's, not only Shoal's).
    #[arg(env = "SHOAL_MAGNET_TORRENT")]
    pub torrent: PathBuf,
}

/// Runs the command line; errors are printed as one clear chain of causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Torrent(args) => commands::torrent::run(args),
        Command::Magnet(args) => commands::magnet::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
