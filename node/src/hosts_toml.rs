//! containerd's `certs.d/<namespace>/hosts.toml`, edited so the shim is asked first: the shim's
//! `[host."..."]` entry goes before every existing one, and nothing already in the file is
//! dropped or changed (pure: text in, text out).

use toml_edit::{value, Array, DocumentMut, Item, Table};

/// A line above the entry `shoal node install` adds, so whoever reads the file knows where it
/// came from and how it goes away.
const ENTRY_COMMENT: &str =
    "# The Shoal registry shim, asked first (`shoal node install`; `shoal node uninstall` restores this file).\n";

/// Which `certs.d` directory a hosts.toml belongs to: one registry, or containerd's `_default`
/// (every registry without a directory of its own).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Namespace {
    /// A registry host (`ghcr.io`, `registry.example:5000`) and the URL its `server` line
    /// names when the file is new (`https://<host>`, Docker Hub's `registry-1.docker.io`, or
    /// the `http://` URL the operator gave for a plain-HTTP registry).
    Registry { host: String, server: String },
    /// containerd's `_default`: no `server` line, so containerd falls back to each registry.
    Default,
}

impl Namespace {
    /// Reads `host[:port]` or `http(s)://host[:port]` as given on the command line.
    pub fn parse_registry(spec: &str) -> Result<Self, BadRegistry> {
        let (scheme, host) = match spec.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (Some(scheme), rest.trim_end_matches('/')),
            Some(_) => return Err(BadRegistry(spec.to_owned())),
            None => (None, spec),
        };
        let well_formed = !host.is_empty()
            && host != "_default"
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
        if !well_formed {
            return Err(BadRegistry(spec.to_owned()));
        }
        let server = match (scheme, host) {
            (None | Some("https"), "docker.io") => "https://registry-1.docker.io".to_owned(),
            (Some(scheme), _) => format!("{scheme}://{host}"),
            (None, _) => format!("https://{host}"),
        };
        Ok(Self::Registry { host: host.to_owned(), server })
    }

    /// The directory name under `certs.d`.
    pub fn dir_name(&self) -> &str {
        match self {
            Self::Registry { host, .. } => host,
            Self::Default => "_default",
        }
    }

    /// The value containerd's mirror requests carry as `?ns=` for this namespace, if one.
    pub fn ns(&self) -> Option<&str> {
        match self {
            Self::Registry { host, .. } => Some(host),
            Self::Default => None,
        }
    }
}

/// A registry given on the command line that is neither `host[:port]` nor an http(s) URL of one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a registry: expected host[:port] or http(s)://host[:port], e.g. ghcr.io")]
pub struct BadRegistry(pub String);

/// Why an existing hosts.toml cannot be extended.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostsTomlError {
    #[error("it is not valid TOML: {0}")]
    Unparsable(String),
    #[error("its `host` key is not a table of host entries")]
    HostNotATable,
    #[error("its host entries are written in a form the shim's entry cannot be put in front of (dotted keys or inline tables); add `[host.\"{0}\"]` first by hand")]
    CannotPrepend(String),
}

/// What a hosts.toml becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostsTomlEdit {
    /// The shim's entry is there already (`first`: it comes before every other host).
    AlreadyPresent { first: bool },
    /// Write this text.
    Write(String),
}

/// The hosts.toml for `namespace` with the shim at `shim_url` (`http://127.0.0.1:5000`) asked
/// first: a new file (`existing` None) has the shim's entry and, for a registry, the `server`
/// line; an existing file keeps every byte it had and gets the shim's entry before its first
/// `[host."..."]` table.
pub(crate) fn with_shim_first(
    existing: Option<&str>,
    namespace: &Namespace,
    shim_url: &str,
) -> Result<HostsTomlEdit, HostsTomlError> {
    let Some(existing) = existing else {
        let server = match namespace {
            Namespace::Registry { server, .. } => format!("server = \"{server}\"\n\n"),
            Namespace::Default => String::new(),
        };
        return Ok(HostsTomlEdit::Write(format!("{server}{}", shim_entry_text(shim_url))));
    };
    let mut doc: DocumentMut =
        existing.parse().map_err(|e: toml_edit::TomlError| HostsTomlError::Unparsable(e.to_string()))?;
    if let Some(hosts) = doc.get("host") {
        let hosts = hosts.as_table_like().ok_or(HostsTomlError::HostNotATable)?;
        let is_shim = |key: &str| key.trim_end_matches('/') == shim_url.trim_end_matches('/');
        if hosts.iter().any(|(key, _)| is_shim(key)) {
            let first = hosts.iter().next().is_some_and(|(key, _)| is_shim(key));
            return Ok(HostsTomlEdit::AlreadyPresent { first });
        }
    }
    let hosts = doc
        .entry("host")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| HostsTomlError::CannotPrepend(shim_url.to_owned()))?;
    let first_position = hosts.iter().filter_map(|(_, item)| item.as_table().and_then(Table::position)).min();
    let mut entry = shim_table();
    if let Some(first) = first_position {
        entry.set_position(Some(first - 1));
    }
    hosts.insert(shim_url, Item::Table(entry));
    let text = doc.to_string();
    check_shim_first(&text, shim_url)?;
    Ok(HostsTomlEdit::Write(text))
}

/// The shim's host entry as the text of a new file writes it.
fn shim_entry_text(shim_url: &str) -> String {
    format!("{ENTRY_COMMENT}[host.\"{shim_url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n")
}

fn shim_table() -> Table {
    let mut entry = Table::new();
    let mut capabilities = Array::new();
    capabilities.push("pull");
    capabilities.push("resolve");
    entry.insert("capabilities", value(capabilities));
    if let Some((mut key, _)) = entry.iter_mut().next() {
        key.leaf_decor_mut().set_prefix("  ");
    }
    entry.decor_mut().set_prefix(format!("\n{ENTRY_COMMENT}"));
    entry
}

/// The edited text parses, and the shim is the first host in it (the order containerd tries
/// hosts in is the order of the file).
fn check_shim_first(text: &str, shim_url: &str) -> Result<(), HostsTomlError> {
    let cannot = || HostsTomlError::CannotPrepend(shim_url.to_owned());
    let doc: DocumentMut = text.parse().map_err(|_| cannot())?;
    let first = doc.get("host").and_then(Item::as_table_like).and_then(|t| t.iter().next().map(|(k, _)| k.to_owned()));
    match first {
        Some(first) if first == shim_url => Ok(()),
        _ => Err(cannot()),
    }
}

/// The host URLs of a hosts.toml in the order containerd tries them (the `server` last, when
/// there is one): for `shoal node doctor` and tests.
pub fn host_order(text: &str) -> Result<Vec<String>, HostsTomlError> {
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| HostsTomlError::Unparsable(e.to_string()))?;
    let mut order: Vec<String> = match doc.get("host") {
        Some(hosts) => {
            hosts.as_table_like().ok_or(HostsTomlError::HostNotATable)?.iter().map(|(k, _)| k.to_owned()).collect()
        }
        None => Vec::new(),
    };
    order.extend(doc.get("server").and_then(Item::as_str).map(str::to_owned));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIM: &str = "http://127.0.0.1:5000";

    fn ghcr() -> Namespace {
        Namespace::parse_registry("ghcr.io").unwrap()
    }

    fn written(edit: HostsTomlEdit) -> String {
        match edit {
            HostsTomlEdit::Write(text) => text,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn registries_parse_with_the_server_a_new_file_names() {
        let server = |spec| match Namespace::parse_registry(spec).unwrap() {
            Namespace::Registry { server, .. } => server,
            Namespace::Default => unreachable!(),
        };
        assert_eq!(server("ghcr.io"), "https://ghcr.io");
        assert_eq!(server("docker.io"), "https://registry-1.docker.io");
        assert_eq!(server("http://127.0.0.1:5001/"), "http://127.0.0.1:5001");
        assert_eq!(Namespace::parse_registry("http://127.0.0.1:5001").unwrap().dir_name(), "127.0.0.1:5001");
        for bad in ["", "ftp://x", "a/b", "_default", "has space", "https://"] {
            assert_eq!(Namespace::parse_registry(bad), Err(BadRegistry(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn a_new_file_has_the_shim_first_and_the_registry_after() {
        let text = written(with_shim_first(None, &ghcr(), SHIM).unwrap());
        assert_eq!(host_order(&text).unwrap(), [SHIM, "https://ghcr.io"]);
        assert!(text.contains("capabilities = [\"pull\", \"resolve\"]"), "{text}");
        let default = written(with_shim_first(None, &Namespace::Default, SHIM).unwrap());
        assert_eq!(host_order(&default).unwrap(), [SHIM]);
        assert!(!default.contains("server"), "{default}");
    }

    #[test]
    fn existing_entries_are_kept_byte_for_byte_after_the_shim() {
        let existing = "# our mirrors\nserver = \"https://ghcr.io\"\n\n[host.\"https://mirror.corp\"]\n  capabilities = [\"pull\"]\n  skip_verify = true # lab\n\n[host.\"https://second.corp\"]\ncapabilities = [\"pull\", \"resolve\"]\n[host.\"https://second.corp\".header]\n  x-team = \"a\"\n";
        let text = written(with_shim_first(Some(existing), &ghcr(), SHIM).unwrap());
        assert_eq!(host_order(&text).unwrap(), [SHIM, "https://mirror.corp", "https://second.corp", "https://ghcr.io"]);
        // Every original line is still there, in order, unchanged.
        let kept: Vec<&str> = text.lines().filter(|l| existing.lines().any(|e| e == *l)).collect();
        let original: Vec<&str> = existing.lines().collect();
        assert_eq!(
            kept.iter().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
            original.iter().filter(|l| !l.is_empty()).collect::<Vec<_>>()
        );
        assert!(text.starts_with("# our mirrors\nserver = \"https://ghcr.io\"\n"), "{text}");
    }

    #[test]
    fn a_file_with_only_a_server_line_gets_the_shim_entry() {
        let text = written(with_shim_first(Some("server = \"http://127.0.0.1:5001\"\n"), &ghcr(), SHIM).unwrap());
        assert_eq!(host_order(&text).unwrap(), [SHIM, "http://127.0.0.1:5001"]);
    }

    #[test]
    fn a_second_install_finds_the_entry() {
        let once = written(with_shim_first(Some("[host.\"https://m\"]\n"), &ghcr(), SHIM).unwrap());
        assert_eq!(with_shim_first(Some(&once), &ghcr(), SHIM), Ok(HostsTomlEdit::AlreadyPresent { first: true }));
        let slash = format!("[host.\"{SHIM}/\"]\n");
        assert_eq!(with_shim_first(Some(&slash), &ghcr(), SHIM), Ok(HostsTomlEdit::AlreadyPresent { first: true }));
        let behind = format!("[host.\"https://m\"]\n[host.\"{SHIM}\"]\n");
        assert_eq!(with_shim_first(Some(&behind), &ghcr(), SHIM), Ok(HostsTomlEdit::AlreadyPresent { first: false }));
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(matches!(with_shim_first(Some("server = "), &ghcr(), SHIM), Err(HostsTomlError::Unparsable(_))));
        assert_eq!(with_shim_first(Some("host = 3\n"), &ghcr(), SHIM), Err(HostsTomlError::HostNotATable));
        let dotted = "host.\"https://m\".capabilities = [\"pull\"]\n";
        assert!(matches!(with_shim_first(Some(dotted), &ghcr(), SHIM), Err(HostsTomlError::CannotPrepend(_))));
    }
}
