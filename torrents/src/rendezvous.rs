//! Rendezvous (highest-random-weight) hashing: which members own a key, in order.
//!
//! A member's weight for a key is a hash of the key and the member's name; the members sorted
//! by weight, highest first, are the key's owners. Every party that knows the same member list
//! computes the same order without asking anyone (no coordinator, no shared database); adding a
//! member moves to it only the keys it now weighs most for (about 1/N of them), and removing
//! one moves only the keys it owned, each to its next owner. Kraken shards its trackers and
//! origins this way. Pure.

use sha1::{Digest, Sha1};

/// `members` in `key`'s rendezvous order, highest weight first (duplicates kept as given: the
/// caller dedups). Ties, which need equal 64-bit hashes, go to the smaller name.
pub fn rendezvous_order<'a, M: AsRef<str>>(key: &[u8], members: &'a [M]) -> Vec<&'a str> {
    let mut weighed: Vec<(u64, &str)> = members.iter().map(|m| (weight(key, m.as_ref()), m.as_ref())).collect();
    weighed.sort_by(|a, b| ahead(*a, *b));
    weighed.into_iter().map(|(_, m)| m).collect()
}

/// Where `member` stands in `key`'s [`rendezvous_order`] over `members` (0: the owner), without
/// building the order: for a caller that asks on every request (the tracker, per announce).
pub fn rendezvous_rank<M: AsRef<str>>(key: &[u8], members: &[M], member: &str) -> usize {
    let mine = (weight(key, member), member);
    members.iter().filter(|m| ahead((weight(key, m.as_ref()), m.as_ref()), mine).is_lt()).count()
}

/// The order of two weighed members: the higher weight first, then the smaller name.
fn ahead(a: (u64, &str), b: (u64, &str)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// The first 8 bytes of SHA-1(key, 0, member): stable across builds, machines and versions,
/// which is what lets separately deployed parties agree (a `Hasher` from std would not be).
fn weight(key: &[u8], member: &str) -> u64 {
    let mut h = Sha1::new();
    h.update(key);
    h.update([0]);
    h.update(member.as_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://tracker-{i}:6969/announce")).collect()
    }

    fn owner(key: u32, members: &[String]) -> String {
        rendezvous_order(&key.to_be_bytes(), members)[0].to_owned()
    }

    #[test]
    fn the_order_is_a_permutation_and_the_same_whatever_order_the_members_are_listed_in() {
        let m = members(5);
        let mut reversed = m.clone();
        reversed.reverse();
        for key in 0..100u32 {
            let order = rendezvous_order(&key.to_be_bytes(), &m);
            assert_eq!(order, rendezvous_order(&key.to_be_bytes(), &reversed));
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, m.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_members_rank_is_its_place_in_the_order() {
        let m = members(5);
        for key in 0..100u32 {
            let order = rendezvous_order(&key.to_be_bytes(), &m);
            for (place, member) in order.iter().enumerate() {
                assert_eq!(rendezvous_rank(&key.to_be_bytes(), &m, member), place);
            }
        }
    }

    #[test]
    fn keys_spread_evenly_over_members() {
        let m = members(4);
        let mut counts = std::collections::HashMap::new();
        for key in 0..20_000u32 {
            *counts.entry(owner(key, &m)).or_insert(0u32) += 1;
        }
        for (member, n) in counts {
            assert!((4_500..5_500).contains(&n), "{member} owns {n} of 20,000 keys");
        }
    }

    #[test]
    fn adding_a_member_moves_about_one_nth_of_the_keys_all_to_it() {
        let (before, after) = (members(4), members(5));
        let newcomer = after[4].clone();
        let mut moved = 0;
        for key in 0..20_000u32 {
            let (was, is) = (owner(key, &before), owner(key, &after));
            if was != is {
                assert_eq!(is, newcomer, "key {key} moved between old members");
                moved += 1;
            }
        }
        // 1/5 of 20,000 is 4,000.
        assert!((3_600..4_400).contains(&moved), "{moved} keys moved");
    }

    #[test]
    fn removing_a_member_moves_only_its_keys_each_to_its_next_owner() {
        let all = members(5);
        let gone = all[2].clone();
        let rest: Vec<String> = all.iter().filter(|m| **m != gone).cloned().collect();
        for key in 0..5_000u32 {
            let order = rendezvous_order(&key.to_be_bytes(), &all);
            let expected = if order[0] == gone { order[1] } else { order[0] };
            assert_eq!(owner(key, &rest), expected, "key {key}");
        }
    }

    #[test]
    fn weights_are_frozen() {
        // Parties of different versions must agree: this order may never change.
        let m = members(3);
        assert_eq!(
            rendezvous_order(b"layer", &m),
            ["http://tracker-2:6969/announce", "http://tracker-1:6969/announce", "http://tracker-0:6969/announce"]
        );
    }
}
