//! The value types users write in a Schedule that the core needs: the trigger, durations and
//! the policies. They derive serde and JSON Schema, so the operator embeds them in its CRDs
//! unchanged.

mod duration;
mod exclusion;
mod policy;
mod trigger;

pub use duration::{DURATION_MAX_LENGTH, DURATION_PATTERN, Duration, DurationError, MAX_DURATION_DAYS};
pub use exclusion::{ExclusionRange, ExclusionSpec, OnExcluded};
pub use policy::{CatchUpPolicy, CoalescePolicy, ConcurrencyPolicy};
pub use trigger::*;
