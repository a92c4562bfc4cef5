//! The `shoal` command: one binary whose subcommands call into each crate's library.

pub mod cli;
// The command layer is where the binary talks to its user: it alone may print to stdout.
#[allow(clippy::print_stdout)]
mod commands;
pub mod magnets;
