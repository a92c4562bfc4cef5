//! Stock BitTorrent clients as seeders: transmission-daemon, qbittorrent-nox, deluged,
//! libtorrent (Debian's python3-libtorrent) and aria2c, each seeding one .torrent whose file is
//! already in a directory; and aria2c timed downloading one.
//!
//! Every client gets its own ports and config/profile directory, DHT, LSD, PeX, UPnP and
//! NAT-PMP off and no upload limit, so the only way to it is the tracker the torrent names.
//! A start returns once the client itself reports the torrent complete and seeding.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{
    aria2c_command, assert_aria2c_succeeded, free_port, poll_until, qbittorrent_nox, require_tool, system_python,
    wait_for_tcp, wait_until, ChildGuard, ARIA2C_NO_DISCOVERY,
};

/// How long a client may take to start, check the file and report seeding.
const READY: Duration = Duration::from_secs(90);

/// The stock clients a test can seed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Transmission,
    Qbittorrent,
    Deluge,
    Libtorrent,
    Aria2,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Transmission => "transmission",
            Client::Qbittorrent => "qbittorrent",
            Client::Deluge => "deluge",
            Client::Libtorrent => "libtorrent",
            Client::Aria2 => "aria2c",
        }
    }
}

/// A stock client seeding one torrent; its processes are killed when it is dropped.
pub struct StockSeeder {
    pub client: Client,
    /// The BitTorrent port it listens on (and announces).
    pub peer_port: u16,
    /// What the client says about the torrent now, for a failure message.
    status: Box<dyn Fn() -> String + Send + Sync>,
    _children: Vec<ChildGuard>,
}

impl StockSeeder {
    pub fn status(&self) -> String {
        (self.status)()
    }
}

/// Starts `client` seeding `torrent` (its file already under `data`), with its own state in
/// `work`; returns once the client reports the torrent complete and seeding. Blocks: call it
/// on a blocking thread from an async test.
pub fn start_seeding(client: Client, work: &Path, torrent: &Path, data: &Path) -> StockSeeder {
    std::fs::create_dir_all(work).unwrap();
    let info_hash = shoal_torrents::ParsedTorrent::parse(&std::fs::read(torrent).unwrap())
        .expect("a valid .torrent")
        .info_hash
        .hex();
    match client {
        Client::Transmission => transmission(work, torrent, data, info_hash),
        Client::Qbittorrent => qbittorrent(work, torrent, data, info_hash),
        Client::Deluge => deluge(work, torrent, data, info_hash),
        Client::Libtorrent => libtorrent(work, torrent, data),
        Client::Aria2 => aria2(work, torrent, data),
    }
}

/// Waits until `ready(status())` holds; panics with the client's last status after [`READY`].
fn wait_seeding(what: &str, status: &dyn Fn() -> String, ready: impl Fn(&str) -> bool) {
    let mut last = String::new();
    let ok = poll_until(READY, || {
        last = status();
        ready(&last)
    });
    assert!(ok, "{what} did not report the torrent seeding within {READY:?}; last status:\n{last}");
}

fn output_text(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(out) => format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        Err(e) => format!("cannot run {cmd:?}: {e}"),
    }
}

/// transmission-daemon 3.00, in the foreground, driven by transmission-remote over its RPC.
fn transmission(work: &Path, torrent: &Path, data: &Path, info_hash: String) -> StockSeeder {
    let remote = require_tool("transmission-remote");
    let (peer_port, rpc_port) = (free_port(), free_port());
    let config = work.join("transmission");
    std::fs::create_dir_all(&config).unwrap();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "peer-port": peer_port, "peer-port-random-on-start": false,
        "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1",
        "speed-limit-up-enabled": false, "alt-speed-enabled": false,
        "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
        "rpc-port": rpc_port, "rpc-bind-address": "127.0.0.1", "rpc-authentication-required": false,
        "rpc-whitelist-enabled": false, "rpc-host-whitelist-enabled": false,
        "download-dir": data, "incomplete-dir-enabled": false, "watch-dir-enabled": false,
        "blocklist-enabled": false, "message-level": 2,
    });
    std::fs::write(config.join("settings.json"), serde_json::to_vec_pretty(&settings).unwrap()).unwrap();
    let daemon = ChildGuard::spawn(
        Command::new(require_tool("transmission-daemon"))
            .args(["-f", "-g"])
            .arg(&config)
            .arg("-e")
            .arg(work.join("transmission.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_tcp(([127, 0, 0, 1], rpc_port).into(), READY);
    let rpc = format!("127.0.0.1:{rpc_port}");
    let added = output_text(Command::new(&remote).arg(&rpc).arg("-a").arg(torrent).arg("-w").arg(data));
    assert!(added.contains("success"), "transmission-remote -a {}: {added}", torrent.display());
    let status = move || output_text(Command::new(&remote).arg(&rpc).args(["-t", &info_hash, "-i"]));
    wait_seeding("transmission-daemon", &status, |s| {
        s.contains("Percent Done: 100%")
            && ["State: Idle", "State: Seeding", "State: Up & Down"].iter().any(|state| s.contains(state))
    });
    StockSeeder { client: Client::Transmission, peer_port, status: Box::new(status), _children: vec![daemon] }
}

fn curl_text(args: &[&str]) -> Option<String> {
    let out = Command::new(require_tool("curl")).args(["-sf", "--max-time", "10"]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// qbittorrent-nox (libtorrent 2.0) through its WebUI API.
fn qbittorrent(work: &Path, torrent: &Path, data: &Path, info_hash: String) -> StockSeeder {
    let (webui, peer_port) = (free_port(), free_port());
    let child = qbittorrent_nox(&work.join("qbt-profile"), webui, peer_port, data);
    let api = format!("http://127.0.0.1:{webui}/api/v2");
    wait_until("qbittorrent-nox's Web API", READY, || curl_text(&[&format!("{api}/app/version")]).is_some());
    // Every peer of a loopback test shares 127.0.0.1: libtorrent's default of one connection
    // per address would let the origin seeder's connection shut the shim out.
    let prefs = r#"json={"enable_multi_connections_from_same_ip":true,"upnp":false,"up_limit":0,"dht":false,"lsd":false,"pex":false}"#;
    curl_text(&["-d", prefs, &format!("{api}/app/setPreferences")]).expect("qbittorrent-nox takes the preferences");
    let added = curl_text(&[
        "-F",
        &format!("torrents=@{}", torrent.display()),
        "-F",
        &format!("savepath={}", data.display()),
        &format!("{api}/torrents/add"),
    ]);
    assert!(added.is_some(), "qbittorrent-nox refused {}", torrent.display());
    let url = format!("{api}/torrents/info?hashes={info_hash}");
    let status = move || curl_text(&[&url]).unwrap_or_else(|| "no answer from the WebUI".into());
    wait_seeding("qbittorrent-nox", &status, |s| {
        let info: serde_json::Value = serde_json::from_str(s).unwrap_or_default();
        info[0]["progress"].as_f64() == Some(1.0)
            && ["uploading", "stalledUP", "forcedUP"].contains(&info[0]["state"].as_str().unwrap_or(""))
    });
    StockSeeder { client: Client::Qbittorrent, peer_port, status: Box::new(status), _children: vec![child] }
}

/// deluged 2.0 with deluge-console. Its logging breaks on Python 3.11 (`findCaller`), so the
/// daemon runs quiet; the console's gettext warning on stderr is harmless.
fn deluge(work: &Path, torrent: &Path, data: &Path, info_hash: String) -> StockSeeder {
    let console = require_tool("deluge-console");
    let (daemon_port, peer_port) = (free_port(), free_port());
    let config = work.join("deluge");
    std::fs::create_dir_all(&config).unwrap();
    // Deluge's config file: a version header object, then the settings over its defaults.
    let core = serde_json::json!({
        "listen_ports": [peer_port, peer_port], "random_port": false, "listen_interface": "127.0.0.1",
        "dht": false, "lsd": false, "upnp": false, "natpmp": false, "utpex": false,
        "max_upload_speed": -1.0, "max_upload_slots_global": -1, "max_active_seeding": -1,
        "max_active_limit": -1, "stop_seed_at_ratio": false, "new_release_check": false,
        "download_location": data, "allow_remote": false, "daemon_port": daemon_port,
    });
    std::fs::write(config.join("core.conf"), format!("{{\"file\": 1, \"format\": 1}}{core}")).unwrap();
    let daemon = ChildGuard::spawn(
        Command::new(require_tool("deluged"))
            .args(["-d", "-q", "-u", "127.0.0.1", "-c"])
            .arg(&config)
            .args(["-p", &daemon_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_tcp(([127, 0, 0, 1], daemon_port).into(), READY);
    // The console logs in as `localclient` from the daemon's own auth file in `config`.
    let run = move |commands: String| {
        output_text(
            Command::new(&console).arg("-c").arg(&config).arg(format!("connect 127.0.0.1:{daemon_port}; {commands}")),
        )
    };
    let added = run(format!("add -p {} {}", data.display(), torrent.display()));
    assert!(added.contains("Torrent added!"), "deluge-console add {}: {added}", torrent.display());
    let status = move || run(format!("info --detailed {info_hash}"));
    wait_seeding("deluged", &status, |s| s.contains("State: Seeding"));
    StockSeeder { client: Client::Deluge, peer_port, status: Box::new(status), _children: vec![daemon] }
}

/// libtorrent 2.0 from Debian's python3-libtorrent: a session that seeds the torrent and says
/// `seeding` on stdout once it does, then its state every second until it is killed.
const LIBTORRENT_SEEDER: &str = r#"
import sys, time, libtorrent as lt
torrent, save, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({
    "listen_interfaces": "127.0.0.1:%d" % port,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "upload_rate_limit": 0,
    # Every peer of a loopback test shares 127.0.0.1.
    "allow_multiple_connections_per_ip": True,
})
atp = lt.add_torrent_params()
atp.ti = lt.torrent_info(torrent)
atp.save_path = save
atp.flags |= lt.torrent_flags.disable_pex | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
h = s.add_torrent(atp)
said = False
while True:
    st = h.status()
    if st.is_seeding and not said:
        print("seeding", flush=True)
        said = True
    elif said:
        print("state %s peers %d uploaded %d" % (st.state, st.num_peers, st.total_upload), flush=True)
    time.sleep(0.05 if not said else 1.0)
"#;

fn libtorrent(work: &Path, torrent: &Path, data: &Path) -> StockSeeder {
    let peer_port = free_port();
    let err_log = work.join("libtorrent.stderr");
    let mut child = ChildGuard::spawn(
        Command::new(system_python())
            .args(["-c", LIBTORRENT_SEEDER])
            .arg(torrent)
            .arg(data)
            .arg(peer_port.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_log).unwrap()),
    );
    let stdout = child.0.stdout.take().unwrap();
    let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let seen = last.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "seeding" {
                let _ = tx.send(());
            }
            *seen.lock().unwrap() = line;
        }
    });
    if rx.recv_timeout(READY).is_err() {
        let _ = child.0.kill();
        let err = std::fs::read_to_string(&err_log).unwrap_or_default();
        panic!("libtorrent did not report seeding within {READY:?}: {err}");
    }
    let status = move || last.lock().unwrap().clone();
    StockSeeder { client: Client::Libtorrent, peer_port, status: Box::new(status), _children: vec![child] }
}

/// aria2c seeding with no end (`--seed-ratio=0.0` and no `--seed-time`), asked over JSON-RPC.
fn aria2(work: &Path, torrent: &Path, data: &Path) -> StockSeeder {
    let (peer_port, rpc_port) = (free_port(), free_port());
    let child = ChildGuard::spawn(
        Command::new(require_tool("aria2c"))
            .arg("-d")
            .arg(data)
            .args(ARIA2C_NO_DISCOVERY)
            .args(["--enable-rpc", "--rpc-listen-all=false", "--check-integrity=true", "--seed-ratio=0.0"])
            .args(["--max-upload-limit=0", "--bt-save-metadata=false", "--summary-interval=0"])
            .args(["--console-log-level=warn", "--log-level=info"])
            .arg(format!("--log={}", work.join("aria2-seeder.log").display()))
            .arg(format!("--rpc-listen-port={rpc_port}"))
            .arg(format!("--listen-port={peer_port}"))
            .arg(format!("--dht-listen-port={}", free_port()))
            .arg(torrent)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let url = format!("http://127.0.0.1:{rpc_port}/jsonrpc");
    let ask = r#"{"jsonrpc":"2.0","id":"t","method":"aria2.tellActive","params":[["gid","status","seeder","completedLength","totalLength","uploadLength","numSeeders","connections"]]}"#;
    let status = move || curl_text(&["-d", ask, &url]).unwrap_or_else(|| "no answer from aria2c's RPC".into());
    wait_seeding("aria2c", &status, |s| {
        let reply: serde_json::Value = serde_json::from_str(s).unwrap_or_default();
        let t = &reply["result"][0];
        t["seeder"] == "true" && t["completedLength"] == t["totalLength"]
    });
    StockSeeder { client: Client::Aria2, peer_port, status: Box::new(status), _children: vec![child] }
}

/// The address aria2c downloads from in [`time_aria2c_download`]: a host of its own. Stock
/// clients know a peer by its IP alone; after aria2c, a finished seed, leaves from 127.0.0.1,
/// Transmission 3.00 takes the next peer from 127.0.0.1 (the shim) for that seed and drops it
/// in the handshake.
pub const ARIA2C_DOWNLOAD_ADDR: &str = "127.0.0.2";

/// aria2c downloading `torrent` into `dir` from [`ARIA2C_DOWNLOAD_ADDR`] (DHT, LSD, PeX off;
/// exits once done, `--seed-time=0`): how long it took, and the file it wrote (`dir/name`).
/// Panics with its log if it fails.
pub fn time_aria2c_download(dir: &Path, torrent: &Path, name: &str) -> (Duration, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let interface = format!("--interface={ARIA2C_DOWNLOAD_ADDR}");
    let (mut cmd, log) = aria2c_command(dir, torrent.as_os_str(), &[&interface]);
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let took = start.elapsed();
    assert_aria2c_succeeded(torrent.as_os_str(), &out, &log);
    (took, dir.join(name))
}
