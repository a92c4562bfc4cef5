//! Helpers shared by the interop tests: real tools, child processes, readiness waits, servers.
//!
//! Tests here drive real clients (aria2c, mktorrent, libtorrent, qbittorrent-nox...) against
//! Shoal. A missing tool is a failure with the install hint, never a skip: CI installs them all.

pub mod browser;
pub mod containerd;
pub mod docker;
pub mod hostile;
pub mod registry;
pub mod stack;
pub mod stock;
pub mod token;
pub mod up;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a tool on PATH; panics with the Debian package to install when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: run `bash .ci/install-deps` (Debian packages)"))
}

/// Debian's python3-libtorrent is importable only by the system interpreter, not pyenv's.
pub fn system_python() -> PathBuf {
    let p = PathBuf::from("/usr/bin/python3");
    assert!(p.is_file(), "/usr/bin/python3 is missing: apt-get install python3-libtorrent");
    p
}

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that was free a moment ago, for tools that cannot bind port 0 themselves
/// and report it back (aria2c, qbittorrent-nox). Our own servers bind port 0 instead.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `ready` every 20 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
    assert!(poll_until(timeout, ready), "timed out after {timeout:?} waiting for {what}");
}

/// Polls `ready` every 20 ms until it holds (true) or `timeout` has passed (false), for a
/// caller that says more than [`wait_until`] when it fails.
pub fn poll_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Waits (without blocking a runtime thread an in-process server needs) until `ready`, for up
/// to 20 s; panics with `what` after that.
pub async fn eventually(what: &str, ready: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs blocking work (child processes, curl, polling) off the runtime the in-process services
/// of a test run on.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// The `complete` count of `info_hash`'s swarm in a scrape (BEP 48) of the tracker announcing
/// at `announce`; 0 when the tracker does not answer or knows no such swarm.
pub fn seeds_at_tracker(announce: &str, info_hash: &shoal_torrents::InfoHash) -> u64 {
    let hash: String = info_hash.as_bytes().iter().map(|b| format!("%{b:02x}")).collect();
    let url = format!("{}?info_hash={hash}", announce.replace("/announce", "/scrape"));
    let out = Command::new(require_tool("curl")).args(["-sf", "--max-time", "10", &url]).output().unwrap();
    let reply = String::from_utf8_lossy(&out.stdout);
    let count = reply.split("8:completei").nth(1).and_then(|rest| rest.split('e').next());
    count.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Where the store under `data` (a shim's or a seeder's data dir) keeps a blob, whether or not
/// it is there.
pub fn blob_path(data: &Path, digest: &str) -> PathBuf {
    data.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// The file of a blob in the store under `data`, once it is there: a shim hands its client the
/// last byte as soon as the blob has matched its digest, and syncs and renames the file into
/// the store just after.
pub async fn stored_blob(data: &Path, digest: &str) -> PathBuf {
    let path = blob_path(data, digest);
    eventually(&format!("{digest} in the store"), || path.is_file()).await;
    path
}

/// Waits until something accepts TCP connections at `addr`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) {
    wait_until(&format!("a listener on {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// Writes `len` pseudo-random bytes (seeded, so reruns hash the same) to `dir/name`.
pub fn write_blob(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The SHA-256 of a file, as `sha256:<hex>`, for checking what a client downloaded.
pub fn sha256_file(path: &Path) -> String {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let size = f.metadata().unwrap().len();
    shoal_torrents::hash_reader(f, size, &mut |_| {}).unwrap().digest.to_string()
}

/// Runs a command to completion; panics with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---- Helpers added with the seeder's interop tests (seeder_*.rs) ----

/// aria2c flags that keep it to the peers a test names: no DHT, local discovery or PeX.
pub const ARIA2C_NO_DISCOVERY: [&str; 4] =
    ["--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false"];

/// aria2c downloading `what` (a .torrent path or a magnet) into `dir` with DHT, LSD and PeX off,
/// no seeding afterwards, bounded to 120 s, plus `extra` flags; and the path of its log.
pub fn aria2c_command(dir: &Path, what: &std::ffi::OsStr, extra: &[&str]) -> (Command, PathBuf) {
    let log = dir.with_extension("aria2.log");
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(require_tool("aria2c"))
        .arg("-d")
        .arg(dir)
        .args(ARIA2C_NO_DISCOVERY)
        .args([
            "--seed-time=0",
            "--bt-save-metadata=false",
            "--bt-stop-timeout=90",
            "--summary-interval=0",
            "--console-log-level=warn",
            "--allow-overwrite=true",
            "--log-level=info",
        ])
        .args(extra)
        .arg(format!("--log={}", log.display()))
        .arg(format!("--listen-port={}", free_port()))
        .arg(format!("--dht-listen-port={}", free_port()))
        .arg(what);
    (cmd, log)
}

/// Panics with aria2c's output and log unless it succeeded.
pub fn assert_aria2c_succeeded(what: &std::ffi::OsStr, out: &std::process::Output, log: &Path) {
    assert!(
        out.status.success(),
        "aria2c {} failed ({}):\n{}\n{}\nlog:\n{}",
        what.to_string_lossy(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Runs `aria2c_command(dir, what, &[])` and panics with aria2c's log when it fails.
pub fn aria2c_download(dir: &Path, what: &std::ffi::OsStr) {
    let (mut cmd, log) = aria2c_command(dir, what, &[]);
    let out = cmd.output().unwrap();
    assert_aria2c_succeeded(what, &out, &log);
}

/// `cmd` without the variables cargo sets for a test binary (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`,
/// ...), so a cargo started from a test builds as one started from a shell does: build scripts
/// that watch their environment would otherwise rebuild ring, rustls and everything above.
pub fn without_cargo_test_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        // Cargo's user configuration (CARGO_HOME, CARGO_TARGET_DIR, CARGO_BUILD_*, ...) stays.
        let user_config = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL"].contains(&&*key)
            || ["CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_TERM_", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTRIES_"]
                .iter()
                .any(|p| key.starts_with(p));
        let set_by_cargo = (key.starts_with("CARGO") && !user_config)
            || ["RUSTC", "RUSTDOC", "RUST_RECURSION_COUNT", "LD_LIBRARY_PATH", "OUT_DIR"].contains(&&*key);
        if set_by_cargo {
            cmd.env_remove(&*key);
        }
    }
    cmd
}

/// The workspace's `shoal` binary: `$SHOAL_BIN` when set (e.g. a release build), else
/// `target/interop-bin/debug/shoal`, built first with `cargo build --bin shoal` (a no-op when
/// fresh). It gets a target dir of its own: the binary alone unifies features differently from
/// the workspace's test build, and sharing one dir would rebuild reqwest, rustls and librqbit
/// every time the two alternate.
pub fn shoal_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SHOAL_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> -> target/interop-bin
    let target = exe.ancestors().nth(3).unwrap().join("interop-bin");
    run_ok(
        without_cargo_test_env(&mut Command::new(env!("CARGO")))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "-q", "--bin", "shoal"]),
    );
    let bin = target.join("debug").join("shoal");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Starts the `shoal seeder` binary (HTTP on a free loopback port, then `args`) and waits for
/// the address it prints; returns the process and its HTTP base URL.
pub fn spawn_seeder(data: &Path, args: &[String]) -> (ChildGuard, String) {
    spawn_listening("seeder", data, args)
}

/// Starts the `shoal shim` binary (on a free loopback port, then `args`, e.g. `--upstream`)
/// and waits for the address it prints; returns the process and its base URL.
pub fn spawn_shim(data: &Path, args: &[String]) -> (ChildGuard, String) {
    spawn_listening("shim", data, args)
}

/// `shoal SERVICE --data-dir DATA --listen 127.0.0.1:0 ARGS`, once it has printed the address
/// it listens on (`SHOAL_TEST_<SERVICE>_LOG` sets its RUST_LOG).
fn spawn_listening(service: &str, data: &Path, args: &[String]) -> (ChildGuard, String) {
    use std::io::{BufRead, BufReader};
    let log = format!("SHOAL_TEST_{}_LOG", service.to_uppercase());
    let mut child = ChildGuard::spawn(
        Command::new(shoal_binary())
            .arg(service)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", std::env::var(log).unwrap_or_else(|_| "info,librqbit=warn".into()))
            .stdout(Stdio::piped()),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = format!("shoal {service}: listening on ");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix(&prefix) {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("the {service} printed its address"));
    (child, base)
}

/// A qbittorrent-nox with its own profile, WebUI on loopback without auth, DHT/LSD/PeX off.
pub fn qbittorrent_nox(profile: &Path, webui: u16, listen: u16, save: &Path) -> ChildGuard {
    let conf_dir = profile.join("qBittorrent").join("config");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("qBittorrent.conf"),
        format!(
            "[LegalNotice]\nAccepted=true\n\n\
             [BitTorrent]\nSession\\Port={listen}\nSession\\DHTEnabled=false\nSession\\LSDEnabled=false\n\
             Session\\PeXEnabled=false\nSession\\DefaultSavePath={save}\nSession\\AnonymousModeEnabled=false\n\n\
             [Preferences]\nWebUI\\Port={webui}\nWebUI\\Address=127.0.0.1\nWebUI\\LocalHostAuth=false\n\
             WebUI\\CSRFProtection=false\nWebUI\\HostHeaderValidation=false\nConnection\\PortRangeMin={listen}\n\
             Downloads\\SavePath={save}\nBittorrent\\DHT=false\nBittorrent\\LSD=false\nBittorrent\\PeX=false\n",
            save = save.display()
        ),
    )
    .unwrap();
    ChildGuard::spawn(
        Command::new(require_tool("qbittorrent-nox"))
            .arg(format!("--profile={}", profile.display()))
            .arg(format!("--webui-port={webui}"))
            .env("HOME", profile)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}
