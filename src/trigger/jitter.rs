//! APScheduler's jitter rule (`max_jitter`): a random delay that never reaches the following
//! fire time.

use chrono::{DateTime, TimeDelta, Utc};
use rand::RngExt;

/// A uniformly random jitter in `[0, cap]` for `fire_time`, where `cap` is `max_jitter`, or
/// `following - fire_time - 1µs` when that is smaller, so a jittered run stays strictly
/// before the next fire time. Unlike APScheduler, the cap is computed afresh for every fire
/// time (APScheduler lets it shrink cumulatively within one batch of due fire times).
/// Resolution is one microsecond, as Python's `timedelta`.
pub fn jitter_for(
    fire_time: DateTime<Utc>,
    following: Option<DateTime<Utc>>,
    max_jitter: TimeDelta,
    rng: &mut impl rand::Rng,
) -> TimeDelta {
    let mut cap = max_jitter;
    if let Some(next) = following {
        cap = cap.min(next - fire_time - TimeDelta::microseconds(1));
    }
    let Some(cap_us) = cap.num_microseconds().filter(|us| *us > 0) else {
        return TimeDelta::zero();
    };
    TimeDelta::microseconds(rng.random_range(0..=cap_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn jitter_stays_below_max_and_before_the_following_fire_time() {
        let mut rng = StdRng::seed_from_u64(7);
        let fire = at("2026-01-01T00:00:00Z");
        let cases = [
            (None, TimeDelta::seconds(30), TimeDelta::seconds(30)),
            (
                Some(at("2026-01-01T00:00:10Z")),
                TimeDelta::seconds(30),
                TimeDelta::microseconds(9_999_999),
            ),
            (
                Some(at("2026-01-01T00:01:00Z")),
                TimeDelta::seconds(30),
                TimeDelta::seconds(30),
            ),
        ];
        for (following, max, cap) in cases {
            for _ in 0..1000 {
                let j = jitter_for(fire, following, max, &mut rng);
                assert!(j >= TimeDelta::zero() && j <= cap, "{j:?} > {cap:?}");
            }
        }
    }

    #[test]
    fn no_jitter_without_room() {
        let mut rng = StdRng::seed_from_u64(1);
        let fire = at("2026-01-01T00:00:00Z");
        assert_eq!(
            jitter_for(fire, None, TimeDelta::zero(), &mut rng),
            TimeDelta::zero()
        );
        assert_eq!(
            jitter_for(fire, Some(fire), TimeDelta::seconds(5), &mut rng),
            TimeDelta::zero()
        );
        let next = fire + TimeDelta::microseconds(1);
        assert_eq!(
            jitter_for(fire, Some(next), TimeDelta::seconds(5), &mut rng),
            TimeDelta::zero()
        );
    }

    #[test]
    fn seeded_rng_is_reproducible() {
        let fire = at("2026-01-01T00:00:00Z");
        let draw = |seed| {
            jitter_for(
                fire,
                None,
                TimeDelta::seconds(60),
                &mut StdRng::seed_from_u64(seed),
            )
        };
        assert_eq!(draw(42), draw(42));
    }
}
