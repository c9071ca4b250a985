//! The horolog.dev/v1alpha1 API: Schedule and JobRun, and the value types they use. The
//! trigger, duration and policy types come from the pure core (`horolog_core::spec`).

mod condition;
mod jobrun;
mod schedule;
mod validate;

pub use condition::{Condition, find_condition};
pub use horolog_core::spec::*;
pub use jobrun::*;
pub use schedule::*;
pub use validate::FieldError;
