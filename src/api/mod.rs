//! The horolog.dev/v1alpha1 API: Schedule and JobRun, and the value types they use.

mod duration;
mod trigger;

pub use duration::{DURATION_PATTERN, Duration, DurationError};
pub use trigger::*;
