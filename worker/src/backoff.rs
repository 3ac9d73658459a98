//! Delay between attempts of a stage: exponential with jitter, capped.

use std::time::Duration;

use orchestrator_core::engine::pipeline::Backoff;
use rand::Rng;

/// Delay before attempt `next_attempt` (2 for the first retry).
pub fn delay_before(backoff: &Backoff, next_attempt: i32) -> Duration {
    let exponent = (next_attempt - 2).clamp(0, 20) as u32;
    let base = backoff
        .initial_ms
        .saturating_mul(1u64 << exponent)
        .min(backoff.max_ms);
    // ±20 % so that many stages failing together do not retry together.
    let jitter = rand::rng().random_range(0.8..=1.2);
    Duration::from_millis(((base as f64) * jitter) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff {
            initial_ms: 100,
            max_ms: 1_000,
        };
        let first = delay_before(&b, 2).as_millis();
        assert!((80..=120).contains(&first), "{first}");
        let third = delay_before(&b, 4).as_millis();
        assert!((320..=480).contains(&third), "{third}");
        let capped = delay_before(&b, 30).as_millis();
        assert!(capped <= 1_200, "{capped}");
    }
}
