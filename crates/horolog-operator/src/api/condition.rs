//! Status conditions, in the shape of metav1.Condition.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition type that says whether an object does its job: a Schedule fires, a Task
/// or a Calendar can be used. Every kind with a `Ready` condition uses this name.
pub const READY: &str = "Ready";

/// One aspect of an object's state, as `kubectl describe` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The aspect, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word saying why, e.g. `InvalidTrigger`.
    pub reason: String,
    /// Why, for people.
    #[serde(default)]
    pub message: String,
    /// When status last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The metadata.generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition that became `status` at `now`, keeping the old transition time when the
    /// status did not change (so a reconcile that changes nothing writes nothing).
    pub fn transition(
        previous: Option<&Condition>,
        type_: &str,
        status: bool,
        reason: &str,
        message: String,
        generation: Option<i64>,
        now: DateTime<Utc>,
    ) -> Condition {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = match previous {
            Some(prev) if prev.status == status => prev.last_transition_time,
            _ => now,
        };
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            last_transition_time,
            observed_generation: generation,
        }
    }
}

/// Replaces the condition of the same type, or adds it.
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// The condition of `type_` in `conditions`, if any.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}
