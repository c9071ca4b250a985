//! Values the controller's unit tests share: times written as RFC 3339 and the hourly Schedule
//! `nightly` their decisions start from.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Duration as ApiDuration, Schedule, ScheduleSpec, TriggerSpec};

/// The instant `text` (RFC 3339) names; a test's own constant, so a typo fails the test.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse()
        .unwrap_or_else(|err| panic!("test time {text:?}: {err}"))
}

/// `nightly` in namespace `default`: every hour from its creation at `created`, generation 1,
/// no job template, never reconciled.
pub fn hourly_schedule(created: DateTime<Utc>) -> Schedule {
    let mut schedule = Schedule::new(
        "nightly",
        ScheduleSpec {
            trigger: TriggerSpec {
                interval: Some(ApiDuration::from_secs(3600)),
                ..TriggerSpec::default()
            },
            ..ScheduleSpec::default()
        },
    );
    schedule.metadata.namespace = Some("default".into());
    schedule.metadata.uid = Some("uid-1".into());
    schedule.metadata.generation = Some(1);
    schedule.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::from_second(created.timestamp())
        .ok()
        .map(Time);
    schedule
}
