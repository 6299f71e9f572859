//! Test doubles for the adapters' tests (feature `test-support`): a sleeper that records the
//! delays it is asked for, and jitter sources that make those delays exact or reproducible.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::{Jitter, Sleeper};

/// Records every sleep; sleeps for real only when asked to.
#[derive(Debug, Default)]
pub struct RecordingSleeper {
    sleeps: Mutex<Vec<Duration>>,
    real: bool,
}

impl RecordingSleeper {
    /// Records and returns at once: tests see exact delays without waiting.
    pub fn instant() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records and really sleeps.
    pub fn real() -> Arc<Self> {
        Arc::new(Self {
            sleeps: Mutex::default(),
            real: true,
        })
    }

    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        self.sleeps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(duration);
        if self.real {
            tokio::time::sleep(duration).await;
        }
    }
}

/// Jitter that always picks the ceiling, so that backoff delays are exact.
pub fn ceiling_jitter() -> Arc<dyn Jitter> {
    Arc::new(|ceiling: Duration| ceiling)
}

/// Deterministic jitter: a fixed pseudo-random sequence of fractions of the ceiling; it also
/// records the ceilings it was given.
#[derive(Debug, Default)]
pub struct SeededJitter {
    state: Mutex<(u64, Vec<Duration>)>,
}

impl SeededJitter {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new((seed, Vec::new())),
        })
    }

    pub fn ceilings(&self) -> Vec<Duration> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }

    /// The fractions (in thousandths) of the ceiling the first `n` picks use for this seed.
    pub fn fractions(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = next(x);
                x % 1001
            })
            .collect()
    }
}

fn next(x: u64) -> u64 {
    x.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
}

impl Jitter for SeededJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0 = next(state.0);
        state.1.push(ceiling);
        ceiling * u32::try_from(state.0 % 1001).unwrap_or(0) / 1000
    }
}
