//! Share sessions (KIP-932): what one member of a share group fetches, and the epoch
//! its next ShareFetch/ShareAcknowledge must carry.
//!
//! Epoch 0 opens a session (replacing the member's previous one), every later request
//! carries the next epoch, and -1 closes it. Incremental requests add partitions
//! (`topics`) and drop them (`forgotten_topics_data`); a fetch serves every partition of
//! the session.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::ShareError;

/// A share-partition of a session: topic id and partition.
pub type Tp = (Uuid, i32);

#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The epoch the next request must carry.
    pub next_epoch: i32,
    pub partitions: BTreeSet<Tp>,
    /// The connection the session was opened on; it ends when that connection closes.
    pub connection: u64,
}

/// What a request asks of its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStep {
    Open,
    Continue(i32),
    Close,
}

impl SessionStep {
    pub fn from_epoch(epoch: i32) -> Self {
        match epoch {
            0 => SessionStep::Open,
            -1 => SessionStep::Close,
            e => SessionStep::Continue(e),
        }
    }
}

impl Session {
    /// Checks `epoch` against a continuing session and moves it to the next one.
    pub fn advance(&mut self, epoch: i32) -> Result<(), ShareError> {
        if epoch != self.next_epoch {
            return Err(ShareError::InvalidShareSessionEpoch);
        }
        self.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        Ok(())
    }

    pub fn update(&mut self, added: &[Tp], forgotten: &[Tp]) {
        self.partitions.extend(added.iter().copied());
        for tp in forgotten {
            self.partitions.remove(tp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_advance_and_mismatch_is_refused() {
        let mut s = Session {
            next_epoch: 1,
            ..Session::default()
        };
        s.advance(1).unwrap();
        assert_eq!(s.advance(1), Err(ShareError::InvalidShareSessionEpoch));
        s.advance(2).unwrap();
        let t = Uuid::new_v4();
        s.update(&[(t, 0), (t, 1)], &[(t, 0)]);
        assert_eq!(s.partitions, BTreeSet::from([(t, 1)]));
        assert_eq!(SessionStep::from_epoch(0), SessionStep::Open);
        assert_eq!(SessionStep::from_epoch(-1), SessionStep::Close);
    }
}
