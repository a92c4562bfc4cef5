//! `shoal node install|uninstall|doctor`: the flags turned into `shoal_node`'s requests, its
//! reports printed (diffs and results on stdout, warnings on stderr).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use shoal_node::doctor::{DoctorRequest, PullCheck};
use shoal_node::{ContainerdConfigCheck, ContainerdRelease, InstallRequest, Namespace};

use crate::cli::{NodeCommand, NodeDoctorArgs, NodeInstallArgs, NodeUninstallArgs, PullTool, Runtime};

pub(crate) fn run(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Install(args) => install(args),
        NodeCommand::Uninstall(args) => uninstall(args),
        NodeCommand::Doctor(args) => doctor(args),
    }
}

fn install(args: NodeInstallArgs) -> anyhow::Result<()> {
    let containerd = args.runtimes.contains(&Runtime::Containerd);
    if !containerd && (!args.registries.is_empty() || args.mirror_all) {
        eprintln!("shoal node install: warning: --registry and --mirror-all apply to containerd only; Docker mirrors Docker Hub alone");
    }
    let mut namespaces = Vec::new();
    if containerd {
        for spec in &args.registries {
            namespaces.push(Namespace::parse_registry(spec)?);
        }
        if args.mirror_all {
            namespaces.push(Namespace::Default);
        }
        if namespaces.is_empty() {
            bail!(
                "name the registries to send through the shim (--registry, SHOAL_NODE_REGISTRIES) or give --mirror-all"
            );
        }
    }
    // Absolute paths: the record must name the same files whatever directory uninstall runs
    // in, and containerd's `config_path` must not depend on its working directory.
    let request = InstallRequest {
        shim_url: args.shim.shim_url.clone(),
        namespaces,
        hosts_dir: absolute(&args.hosts.hosts_dir)?,
        containerd_config: if containerd {
            Some(ContainerdConfigCheck {
                path: absolute(&args.containerd_config)?,
                fix: args.fix,
                release: containerd_release(),
            })
        } else {
            None
        },
        docker_daemon_json: if args.runtimes.contains(&Runtime::Docker) {
            Some(absolute(&args.docker_daemon_json)?)
        } else {
            None
        },
    };
    let report = shoal_node::install(&request, &absolute(&args.state.state_dir)?, args.dry_run)?;
    for warning in &report.warnings {
        eprintln!("shoal node install: warning: {warning}");
    }
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        out.write_all(report.diff.as_bytes())?;
        if report.diff.is_empty() {
            writeln!(out, "shoal node install: nothing to change (dry run)")?;
        }
    } else if report.written.is_empty() {
        writeln!(
            out,
            "shoal node install: already installed, nothing changed ({} file(s) in place)",
            report.unchanged.len()
        )?;
    } else {
        for path in &report.written {
            writeln!(out, "shoal node install: wrote {}", path.display())?;
        }
        writeln!(
            out,
            "shoal node install: backups and the record of these changes are in {}",
            args.state.state_dir.display()
        )?;
    }
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} an absolute path", path.display()))
}

/// The local containerd's release, when `containerd --version` runs.
fn containerd_release() -> Option<ContainerdRelease> {
    let out = Command::new("containerd").arg("--version").output().ok()?;
    ContainerdRelease::from_version_output(&String::from_utf8_lossy(&out.stdout))
}

fn uninstall(args: NodeUninstallArgs) -> anyhow::Result<()> {
    let report = shoal_node::uninstall(&absolute(&args.state.state_dir)?, args.dry_run, args.force)?;
    let mut out = std::io::stdout().lock();
    if !report.had_install {
        writeln!(out, "shoal node uninstall: nothing to undo (no record in {})", args.state.state_dir.display())?;
    } else if args.dry_run {
        out.write_all(report.diff.as_bytes())?;
    } else {
        for path in &report.restored {
            writeln!(out, "shoal node uninstall: restored {}", path.display())?;
        }
        for path in &report.removed {
            writeln!(out, "shoal node uninstall: removed {}", path.display())?;
        }
    }
    Ok(())
}

fn doctor(args: NodeDoctorArgs) -> anyhow::Result<()> {
    let pull = args.image.map(|image| match args.pull_with {
        PullTool::Ctr => PullCheck::Ctr {
            address: args.containerd_address.to_string_lossy().into_owned(),
            hosts_dir: args.hosts.hosts_dir.to_string_lossy().into_owned(),
            image,
        },
        PullTool::Docker => PullCheck::Docker { image },
    });
    let request = DoctorRequest {
        shim_url: args.shim.shim_url,
        miss_registry: args.miss_registry,
        dial_timeout: Duration::from_millis(args.dial_timeout_ms),
        hosts_dir: (args.pull_with == PullTool::Ctr).then_some(args.hosts.hosts_dir),
        pull,
    };
    let checks = shoal_node::doctor::run(&request);
    let mut out = std::io::stdout().lock();
    for check in &checks {
        writeln!(out, "{} {}: {}", if check.passed { "ok  " } else { "FAIL" }, check.name, check.detail)?;
    }
    out.flush().context("writing the report")?;
    let failed: Vec<&str> = checks.iter().filter(|c| !c.passed).map(|c| c.name).collect();
    if !failed.is_empty() {
        bail!("{} check(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}
