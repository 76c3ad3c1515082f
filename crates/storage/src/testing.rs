//! Test seams: pause a cleaner swap's unlocked steps in one directory, so a test can
//! check that the partition stays writable meanwhile. Costs production one mutex and
//! an empty-list check per swap step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Where a swap can be paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// [`crate::PreparedSwap::prepare`]: re-validation, indexes, the first directory fsync.
    Prepare,
    /// [`crate::SwapFinish::finish`]: the second directory fsync and the checkpoint.
    Finish,
}

/// A pause: the swap step waits at its start until [`Pause::release`].
#[derive(Debug, Default)]
pub struct Pause {
    state: Mutex<(bool, bool)>, // (reached, released)
    cond: Condvar,
}

impl Pause {
    /// Waits until the step is reached; false after `timeout`.
    pub fn wait_reached(&self, timeout: Duration) -> bool {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |s| !s.0)
            .unwrap_or_else(|p| p.into_inner());
        g.0
    }

    /// Lets the step go on.
    pub fn release(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.cond.notify_all();
    }

    fn hold(&self) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = true;
        self.cond.notify_all();
        // Bounded, so a test that forgets to release cannot hang the process.
        let _ = self
            .cond
            .wait_timeout_while(g, Duration::from_secs(30), |s| !s.1);
    }
}

type Pauses = Vec<(PathBuf, SwapStep, Arc<Pause>)>;
static PAUSES: Mutex<Pauses> = Mutex::new(Vec::new());

/// Pauses the next `step` of a swap in `dir` (one use).
pub fn pause_swap(dir: &Path, step: SwapStep) -> Arc<Pause> {
    let p = Arc::new(Pause::default());
    PAUSES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((dir.to_path_buf(), step, p.clone()));
    p
}

pub(crate) fn checkpoint(dir: &Path, step: SwapStep) {
    let found = {
        let mut pauses = PAUSES.lock().unwrap_or_else(|e| e.into_inner());
        if pauses.is_empty() {
            return;
        }
        pauses
            .iter()
            .position(|(d, s, _)| d == dir && *s == step)
            .map(|i| pauses.remove(i).2)
    };
    if let Some(p) = found {
        p.hold();
    }
}
