//! The subcommands' glue: file and terminal I/O around the crates' libraries, and the
//! dispatch from the parsed command line to them.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::file::{config_path, with_file_defaults, ConfigFileError};
use crate::cli::{Cli, Command, ConfigCommand};

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
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("shoal: error: {e}");
            return ExitCode::from(2);
        }
    };
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
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{}", crate::cli::file::default_file(&Cli::command()));
            Ok(())
        }
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

/// The command line, with the defaults of a TOML `--config` file under it (clap exits on a
/// usage error or `--help` as usual).
fn parse() -> Result<Cli, ConfigFileError> {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cmd = Cli::command();
    if let Some((section, file)) = config_path(&cmd, &argv, |name| std::env::var(name).ok()) {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| ConfigFileError::Read { file: file.clone(), error: e.to_string() })?;
        cmd = with_file_defaults(cmd, &section, &file, &text)?;
    }
    let matches = cmd.get_matches_from(argv);
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
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
