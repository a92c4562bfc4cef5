//! The subcommands' glue: file and terminal I/O around the crates' libraries, and the
//! dispatch from the parsed command line to them.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

mod common;
pub(crate) mod completions;
pub(crate) mod jobs;
pub(crate) mod magnet;
pub(crate) mod magnets;
pub(crate) mod node;
pub(crate) mod seeder;
pub(crate) mod shim;
pub(crate) mod torrent;
pub(crate) mod tracker;
pub(crate) mod up;

/// Runs the command line; errors are printed as one clear chain of causes.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    common::init_logging(cli.log_format);
    let result = match cli.command {
        Command::Torrent(args) => torrent::run(args),
        Command::Magnet(args) => magnet::run(args),
        Command::Tracker(args) => tracker::run(args),
        Command::Seeder(args) => seeder::run(args),
        Command::Shim(args) => shim::run(args),
        Command::Up(args) => up::run(args),
        Command::Magnets(args) => magnets::run(args),
        Command::Jobs(args) => jobs::run(args),
        Command::Node(command) => node::run(command),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: error: {e:#}");
            if e.downcast_ref::<magnets::ImageUnknown>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each library error either formats its source or chains it, never both (ARCHITECTURE.md),
    /// so anyhow's alternate form, which prints the chain, names each cause once.
    #[test]
    fn error_chains_name_each_cause_once() {
        let error = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let bind = shoal_tracker::TrackerError::Bind { addr: "0.0.0.0:6969".parse().unwrap(), error };
        let e = anyhow::Error::new(bind).context("tracker");
        assert_eq!(format!("{e:#}"), "tracker: cannot listen on 0.0.0.0:6969: Address already in use");
    }
}
