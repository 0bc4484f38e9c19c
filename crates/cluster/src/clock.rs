//! The clock and the id source the leader plans commands with.
//!
//! Owns the two things invariant 2 keeps out of `apply`: the time and
//! randomness. Code that builds a command asks a [`Clock`] for `now` and
//! [`new_id`] for ids, and puts the answers in the command; tests inject a
//! fixed or stepping clock. Nothing in the store may call either.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::RngCore;
use tocsin_calendar::Instant;

/// A source of "now".
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Instant::from_millis(millis)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Instant) -> Self {
        ManualClock {
            millis: Arc::new(AtomicI64::new(at.millis())),
        }
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: Instant) {
        self.millis.store(at.millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// A new random id: 128 bits in hex, planned by the leader (invariant 2).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
