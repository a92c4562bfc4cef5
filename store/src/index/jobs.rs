//! Mirror jobs in the index (`mirror_jobs`: image reference -> [`MirrorJob`] as JSON): an image
//! being mirrored, or waiting for its next attempt after a failure, so a restart resumes it and
//! a job that keeps failing is dropped after its last attempt (the seeder's retry policy
//! decides; this only keeps the record). Databases from before retries hold a `jobs` table
//! (reference -> start time); its entries become fresh jobs at open.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{decode, encode, BlobIndex, IndexError};

const MIRROR_JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("mirror_jobs");
/// Before retries: reference -> seconds since the Unix epoch it started.
const LEGACY_JOBS: TableDefinition<&str, u64> = TableDefinition::new("jobs");

/// One image to mirror, and how its attempts went so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorJob {
    pub reference: String,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Milliseconds since the Unix epoch: when the job was first recorded.
    pub added_ms: u64,
    /// When the next attempt is due (0: at once).
    pub next_attempt_ms: u64,
    /// The last failure, with its cause chain, and its reason label.
    pub last_error: Option<String>,
    pub last_reason: Option<String>,
}

impl MirrorJob {
    pub fn new(reference: &str, now_ms: u64) -> Self {
        Self {
            reference: reference.to_owned(),
            attempts: 0,
            added_ms: now_ms,
            next_attempt_ms: 0,
            last_error: None,
            last_reason: None,
        }
    }
}

/// Opens the table, turning a legacy `jobs` table's entries into fresh jobs.
pub(super) fn create_tables(tx: &WriteTransaction) -> Result<(), IndexError> {
    let mut jobs = tx.open_table(MIRROR_JOBS)?;
    let mut legacy = Vec::new();
    {
        let old = tx.open_table(LEGACY_JOBS)?;
        for entry in old.iter()? {
            let (reference, started_secs) = entry?;
            legacy.push((reference.value().to_owned(), started_secs.value()));
        }
    }
    for (reference, started_secs) in legacy {
        if jobs.get(reference.as_str())?.is_none() {
            let job = MirrorJob::new(&reference, started_secs.saturating_mul(1000));
            jobs.insert(reference.as_str(), encode(&job).as_slice())?;
        }
    }
    drop(jobs);
    tx.delete_table(LEGACY_JOBS)?;
    Ok(())
}

impl BlobIndex {
    /// Records that `reference` is to be mirrored, unless it already is (its attempts kept).
    pub fn add_job(&self, reference: &str, now_ms: u64) -> Result<MirrorJob, IndexError> {
        let tx = self.db.begin_write()?;
        let job = {
            let mut jobs = tx.open_table(MIRROR_JOBS)?;
            let existing = jobs.get(reference)?.map(|v| decode::<MirrorJob>(reference, v.value()));
            match existing {
                Some(job) => job?,
                None => {
                    let job = MirrorJob::new(reference, now_ms);
                    jobs.insert(reference, encode(&job).as_slice())?;
                    job
                }
            }
        };
        tx.commit()?;
        Ok(job)
    }

    /// Writes a job's new state (after a failed attempt).
    pub fn put_job(&self, job: &MirrorJob) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(MIRROR_JOBS)?.insert(job.reference.as_str(), encode(job).as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The job of `reference`, if one is recorded.
    pub fn job(&self, reference: &str) -> Result<Option<MirrorJob>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MIRROR_JOBS)?;
        let value = table.get(reference)?;
        value.map(|v| decode(reference, v.value())).transpose()
    }

    /// Forgets a job: mirrored, or given up on.
    pub fn finish_job(&self, reference: &str) -> Result<(), IndexError> {
        let tx = self.db.begin_write()?;
        tx.open_table(MIRROR_JOBS)?.remove(reference)?;
        tx.commit()?;
        Ok(())
    }

    /// Every recorded job, by reference.
    pub fn jobs(&self) -> Result<Vec<MirrorJob>, IndexError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(MIRROR_JOBS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            out.push(decode(key.value(), value.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_keep_their_attempts_across_reopening_and_legacy_jobs_become_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        {
            // A database from before retries.
            let db = redb::Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(LEGACY_JOBS).unwrap().insert("r/old:1", 1_700_000_000).unwrap();
            tx.commit().unwrap();
        }
        {
            let index = BlobIndex::open(&path).unwrap();
            assert_eq!(index.jobs().unwrap(), vec![MirrorJob::new("r/old:1", 1_700_000_000_000)]);
            let mut job = index.add_job("r/app:1", 5).unwrap();
            job.attempts = 2;
            job.last_error = Some("refused".into());
            index.put_job(&job).unwrap();
            // Added again (a new request for it): its attempts stay.
            assert_eq!(index.add_job("r/app:1", 9).unwrap(), job);
            index.finish_job("r/old:1").unwrap();
        }
        let index = BlobIndex::open(&path).unwrap();
        let jobs = index.jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].reference.as_str(), jobs[0].attempts, jobs[0].added_ms), ("r/app:1", 2, 5));
        assert_eq!(index.job("r/app:1").unwrap().unwrap().last_error.as_deref(), Some("refused"));
    }
}
