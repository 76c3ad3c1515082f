//! Event-time windows: tumbling and hopping [`TimeWindows`], the [`Window`] a record falls
//! into, and [`Windowed`] keys. Window starts are aligned to the epoch (a multiple of the
//! advance), as in Kafka Streams, so every instance computes the same windows.

use std::time::Duration;

/// A half-open time interval `[start, end)` in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// A key with the window its aggregate belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The grouping key.
    pub key: K,
    /// The window.
    pub window: Window,
}

/// Fixed-size windows; tumbling when `advance == size`, hopping when `advance < size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl TimeWindows {
    /// Tumbling windows of `size` that accept records up to `grace` after the window end
    /// (in stream time); later records are dropped.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = millis(size).max(1);
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: millis(grace),
        }
    }

    /// Tumbling windows with no grace period.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Hopping windows: a new window every `advance` (clamped to `1..=size`).
    pub fn advance_by(self, advance: Duration) -> Self {
        TimeWindows {
            advance_ms: millis(advance).clamp(1, self.size_ms),
            ..self
        }
    }

    /// Window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// Grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Every window that contains `ts`, oldest first.
    pub fn windows_for(&self, ts: i64) -> Vec<Window> {
        let first = (ts
            .saturating_sub(self.size_ms)
            .saturating_add(self.advance_ms))
        .max(0);
        let mut start = first - first % self.advance_ms;
        let mut out = Vec::new();
        while start <= ts {
            out.push(Window {
                start,
                end: start.saturating_add(self.size_ms),
            });
            start = start.saturating_add(self.advance_ms);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_alignment() {
        let t = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(t.windows_for(25), vec![Window { start: 20, end: 30 }]);
        assert_eq!(t.windows_for(20), vec![Window { start: 20, end: 30 }]);
        let h = t.advance_by(Duration::from_millis(5));
        assert_eq!(
            h.windows_for(12),
            vec![Window { start: 5, end: 15 }, Window { start: 10, end: 20 }]
        );
        assert_eq!(h.windows_for(3), vec![Window { start: 0, end: 10 }]);
    }
}

/// Session windows: records of a key closer than `gap` to each other belong to one
/// session; a record joining two sessions merges them. A session's `end` is the timestamp
/// of its last record (inclusive, as in Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions split by `gap` of inactivity, accepting records up to `grace` late.
    pub fn with_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows {
            gap_ms: millis(gap),
            grace_ms: millis(grace),
        }
    }

    /// The inactivity gap in milliseconds.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// Grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// How far apart in event time two records of a stream-stream join may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub(crate) before_ms: i64,
    pub(crate) after_ms: i64,
    pub(crate) grace_ms: i64,
}

impl JoinWindows {
    /// Records join when their timestamps differ by at most `difference`; records later
    /// than `grace` (in stream time) are dropped.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Self {
        let d = millis(difference);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }
}
