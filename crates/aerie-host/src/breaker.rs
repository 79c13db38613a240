//! The per-installation circuit breaker: after `threshold` consecutive failures the breaker
//! opens and calls are refused until the cool-down has passed; then exactly one trial call goes
//! through, and its outcome closes the breaker or opens it for another cool-down.
//!
//! Pure state over an explicit clock, so that every transition is tested without waiting; the
//! host reads the time from its [`Clock`], which tests replace with a [`ManualClock`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the host's breakers read the time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's monotonic clock.
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it: breakers' cool-downs
/// pass in a test without the test waiting on the wall clock.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    /// A clock standing at the present moment.
    pub fn new() -> ManualClock {
        ManualClock(Arc::new(Mutex::new(Instant::now())))
    }

    /// The time it shows.
    pub fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|err| err.into_inner())
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|err| err.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Clock {
        Clock::Manual(clock)
    }
}

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub threshold: u32,
    /// How long an open breaker refuses calls before it lets one trial through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> BreakerPolicy {
        BreakerPolicy {
            threshold: 5,
            cool_down: Duration::from_secs(60),
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` in a row so far.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Calls are refused until `until`.
    Open {
        /// When a trial call may go through.
        until: Instant,
    },
    /// One trial call is running; others are refused until it ends.
    Trial,
}

/// The answer to "may this call go through?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes; report the outcome with [`Breaker::record`].
    Admitted,
    /// No: the breaker is open (or a trial is running); retry after this long.
    Refused {
        /// How long until a call may be admitted again (at least one second, for
        /// `Retry-After`).
        retry_after: Duration,
    },
}

/// One installation's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: BreakerState,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call starting at `now` may go through. An open breaker whose cool-down has
    /// passed admits exactly one trial call.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Admitted,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::Trial;
                Admission::Admitted
            }
            BreakerState::Open { until } => Admission::Refused {
                retry_after: (until - now).max(Duration::from_secs(1)),
            },
            // The trial decides soon; others come back in a second.
            BreakerState::Trial => Admission::Refused {
                retry_after: Duration::from_secs(1),
            },
        }
    }

    /// Records the outcome of an admitted call that ended at `now`.
    pub fn record(&mut self, succeeded: bool, now: Instant) {
        self.state = match (self.state, succeeded) {
            (_, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Trial, false) | (BreakerState::Open { .. }, false) => {
                BreakerState::Open {
                    until: now + self.policy.cool_down,
                }
            }
            (BreakerState::Closed { failures }, false) => {
                let failures = failures + 1;
                if failures >= self.policy.threshold {
                    BreakerState::Open {
                        until: now + self.policy.cool_down,
                    }
                } else {
                    BreakerState::Closed { failures }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            threshold: 3,
            cool_down: Duration::from_secs(10),
        }
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let start = Instant::now();
        let mut breaker = Breaker::new(policy());
        for _ in 0..2 {
            assert_eq!(breaker.admit(start), Admission::Admitted);
            breaker.record(false, start);
        }
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 2 });
        breaker.record(false, start);
        assert_eq!(
            breaker.admit(start + Duration::from_secs(4)),
            Admission::Refused {
                retry_after: Duration::from_secs(6)
            }
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::new(policy());
        breaker.record(false, now);
        breaker.record(false, now);
        breaker.record(true, now);
        breaker.record(false, now);
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 1 });
    }

    #[test]
    fn after_the_cool_down_one_trial_goes_through_and_its_success_closes() {
        let start = Instant::now();
        let mut breaker = Breaker::new(policy());
        for _ in 0..3 {
            breaker.record(false, start);
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(breaker.admit(later), Admission::Admitted);
        // While the trial runs, everyone else waits.
        assert!(matches!(breaker.admit(later), Admission::Refused { .. }));
        breaker.record(true, later);
        assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(breaker.admit(later), Admission::Admitted);
    }

    #[test]
    fn a_failed_trial_opens_for_another_cool_down() {
        let start = Instant::now();
        let mut breaker = Breaker::new(policy());
        for _ in 0..3 {
            breaker.record(false, start);
        }
        let later = start + Duration::from_secs(11);
        assert_eq!(breaker.admit(later), Admission::Admitted);
        breaker.record(false, later);
        assert_eq!(
            breaker.admit(later + Duration::from_millis(500)),
            Admission::Refused {
                retry_after: Duration::from_millis(9_500)
            }
        );
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let start = Instant::now();
        let mut breaker = Breaker::new(policy());
        for _ in 0..3 {
            breaker.record(false, start);
        }
        assert_eq!(
            breaker.admit(start + Duration::from_millis(9_900)),
            Admission::Refused {
                retry_after: Duration::from_secs(1)
            }
        );
    }
}
