//! containerd's `config.toml`: which version it is written in, whether the CRI plugin reads the
//! hosts.toml tree at all, and the `--fix` that makes it (pure: text in, findings and text out).
//!
//! The keys (containerd's docs/cri/config.md and docs/hosts.md):
//! - version 2 (containerd 1.x): `[plugins."io.containerd.grpc.v1.cri".registry] config_path`.
//! - version 3 (containerd 2.x): `[plugins."io.containerd.cri.v1.images".registry] config_path`,
//!   and from 2.1 the CRI hands pulls to the transfer service, which does not read hosts.toml,
//!   unless `[plugins."io.containerd.cri.v1.images"] use_local_image_pull = true`.
//!
//! `ctr images pull --hosts-dir` reads the tree itself and needs none of this; kubelet's pulls
//! (CRI) do.

use toml_edit::{value, DocumentMut, Item, Table};

const CRI_V2: &str = "io.containerd.grpc.v1.cri";
const IMAGES_V3: &str = "io.containerd.cri.v1.images";

/// A containerd release, as `containerd --version` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerdRelease {
    pub major: u32,
    pub minor: u32,
}

impl ContainerdRelease {
    /// Reads `containerd github.com/containerd/containerd v1.7.2 <commit>` (Debian prints
    /// `1.6.20~ds1` without the `v`).
    pub fn from_version_output(output: &str) -> Option<Self> {
        output.split_whitespace().find_map(|word| {
            let mut parts = word.trim_start_matches('v').split(['.', '~', '-', '+']);
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            Some(Self { major, minor })
        })
    }

    /// The config version this release writes by default.
    pub fn config_version(self) -> i64 {
        if self.major >= 2 {
            3
        } else {
            2
        }
    }
}

/// Something about the config that keeps CRI pulls away from the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// No config file: containerd's defaults read no hosts.toml tree (`--fix` writes one).
    NoConfigFile,
    /// Version 1 (no `version` key): too old a format to edit; migrate it (`containerd config
    /// migrate`) first.
    Version1,
    /// `config_path` is unset or empty: CRI pulls ignore certs.d (`--fix` sets it).
    ConfigPathUnset,
    /// `config_path` names directories that are not the ones written to (left alone).
    ConfigPathElsewhere(String),
    /// Version 3 without `use_local_image_pull = true`: on containerd 2.1 and later the
    /// transfer service pulls and never reads hosts.toml (`--fix` sets it).
    TransferServiceBypass,
}

impl Finding {
    /// Whether `--fix` changes the config for it.
    pub fn fixable(&self) -> bool {
        matches!(self, Self::NoConfigFile | Self::ConfigPathUnset | Self::TransferServiceBypass)
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoConfigFile => f.write_str("there is no containerd config file: CRI pulls read no hosts.toml tree (--fix writes one that does)"),
            Self::Version1 => f.write_str("the config is version 1 (no `version` key): CRI pulls read no hosts.toml tree; migrate it with `containerd config migrate`, then run this again"),
            Self::ConfigPathUnset => f.write_str("the CRI registry's `config_path` is not set: CRI pulls ignore hosts.toml (--fix sets it)"),
            Self::ConfigPathElsewhere(path) => write!(f, "the CRI registry's `config_path` is {path:?}, not the directory written to: CRI pulls will not see these hosts.toml files (left as it is)"),
            Self::TransferServiceBypass => f.write_str("version 3 without `use_local_image_pull = true`: containerd 2.1 and later pull through the transfer service, which ignores hosts.toml (--fix sets it)"),
        }
    }
}

/// Why a config.toml cannot be read or edited.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerdConfigError {
    #[error("it is not valid TOML: {0}")]
    Unparsable(String),
    #[error("its `version` is {0}, and only versions 1, 2 and 3 exist")]
    UnknownVersion(String),
    #[error("{0} is not a table")]
    NotATable(String),
}

/// The config's version and what keeps CRI pulls away from `hosts_dir`; `release` (when known)
/// rules out the transfer-service finding on releases before 2.1.
pub(crate) fn check(
    existing: Option<&str>,
    hosts_dir: &str,
    release: Option<ContainerdRelease>,
) -> Result<(Option<i64>, Vec<Finding>), ContainerdConfigError> {
    let Some(text) = existing else { return Ok((None, vec![Finding::NoConfigFile])) };
    let doc = parse(text)?;
    let version = version(&doc)?;
    if version == 1 {
        return Ok((Some(1), vec![Finding::Version1]));
    }
    let mut findings = Vec::new();
    let plugin = plugin_table(version);
    let config_path = doc
        .get("plugins")
        .and_then(|p| p.get(plugin))
        .and_then(|t| t.get("registry"))
        .and_then(|r| r.get("config_path"))
        .and_then(Item::as_str)
        .unwrap_or("");
    if config_path.is_empty() {
        findings.push(Finding::ConfigPathUnset);
    } else if !config_path.split(':').any(|dir| same_dir(dir, hosts_dir)) {
        findings.push(Finding::ConfigPathElsewhere(config_path.to_owned()));
    }
    let release_has_transfer = release.is_none_or(|r| r >= ContainerdRelease { major: 2, minor: 1 });
    let local_pull = doc
        .get("plugins")
        .and_then(|p| p.get(IMAGES_V3))
        .and_then(|t| t.get("use_local_image_pull"))
        .and_then(Item::as_bool)
        .unwrap_or(false);
    if version == 3 && release_has_transfer && !local_pull {
        findings.push(Finding::TransferServiceBypass);
    }
    Ok((Some(version), findings))
}

/// The config with every fixable finding fixed: `config_path` set to `hosts_dir` when unset,
/// and on version 3 `use_local_image_pull = true`. A missing file becomes a minimal one in the
/// version `release` writes (2 when unknown); containerd fills in the rest with its defaults.
pub(crate) fn fixed(
    existing: Option<&str>,
    hosts_dir: &str,
    release: Option<ContainerdRelease>,
) -> Result<String, ContainerdConfigError> {
    let (mut doc, version) = match existing {
        Some(text) => {
            let doc = parse(text)?;
            let version = version(&doc)?;
            (doc, version)
        }
        None => {
            let version = release.map_or(2, ContainerdRelease::config_version);
            let mut doc = DocumentMut::new();
            doc.insert("version", value(version));
            (doc, version)
        }
    };
    let (_, findings) = check(Some(&doc.to_string()), hosts_dir, release)?;
    if findings.contains(&Finding::ConfigPathUnset) {
        let registry = table_at(&mut doc, &[plugin_table(version), "registry"])?;
        registry.insert("config_path", value(hosts_dir));
    }
    if findings.contains(&Finding::TransferServiceBypass) {
        let images = table_at(&mut doc, &[IMAGES_V3])?;
        images.insert("use_local_image_pull", value(true));
    }
    Ok(doc.to_string())
}

fn parse(text: &str) -> Result<DocumentMut, ContainerdConfigError> {
    text.parse().map_err(|e: toml_edit::TomlError| ContainerdConfigError::Unparsable(e.to_string()))
}

fn version(doc: &DocumentMut) -> Result<i64, ContainerdConfigError> {
    match doc.get("version") {
        None => Ok(1),
        Some(item) => match item.as_integer() {
            Some(v @ 1..=3) => Ok(v),
            _ => Err(ContainerdConfigError::UnknownVersion(item.to_string().trim().to_owned())),
        },
    }
}

fn plugin_table(version: i64) -> &'static str {
    if version >= 3 {
        IMAGES_V3
    } else {
        CRI_V2
    }
}

fn same_dir(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `plugins.<path...>` as a table, created (as a `[plugins."..".x]` header) where missing.
fn table_at<'d>(doc: &'d mut DocumentMut, path: &[&str]) -> Result<&'d mut Table, ContainerdConfigError> {
    let mut table = doc.as_table_mut();
    let mut name = String::new();
    for key in std::iter::once(&"plugins").chain(path) {
        name = if name.is_empty() { (*key).to_owned() } else { format!("{name}.\"{key}\"") };
        let item = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = item.as_table_mut().ok_or_else(|| ContainerdConfigError::NotATable(name.clone()))?;
    }
    table.set_implicit(false);
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "/etc/containerd/certs.d";

    /// Every line of `before` is in `after`, in the same order.
    fn keeps_every_line(before: &str, after: &str) -> bool {
        let mut after = after.lines();
        before.lines().all(|line| after.any(|l| l == line))
    }
    const V21: Option<ContainerdRelease> = Some(ContainerdRelease { major: 2, minor: 1 });

    #[test]
    fn releases_are_read_from_containerd_version() {
        let debian = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3";
        assert_eq!(ContainerdRelease::from_version_output(debian), Some(ContainerdRelease { major: 1, minor: 6 }));
        let upstream = "containerd containerd.io v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376";
        assert_eq!(ContainerdRelease::from_version_output(upstream), V21.map(|r| ContainerdRelease { minor: 1, ..r }));
        assert_eq!(ContainerdRelease::from_version_output("no version here"), None);
    }

    #[test]
    fn version_2_needs_config_path_under_the_cri_plugin() {
        let (version, findings) = check(Some("version = 2\n"), DIR, None).unwrap();
        assert_eq!((version, findings), (Some(2), vec![Finding::ConfigPathUnset]));
        let set = format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{DIR}:/etc/docker/certs.d\"\n");
        assert_eq!(check(Some(&set), DIR, None).unwrap(), (Some(2), vec![]));
        let elsewhere = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/opt/certs\"\n";
        assert_eq!(check(Some(elsewhere), DIR, None).unwrap().1, [Finding::ConfigPathElsewhere("/opt/certs".into())]);
    }

    #[test]
    fn version_3_on_2_1_needs_local_image_pull() {
        let text = format!("version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '{DIR}'\n");
        assert_eq!(check(Some(&text), DIR, V21).unwrap().1, [Finding::TransferServiceBypass]);
        assert_eq!(check(Some(&text), DIR, None).unwrap().1, [Finding::TransferServiceBypass]);
        let older = Some(ContainerdRelease { major: 2, minor: 0 });
        assert_eq!(check(Some(&text), DIR, older).unwrap().1, []);
        let fixed = fixed(Some(&text), DIR, V21).unwrap();
        assert_eq!(check(Some(&fixed), DIR, V21).unwrap().1, []);
        assert!(keeps_every_line(&text, &fixed), "the fix only adds: {fixed}");
    }

    #[test]
    fn the_fix_keeps_everything_else_and_is_a_no_op_the_second_time() {
        let text = "# ours\nversion = 2\nroot = \"/var/lib/containerd\"\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n";
        let once = fixed(Some(text), DIR, None).unwrap();
        assert_eq!(check(Some(&once), DIR, None).unwrap().1, []);
        assert!(keeps_every_line(text, &once), "{once}");
        assert_eq!(fixed(Some(&once), DIR, None).unwrap(), once);
    }

    #[test]
    fn a_missing_file_is_written_in_the_release_s_version() {
        assert_eq!(check(None, DIR, None).unwrap(), (None, vec![Finding::NoConfigFile]));
        let v2 = fixed(None, DIR, Some(ContainerdRelease { major: 1, minor: 6 })).unwrap();
        assert_eq!(check(Some(&v2), DIR, None).unwrap(), (Some(2), vec![]));
        let v3 = fixed(None, DIR, V21).unwrap();
        assert_eq!(check(Some(&v3), DIR, V21).unwrap(), (Some(3), vec![]));
    }

    #[test]
    fn version_1_and_bad_files_are_reported() {
        assert_eq!(check(Some("root = \"/x\"\n"), DIR, None).unwrap(), (Some(1), vec![Finding::Version1]));
        assert!(!Finding::Version1.fixable());
        assert!(matches!(check(Some("version = "), DIR, None), Err(ContainerdConfigError::Unparsable(_))));
        assert_eq!(check(Some("version = 9\n"), DIR, None), Err(ContainerdConfigError::UnknownVersion("9".into())));
        let plugins_not_table = "version = 2\nplugins = 3\n";
        assert_eq!(fixed(Some(plugins_not_table), DIR, None), Err(ContainerdConfigError::NotATable("plugins".into())));
    }
}
