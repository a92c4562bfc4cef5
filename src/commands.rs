//! The subcommands' glue: file and terminal I/O around the crates' libraries.

pub(crate) mod magnet;
pub(crate) mod magnets;
pub(crate) mod seeder;
pub(crate) mod shim;
pub(crate) mod torrent;
pub(crate) mod tracker;
pub(crate) mod up;
