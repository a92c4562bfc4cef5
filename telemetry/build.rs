//! Build script: the commit `shoal --version` and `shoal_build_info` name (`SHOAL_COMMIT`), from
//! git when the source is a checkout, `unknown` otherwise; `SHOAL_COMMIT` in the environment wins
//! (packagers).
#![allow(clippy::print_stdout)] // cargo reads a build script's stdout

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SHOAL_COMMIT");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs");
    let commit = std::env::var("SHOAL_COMMIT").ok().filter(|c| !c.is_empty()).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    println!("cargo:rustc-env=SHOAL_COMMIT={commit}");
}
