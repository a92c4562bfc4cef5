//! The edge against raw TCP clients: a slowloris and an idle connection are dropped at the
//! header-read deadline, the per-address cap closes the connection over it (and counts it),
//! and a stop lets the response in flight finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use shoal_http_edge::{serve, EdgeLimits};
use shoal_tasks::Tasks;
use tokio::sync::Notify;

/// An edge serving `/` and `/slow` (which rings `slow_started`, then answers 500 ms later).
async fn start_with(
    limits: EdgeLimits,
    slow_started: Arc<Notify>,
) -> (std::net::SocketAddr, prometheus::IntCounter, Tasks) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" })).route(
        "/slow",
        get(move || async move {
            slow_started.notify_one();
            tokio::time::sleep(Duration::from_millis(500)).await;
            "slow"
        }),
    );
    let refused = prometheus::IntCounter::new("refused", "refused").unwrap();
    let tasks = Tasks::root("edge-test");
    tokio::spawn(serve(listener, router, limits, None, refused.clone(), tasks.clone(), Duration::from_secs(5)));
    (addr, refused, tasks)
}

async fn start(limits: EdgeLimits) -> (std::net::SocketAddr, prometheus::IntCounter, Tasks) {
    start_with(limits, Arc::default()).await
}

/// Reads until the server closes the connection (or `within` passes); returns what came and
/// how long it took.
fn read_to_close(mut stream: TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_dropped_at_the_header_deadline() {
    let limits = EdgeLimits { header_read_timeout: Duration::from_secs(1), ..EdgeLimits::default() };
    let (addr, _, _tasks) = start(limits).await;
    tokio::task::spawn_blocking(move || {
        // Half a request head, then nothing.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        let idle = TcpStream::connect(addr).unwrap();
        for (what, stream) in [("slowloris", slow), ("idle", idle)] {
            let (_, took) = read_to_close(stream, Duration::from_secs(10));
            assert!(took < Duration::from_secs(4), "{what} held its connection {took:?} against a 1 s deadline");
        }
        // A client that sends its head at once is served.
        let mut ok = TcpStream::connect(addr).unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let (answer, _) = read_to_close(ok, Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_cap_and_the_next_connection_is_closed_and_counted() {
    let limits = EdgeLimits { max_connections_per_address: 3, ..EdgeLimits::default() };
    let (addr, refused, _tasks) = start(limits).await;
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // The accept loop runs the cap: wait until it has seen the fourth.
        let mut fourth = TcpStream::connect(addr).unwrap();
        let _ = fourth.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let (answer, took) = read_to_close(fourth, Duration::from_secs(5));
        assert!(answer.is_empty() && took < Duration::from_secs(4), "the fourth was served: {answer:?}");
        assert_eq!(refused.get(), 1);
        drop(held);
    })
    .await
    .unwrap();
    // Slots come back: a new connection is served.
    let served = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let (answer, _) = read_to_close(s, Duration::from_secs(5));
            if answer.starts_with("HTTP/1.1 200") || Instant::now() > deadline {
                return answer;
            }
        }
    })
    .await
    .unwrap();
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_response_in_flight_finish_and_accepts_nothing_new() {
    let slow_started = Arc::new(Notify::new());
    let (addr, _, tasks) = start_with(EdgeLimits::default(), Arc::clone(&slow_started)).await;
    let client = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        read_to_close(s, Duration::from_secs(10)).0
    });
    // Stopped while the handler is at work.
    slow_started.notified().await;
    tasks.shutdown().await;
    let answer = client.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("slow"), "{answer}");
    assert!(TcpStream::connect(addr).is_err(), "still accepting after the stop");
}
