//! Single-flight: however many callers ask for one key at once, one of them (the leader) does
//! the work and the others (followers) wait for its outcome. Used by the shim's blob misses and
//! the seeder's mirror alike.
//!
//! The key is removed before the outcome is sent, so a caller arriving after the outcome
//! starts a new flight rather than reading a stale one; a leader dropped without finishing
//! removes its key too, and its followers see `None` (the flight was lost) instead of hanging.
//!
//! A flight carries who leads it (a tag: the repository its bytes come from) and a progress
//! count the leader bumps as bytes arrive ([`Progress`]). A follower for another tag need not
//! share the leader's fate: [`Follower::wait_unless_stalled`] gives up once the leader has made
//! no progress for the follower's own deadline, and the follower does the work itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

type Flights<K, V> = Arc<Mutex<HashMap<K, Joined<V>>>>;

/// What a follower joins: the outcome to come, who leads, and how far the leader has come.
#[derive(Debug)]
struct Joined<V> {
    rx: watch::Receiver<Option<V>>,
    tag: Arc<str>,
    progress: Progress,
}

/// The flights in progress, one per key.
#[derive(Debug)]
pub struct SingleFlight<K, V> {
    flights: Flights<K, V>,
}

impl<K, V> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self { flights: Arc::default() }
    }
}

/// What a caller of [`SingleFlight::join`] is.
#[derive(Debug)]
pub enum Flight<K: Eq + Hash, V> {
    /// No flight was under way: this caller does the work and must [`Leader::finish`] it.
    Lead(Leader<K, V>),
    /// Another caller leads: wait for its outcome.
    Follow(Follower<V>),
}

/// The one caller doing a key's work.
#[derive(Debug)]
pub struct Leader<K: Eq + Hash, V> {
    key: Option<K>,
    tx: watch::Sender<Option<V>>,
    flights: Flights<K, V>,
    tag: Arc<str>,
    progress: Progress,
}

/// A caller waiting on a leader.
#[derive(Debug)]
pub struct Follower<V> {
    rx: watch::Receiver<Option<V>>,
    tag: Arc<str>,
    progress: Progress,
}

/// How far a flight's leader has come (bytes, or any count that grows while it works): the
/// leader's work bumps it, followers watch it.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn advance(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How [`Follower::wait_unless_stalled`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited<V> {
    /// The leader's outcome (`None`: the leader was dropped without finishing).
    Outcome(Option<V>),
    /// The leader made no progress for the follower's deadline; its flight goes on.
    Stalled,
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    /// Joins the flight for `key`, or starts one led for `tag`. The lock is never held across
    /// an await.
    pub fn join(&self, key: K, tag: &str) -> Flight<K, V> {
        let mut flights = self.flights.lock().expect("single-flight lock");
        if let Some(joined) = flights.get(&key) {
            let Joined { rx, tag, progress } = joined;
            return Flight::Follow(Follower { rx: rx.clone(), tag: Arc::clone(tag), progress: progress.clone() });
        }
        let (tx, rx) = watch::channel(None);
        let (tag, progress) = (Arc::<str>::from(tag), Progress::default());
        flights.insert(key.clone(), Joined { rx, tag: Arc::clone(&tag), progress: progress.clone() });
        Flight::Lead(Leader { key: Some(key), tx, flights: Arc::clone(&self.flights), tag, progress })
    }

    /// Flights under way.
    pub fn len(&self) -> usize {
        self.flights.lock().expect("single-flight lock").len()
    }

    /// Whether no flight is under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash, V: Clone> Leader<K, V> {
    /// A follower of this leader's own flight (for a leader that hands the work to a task).
    pub fn follower(&self) -> Follower<V> {
        Follower { rx: self.tx.subscribe(), tag: Arc::clone(&self.tag), progress: self.progress.clone() }
    }

    /// The count this flight's followers watch: bump it as the work advances.
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Ends the flight with `outcome`, for every follower.
    pub fn finish(mut self, outcome: V) {
        self.remove();
        let _ = self.tx.send(Some(outcome));
    }

    fn remove(&mut self) {
        if let Some(key) = self.key.take() {
            self.flights.lock().expect("single-flight lock").remove(&key);
        }
    }
}

impl<K: Eq + Hash, V> Drop for Leader<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            if let Ok(mut flights) = self.flights.lock() {
                flights.remove(&key);
            }
        }
    }
}

impl<V: Clone> Follower<V> {
    /// Whom the flight is led for (the leader's `tag`).
    pub fn leader_tag(&self) -> &str {
        &self.tag
    }

    /// The leader's outcome; `None` if the leader was dropped without finishing.
    pub async fn wait(mut self) -> Option<V> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        }
    }

    /// The leader's outcome for a follower for `tag`: one for the leader's own tag waits to the
    /// end (the same source would stall alike); one for another tag, only while the leader makes
    /// progress ([`Follower::wait_unless_stalled`]).
    pub async fn wait_as(self, tag: &str, stall: Duration) -> Waited<V> {
        if *self.tag == *tag {
            Waited::Outcome(self.wait().await)
        } else {
            self.wait_unless_stalled(stall).await
        }
    }

    /// The leader's outcome, unless its progress stands still for `stall` first (measured
    /// from this call and from each advance, checked every tenth of `stall`).
    pub async fn wait_unless_stalled(self, stall: Duration) -> Waited<V> {
        let progress = self.progress.clone();
        let outcome = self.wait();
        tokio::pin!(outcome);
        let check = (stall / 10).max(Duration::from_millis(10));
        let (mut seen, mut since) = (progress.get(), tokio::time::Instant::now());
        loop {
            tokio::select! {
                outcome = &mut outcome => return Waited::Outcome(outcome),
                () = tokio::time::sleep(check) => {}
            }
            let now = progress.get();
            if now != seen {
                (seen, since) = (now, tokio::time::Instant::now());
            } else if since.elapsed() >= stall {
                return Waited::Stalled;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_and_the_key_is_freed() {
        let flights = SingleFlight::<u32, Result<u8, String>>::default();
        let Flight::Lead(leader) = flights.join(1, "a") else { panic!("first caller leads") };
        let Flight::Follow(a) = flights.join(1, "a") else { panic!("second caller follows") };
        let own = leader.follower();
        assert!(matches!(flights.join(2, "a"), Flight::Lead(_)), "another key is another flight");
        assert_eq!(flights.len(), 1, "a dropped leader of key 2 freed it");
        leader.finish(Ok(9));
        assert_eq!(a.wait().await, Some(Ok(9)));
        assert_eq!(own.wait().await, Some(Ok(9)));
        assert!(flights.is_empty());
        assert!(matches!(flights.join(1, "a"), Flight::Lead(_)), "after the outcome, a new flight");
    }

    #[tokio::test(start_paused = true)]
    async fn a_follower_gives_up_on_a_leader_that_stops_progressing() {
        let flights = SingleFlight::<u32, u8>::default();
        let Flight::Lead(leader) = flights.join(1, "repo-a") else { panic!("leads") };
        let Flight::Follow(f) = flights.join(1, "repo-b") else { panic!("follows") };
        assert_eq!(f.leader_tag(), "repo-a", "a follower sees whom the flight is led for");
        let progress = leader.progress();
        let working = tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                progress.advance(1);
            }
        });
        let started = tokio::time::Instant::now();
        // 10 s of progress every 0.5 s, then none: stalled 2 s after the last advance.
        assert_eq!(f.wait_unless_stalled(Duration::from_secs(2)).await, Waited::Stalled);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(12) && waited < Duration::from_millis(12_500), "{waited:?}");
        working.await.unwrap();
        let Flight::Follow(g) = flights.join(1, "repo-b") else { panic!("the stalled flight goes on") };
        let Flight::Follow(same) = flights.join(1, "repo-a") else { panic!("follows") };
        let same = tokio::spawn(same.wait_as("repo-a", Duration::from_secs(2)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!same.is_finished(), "a follower for the leader's own tag waits however long it stalls");
        leader.finish(7);
        assert_eq!(g.wait_unless_stalled(Duration::from_secs(2)).await, Waited::Outcome(Some(7)));
        assert_eq!(same.await.unwrap(), Waited::Outcome(Some(7)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = SingleFlight::<u32, ()>::default();
        let leader = flights.join(1, "a");
        let Flight::Follow(f) = flights.join(1, "a") else { panic!("follows") };
        drop(leader);
        assert_eq!(f.wait().await, None);
        assert!(flights.is_empty());
    }
}
