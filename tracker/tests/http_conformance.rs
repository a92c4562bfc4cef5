//! The HTTP tracker over real sockets: malformed input, client quirks, bytes on the wire,
//! scrape, access control and metrics. Raw TCP, so that what clients see is what is checked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use shoal_torrents::bencode::{decode, Value};
use shoal_tracker::{spawn, RunningTracker, TrackerConfig};

/// One HTTP exchange as bytes: the whole response and whether the server closed afterwards.
struct Exchange {
    head: String,
    body: Vec<u8>,
    wire_bytes: usize,
    closed: bool,
}

impl Exchange {
    fn status(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn value(&self) -> Value<'_> {
        decode(&self.body).unwrap_or_else(|e| panic!("not bencode ({e:?}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn failure(&self) -> Option<String> {
        self.value().get("failure reason").map(|(v, _)| String::from_utf8_lossy(v.as_bytes().unwrap()).into_owned())
    }
}

fn request(addr: SocketAddr, method: &str, target: &str, headers: &str) -> Exchange {
    exchange(addr, method, target, headers, false)
}

/// `check_close`: also wait briefly to see whether the server closes the connection.
fn exchange(addr: SocketAddr, method: &str, target: &str, headers: &str, check_close: bool) -> Exchange {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {target} HTTP/1.1\r\nHost: tracker\r\n{headers}\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before a response: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    let closed = check_close && {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        matches!(s.read(&mut chunk), Ok(0))
    };
    Exchange { head, body, wire_bytes: buf.len(), closed }
}

fn get(t: &RunningTracker, target: &str) -> Exchange {
    request(t.http_addr(), "GET", target, "")
}

fn tracker() -> RunningTracker {
    spawn(TrackerConfig::loopback()).unwrap()
}

const HASH: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";

fn announce_target(hash: &str, peer: u32, extra: &str) -> String {
    format!(
        "/announce?info_hash={hash}&peer_id=-qB4500-{peer:012}&port={}&uploaded=0&downloaded=0{extra}",
        10000 + peer
    )
}

fn peers_bytes(e: &Exchange) -> Vec<u8> {
    e.value().get("peers").unwrap().0.as_bytes().unwrap().to_vec()
}

/// Error bodies name the parameter and nothing of the tracker's insides.
fn assert_clean_failure(e: &Exchange, what: &str) -> String {
    assert_eq!(e.status(), "HTTP/1.1 200 OK", "{what}");
    let reason =
        e.failure().unwrap_or_else(|| panic!("{what}: no failure reason in {:?}", String::from_utf8_lossy(&e.body)));
    for leak in [".rs", "src/", "panick", "thread", "unwrap", "Error", "{", "/home", "/work"] {
        assert!(!reason.contains(leak), "{what}: reason leaks {leak:?}: {reason}");
    }
    reason
}

#[test]
fn malformed_requests_get_a_bencoded_failure_reason() {
    let t = tracker();
    let peer = "&peer_id=-qB4500-000000000001";
    let cases = [
        ("missing info_hash", format!("/announce?port=6881{peer}&left=0")),
        ("short info_hash", format!("/announce?info_hash=%12%34&port=6881{peer}")),
        ("long info_hash", format!("/announce?info_hash={HASH}%00&port=6881{peer}")),
        ("port out of range", format!("/announce?info_hash={HASH}&port=70000{peer}")),
        ("port zero", format!("/announce?info_hash={HASH}&port=0{peer}")),
        ("port not a number", format!("/announce?info_hash={HASH}&port=abc{peer}")),
        ("missing port (aria2 without TCP)", format!("/announce?info_hash={HASH}{peer}")),
        ("bad percent-encoding", format!("/announce?info_hash=%zz{}&port=6881{peer}", &HASH[3..])),
        ("truncated percent-encoding", format!("/announce?port=6881{peer}&info_hash=%1")),
        ("missing peer_id", format!("/announce?info_hash={HASH}&port=6881")),
        ("bad left", format!("/announce?info_hash={HASH}&port=6881{peer}&left=-5")),
        ("100 KB query", format!("/announce?info_hash={HASH}&port=6881{peer}&pad={}", "a".repeat(100 * 1024))),
        ("1 MB query", format!("/announce?info_hash={HASH}&port=6881{peer}&pad={}", "b".repeat(1024 * 1024))),
        ("scrape without info_hash", "/scrape".to_owned()),
        ("scrape with a short info_hash", "/scrape?info_hash=abc".to_owned()),
    ];
    for (what, target) in cases {
        let reason = assert_clean_failure(&get(&t, &target), what);
        eprintln!("{what}: {reason}");
    }
    // Still serving after all that.
    assert!(get(&t, &announce_target(HASH, 1, "&left=0")).failure().is_none());
}

#[test]
fn numwant_is_clamped_not_refused() {
    let t = tracker();
    for i in 0..250 {
        get(&t, &announce_target(HASH, i, "&left=100&numwant=0"));
    }
    let e = get(&t, &announce_target(HASH, 999, "&left=100&numwant=1000000"));
    assert!(e.failure().is_none());
    assert_eq!(peers_bytes(&e).len(), 200 * 6, "clamped to the default max_numwant of 200");
}

#[test]
fn numwant_zero_gets_no_peers_and_paused_is_a_normal_announce() {
    let t = tracker();
    get(&t, &announce_target(HASH, 1, "&left=0&event=started"));
    let e = get(&t, &announce_target(HASH, 2, "&left=5&numwant=0"));
    assert!(peers_bytes(&e).is_empty());
    assert_eq!(e.value().get("complete").unwrap().0.as_int(), Some(1));
    let e = get(&t, &announce_target(HASH, 2, "&left=5&event=paused"));
    assert!(e.failure().is_none());
    assert_eq!(peers_bytes(&e), vec![127, 0, 0, 1, (10001u16 >> 8) as u8, (10001u16 & 0xff) as u8]);
    assert_eq!(e.value().get("incomplete").unwrap().0.as_int(), Some(1));
    assert!(e.value().get("interval").unwrap().0.as_int().unwrap() > 0);
    assert!(e.value().get("min interval").unwrap().0.as_int().unwrap() > 0);
}

#[test]
fn compact_zero_gets_the_dictionary_form_and_no_peer_id_is_honoured() {
    let t = tracker();
    // `+` is the byte 0x2B in peer_id, and comes back as such.
    get(&t, &format!("/announce?info_hash={HASH}&peer_id=-TR3000-+%2b+abcdefghi&port=7000&left=0"));
    let e = get(&t, &announce_target(HASH, 2, "&left=5&compact=0"));
    let peers = e.value().get("peers").unwrap().0.as_list().unwrap().to_vec();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].get("ip").unwrap().0.as_bytes(), Some(&b"127.0.0.1"[..]));
    assert_eq!(peers[0].get("port").unwrap().0.as_int(), Some(7000));
    assert_eq!(peers[0].get("peer id").unwrap().0.as_bytes(), Some(&b"-TR3000-+++abcdefghi"[..]));
    let e = get(&t, &announce_target(HASH, 2, "&left=5&compact=0&no_peer_id=1"));
    let peers = e.value().get("peers").unwrap().0.as_list().unwrap().to_vec();
    assert!(peers[0].get("peer id").is_none());
    assert_eq!(peers[0].get("port").unwrap().0.as_int(), Some(7000));
}

#[test]
fn transmission_raw_bytes_and_lowercase_escapes_reach_the_same_swarm() {
    let t = tracker();
    // Transmission sends unreserved bytes raw and escapes the rest, in upper case.
    let e = get(&t, &format!("/announce?info_hash={HASH}&peer_id=-TR2940-k.~_z%FF9abcd%01&port=51413&left=0&key=1a2b"));
    assert!(e.failure().is_none(), "{:?}", e.failure());
    // Another client escapes in lower case: same infohash, same swarm.
    let lower = "%124Vx%9a%bc%de%f1%23Eg%89%ab%cd%ef%124Vx%9a";
    let e = get(&t, &announce_target(lower, 3, "&left=9"));
    assert_eq!(peers_bytes(&e), vec![127, 0, 0, 1, (51413u16 >> 8) as u8, (51413u16 & 0xff) as u8]);
    let s = get(&t, &format!("/scrape?info_hash={lower}&info_hash={}", "b".repeat(20)));
    let value = s.value();
    let Value::Dict(entries) = value.get("files").unwrap().0 else { panic!("files is not a dictionary") };
    assert_eq!(entries.len(), 2);
    let ours = &entries.iter().find(|(k, _, _)| k[0] == 0x12).expect("our infohash in the scrape").1;
    assert_eq!(ours.get("complete").unwrap().0.as_int(), Some(1));
    assert_eq!(ours.get("incomplete").unwrap().0.as_int(), Some(1));
    assert_eq!(ours.get("downloaded").unwrap().0.as_int(), Some(0));
}

#[test]
fn connection_close_is_honoured_and_keep_alive_is_the_default() {
    let t = tracker();
    let e = exchange(t.http_addr(), "GET", &announce_target(HASH, 1, "&left=0"), "Connection: close\r\n", true);
    assert!(e.failure().is_none());
    assert!(e.closed, "server kept the connection open after Connection: close");
    assert_eq!(e.header("connection"), Some("close"));
    let e = exchange(t.http_addr(), "GET", &announce_target(HASH, 1, "&left=0"), "", true);
    assert!(!e.closed, "keep-alive connection was closed");
}

#[test]
fn a_fifty_peer_compact_reply_is_under_450_bytes_on_the_wire() {
    let t = tracker();
    for i in 0..60 {
        get(&t, &announce_target(HASH, i, "&left=100&numwant=0"));
    }
    let e = get(&t, &announce_target(HASH, 1000, "&left=100&numwant=50&compact=1&no_peer_id=1"));
    assert_eq!(peers_bytes(&e).len(), 50 * 6);
    assert!(e.wire_bytes < 450, "{} bytes on the wire:\n{}", e.wire_bytes, e.head);
    eprintln!("50-peer compact reply: {} bytes on the wire (body {})", e.wire_bytes, e.body.len());
}

#[test]
fn stopped_removes_the_peer() {
    let t = tracker();
    get(&t, &announce_target(HASH, 1, "&left=0"));
    get(&t, &announce_target(HASH, 1, "&left=0&event=stopped"));
    let e = get(&t, &announce_target(HASH, 2, "&left=10"));
    assert!(peers_bytes(&e).is_empty());
    assert_eq!(e.value().get("complete").unwrap().0.as_int(), Some(0));
}

#[test]
fn allow_list_and_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allow.txt");
    let allowed = "123456789abcdef123456789abcdef123456789a";
    std::fs::write(&list, format!("{allowed}\n")).unwrap();
    let t = spawn(TrackerConfig {
        allow_list: Some(list.clone()),
        admin_token: Some("s3cret".into()),
        ..TrackerConfig::loopback()
    })
    .unwrap();
    assert!(get(&t, &announce_target(HASH, 1, "&left=0")).failure().is_none());
    let other = "%AA".repeat(20);
    let reason = assert_clean_failure(&get(&t, &announce_target(&other, 1, "&left=0")), "not allowed");
    assert!(reason.contains("not registered"), "{reason}");
    let path = format!("/admin/torrents/{}", "aa".repeat(20));
    assert!(request(t.http_addr(), "PUT", &path, "").status().contains("401"));
    assert!(request(t.http_addr(), "PUT", &path, "Authorization: Bearer nope\r\n").status().contains("401"));
    assert!(request(t.http_addr(), "PUT", "/admin/torrents/xyz", "Authorization: Bearer s3cret\r\n")
        .status()
        .contains("400"));
    assert!(request(t.http_addr(), "PUT", &path, "Authorization: Bearer s3cret\r\n").status().contains("204"));
    assert!(get(&t, &announce_target(&other, 1, "&left=0")).failure().is_none());
    assert!(std::fs::read_to_string(&list).unwrap().contains(&"aa".repeat(20)), "admin change not saved");
    assert!(request(t.http_addr(), "DELETE", &path, "Authorization: Bearer s3cret\r\n").status().contains("204"));
    assert!(get(&t, &announce_target(&other, 1, "&left=0")).failure().is_some());
    // The open default refuses admin changes rather than silently closing the tracker.
    let open = spawn(TrackerConfig { admin_token: Some("s3cret".into()), ..TrackerConfig::loopback() }).unwrap();
    assert!(request(open.http_addr(), "PUT", &path, "Authorization: Bearer s3cret\r\n").status().contains("409"));
    assert!(request(tracker().http_addr(), "PUT", &path, "Authorization: Bearer s3cret\r\n").status().contains("404"));
}

#[test]
fn x_forwarded_for_is_used_only_when_trusted() {
    let trusting = spawn(TrackerConfig { trust_x_forwarded_for: true, ..TrackerConfig::loopback() }).unwrap();
    let plain = tracker();
    for t in [&trusting, &plain] {
        request(
            t.http_addr(),
            "GET",
            &announce_target(HASH, 1, "&left=0"),
            "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n",
        );
    }
    let ip = |t: &RunningTracker| peers_bytes(&get(t, &announce_target(HASH, 2, "&left=1")))[..4].to_vec();
    assert_eq!(ip(&trusting), vec![203, 0, 113, 9]);
    assert_eq!(ip(&plain), vec![127, 0, 0, 1]);
}

#[test]
fn metrics_and_healthz() {
    let t = tracker();
    get(&t, &announce_target(HASH, 1, "&left=0&event=started"));
    get(&t, &announce_target(HASH, 2, "&left=1"));
    get(&t, "/announce?bad");
    get(&t, &format!("/scrape?info_hash={HASH}"));
    let h = get(&t, "/healthz");
    assert!(h.status().contains("200"));
    let m = String::from_utf8(get(&t, "/metrics").body).unwrap();
    for line in [
        "shoal_tracker_announces_total{event=\"started\"} 1",
        "shoal_tracker_announces_total{event=\"none\"} 1",
        "shoal_tracker_scrapes_total 1",
        "shoal_tracker_failures_total{reason=\"missing_info_hash\"} 1",
        "shoal_tracker_swarms 1",
        "shoal_tracker_seeders 1",
        "shoal_tracker_leechers 1",
        "shoal_tracker_announce_seconds_count 3",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
}

#[test]
fn udp_and_http_share_the_swarm() {
    let t =
        spawn(TrackerConfig { udp_listen: Some("127.0.0.1:0".parse().unwrap()), ..TrackerConfig::loopback() }).unwrap();
    get(&t, &announce_target(HASH, 1, "&left=0"));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.connect(t.udp_addr().unwrap()).unwrap();
    let mut connect = 0x41727101980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]);
    sock.send(&connect).unwrap();
    let mut buf = [0u8; 1500];
    assert_eq!(sock.recv(&mut buf).unwrap(), 16);
    let mut a = buf[8..16].to_vec();
    a.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 6]);
    a.extend_from_slice(&[
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x12, 0x34, 0x56,
        0x78, 0x9a,
    ]);
    a.extend_from_slice(b"-AR1360-000000000009");
    a.extend_from_slice(&[0; 8]);
    a.extend_from_slice(&5u64.to_be_bytes());
    a.extend_from_slice(&[0; 8]);
    a.extend_from_slice(&2u32.to_be_bytes());
    a.extend_from_slice(&[0; 8]);
    a.extend_from_slice(&(-1i32).to_be_bytes());
    a.extend_from_slice(&7777u16.to_be_bytes());
    sock.send(&a).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(n, 20 + 6);
    assert_eq!(&buf[20..26], &[127, 0, 0, 1, (10001u16 >> 8) as u8, (10001u16 & 0xff) as u8]);
    let e = get(&t, &announce_target(HASH, 1, "&left=0"));
    assert_eq!(peers_bytes(&e), vec![127, 0, 0, 1, (7777u16 >> 8) as u8, (7777u16 & 0xff) as u8]);
}

#[test]
fn ipv6_peers_come_back_in_peers6() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        panic!("this machine has no IPv6 loopback; the tracker's BEP 7 path needs one to be tested");
    };
    drop(probe);
    let t = spawn(TrackerConfig { listen: "[::1]:0".parse().unwrap(), ..TrackerConfig::loopback() }).unwrap();
    get(&t, &announce_target(HASH, 1, "&left=0"));
    let e = get(&t, &announce_target(HASH, 2, "&left=1"));
    assert!(peers_bytes(&e).is_empty());
    let peers6 = e.value().get("peers6").expect("peers6 in the reply").0.as_bytes().unwrap().to_vec();
    let mut want = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    want.extend_from_slice(&10001u16.to_be_bytes());
    assert_eq!(peers6, want);
}

/// A connection from `source` (any 127/8 address is this host's loopback).
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

#[test]
fn one_address_cannot_hold_more_than_its_connections_while_others_announce() {
    let t = spawn(TrackerConfig { max_connections_per_address: 3, ..TrackerConfig::loopback() }).unwrap();
    let held: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.3", t.http_addr())).collect();
    // Connections are accepted in order, so the fourth finds three counted: closed unanswered.
    let mut over = connect_from("127.0.0.3", t.http_addr());
    let _ = write!(over, "GET {} HTTP/1.1\r\nHost: tracker\r\n\r\n", announce_target(HASH, 9, "&left=0"));
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let _ = over.read_to_end(&mut answer);
    assert!(answer.is_empty(), "a connection over the cap was served: {:?}", String::from_utf8_lossy(&answer));
    // Another address announces as usual meanwhile, and a real torrent gets its swarm.
    let e = get(&t, &announce_target(HASH, 1, "&left=0"));
    assert!(e.failure().is_none(), "{:?}", e.failure());
    drop(held);
    let served_again = (0..100).any(|_| {
        let mut s = connect_from("127.0.0.3", t.http_addr());
        let _ = write!(s, "GET /healthz HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let ok = answer.starts_with(b"HTTP/1.1 200");
        if !ok {
            std::thread::sleep(Duration::from_millis(20));
        }
        ok
    });
    assert!(served_again, "the address was not served after it let go of its connections");
    let m = String::from_utf8(get(&t, "/metrics").body).unwrap();
    let refused = m.lines().find_map(|l| l.strip_prefix("shoal_tracker_refused_connections_total ")).unwrap();
    assert!(refused.parse::<u64>().unwrap() >= 1, "refusals counted: {refused}");
}
