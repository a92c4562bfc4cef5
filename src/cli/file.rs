//! The TOML config file (`--config shoal.toml`): every flag of `shoal tracker|seeder|shim|up`
//! has a key, its long name, in the command's section. The file's values become the flags'
//! defaults, so the environment twin and the flag itself still override them (clap's order:
//! flag, then env, then default). Pure: argv, the environment and the file's text come in.
//!
//! Flags that go in pairs (`--tls-cert` and `--tls-key`, `--member` and `--self-url`) go both
//! in the file or both on the command line: clap checks a pair only among the flags given.
//!
//! ```toml
//! [shim]
//! seeder = ["http://s1:7000", "http://s2:7000"]
//! stall-timeout-ms = 5000
//! ```

use std::ffi::OsString;

use clap::Command;

/// The subcommands whose flags a file can set, each in its own section.
pub const SECTIONS: [&str; 4] = ["tracker", "seeder", "shim", "up"];

/// Why a config file cannot be used; nothing is started.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigFileError {
    #[error("cannot read the config file {file}: {error}")]
    Read { file: String, error: String },
    #[error("the config file {file} is not valid TOML: {error}")]
    Parse { file: String, error: String },
    #[error("unknown key `{key}` in {file}: not a section of {}", SECTIONS.join(", "))]
    UnknownSection { file: String, key: String },
    #[error("unknown key `{key}` in [{section}] of {file}: `shoal {section} --help` lists the flags, each a key")]
    UnknownKey { file: String, section: String, key: String },
    #[error("`{key}` in [{section}] of {file}: {message}")]
    BadValue { file: String, section: String, key: String, message: String },
}

/// Where the running subcommand's TOML file is: `--config PATH` on the command line, else its
/// environment twin; `None` when neither names a `.toml` file (a `.json` one is the seeder's
/// older image list, read by the command itself).
pub fn config_path(cmd: &Command, argv: &[OsString], env: impl Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let args: Vec<String> = argv.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let position = args.iter().position(|a| SECTIONS.contains(&a.as_str()))?;
    let section = args[position].clone();
    let mut path = None;
    let mut rest = args[position + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            break;
        }
        if let Some(value) = arg.strip_prefix("--config=") {
            path = Some(value.to_owned());
        } else if arg == "--config" {
            path = rest.next().cloned();
        }
    }
    let path = path.or_else(|| {
        let sub = cmd.find_subcommand(&section)?;
        let config = sub.get_arguments().find(|a| a.get_long() == Some("config"))?;
        env(config.get_env()?.to_str()?)
    })?;
    path.ends_with(".toml").then_some((section, path))
}

/// `cmd` with the defaults of `section`'s flags taken from `text` (the file at `file`). Every
/// section of the file is checked, not only the one in use: a misspelt key is an error
/// wherever it is.
pub fn with_file_defaults(mut cmd: Command, section: &str, file: &str, text: &str) -> Result<Command, ConfigFileError> {
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| ConfigFileError::Parse { file: file.into(), error: e.to_string() })?;
    for (name, item) in doc.iter() {
        let Some(table) = item.as_table().filter(|_| SECTIONS.contains(&name)) else {
            return Err(ConfigFileError::UnknownSection { file: file.into(), key: name.into() });
        };
        let sub = cmd.find_subcommand(name).expect("every section is a subcommand").clone();
        for (key, value) in table.iter() {
            let unknown = || ConfigFileError::UnknownKey { file: file.into(), section: name.into(), key: key.into() };
            let arg = sub.get_arguments().find(|a| a.get_long() == Some(key) && key != "config").ok_or_else(unknown)?;
            let bad = |message: &str| ConfigFileError::BadValue {
                file: file.into(),
                section: name.into(),
                key: key.into(),
                message: message.into(),
            };
            let values =
                flag_values(value).ok_or_else(|| bad("expected a string, number, boolean or array of them"))?;
            let takes_many = matches!(arg.get_action(), clap::ArgAction::Append) || arg.get_value_delimiter().is_some();
            if values.len() != 1 && !takes_many {
                return Err(bad("takes one value, not an array"));
            }
            if name == section {
                let id = arg.get_id().clone();
                cmd = cmd.mut_subcommand(name, |s| s.mut_arg(id, |a| a.default_values(values)));
            }
        }
    }
    Ok(cmd)
}

/// A TOML value as the flag's raw values.
fn flag_values(item: &toml_edit::Item) -> Option<Vec<String>> {
    let one = |v: &toml_edit::Value| -> Option<String> {
        match v {
            toml_edit::Value::String(s) => Some(s.value().clone()),
            toml_edit::Value::Integer(i) => Some(i.value().to_string()),
            toml_edit::Value::Float(f) => Some(f.value().to_string()),
            toml_edit::Value::Boolean(b) => Some(b.value().to_string()),
            _ => None,
        }
    };
    match item.as_value()? {
        toml_edit::Value::Array(array) => array.iter().map(one).collect(),
        value => one(value).map(|v| vec![v]),
    }
}

/// The commented default file: every flag of every section, its help as a comment and its
/// default commented out, so the file as printed changes nothing.
pub fn default_file(cmd: &Command) -> String {
    let mut out = String::from(
        "# Shoal's config file: `shoal <command> --config shoal.toml`. Every flag is a key (its long name)\n\
         # in its command's section; the environment twin and the flag itself override the file.\n",
    );
    for section in SECTIONS {
        let sub = cmd.find_subcommand(section).expect("every section is a subcommand");
        out.push_str(&format!("\n[{section}]\n"));
        for arg in sub.get_arguments() {
            let Some(long) = arg.get_long().filter(|l| !matches!(*l, "config" | "help" | "version")) else { continue };
            if let Some(help) = arg.get_help() {
                for line in help.to_string().lines() {
                    out.push_str(&format!("# {line}\n"));
                }
            }
            let defaults: Vec<String> =
                arg.get_default_values().iter().map(|v| toml_string(&v.to_string_lossy())).collect();
            let value = match defaults.len() {
                0 => String::from("\"\""),
                1 => defaults[0].clone(),
                _ => format!("[{}]", defaults.join(", ")),
            };
            out.push_str(&format!("# {long} = {value}\n"));
        }
    }
    out
}

/// A TOML value for a flag's raw default: numbers and booleans bare, the rest quoted.
fn toml_string(raw: &str) -> String {
    if raw == "true" || raw == "false" || raw.parse::<f64>().is_ok() {
        raw.to_owned()
    } else {
        toml_edit::Value::from(raw).to_string().trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    use crate::cli::{Cli, Command as Sub};

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("shoal").chain(args.iter().copied()).map(OsString::from).collect()
    }

    fn parse(args: &[&str], text: &str) -> Result<Cli, ConfigFileError> {
        let cmd = with_file_defaults(Cli::command(), args[0], "shoal.toml", text)?;
        Ok(Cli::from_arg_matches(&cmd.get_matches_from(argv(args))).unwrap())
    }

    #[test]
    fn the_config_path_comes_from_the_flag_then_the_environment() {
        let cmd = Cli::command();
        let none = |_: &str| None;
        assert_eq!(
            config_path(&cmd, &argv(&["shim", "--config", "a.toml"]), none),
            Some(("shim".into(), "a.toml".into()))
        );
        assert_eq!(
            config_path(&cmd, &argv(&["--log-format", "json", "tracker", "--config=b.toml"]), none).unwrap().1,
            "b.toml"
        );
        let env = |name: &str| (name == "SHOAL_SHIM_CONFIG").then(|| "c.toml".to_owned());
        assert_eq!(config_path(&cmd, &argv(&["shim"]), env).unwrap().1, "c.toml");
        // The seeder's JSON image list is the command's own business.
        assert_eq!(config_path(&cmd, &argv(&["seeder", "--config", "images.json"]), none), None);
        assert_eq!(config_path(&cmd, &argv(&["torrent", "f"]), none), None);
    }

    #[test]
    fn file_values_are_defaults_under_the_flags() {
        let text = "[shim]\nstall-timeout-ms = 5000\nseeder = [\"http://a:7000\", \"http://b:7000\"]\n\
                    [tracker]\ninterval = 60\n";
        let Sub::Shim(shim) = parse(&["shim"], text).unwrap().command else { panic!() };
        assert_eq!(shim.timing.stall_timeout_ms, 5000);
        assert_eq!(shim.seeders, ["http://a:7000", "http://b:7000"]);
        let Sub::Shim(shim) = parse(&["shim", "--stall-timeout-ms", "7"], text).unwrap().command else { panic!() };
        assert_eq!(shim.timing.stall_timeout_ms, 7, "the flag wins over the file");
        let Sub::Tracker(tracker) = parse(&["tracker"], text).unwrap().command else { panic!() };
        assert_eq!(tracker.interval, 60);
    }

    #[test]
    fn booleans_and_flattened_groups_have_keys_too() {
        let Sub::Seeder(seeder) = parse(&["seeder"], "[seeder]\ndht = true\nreplicas = 3\n").unwrap().command else {
            panic!()
        };
        assert!(seeder.dht);
        assert_eq!(seeder.ring.replicas, 3);
    }

    #[test]
    fn misspelt_keys_and_bad_values_are_errors_naming_them() {
        let err = parse(&["shim"], "[shim]\nstall-timeout = 5\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key `stall-timeout` in [shim] of shoal.toml: `shoal shim --help` lists the flags, each a key"
        );
        // Checked in every section, not only the one in use.
        assert!(matches!(parse(&["shim"], "[tracker]\nintervall = 5\n"), Err(ConfigFileError::UnknownKey { .. })));
        assert!(matches!(parse(&["shim"], "listen = 1\n"), Err(ConfigFileError::UnknownSection { .. })));
        assert!(matches!(parse(&["shim"], "[shim]\nlisten = [\"a\", \"b\"]\n"), Err(ConfigFileError::BadValue { .. })));
        assert!(matches!(parse(&["shim"], "[shim]\nlisten = { a = 1 }\n"), Err(ConfigFileError::BadValue { .. })));
        assert!(matches!(parse(&["shim"], "[shim\n"), Err(ConfigFileError::Parse { .. })));
    }

    #[test]
    fn the_example_file_in_the_docs_loads_and_parses_for_every_section() {
        let text = include_str!("../../docs/examples/shoal.toml");
        let Sub::Seeder(seeder) = parse(&["seeder"], text).unwrap().command else { panic!() };
        assert_eq!(seeder.ring.members.len(), 3);
        assert_eq!(seeder.public_url.as_deref(), Some("http://s1:7000"));
        let Sub::Shim(shim) = parse(&["shim"], text).unwrap().command else { panic!() };
        assert_eq!(shim.seeders.len(), 3);
        let Sub::Tracker(tracker) = parse(&["tracker"], text).unwrap().command else { panic!() };
        assert_eq!(tracker.self_url.as_deref(), Some("http://t1:6969/announce"));
        let Sub::Up(up) = parse(&["up"], text).unwrap().command else { panic!() };
        assert_eq!(up.upstream, "registry.lan:5000");
    }

    #[test]
    fn the_default_file_loads_and_changes_nothing() {
        let text = default_file(&Cli::command());
        assert!(text.contains("[seeder]") && text.contains("# stall-timeout-ms = 3000"), "{text}");
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = ")).or(l.starts_with('[').then_some(l)))
            .map(|l| format!("{l}\n"))
            .collect();
        // Every key the default file names is one the loader takes.
        for section in SECTIONS {
            with_file_defaults(Cli::command(), section, "default.toml", &uncommented).unwrap();
        }
    }
}
