//! A slowloris against each HTTP edge of a real `shoal up`: a connection that sends half a
//! request head and then nothing is closed at the edge's header-read deadline (shim and seeder
//! 10 s, tracker 30 s), never held open; and one address holding the shim's cap of connections
//! gets its next one closed at once, counted in `shoal_shim_refused_connections_total`, while
//! a normal request is served again once it lets go.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use shoal_interop_tests::registry::curl;
use shoal_interop_tests::up::Up;
use shoal_interop_tests::{free_port, poll_until};

/// Sends half a request head, then reads until the server closes; how long that took.
fn held_for(addr: &str, limit: Duration) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /v2/ HTTP/1.1\r\nHost: slow\r\nX-Slow: ").unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    started.elapsed()
}

#[test]
fn every_edge_drops_a_slowloris_and_one_address_cannot_hold_the_shim() {
    let tmp = tempfile::tempdir().unwrap();
    let ports: Vec<String> = (0..5).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let data = tmp.path().join("up");
    let up = Up::start(
        tmp.path(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--upstream",
            "127.0.0.1:1",
            "--shim-listen",
            &ports[0],
            "--tracker-listen",
            &ports[1],
            "--seeder-listen",
            &ports[2],
            "--bt-listen",
            &ports[3],
            "--shim-bt-listen",
            &ports[4],
        ],
    );
    let edges = [("shim", ports[0].clone(), 10), ("tracker", ports[1].clone(), 30), ("seeder", ports[2].clone(), 10)];
    let slow: Vec<_> = edges
        .into_iter()
        .map(|(name, addr, deadline)| {
            std::thread::spawn(move || (name, deadline, held_for(&addr, Duration::from_secs(deadline + 30))))
        })
        .collect();

    // Meanwhile: the shim's cap is 256 connections per address.
    let held: Vec<TcpStream> = (0..256).map(|_| TcpStream::connect(&ports[0]).unwrap()).collect();
    let mut over = TcpStream::connect(&ports[0]).unwrap();
    let _ = over.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let started = Instant::now();
    let _ = over.read_to_end(&mut answer);
    assert!(answer.is_empty() && started.elapsed() < Duration::from_secs(4), "served over the cap: {answer:?}");
    drop(held);
    let metrics = format!("http://{}/metrics", ports[0]);
    // Served again, and the refusal counted: one, or two when the slowloris above took a slot
    // of the address before the 256 held ones did.
    // (The shim gives slots back as it sees the held connections close: ask until it has.)
    let mut text = String::new();
    let served = poll_until(Duration::from_secs(10), || {
        let (status, body, _) = curl(&metrics, &[]);
        text = String::from_utf8_lossy(&body).into_owned();
        status == 200
    });
    assert!(served, "not served again after the held connections closed");
    let refused = text.lines().find_map(|l| l.strip_prefix("shoal_shim_refused_connections_total ")).unwrap();
    assert!(matches!(refused, "1" | "2"), "refused connections counted: {refused}");

    for handle in slow {
        let (name, deadline, held) = handle.join().unwrap();
        eprintln!("{name}: a slowloris held its connection {held:?} (deadline {deadline} s)");
        assert!(held < Duration::from_secs(deadline + 5), "{name} held a slowloris {held:?}, deadline {deadline} s");
        assert!(held >= Duration::from_secs(deadline - 1), "{name} closed it before its deadline: {held:?}");
    }
    up.stop();
}
