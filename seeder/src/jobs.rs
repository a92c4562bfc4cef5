//! Mirror jobs: every image the seeder is asked to mirror (at start, through the API, by a
//! registry notification) is a job in the index until it is mirrored, or until it has failed
//! [`RetryPolicy::attempts`] times, with a doubling backoff between attempts. A restart resumes
//! the jobs left, several at once (one hung upstream cannot hold up the others). `GET /v1/jobs`
//! and `shoal jobs` list them.
//!
//! The policy ([`RetryPolicy`], [`due`]) is pure, with time passed in; [`MirrorJobs`] does the
//! index writes and runs the attempts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use shoal_store::index::{BlobIndex, ImageRecord, MirrorJob};
use shoal_store::usage::now_ms;
use shoal_tasks::Tasks;
use tokio::sync::Notify;

use crate::mirror::{Mirror, MirrorError};

/// How many jobs run at once in the background.
const CONCURRENT_JOBS: usize = 4;

/// How often failed jobs are tried again, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all before a job is dropped (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Eight attempts over about 21 minutes (10 s, 20 s, ... 10 min between them): an upstream
    /// restart or a short outage is ridden out, a typo'd image does not retry forever.
    fn default() -> Self {
        Self { attempts: 8, first_backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(600) }
    }
}

impl RetryPolicy {
    /// When the job that just failed (for the `failed`-th time) is tried next; `None`: never,
    /// it is dropped.
    pub fn next_attempt(&self, failed: u32, now_ms: u64) -> Option<u64> {
        if failed >= self.attempts.max(1) {
            return None;
        }
        let doubling = 1u32 << failed.saturating_sub(1).min(20);
        let wait = self.first_backoff.saturating_mul(doubling).min(self.max_backoff);
        Some(now_ms.saturating_add(wait.as_millis() as u64))
    }
}

/// The jobs to start now: due, not running, at most `free` of them, oldest first.
pub fn due<'a>(jobs: &'a [MirrorJob], running: &HashSet<String>, now_ms: u64, free: usize) -> Vec<&'a MirrorJob> {
    let mut ready: Vec<&MirrorJob> =
        jobs.iter().filter(|j| j.next_attempt_ms <= now_ms && !running.contains(&j.reference)).collect();
    ready.sort_by_key(|j| (j.added_ms, j.reference.clone()));
    ready.truncate(free);
    ready
}

/// A job as `GET /v1/jobs` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JobView {
    pub image: String,
    /// `running`, or `waiting` for its next attempt.
    pub state: &'static str,
    pub failed_attempts: u32,
    pub max_attempts: u32,
    /// Milliseconds until the next attempt (0 when due or running).
    pub next_attempt_in_ms: u64,
    pub last_error: Option<String>,
    pub last_reason: Option<String>,
}

/// The seeder's mirror jobs: recorded in the index, attempted, retried, dropped.
pub struct MirrorJobs {
    mirror: Arc<Mirror>,
    index: Arc<BlobIndex>,
    policy: RetryPolicy,
    running: Mutex<HashSet<String>>,
    /// Rung when a job finishes or fails, so the runner looks again.
    changed: Notify,
}

impl MirrorJobs {
    pub fn new(mirror: Arc<Mirror>, index: Arc<BlobIndex>, policy: RetryPolicy) -> Arc<Self> {
        Arc::new(Self { mirror, index, policy, running: Mutex::default(), changed: Notify::new() })
    }

    /// Makes every job left by a previous run due now (a restart is a reason to try again at
    /// once); returns how many there are. Their failed attempts still count.
    pub fn resume(&self) -> Result<usize, MirrorError> {
        let jobs = self.index.jobs()?;
        for job in jobs.iter().filter(|j| j.next_attempt_ms > 0) {
            self.index.put_job(&MirrorJob { next_attempt_ms: 0, ..job.clone() })?;
        }
        Ok(jobs.len())
    }

    /// Records `image` as a job (if it is not one yet) without running it: the runner starts it.
    pub fn enqueue(&self, image: &str) -> Result<(), MirrorError> {
        let key = shoal_upstream::Upstream::parse_reference(image)?.whole();
        self.index.add_job(&key, now_ms())?;
        self.changed.notify_one();
        Ok(())
    }

    /// Mirrors `image` now, as one attempt of its job: recorded first (so a crash resumes it),
    /// dropped when done, or when upstream has no such image, or after its last attempt.
    pub async fn mirror(&self, image: &str) -> Result<ImageRecord, MirrorError> {
        let key = shoal_upstream::Upstream::parse_reference(image)?.whole();
        let job = self.index.add_job(&key, now_ms())?;
        self.running.lock().expect("jobs lock").insert(key.clone());
        let outcome = self.mirror.mirror_image(&key).await;
        let result = match &outcome {
            Ok(_) => self.index.finish_job(&key).map_err(MirrorError::from),
            Err(e) => self.failed(job, e),
        };
        // Only once the index says what comes next: the runner must not see the job as
        // neither running nor rescheduled, or it starts it again at once.
        self.running.lock().expect("jobs lock").remove(&key);
        self.changed.notify_one();
        result?;
        outcome
    }

    /// Counts a failed attempt: the job waits for its next one, or goes.
    fn failed(&self, job: MirrorJob, e: &MirrorError) -> Result<(), MirrorError> {
        // The job as it is now (another attempt may have run meanwhile), else as it was.
        let mut job = self.index.job(&job.reference)?.unwrap_or(job);
        job.attempts += 1;
        job.last_error = Some(e.to_string());
        job.last_reason = Some(e.reason().to_owned());
        // Upstream has no such image, or the allow-list refuses it: another attempt would fail
        // the same way.
        let next = if e.is_not_found() || e.is_not_allowed() {
            None
        } else {
            self.policy.next_attempt(job.attempts, now_ms())
        };
        match next {
            Some(at) => {
                tracing::warn!(image = %job.reference, attempt = job.attempts, max_attempts = self.policy.attempts,
                    retry_in_ms = at.saturating_sub(now_ms()), error = %e, "mirroring failed; will retry");
                job.next_attempt_ms = at;
                self.index.put_job(&job)?;
            }
            None => {
                tracing::error!(image = %job.reference, attempts = job.attempts, error = %e,
                    "mirroring failed; giving up on this image");
                self.index.finish_job(&job.reference)?;
            }
        }
        Ok(())
    }

    /// Every job, for `GET /v1/jobs`.
    pub fn list(&self) -> Result<Vec<JobView>, MirrorError> {
        let now = now_ms();
        let running = self.running.lock().expect("jobs lock").clone();
        Ok(self
            .index
            .jobs()?
            .into_iter()
            .map(|job| {
                let is_running = running.contains(&job.reference);
                JobView {
                    state: if is_running { "running" } else { "waiting" },
                    failed_attempts: job.attempts,
                    max_attempts: self.policy.attempts,
                    next_attempt_in_ms: if is_running { 0 } else { job.next_attempt_ms.saturating_sub(now) },
                    image: job.reference,
                    last_error: job.last_error,
                    last_reason: job.last_reason,
                }
            })
            .collect())
    }

    /// Starts due jobs, at most [`CONCURRENT_JOBS`] at a time, until `tasks` is cancelled.
    pub async fn run(self: Arc<Self>, tasks: Tasks) {
        loop {
            let jobs = match self.index.jobs() {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read mirror jobs from the index");
                    Vec::new()
                }
            };
            let now = now_ms();
            let running = self.running.lock().expect("jobs lock").clone();
            let free = CONCURRENT_JOBS.saturating_sub(running.len());
            for job in due(&jobs, &running, now, free) {
                // Marked here, not only in `mirror`: the next pass must not start it twice.
                self.running.lock().expect("jobs lock").insert(job.reference.clone());
                let (this, image) = (Arc::clone(&self), job.reference.clone());
                tasks.spawn("seeder-mirror-job", async move {
                    if let Err(e) = this.mirror(&image).await {
                        tracing::debug!(%image, error = %e, "mirror job attempt failed");
                    }
                });
            }
            // The next due job, or a change, whichever comes first (and a look every minute).
            let next = jobs
                .iter()
                .filter(|j| !running.contains(&j.reference) && j.next_attempt_ms > now)
                .map(|j| j.next_attempt_ms - now)
                .min()
                .unwrap_or(60_000)
                .min(60_000);
            tokio::select! {
                () = self.changed.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(next)) => {}
                () = tasks.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_the_last_attempt_drops_the_job() {
        let policy =
            RetryPolicy { attempts: 5, first_backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(30) };
        let waits: Vec<Option<u64>> = (1..=5).map(|failed| policy.next_attempt(failed, 1000)).collect();
        assert_eq!(waits, [Some(11_000), Some(21_000), Some(31_000), Some(31_000), None]);
        let once = RetryPolicy { attempts: 0, ..policy };
        assert_eq!(once.next_attempt(1, 0), None, "zero attempts means one");
        assert_eq!(RetryPolicy::default().next_attempt(40, 0), None);
    }

    #[test]
    fn due_jobs_are_the_oldest_waiting_ones_not_running() {
        let job = |reference: &str, added_ms, next_attempt_ms| MirrorJob {
            next_attempt_ms,
            ..MirrorJob::new(reference, added_ms)
        };
        let jobs = [job("r/a:1", 3, 0), job("r/b:1", 1, 50), job("r/c:1", 2, 200), job("r/d:1", 0, 0)];
        let running: HashSet<String> = ["r/d:1".to_owned()].into();
        let names = |v: Vec<&MirrorJob>| v.into_iter().map(|j| j.reference.clone()).collect::<Vec<_>>();
        assert_eq!(names(due(&jobs, &running, 100, 4)), ["r/b:1", "r/a:1"]);
        assert_eq!(names(due(&jobs, &running, 100, 1)), ["r/b:1"]);
        assert_eq!(names(due(&jobs, &HashSet::new(), 300, 4)), ["r/d:1", "r/b:1", "r/c:1", "r/a:1"]);
    }
}
