//! The `shoal seeder` binary's mirror jobs against a real docker-registry, a port nobody
//! listens on (refused) and a listener that never answers (silent): jobs run several at once
//! (the real image is mirrored while the silent one still waits on its deadline), failures
//! are listed with their cause (`GET /v1/jobs`, `shoal jobs`), survive a `kill -9` with their
//! attempts counted, are tried again at the next start and dropped after the last attempt, so
//! a later start runs nothing.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::{free_port, run_ok, shoal_binary, spawn_seeder, wait_until, ChildGuard};

fn start_seeder(data: &Path, args: &[&str]) -> (ChildGuard, String) {
    let mut all = vec!["--bt-listen".to_owned(), format!("127.0.0.1:{}", free_port())];
    all.extend(args.iter().map(|a| a.to_string()));
    spawn_seeder(data, &all)
}

fn jobs(seeder: &str) -> Vec<serde_json::Value> {
    let (status, body, _) = curl(&format!("{seeder}/v1/jobs"), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    listed["jobs"].as_array().unwrap().clone()
}

fn job<'a>(jobs: &'a [serde_json::Value], image: &str) -> Option<&'a serde_json::Value> {
    jobs.iter().find(|j| j["image"] == image)
}

fn shoal_jobs(seeder: &str) -> String {
    let out = run_ok(Command::new(shoal_binary()).args(["jobs", "--seeder", seeder]));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn mirror_jobs_run_side_by_side_are_retried_across_restarts_and_dropped_after_the_last_attempt() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address, .. } = push_image(tmp.path(), "team/app", &[200_000], 81);
    let refused = format!("127.0.0.1:{}/team/gone:v1", free_port());
    // The kernel completes the handshakes into the backlog; nobody ever reads or answers.
    let silent_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("{}/team/app:v1", silent_listener.local_addr().unwrap());
    let real = format!("{address}/team/app:v1");
    let data = tmp.path().join("seeder");

    // Two attempts each, the second a minute away: the first run sees only the first.
    let images = format!("{silent},{refused},{real}");
    let (first, seeder) = start_seeder(
        &data,
        &[
            "--image",
            &images,
            "--mirror-attempts",
            "2",
            "--mirror-retry-backoff-ms",
            "60000",
            "--upstream-first-byte-timeout-ms",
            "8000",
        ],
    );
    let started = Instant::now();
    wait_until("the real image to be mirrored", Duration::from_secs(30), || {
        curl(&format!("{seeder}/v1/images/{real}"), &[]).0 == 200
    });
    let now = jobs(&seeder);
    // The silent job's first attempt runs 8 s: still running means the real one did not wait.
    assert!(started.elapsed() < Duration::from_secs(8), "the real image waited {:?}", started.elapsed());
    assert_eq!(job(&now, &silent).map(|j| j["state"].clone()), Some("running".into()), "{now:?}");
    assert!(job(&now, &real).is_none(), "a mirrored image is still a job: {now:?}");

    wait_until("both failures to be counted", Duration::from_secs(30), || {
        let now = jobs(&seeder);
        [&silent, &refused].iter().all(|i| job(&now, i).is_some_and(|j| j["failed_attempts"] == 1))
    });
    let now = jobs(&seeder);
    let refused_job = job(&now, &refused).unwrap();
    assert_eq!(refused_job["state"], "waiting");
    assert_eq!(refused_job["last_reason"], "unreachable", "{refused_job}");
    assert!(refused_job["last_error"].as_str().unwrap().contains("Connection refused"), "{refused_job}");
    assert!(refused_job["next_attempt_in_ms"].as_u64().unwrap() > 30_000, "{refused_job}");
    let silent_job = job(&now, &silent).unwrap();
    assert_eq!(silent_job["last_reason"], "timeout", "{silent_job}");
    let listed = shoal_jobs(&seeder);
    assert!(listed.contains(&format!("{refused}  next attempt in")), "{listed}");
    assert!(listed.contains("1/2 attempts failed  last error: ") && listed.contains("Connection refused"), "{listed}");
    drop(first); // SIGKILL

    // The restart tries both again at once; each fails its last attempt and is dropped.
    let (second, seeder) = start_seeder(&data, &["--mirror-attempts", "2", "--upstream-first-byte-timeout-ms", "8000"]);
    wait_until("both jobs to be given up on", Duration::from_secs(30), || jobs(&seeder).is_empty());
    let (_, metrics, _) = curl(&format!("{seeder}/metrics"), &[]);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(r#"shoal_seeder_mirror_failures_total{reason="unreachable"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"shoal_seeder_mirror_failures_total{reason="timeout"} 1"#), "{metrics}");
    assert!(shoal_jobs(&seeder).starts_with("no mirror jobs"));
    drop(second);

    // Nothing is left to run.
    let (_third, seeder) = start_seeder(&data, &[]);
    assert!(jobs(&seeder).is_empty());
    let (_, metrics, _) = curl(&format!("{seeder}/metrics"), &[]);
    assert!(!String::from_utf8_lossy(&metrics).contains("shoal_seeder_mirror_failures_total{"), "a dropped job ran");
    drop(silent_listener);
}
