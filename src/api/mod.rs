//! The horolog.dev/v1alpha1 API: Schedule and JobRun, and the value types they use.

mod condition;
mod duration;
mod jobrun;
mod schedule;
mod trigger;
mod validate;

pub use condition::{Condition, find_condition};
pub use duration::{DURATION_PATTERN, Duration, DurationError};
pub use jobrun::*;
pub use schedule::*;
pub use trigger::*;
pub use validate::FieldError;
