//! The subcommands' glue: file and terminal I/O around the crates' libraries.

pub mod magnet;
pub mod magnets;
pub mod seeder;
pub mod shim;
pub mod torrent;
pub mod tracker;
pub mod up;
