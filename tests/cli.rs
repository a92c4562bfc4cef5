//! End-to-end tests of the `shoal` command line as users run it: commands, flags, env twins, logs.

use std::path::Path;
use std::process::{Command, Output};

fn shoal(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal")).current_dir(dir).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "shoal failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn torrent_writes_the_profile_file_and_prints_infohash_and_magnet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob"), b"hello shoal").unwrap();
    let out = stdout(&shoal(
        dir.path(),
        &[
            "torrent",
            "blob",
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--webseed",
            "http://127.0.0.1:7000/webseed/",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0].len(), 40);
    let expected_digest = format!("sha256-{}", sha256sum(b"hello shoal"));
    assert!(dir.path().join(format!("{expected_digest}.torrent")).is_file());
    assert!(lines[1].starts_with(&format!("magnet:?xt=urn:btih:{}&dn={expected_digest}&xl=11&tr=", lines[0])));
    assert!(lines[1].contains("&ws=http%3A%2F%2F127.0.0.1%3A7000%2Fwebseed%2F"));

    // The magnet of the written file is the same link.
    let magnet = stdout(&shoal(dir.path(), &["magnet", &format!("{expected_digest}.torrent")]));
    assert_eq!(magnet.trim(), lines[1]);
}

/// coreutils' sha256sum, an independent check of the digest in the name.
fn sha256sum(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn json_output_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob"), vec![7u8; 100_000]).unwrap();
    let out = stdout(&shoal(dir.path(), &["torrent", "blob", "--json", "-o", "x.torrent", "--name", "custom"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"].as_str().unwrap(), format!("sha256:{}", sha256sum(&[7u8; 100_000])));
    assert_eq!(v["size"], 100_000);
    assert_eq!(v["piece_length"], 32768);
    assert_eq!(v["info_hash"].as_str().unwrap().len(), 40);
    assert!(v["magnet"].as_str().unwrap().contains("&dn=custom&"));
    assert!(dir.path().join("x.torrent").is_file());
}

#[test]
fn same_file_gives_byte_identical_torrents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob"), vec![1u8; 70_000]).unwrap();
    stdout(&shoal(dir.path(), &["torrent", "blob", "-o", "a.torrent", "--tracker", "udp://t:1"]));
    stdout(&shoal(dir.path(), &["torrent", "blob", "-o", "b.torrent", "--tracker", "udp://t:1"]));
    assert_eq!(
        std::fs::read(dir.path().join("a.torrent")).unwrap(),
        std::fs::read(dir.path().join("b.torrent")).unwrap()
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob"), b"x").unwrap();
    std::fs::write(dir.path().join("junk.torrent"), b"d4:infod6:lengthi1e").unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["torrent", "missing"], "cannot open missing"),
        (&["torrent", "adir"], "not a regular file"),
        (&["torrent", "blob", "--tracker", "not a url"], "not a valid URL"),
        (&["torrent", "blob", "--webseed", "ftp://x/"], "scheme must be one of"),
        (&["torrent", "blob", "--name", "../escape"], "plain file name"),
        (&["magnet", "junk.torrent"], "malformed bencode at byte"),
        (&["magnet", "blob"], "not a valid .torrent"),
    ];
    for (args, needle) in cases {
        let out = shoal(dir.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err:?} should mention {needle:?}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["adir", "blob", "junk.torrent"], "a failed command left files behind");
}

/// The `[env: NAME]` twins `shoal <command> --help` lists.
fn env_twins(command: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = command.split(' ').collect();
    args.push("--help");
    let help = stdout(&shoal(dir.path(), &args));
    let mut names: Vec<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect())
        .collect();
    names.sort();
    names
}

#[test]
fn env_twins_keep_their_names_through_the_shared_flag_groups() {
    // Frozen: compose files, units and docs use these names; a flag group must not rename one.
    let expected: &[(&str, &str)] = &[
        ("seeder", "SHOAL_LOG_FORMAT SHOAL_SEEDER_ANNOUNCE_PORT SHOAL_SEEDER_API_TOKEN SHOAL_SEEDER_BT_LISTEN SHOAL_SEEDER_CONFIG SHOAL_SEEDER_DATA_DIR SHOAL_SEEDER_DHT SHOAL_SEEDER_IMAGES SHOAL_SEEDER_INSECURE_REGISTRIES SHOAL_SEEDER_LISTEN SHOAL_SEEDER_LSD SHOAL_SEEDER_MAX_DOWNLOAD_RATE SHOAL_SEEDER_MAX_STORE_BYTES SHOAL_SEEDER_MAX_UPLOAD_RATE SHOAL_SEEDER_MEMBERS SHOAL_SEEDER_MIRROR_ALLOW SHOAL_SEEDER_MIRROR_ATTEMPTS SHOAL_SEEDER_MIRROR_RETRY_BACKOFF_MS SHOAL_SEEDER_NO_SUPER_SEED SHOAL_SEEDER_PLATFORMS SHOAL_SEEDER_PUBLIC_URL SHOAL_SEEDER_REPLICAS SHOAL_SEEDER_STORE_HIGH_WATERMARK SHOAL_SEEDER_STORE_LOW_WATERMARK SHOAL_SEEDER_TLS_CERT SHOAL_SEEDER_TLS_CLIENT_CA SHOAL_SEEDER_TLS_KEY SHOAL_SEEDER_TRACKERS SHOAL_SEEDER_UPSTREAM SHOAL_SEEDER_UPSTREAM_CONNECT_TIMEOUT_MS SHOAL_SEEDER_UPSTREAM_FIRST_BYTE_TIMEOUT_MS SHOAL_SEEDER_UPSTREAM_IDLE_TIMEOUT_MS SHOAL_SEEDER_UPSTREAM_PASSWORD SHOAL_SEEDER_UPSTREAM_USERNAME"),
        ("shim", "SHOAL_LOG_FORMAT SHOAL_SHIM_ANNOUNCE_PORT SHOAL_SHIM_BT_LISTEN SHOAL_SHIM_CONFIG SHOAL_SHIM_DATA_DIR SHOAL_SHIM_INSECURE_REGISTRIES SHOAL_SHIM_LISTEN SHOAL_SHIM_MAX_DOWNLOAD_RATE SHOAL_SHIM_MAX_STORE_BYTES SHOAL_SHIM_MAX_UPLOAD_RATE SHOAL_SHIM_MIRROR_MISS_TIMEOUT_MS SHOAL_SHIM_PEER_REQUEST_WINDOW SHOAL_SHIM_SEEDER SHOAL_SHIM_SEEDER_CA SHOAL_SHIM_SEEDER_CLIENT_CERT SHOAL_SHIM_SEEDER_CLIENT_KEY SHOAL_SHIM_STALE_TAG_MAX_AGE_SECS SHOAL_SHIM_STALL_TIMEOUT_MS SHOAL_SHIM_STORE_HIGH_WATERMARK SHOAL_SHIM_STORE_LOW_WATERMARK SHOAL_SHIM_TAG_TTL_SECS SHOAL_SHIM_TLS_CERT SHOAL_SHIM_TLS_CLIENT_CA SHOAL_SHIM_TLS_KEY SHOAL_SHIM_TORRENT_TIMEOUT_MS SHOAL_SHIM_TRACKERS SHOAL_SHIM_UNCHOKE_WAIT_MS SHOAL_SHIM_UPSTREAM SHOAL_SHIM_UPSTREAM_CONNECT_TIMEOUT_MS SHOAL_SHIM_UPSTREAM_FIRST_BYTE_TIMEOUT_MS SHOAL_SHIM_UPSTREAM_IDLE_TIMEOUT_MS SHOAL_SHIM_UPSTREAM_PASSWORD SHOAL_SHIM_UPSTREAM_USERNAME"),
        ("jobs", "SHOAL_JOBS_JSON SHOAL_LOG_FORMAT SHOAL_SEEDER SHOAL_SEEDER_CA SHOAL_SEEDER_CLIENT_CERT SHOAL_SEEDER_CLIENT_KEY"),
        ("up", "SHOAL_API_TOKEN SHOAL_BT_LISTEN SHOAL_CONFIG SHOAL_DATA_DIR SHOAL_IMAGES SHOAL_INSECURE_REGISTRIES SHOAL_LOG_FORMAT SHOAL_MAX_STORE_BYTES SHOAL_MIRROR_ALLOW SHOAL_MIRROR_ATTEMPTS SHOAL_MIRROR_RETRY_BACKOFF_MS SHOAL_NO_SUPER_SEED SHOAL_PLATFORMS SHOAL_PUBLIC SHOAL_PUBLIC_HOST SHOAL_SEEDER_LISTEN SHOAL_SHIM_BT_LISTEN SHOAL_SHIM_LISTEN SHOAL_SHIM_MAX_STORE_BYTES SHOAL_SHIM_MIRROR_MISS_TIMEOUT_MS SHOAL_SHIM_PEER_REQUEST_WINDOW SHOAL_SHIM_STALE_TAG_MAX_AGE_SECS SHOAL_SHIM_STALL_TIMEOUT_MS SHOAL_SHIM_STORE_HIGH_WATERMARK SHOAL_SHIM_STORE_LOW_WATERMARK SHOAL_SHIM_TAG_TTL_SECS SHOAL_SHIM_TORRENT_TIMEOUT_MS SHOAL_SHIM_UNCHOKE_WAIT_MS SHOAL_TRACKERS SHOAL_TRACKER_LISTEN SHOAL_UPSTREAM SHOAL_UPSTREAM_CONNECT_TIMEOUT_MS SHOAL_UPSTREAM_FIRST_BYTE_TIMEOUT_MS SHOAL_UPSTREAM_IDLE_TIMEOUT_MS SHOAL_UPSTREAM_PASSWORD SHOAL_UPSTREAM_USERNAME"),
        ("node install", "SHOAL_LOG_FORMAT SHOAL_NODE_CONTAINERD_CONFIG SHOAL_NODE_DOCKER_DAEMON_JSON SHOAL_NODE_DRY_RUN SHOAL_NODE_FIX SHOAL_NODE_HOSTS_DIR SHOAL_NODE_MIRROR_ALL SHOAL_NODE_REGISTRIES SHOAL_NODE_RUNTIMES SHOAL_NODE_SHIM_URL SHOAL_NODE_STATE_DIR"),
        ("node uninstall", "SHOAL_LOG_FORMAT SHOAL_NODE_DRY_RUN SHOAL_NODE_FORCE SHOAL_NODE_STATE_DIR"),
        ("node doctor", "SHOAL_LOG_FORMAT SHOAL_NODE_CONTAINERD_ADDRESS SHOAL_NODE_DIAL_TIMEOUT_MS SHOAL_NODE_DOCTOR_IMAGE SHOAL_NODE_HOSTS_DIR SHOAL_NODE_MISS_REGISTRY SHOAL_NODE_PULL_WITH SHOAL_NODE_SHIM_URL"),
        ("completions", "SHOAL_COMPLETIONS_SHELL SHOAL_LOG_FORMAT"),
    ];
    for (command, names) in expected {
        assert_eq!(env_twins(command).join(" "), *names, "shoal {command}");
    }
}

/// The subcommands `shoal [command] --help` lists under `Commands:` (clap's own `help` left out).
fn subcommands(command: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = command.to_vec();
    args.push("--help");
    let help = stdout(&shoal(dir.path(), &args));
    let listed = help.split("Commands:\n").nth(1).expect("a Commands: section");
    listed
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let top = subcommands(&[]);
    assert!(top.len() >= 10 && top.iter().any(|c| c == "completions"), "{top:?}");
    let node = subcommands(&["node"]);
    assert_eq!(node, ["install", "uninstall", "doctor"]);
    let bash = stdout(&shoal(dir.path(), &["completions", "bash"]));
    assert!(bash.contains("complete -F _shoal"), "not a bash completion script:\n{bash}");
    // bash's script maps each subcommand word to its own case (`shoal,node)`, then
    // `shoal__subcmd__node)`, `shoal__subcmd__node,install)`), which lists that command's flags.
    for name in &top {
        assert!(bash.contains(&format!("shoal,{name})")), "bash completion lacks `{name}`");
        assert!(bash.contains(&format!("shoal__subcmd__{name})")), "bash completion lacks `{name}`'s case");
    }
    for name in &node {
        let case = format!("shoal__subcmd__node__subcmd__{name})");
        assert!(bash.contains(&case), "bash completion lacks `node {name}`");
    }
    for flag in ["--member", "--replicas", "--public-url", "--mirror-all", "--self-url"] {
        assert!(bash.split_whitespace().any(|w| w == flag), "bash completion lacks {flag}");
    }
    let zsh = stdout(&shoal(dir.path(), &["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef shoal"), "{zsh}");
    // The env twin picks the shell when no argument does.
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["completions"])
        .env("SHOAL_COMPLETIONS_SHELL", "fish")
        .output()
        .unwrap();
    let fish = stdout(&out);
    assert!(fish.contains("complete -c shoal"), "{fish}");
    for name in &top {
        assert!(fish.contains(&format!("-a \"{name}\"")), "fish completion lacks `{name}`");
    }
    let bad = shoal(dir.path(), &["completions", "powershell"]);
    assert!(!bad.status.success());
}

/// Environment variables to run a command with.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn grouped_flags_are_read_from_their_env_twins() {
    let dir = tempfile::tempdir().unwrap();
    // Each fails while the config is built, before anything binds a port.
    let cases: &[(&str, Env, &str)] = &[
        (
            "seeder",
            &[("SHOAL_SEEDER_MAX_STORE_BYTES", "1MiB"), ("SHOAL_SEEDER_STORE_HIGH_WATERMARK", "2")],
            "invalid --max-store-bytes or watermarks",
        ),
        ("shim", &[("SHOAL_SHIM_MAX_STORE_BYTES", "lots")], "lots"),
        (
            "up",
            &[("SHOAL_SHIM_MAX_STORE_BYTES", "1MiB"), ("SHOAL_SHIM_STORE_LOW_WATERMARK", "5")],
            "invalid --max-store-bytes or watermarks",
        ),
        (
            "seeder",
            &[("SHOAL_SEEDER_UPSTREAM_USERNAME", "u"), ("SHOAL_SEEDER_UPSTREAM_PASSWORD", "p")],
            "--upstream-username needs --upstream",
        ),
    ];
    for (command, env, error) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .current_dir(dir.path())
            .arg(command)
            .args(["--data-dir", "data"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(error), "shoal {command} with {env:?}: {stderr}");
    }
    assert!(!dir.path().join("data").exists(), "a refused start wrote nothing");
}

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let version = stdout(&shoal(dir.path(), &["--version"]));
    let commit = version.trim().strip_prefix("shoal 0.1.0 (commit ").and_then(|v| v.strip_suffix(')'));
    let commit = commit.unwrap_or_else(|| panic!("unexpected --version: {version}"));
    // A checkout (as CI's clean clone) names its commit; only a source tarball says `unknown`.
    let in_git = Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists();
    assert!(!in_git || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{version}");
}

#[test]
fn urls_are_checked_when_the_flags_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["shim", "--seeder", "notaurl"],
        &["magnets", "team/app:v1", "--seeder", "ftp://seeder"],
        &["seeder", "--public-url", "seeder:7000/"],
    ];
    for args in cases {
        let out = shoal(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error, not a run-time one: {stderr}");
        assert!(stderr.contains("invalid value") && stderr.contains("http://"), "{args:?}: {stderr}");
    }
}

#[test]
fn torrent_files_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blob"), b"umask").unwrap();
    for (umask, mode) in [("022", 0o644), ("027", 0o640)] {
        let script = format!("umask {umask}; exec \"$0\" torrent blob -o {umask}.torrent");
        let out = Command::new("sh")
            .current_dir(dir.path())
            .args(["-c", &script, env!("CARGO_BIN_EXE_shoal")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let written = std::fs::metadata(dir.path().join(format!("{umask}.torrent"))).unwrap().permissions().mode();
        assert_eq!(written & 0o777, mode, "umask {umask}");
    }
}

#[test]
fn the_seeder_port_is_one_default_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let help = |command: &str| stdout(&shoal(dir.path(), &[command, "--help"]));
    // On loopback unless told otherwise (`shoal up --public`, or a listen address).
    assert!(help("seeder").contains("[default: 127.0.0.1:7000]"), "shoal seeder --listen");
    assert!(help("up").contains("[default: 127.0.0.1:7000, or 0.0.0.0:7000 with"), "shoal up --seeder-listen");
    assert!(help("magnets").contains("[default: http://127.0.0.1:7000]"), "shoal magnets --seeder");
    assert!(help("jobs").contains("[default: http://127.0.0.1:7000]"), "shoal jobs --seeder");
}

/// The first log line `shoal tracker` writes to a piped stderr with `SHOAL_LOG_FORMAT=format`
/// (read until it says it listens; then the tracker is stopped).
fn first_tracker_log_line(format: &str) -> String {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["tracker", "--listen", "127.0.0.1:0"])
        .env("SHOAL_LOG_FORMAT", format)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().expect("a log line").unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    line
}

#[test]
fn logs_are_plain_off_a_terminal_and_json_when_asked() {
    let text = first_tracker_log_line("text");
    assert!(text.contains("tracker listening") && !text.contains('\u{1b}'), "escape codes off a terminal: {text:?}");
    let json: serde_json::Value = serde_json::from_str(&first_tracker_log_line("json")).unwrap();
    assert_eq!(json["level"], "INFO");
    assert_eq!(json["fields"]["message"], "tracker listening");
    assert_eq!(json["target"], "shoal_tracker");
    let out = shoal(Path::new("."), &["tracker", "--log-format", "yaml"]);
    assert_eq!(out.status.code(), Some(2), "an unknown format is a usage error");
}

/// The JSON log lines `shoal shim ARGS` writes until it says it listens (then it is stopped).
fn shim_start_log(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .current_dir(dir)
        .args(["--log-format", "json", "shim", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"])
        .args(args)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let json: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let listening = json["fields"]["message"] == "shim listening";
        lines.push(json);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

#[test]
fn the_store_is_capped_by_default_at_a_share_of_the_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let limit_line = |lines: &[serde_json::Value]| {
        lines.iter().find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("store limit"))).cloned()
    };
    let line = limit_line(&shim_start_log(dir.path(), &["--data-dir", "auto"])).expect("no store-limit line");
    let fields = &line["fields"];
    let (max, free) = (fields["max_store_bytes"].as_u64().unwrap(), fields["free_bytes"].as_u64().unwrap());
    assert_eq!(fields["stored_bytes"], 0);
    assert_eq!(max, (free as f64 * 0.8) as u64, "{line}");
    // Against df's figure for the same filesystem (the suite writes meanwhile: within 5%).
    let df = Command::new("df").args(["-B1", "--output=avail"]).arg(dir.path()).output().unwrap();
    let avail: f64 = String::from_utf8_lossy(&df.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
    assert!((free as f64 - avail).abs() < avail * 0.05, "free {free} against df's {avail}");
    // A size, or none, is taken as given.
    assert!(limit_line(&shim_start_log(dir.path(), &["--data-dir", "none", "--max-store-bytes", "none"])).is_none());
    assert!(limit_line(&shim_start_log(dir.path(), &["--data-dir", "sized", "--max-store-bytes", "1GiB"])).is_none());
}

#[test]
fn node_install_refuses_bad_input_by_name_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("certs.d");
    std::fs::create_dir_all(hosts.join("ghcr.io")).unwrap();
    std::fs::write(hosts.join("ghcr.io/hosts.toml"), "server = \"https://ghcr.io\"\n[host.\"https://m\"\n").unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{\"debug\": tru").unwrap();
    let paths = [
        "--hosts-dir=certs.d",
        "--state-dir=state",
        "--containerd-config=config.toml",
        "--docker-daemon-json=daemon.json",
    ];
    let cases: &[(&[&str], &str)] = &[
        (&["--registry", "ghcr.io"], "/certs.d/ghcr.io/hosts.toml: it is not valid TOML"),
        (&["--registry", "quay.io", "--runtime", "docker"], "/daemon.json: it is not valid JSON"),
        (&["--registry", "ftp://x"], "\"ftp://x\" is not a registry"),
        (&[], "--registry"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["node", "install"];
        args.extend(paths);
        args.extend(*extra);
        let out = shoal(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{args:?}: {err:?} should mention {needle:?}");
    }
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["certs.d", "daemon.json"], "a refused install wrote files");
    assert_eq!(std::fs::read_dir(&hosts).unwrap().count(), 1);
}

#[test]
fn a_toml_config_file_sets_flags_and_a_misspelt_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // The printed default file, uncommented, is taken by every service.
    let default = stdout(&shoal(dir.path(), &["config", "print-default"]));
    let uncommented: String = default
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# ")
                .filter(|l| l.contains(" = ") && !l.ends_with("\"\""))
                .or(l.starts_with('[').then_some(l))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("default.toml"), &uncommented).unwrap();
    for command in ["tracker", "seeder", "shim", "up"] {
        let out = shoal(dir.path(), &[command, "--config", "default.toml", "--help"]);
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A value from the file is used: a shim whose certificate the file names fails on that file.
    let file = "[shim]\ntls-cert = \"/nonexistent/from-file.pem\"\ntls-key = \"/nonexistent/key.pem\"\n\
                data-dir = \"data\"\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(dir.path().join("tls.toml"), file).unwrap();
    let out = shoal(dir.path(), &["shim", "--config", "tls.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/from-file.pem"), "{out:?}");
    std::fs::write(dir.path().join("bad.toml"), "[shim]\nstall-timout-ms = 5\n").unwrap();
    let out = shoal(dir.path(), &["shim", "--config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key `stall-timout-ms` in [shim] of bad.toml"), "{stderr}");
    // The environment twin names the file too.
    let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .current_dir(dir.path())
        .env("SHOAL_SHIM_CONFIG", "bad.toml")
        .args(["shim", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
