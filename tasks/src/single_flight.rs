//! Single-flight: however many callers ask for one key at once, one of them (the leader) does
//! the work and the others (followers) wait for its outcome. Used by the shim's blob misses and
//! the seeder's mirror alike.
//!
//! The key is removed before the outcome is sent, so a caller arriving after the outcome
//! starts a new flight rather than reading a stale one; a leader dropped without finishing
//! removes its key too, and its followers see `None` (the flight was lost) instead of hanging.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

type Flights<K, V> = Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>;

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
}

/// A caller waiting on a leader.
#[derive(Debug)]
pub struct Follower<V> {
    rx: watch::Receiver<Option<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    /// Joins the flight for `key`, or starts one. The lock is never held across an await.
    pub fn join(&self, key: K) -> Flight<K, V> {
        let mut flights = self.flights.lock().expect("single-flight lock");
        if let Some(rx) = flights.get(&key) {
            return Flight::Follow(Follower { rx: rx.clone() });
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.clone(), rx);
        Flight::Lead(Leader { key: Some(key), tx, flights: Arc::clone(&self.flights) })
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
        Follower { rx: self.tx.subscribe() }
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
    /// The leader's outcome; `None` if the leader was dropped without finishing.
    pub async fn wait(mut self) -> Option<V> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_and_the_key_is_freed() {
        let flights = SingleFlight::<u32, Result<u8, String>>::default();
        let Flight::Lead(leader) = flights.join(1) else { panic!("first caller leads") };
        let Flight::Follow(a) = flights.join(1) else { panic!("second caller follows") };
        let own = leader.follower();
        assert!(matches!(flights.join(2), Flight::Lead(_)), "another key is another flight");
        assert_eq!(flights.len(), 1, "a dropped leader of key 2 freed it");
        leader.finish(Ok(9));
        assert_eq!(a.wait().await, Some(Ok(9)));
        assert_eq!(own.wait().await, Some(Ok(9)));
        assert!(flights.is_empty());
        assert!(matches!(flights.join(1), Flight::Lead(_)), "after the outcome, a new flight");
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = SingleFlight::<u32, ()>::default();
        let leader = flights.join(1);
        let Flight::Follow(f) = flights.join(1) else { panic!("follows") };
        drop(leader);
        assert_eq!(f.wait().await, None);
        assert!(flights.is_empty());
    }
}
