//! The seeders' ring: which seeders own a blob (mirror it from upstream, seed it, serve its
//! webseed), in rendezvous order of its SHA-256 digest. Pure.
//!
//! The key is the digest, not the infohash: a shim must find a blob's owner before anyone has
//! made its torrent. Every party that knows the same members and replica count (seeders,
//! shims, `shoal magnets`) computes the same owners, in the same order, without asking anyone.

use crate::digest::BlobDigest;
use crate::metainfo::Distribution;
use crate::rendezvous::{rendezvous_order, rendezvous_rank};

/// The default number of seeders that hold each blob.
pub const DEFAULT_REPLICAS: usize = 2;

/// The seeder members (their public HTTP base URLs) and how many of them own each blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeederRing {
    members: Vec<String>,
    replicas: usize,
}

/// Why a member list cannot be a ring.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("the seeder member list is empty")]
    NoMembers,
    #[error("--replicas must be at least 1")]
    NoReplicas,
    #[error("seeder member {0:?} is not an http:// or https:// base URL")]
    NotAUrl(String),
}

impl SeederRing {
    /// A ring over `members`: trailing slashes dropped, repeats dropped, order irrelevant.
    pub fn new<I, S>(members: I, replicas: usize) -> Result<Self, RingError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if replicas == 0 {
            return Err(RingError::NoReplicas);
        }
        let mut list: Vec<String> = Vec::new();
        for given in members {
            let member = given.as_ref().trim().trim_end_matches('/');
            let host = member.strip_prefix("http://").or_else(|| member.strip_prefix("https://"));
            if host.is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#', ' '])) {
                return Err(RingError::NotAUrl(given.as_ref().to_owned()));
            }
            if !list.iter().any(|m| m == member) {
                list.push(member.to_owned());
            }
        }
        if list.is_empty() {
            return Err(RingError::NoMembers);
        }
        list.sort();
        Ok(Self { members: list, replicas })
    }

    /// A ring of one seeder, which owns everything (`shoal up`, a lone `shoal seeder`).
    pub fn alone(url: &str) -> Result<Self, RingError> {
        Self::new([url], DEFAULT_REPLICAS)
    }

    /// The members, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// Whether `url` (trailing slash ignored) is a member.
    pub fn contains(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        self.members.iter().any(|m| m == url)
    }

    /// Every member in `digest`'s order: its owners first, then the rest (who forward to them).
    pub fn order(&self, digest: &BlobDigest) -> Vec<&str> {
        rendezvous_order(digest.as_bytes(), &self.members)
    }

    /// The blob's owners, primary first: the first `replicas` of [`SeederRing::order`].
    pub fn owners(&self, digest: &BlobDigest) -> Vec<&str> {
        let mut order = self.order(digest);
        order.truncate(self.replicas);
        order
    }

    /// Whether `member` is one of the blob's owners (one hash per member, no list built).
    pub fn owns(&self, digest: &BlobDigest, member: &str) -> bool {
        let member = member.trim_end_matches('/');
        self.contains(member) && rendezvous_rank(digest.as_bytes(), &self.members, member) < self.replicas
    }

    /// How `member` seeds a blob it holds: the primary owner as its session does (super-seeding
    /// an origin), every other holder with every piece shown (`Some(false)`). Two
    /// super-seeders of one torrent each hide from a peer most pieces the other shows it: in
    /// the ring's interop test a burst of four hosts stalled 6-13 s in about 4 runs of 10.
    pub fn super_seed(&self, digest: &BlobDigest, member: &str) -> Option<bool> {
        let primary = self.order(digest).first().is_some_and(|m| *m == member.trim_end_matches('/'));
        (!primary).then_some(false)
    }

    /// The BEP 19 webseed bases a blob's torrent names: its owners', primary first.
    pub fn webseeds(&self, digest: &BlobDigest) -> Vec<String> {
        self.owners(digest).into_iter().map(|m| format!("{m}/webseed/")).collect()
    }

    /// What a blob's torrent and magnet name: `trackers` (each torrent then names its owner
    /// trackers, [`Distribution::for_info_hash`]) and its owners' webseeds.
    pub fn distribution(&self, trackers: &[String], digest: &BlobDigest) -> Distribution {
        Distribution { trackers: trackers.to_vec(), webseeds: self.webseeds(digest) }
    }
}

/// Whether each member answered last time, so that a caller logs a member going down, or coming
/// back, once per change instead of once per request, and asks a member that just failed after
/// the others instead of paying its connect timeout again for every blob. A member never seen
/// counts as up. Time is passed in.
#[derive(Debug, Default)]
pub struct MemberLiveness(std::sync::Mutex<std::collections::HashMap<String, (bool, std::time::Instant)>>);

impl MemberLiveness {
    /// How long a member that failed is asked after the others: then it is asked in its turn
    /// again, and answers or is put back.
    pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

    /// Records whether `member` answered at `now`; `Some(up)` when that changes what was known.
    pub fn record(&self, member: &str, up: bool, now: std::time::Instant) -> Option<bool> {
        let mut known = self.0.lock().expect("not poisoned");
        let was = known.insert(member.to_owned(), (up, now)).is_none_or(|(was, _)| was);
        (was != up).then_some(up)
    }

    /// `order` with the members that failed within [`Self::RETRY_AFTER`] of `now` moved to the
    /// end, each group in its order.
    pub fn reorder<'a>(&self, mut order: Vec<&'a str>, now: std::time::Instant) -> Vec<&'a str> {
        let known = self.0.lock().expect("not poisoned");
        let down = |m: &&str| {
            known.get(*m).is_some_and(|(up, at)| !up && now.saturating_duration_since(*at) < Self::RETRY_AFTER)
        };
        order.sort_by_key(down);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: usize, replicas: usize) -> SeederRing {
        SeederRing::new((0..n).map(|i| format!("http://seeder-{i}:7000")), replicas).unwrap()
    }

    fn digest(i: u32) -> BlobDigest {
        use sha2::{Digest, Sha256};
        BlobDigest::from_bytes(Sha256::digest(i.to_be_bytes()).into())
    }

    #[test]
    fn liveness_reports_each_change_once() {
        let (live, t) = (MemberLiveness::default(), std::time::Instant::now());
        assert_eq!(live.record("a", true, t), None, "a member never seen is up");
        assert_eq!(live.record("a", false, t), Some(false));
        assert_eq!(live.record("a", false, t), None);
        assert_eq!(live.record("b", false, t), Some(false));
        assert_eq!(live.record("a", true, t), Some(true));
        assert_eq!(live.record("a", true, t), None);
    }

    #[test]
    fn a_member_that_just_failed_is_asked_last_until_its_retry_time() {
        let (live, t) = (MemberLiveness::default(), std::time::Instant::now());
        live.record("b", false, t);
        live.record("c", true, t);
        assert_eq!(live.reorder(vec!["b", "a", "c"], t), ["a", "c", "b"]);
        let later = t + MemberLiveness::RETRY_AFTER;
        assert_eq!(live.reorder(vec!["b", "a", "c"], later), ["b", "a", "c"], "asked in its turn again");
    }

    #[test]
    fn bad_member_lists_are_refused() {
        assert_eq!(SeederRing::new(Vec::<String>::new(), 2), Err(RingError::NoMembers));
        assert_eq!(SeederRing::new(["http://a:1"], 0), Err(RingError::NoReplicas));
        for bad in ["a:7000", "http://", "ftp://a", "http://a/path", "http://a b"] {
            assert_eq!(SeederRing::new([bad], 2), Err(RingError::NotAUrl(bad.to_owned())), "{bad}");
        }
    }

    #[test]
    fn members_are_normalized_so_every_party_agrees() {
        let a = SeederRing::new(["http://b:1/", "http://a:1", "http://b:1"], 2).unwrap();
        let b = SeederRing::new(["http://a:1/", "http://b:1"], 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.members(), ["http://a:1", "http://b:1"]);
        assert!(a.contains("http://b:1/"));
    }

    #[test]
    fn owners_are_the_first_replicas_of_the_order_and_owns_agrees() {
        let r = ring(5, 2);
        for i in 0..200 {
            let d = digest(i);
            let order = r.order(&d);
            assert_eq!(order.len(), 5);
            assert_eq!(r.owners(&d), order[..2]);
            for m in r.members() {
                assert_eq!(r.owns(&d, m), order[..2].contains(&m.as_str()), "{m}");
            }
            assert!(!r.owns(&d, "http://stranger:7000"));
            assert_eq!(r.webseeds(&d), order[..2].iter().map(|m| format!("{m}/webseed/")).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_ring_smaller_than_the_replica_count_has_every_member_own_everything() {
        let r = SeederRing::alone("http://127.0.0.1:7000/").unwrap();
        assert_eq!(r.owners(&digest(1)), ["http://127.0.0.1:7000"]);
        assert!(r.owns(&digest(1), "http://127.0.0.1:7000"));
        assert_eq!(r.webseeds(&digest(1)), ["http://127.0.0.1:7000/webseed/"]);
    }

    /// Adding a 4th seeder: only the blobs it now owns move, and those are about 1/N of them
    /// for the primary (R/N of them gain it as one of their R owners).
    #[test]
    fn adding_a_seeder_moves_about_one_nth_of_the_blobs_all_to_it() {
        let (before, after) = (ring(3, 2), ring(4, 2));
        let newcomer = "http://seeder-3:7000";
        let (mut primary_moved, mut owner_sets_changed) = (0, 0);
        for i in 0..20_000 {
            let d = digest(i);
            if before.owners(&d)[0] != after.owners(&d)[0] {
                assert_eq!(after.owners(&d)[0], newcomer);
                primary_moved += 1;
            }
            if before.owners(&d) != after.owners(&d) {
                assert!(after.owns(&d, newcomer), "blob {i} moved between old seeders");
                owner_sets_changed += 1;
            }
        }
        // 1/4 of 20,000 is 5,000; the newcomer is one of 2 owners of 2/4 of them, 10,000.
        assert!((4_500..5_500).contains(&primary_moved), "{primary_moved} primaries moved");
        assert!((9_500..10_500).contains(&owner_sets_changed), "{owner_sets_changed} owner sets changed");
    }

    #[test]
    fn removing_a_seeder_leaves_every_blob_a_surviving_replica() {
        let all = ring(4, 2);
        let gone = "http://seeder-1:7000";
        let rest = SeederRing::new(all.members().iter().filter(|m| *m != gone), 2).unwrap();
        for i in 0..5_000 {
            let d = digest(i);
            let (was, is) = (all.owners(&d), rest.owners(&d));
            // Each blob keeps every surviving owner; a lost owner is replaced by the next.
            for m in was.iter().filter(|m| **m != gone) {
                assert!(is.contains(m), "blob {i} lost its replica {m}");
            }
        }
    }
}
