//! The horolog.dev/v1alpha1 API: Schedule, JobRun, Task, Backfill and Calendar, and the value types
//! they use. The trigger, duration and policy types come from the pure core
//! (`horolog_core::spec`).

mod backfill;
mod calendar;
mod condition;
mod jobrun;
mod schedule;
mod task;
mod validate;

pub use backfill::*;
pub use calendar::*;
pub use condition::{Condition, find_condition};
pub use horolog_core::spec::*;
pub use jobrun::*;
pub use schedule::*;
pub use task::*;
pub use validate::FieldError;

/// A lean schema for a list of core/v1 EnvVar: each needs a name; everything else (value,
/// valueFrom) is kept and checked by the API server when the Pod is created, as for the pod
/// template itself.
pub(crate) fn env_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "core/v1 EnvVar list (see `kubectl explain pod.spec.containers.env`).",
        "type": "array",
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1}},
        },
    })
}
