//! The `shoal` command: one binary whose subcommands call into each crate's library.

pub mod cli;
// The command layer is where the binary talks to its user: it alone may print to stdout.
#[allow(clippy::print_stdout)]
mod commands;
pub mod magnets;

/// Runs the command line (the whole of `main`); errors are printed as one chain of causes.
pub fn main() -> std::process::ExitCode {
    commands::main()
}
