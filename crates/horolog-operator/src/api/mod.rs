//! The horolog.dev/v1alpha1 API: Schedule, JobRun, Task, Backfill and Calendar, and the value types
//! they use. The trigger, duration and policy types come from the pure core
//! (`horolog_core::spec`).

mod backfill;
mod calendar;
mod condition;
mod jobrun;
mod schedule;
pub mod schema_check;
mod task;
mod validate;

pub use backfill::*;
pub use calendar::*;
pub use condition::{Condition, READY, find_condition, set_condition};
pub use horolog_core::spec::*;
pub use jobrun::*;
pub use schedule::*;
pub use task::*;
pub use validate::{FieldError, Validate};

/// The full schema of a list of core/v1 EnvVar, from k8s-openapi's own type (see
/// `jobrun::pod_template_schema`); each needs a name.
pub(crate) fn env_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut item = generator.subschema_for::<k8s_openapi::api::core::v1::EnvVar>();
    if let Some(name) = item
        .pointer_mut("/properties/name")
        .and_then(serde_json::Value::as_object_mut)
    {
        name.insert("minLength".into(), 1.into());
    }
    schemars::json_schema!({
        "description": "Environment variables, as a container's `env` (see `kubectl explain pod.spec.containers.env`).",
        "type": "array",
        "items": item,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// The watch caches hold one of these per object, so their inline size is paid by every
    /// cached object, whatever it holds: a finished JobRun (the one a Schedule keeps at history
    /// limit 1) has no pod template, and a Schedule or Task with `taskRef` none either. The pod
    /// template (1,776 bytes inline) is boxed for that; unboxed, a JobRun was 2,512 bytes, a
    /// Schedule 3,296 and a Task 2,368.
    #[test]
    fn the_cached_types_do_not_carry_a_pod_template_inline() {
        assert!(
            size_of::<JobRun>() <= 1024,
            "JobRun: {} bytes",
            size_of::<JobRun>()
        );
        assert!(
            size_of::<Schedule>() <= 1600,
            "Schedule: {} bytes",
            size_of::<Schedule>()
        );
        assert!(size_of::<Task>() <= 1024, "Task: {} bytes", size_of::<Task>());
    }
}
