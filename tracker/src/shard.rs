//! Where this tracker stands among the tracker members for a torrent: its owner, a failover
//! tier, or outside the torrent's tiers (the client's member list differs from ours).
//!
//! Each blob's torrent names its owners in rendezvous order of the infohash over the members
//! (`shoal_torrents::Distribution::for_info_hash`); a tracker that knows the same members and
//! its own URL among them can tell, per announce, whether it serves as the owner or as a
//! failover, which is what an operator watches when a member dies. Pure.

use shoal_torrents::{rendezvous_rank, InfoHash, TRACKER_TIERS};

/// The tracker members and which of them this tracker is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    members: Vec<String>,
    me: String,
}

/// This tracker's place in one torrent's tiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Failover,
    /// Not among the torrent's tiers: the announcer knows other members than we do.
    Outside,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Failover => "failover",
            Role::Outside => "outside",
        }
    }
}

/// Why a member list cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("this tracker's own URL {me} is not one of the tracker members ({members})")]
    NotAMember { me: String, members: String },
}

impl Shard {
    /// `members` are the announce URLs every party lists (repeats dropped); `me` is this
    /// tracker's, exactly as it appears among them.
    pub fn new(members: Vec<String>, me: String) -> Result<Self, ShardError> {
        let mut unique: Vec<String> = Vec::with_capacity(members.len());
        for m in members {
            if !unique.contains(&m) {
                unique.push(m);
            }
        }
        if !unique.contains(&me) {
            return Err(ShardError::NotAMember { me, members: unique.join(", ") });
        }
        Ok(Self { members: unique, me })
    }

    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Called on every announce: one weight per member, nothing allocated.
    pub fn role(&self, info_hash: &InfoHash) -> Role {
        match rendezvous_rank(info_hash.as_bytes(), &self.members, &self.me) {
            0 => Role::Owner,
            rank if rank < TRACKER_TIERS => Role::Failover,
            _ => Role::Outside,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://tracker-{i}:6969/announce")).collect()
    }

    #[test]
    fn each_torrent_has_one_owner_and_two_failovers_among_five() {
        let all = members(5);
        let shards: Vec<Shard> = all.iter().map(|me| Shard::new(all.clone(), me.clone()).unwrap()).collect();
        for i in 0..200u8 {
            let hash = InfoHash::from_bytes([i; 20]);
            let roles: Vec<Role> = shards.iter().map(|s| s.role(&hash)).collect();
            assert_eq!(roles.iter().filter(|r| **r == Role::Owner).count(), 1);
            assert_eq!(roles.iter().filter(|r| **r == Role::Failover).count(), TRACKER_TIERS - 1);
            assert_eq!(roles.iter().filter(|r| **r == Role::Outside).count(), 5 - TRACKER_TIERS);
        }
    }

    #[test]
    fn a_lone_tracker_owns_everything_and_a_stranger_is_refused() {
        let alone = Shard::new(members(1), members(1)[0].clone()).unwrap();
        assert_eq!(alone.role(&InfoHash::from_bytes([7; 20])), Role::Owner);
        let err = Shard::new(members(2), "http://elsewhere/announce".into()).unwrap_err();
        assert!(err.to_string().contains("not one of the tracker members"), "{err}");
    }
}
