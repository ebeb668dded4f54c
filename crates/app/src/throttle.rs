//! Failed-login throttling: after three failed attempts for a user name, each further attempt
//! must wait 1, 2, 4 … up to 30 seconds. Kept in memory per app run (a restart is no shortcut:
//! it costs longer than the wait).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Free attempts before waiting starts.
const FREE_ATTEMPTS: u32 = 3;
/// Longest wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Throttle {
    users: HashMap<String, (u32, Instant)>,
}

impl Throttle {
    /// How long the user must still wait before the next attempt, if at all.
    pub(crate) fn wait_for(&self, user: &str) -> Option<Duration> {
        let (_, until) = self.users.get(user)?;
        until.checked_duration_since(Instant::now())
    }

    pub(crate) fn failed(&mut self, user: &str) {
        let entry = self
            .users
            .entry(user.to_string())
            .or_insert((0, Instant::now()));
        entry.0 += 1;
        if entry.0 >= FREE_ATTEMPTS {
            let exp = (entry.0 - FREE_ATTEMPTS).min(5);
            entry.1 = Instant::now() + Duration::from_secs(1 << exp).min(MAX_WAIT);
        }
    }

    pub(crate) fn succeeded(&mut self, user: &str) {
        self.users.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_starts_after_three_failures_and_grows() {
        let mut t = Throttle::default();
        t.failed("li");
        t.failed("li");
        assert!(t.wait_for("li").is_none());
        t.failed("li");
        let first = t.wait_for("li").unwrap();
        assert!(first <= Duration::from_secs(1));
        t.failed("li");
        assert!(t.wait_for("li").unwrap() > first);
        assert!(t.wait_for("wang").is_none());
        t.succeeded("li");
        assert!(t.wait_for("li").is_none());
    }
}
