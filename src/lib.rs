//! The `shoal` command: one binary whose subcommands call into each crate's library.

pub mod cli;
mod commands;
pub mod magnets;
