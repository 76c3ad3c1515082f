//! A rate over sampled windows, measured as Kafka's `Rate` over a `SampledStat` does:
//! `samples` windows of `window` each; a sample older than all of them no longer counts;
//! the rate is the sum over the live samples divided by the time they span, which is
//! never taken as less than `samples - 1` whole windows (so one burst right after a
//! quiet period is measured against the full window, not against a few milliseconds).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How rates are sampled (`quota.window.num`, `quota.window.size.seconds`).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub samples: usize,
    pub size: Duration,
}

impl Window {
    /// The longest any throttle lasts: the whole sampled span.
    pub fn max_throttle(&self) -> Duration {
        self.size
            .saturating_mul(u32::try_from(self.samples).unwrap_or(u32::MAX))
    }
}

#[derive(Debug, Default)]
pub struct Rate {
    /// (window start, amount recorded in it), oldest first.
    samples: VecDeque<(Instant, f64)>,
}

impl Rate {
    fn purge(&mut self, now: Instant, w: Window) {
        let span = w.max_throttle();
        while let Some(&(start, _)) = self.samples.front() {
            if now.saturating_duration_since(start) >= span {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Adds `amount` at `now`.
    pub fn record(&mut self, now: Instant, amount: f64, w: Window) {
        self.purge(now, w);
        match self.samples.back_mut() {
            Some((start, total)) if now.saturating_duration_since(*start) < w.size => {
                *total += amount;
            }
            _ => {
                if self.samples.len() >= w.samples.max(1) {
                    self.samples.pop_front();
                }
                self.samples.push_back((now, amount));
            }
        }
    }

    /// Takes back an amount recorded in the current window (a throttled fetch whose
    /// data was not sent).
    pub fn unrecord(&mut self, amount: f64) {
        if let Some((_, total)) = self.samples.back_mut() {
            *total = (*total - amount).max(0.0);
        }
    }

    /// The span the rate is measured over at `now` (Kafka's `Rate.windowSize`).
    pub fn window_size(&self, now: Instant, w: Window) -> Duration {
        let elapsed = self.samples.front().map_or(Duration::ZERO, |(start, _)| {
            now.saturating_duration_since(*start)
        });
        let size_ms = w.size.as_millis().max(1);
        let full = elapsed.as_millis() / size_ms;
        let min_full = w.samples.saturating_sub(1) as u128;
        if full < min_full {
            let missing = u32::try_from(min_full - full).unwrap_or(u32::MAX);
            elapsed + w.size.saturating_mul(missing)
        } else {
            elapsed
        }
    }

    /// Amount per second at `now`.
    pub fn measure(&mut self, now: Instant, w: Window) -> f64 {
        self.purge(now, w);
        let total: f64 = self.samples.iter().map(|(_, t)| t).sum();
        let secs = self.window_size(now, w).as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            total / secs
        }
    }

    /// How long a client over `quota` waits (Kafka's `QuotaUtils.throttleTime`): the
    /// time at which the amount recorded would be within the quota, at most the whole
    /// sampled span; zero when within it.
    pub fn throttle(&mut self, now: Instant, quota: f64, w: Window) -> Duration {
        let observed = self.measure(now, w);
        if quota <= 0.0 || observed <= quota {
            return Duration::ZERO;
        }
        let window = self.window_size(now, w).as_secs_f64();
        let secs = (observed - quota) / quota * window;
        Duration::from_secs_f64(secs.min(w.max_throttle().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Window = Window {
        samples: 11,
        size: Duration::from_secs(1),
    };

    #[test]
    fn a_burst_is_measured_against_the_whole_window() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(t0, 10_000.0, W);
        // 10,000 over at least ten windows: 1,000/s.
        assert!((r.measure(t0, W) - 1000.0).abs() < 1.0);
        assert_eq!(r.throttle(t0, 2000.0, W), Duration::ZERO);
        // Against 500/s: (1000 - 500) / 500 * 10 s = 10 s.
        let t = r.throttle(t0, 500.0, W);
        assert!((t.as_secs_f64() - 10.0).abs() < 0.01, "{t:?}");
    }

    #[test]
    fn old_samples_stop_counting_and_unrecord_takes_back() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(t0, 5_000.0, W);
        r.unrecord(1_000.0);
        assert!((r.measure(t0, W) - 400.0).abs() < 1.0);
        let later = t0 + Duration::from_secs(12);
        assert_eq!(r.measure(later, W), 0.0);
    }

    #[test]
    fn the_throttle_is_capped_by_the_sampled_span() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(t0, 1e12, W);
        assert_eq!(r.throttle(t0, 1.0, W), W.max_throttle());
    }
}
