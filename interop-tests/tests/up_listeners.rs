//! What `shoal up` exposes, as `ss` sees the process: with its defaults, the registry shim and
//! the seeder's API on loopback, the tracker and both BitTorrent ports on every address (peers
//! of other hosts reach them), and no UDP listener (only the BitTorrent sessions' ephemeral
//! UDP tracker-client sockets); with `--public`, the seeder's API on every address too, and a
//! warning when `--public-host` still names loopback. The table in README.md ("Ports") lists
//! the same.

use std::collections::BTreeSet;
use std::process::Command;

use shoal_interop_tests::run_ok;
use shoal_interop_tests::up::Up;

/// `ss`'s listening sockets of `pid`: local `address:port` of each.
fn listeners(pid: u32, flags: &str) -> BTreeSet<String> {
    let out = run_ok(Command::new("ss").args([flags, "-H"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(|l| l.split_whitespace().nth(3).expect("ss prints the local address fourth").to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn shoal_up_listens_only_where_the_readme_says() {
    let tmp = tempfile::tempdir().unwrap();
    // Defaults throughout (the data directory lands in tmp); nothing reaches the upstream.
    let up = Up::start(tmp.path(), &[]);
    let tcp = listeners(up.pid(), "-ltnp");
    assert_eq!(
        tcp,
        set(&["0.0.0.0:6881", "0.0.0.0:6882", "0.0.0.0:6969", "127.0.0.1:5000", "127.0.0.1:7000"]),
        "TCP listeners with the defaults"
    );
    let udp = listeners(up.pid(), "-lunp");
    assert!(udp.len() <= 2, "more UDP sockets than the two sessions' tracker clients: {udp:?}");
    for socket in &udp {
        let port: u16 = socket.rsplit(':').next().unwrap().parse().unwrap();
        assert!(port >= 32768, "a UDP socket on a fixed port: {socket} (all: {udp:?})");
    }
    let (_, logged) = up.stop();
    assert!(!logged.contains("--public-host"), "{logged}");

    let up = Up::start(tmp.path(), &["--public"]);
    let tcp = listeners(up.pid(), "-ltnp");
    assert!(tcp.contains("0.0.0.0:7000") && tcp.contains("127.0.0.1:5000"), "with --public: {tcp:?}");
    assert!(up.logged("other hosts cannot reach: give --public-host"), "no warning about the public host");
    up.stop();
}
