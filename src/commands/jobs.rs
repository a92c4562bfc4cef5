//! `shoal jobs`: lists a seeder's mirror jobs (`GET /v1/jobs`): running, or waiting for their
//! next attempt after a failure, with the last error.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::cli::JobsArgs;

/// One job as `/v1/jobs` lists it (`shoal_seeder::jobs::JobView`).
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct Job {
    image: String,
    state: String,
    failed_attempts: u32,
    max_attempts: u32,
    next_attempt_in_ms: u64,
    last_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jobs {
    jobs: Vec<Job>,
}

pub(crate) fn run(args: JobsArgs) -> anyhow::Result<()> {
    let url = format!("{}/v1/jobs", args.seeder.trim_end_matches('/'));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let body = runtime.block_on(async {
        let builder =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(10));
        let trust = shoal_registry_shim::SeederTrust::from(args.tls.clone());
        let client =
            trust.configure(builder).map_err(anyhow::Error::msg)?.build().context("cannot build an HTTP client")?;
        let response = client.get(&url).send().await.with_context(|| format!("cannot reach the seeder at {url}"))?;
        let status = response.status();
        let body = response.bytes().await.with_context(|| format!("reading the seeder's answer from {url}"))?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    })?;
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(&body)?;
        out.write_all(b"\n")?;
    } else {
        let jobs: Jobs = serde_json::from_slice(&body).with_context(|| format!("{url} did not list jobs"))?;
        out.write_all(render(&jobs.jobs).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// One line per job, or a line saying there are none.
fn render(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "no mirror jobs: every image asked for is mirrored (or was given up on)\n".into();
    }
    let mut text = String::new();
    for job in jobs {
        let when = match job.state.as_str() {
            "running" => "running now".to_owned(),
            _ => format!("next attempt in {}s", job.next_attempt_in_ms.div_ceil(1000)),
        };
        let attempts = format!("{}/{} attempts failed", job.failed_attempts, job.max_attempts);
        text.push_str(&format!("{}  {when}  {attempts}", job.image));
        if let Some(error) = &job.last_error {
            text.push_str(&format!("  last error: {error}"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_render_one_line_each() {
        let job = |image: &str, state: &str, failed, next, error: Option<&str>| Job {
            image: image.into(),
            state: state.into(),
            failed_attempts: failed,
            max_attempts: 8,
            next_attempt_in_ms: next,
            last_error: error.map(Into::into),
        };
        let text = render(&[
            job("r/a:1", "waiting", 2, 19_001, Some("upstream r: connection refused")),
            job("r/b:1", "running", 0, 0, None),
        ]);
        assert_eq!(
            text,
            "r/a:1  next attempt in 20s  2/8 attempts failed  last error: upstream r: connection refused\n\
             r/b:1  running now  0/8 attempts failed\n"
        );
        assert!(render(&[]).starts_with("no mirror jobs"));
    }
}
