//! The subcommands' glue: file and terminal I/O around the crates' libraries, and the
//! dispatch from the parsed command line to them.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

pub(crate) mod magnet;
pub(crate) mod magnets;
pub(crate) mod seeder;
pub(crate) mod shim;
pub(crate) mod torrent;
pub(crate) mod tracker;
pub(crate) mod up;

/// Runs the command line; errors are printed as one clear chain of causes.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Torrent(args) => torrent::run(args),
        Command::Magnet(args) => magnet::run(args),
        Command::Tracker(args) => tracker::run(args),
        Command::Seeder(args) => seeder::run(args),
        Command::Shim(args) => shim::run(args),
        Command::Up(args) => up::run(args),
        Command::Magnets(args) => magnets::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, skipping a cause that a message before it already
/// quotes (several library errors carry their source's text in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_name_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e =
            anyhow::Error::new(io).context("cannot listen on 0.0.0.0:6969: Address already in use").context("tracker");
        assert_eq!(error_chain(&e), "tracker: cannot listen on 0.0.0.0:6969: Address already in use");
    }
}
