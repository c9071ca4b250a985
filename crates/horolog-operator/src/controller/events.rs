//! Publishing Events (events.k8s.io/v1) on Schedules and JobRuns: one create per Event, nothing
//! cached.
//!
//! Why not kube's `Recorder`: it keeps every Event it published for 6 minutes to turn repeats
//! into a series, keyed by object and reason but not by note. For horolog that is wrong twice.
//! Every minute-level Schedule's `Fired` Events became one series that kept the first note, so
//! `kubectl describe` named a run from minutes ago; and the cache held ~25 Events per Schedule
//! (each run's `PodCreated`, `Started`, `Succeeded`), about 250 MB at 10,000 Schedules, more
//! than all the watch caches together. horolog's Events are raised on transitions (decided once
//! per change, after the status write that records it), so repeats are rare and there is nothing
//! worth aggregating.

use std::sync::atomic::{AtomicU64, Ordering};

use clap::ValueEnum;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::runtime::events::{EventType, Reporter};
use kube::{Api, Client};

/// Which Events the operator publishes (`--events`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EventPolicy {
    /// Every Event: also the per-run Normal ones that repeat what status already says
    /// (Fired, PodCreated, Started, Succeeded).
    All,
    /// Warnings, and the Normal Events that say something status alone does not (Skipped,
    /// Cancelled, Coalesced, Paused, Resumed, Finished). Each Event is an API write: at
    /// ~4 per run, Events were the largest share of the operator's writes.
    #[default]
    Warnings,
}

/// An Event to publish: its type, reason and note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// The Event reason, e.g. `Fired` or `Failed`.
    pub reason: &'static str,
    /// The Event message.
    pub message: String,
}

impl Note {
    /// A Normal Event.
    pub fn normal(reason: &'static str, message: String) -> Self {
        Note {
            warning: false,
            reason,
            message,
        }
    }

    /// A Warning Event.
    pub fn warning(reason: &'static str, message: String) -> Self {
        Note {
            warning: true,
            reason,
            message,
        }
    }
}

/// The Normal reasons [`EventPolicy::Warnings`] leaves out: one per run, each repeating a
/// status field (`lastFireTime`, `podName`, `phase`).
const ROUTINE: [&str; 4] = ["Fired", "PodCreated", "Started", "Succeeded"];

impl EventPolicy {
    /// True when `note` is published under this policy.
    pub fn publishes(self, note: &Note) -> bool {
        match self {
            EventPolicy::All => true,
            EventPolicy::Warnings => note.warning || !ROUTINE.contains(&note.reason),
        }
    }
}

/// The API server rejects an Event whose note is longer than this (events.k8s.io/v1
/// validation: "must be no longer than 1kB").
pub const NOTE_LIMIT: usize = 1024;

/// Creates Events as `reporter`.
pub struct EventPublisher {
    client: Client,
    reporter: Reporter,
    /// Makes names unique within this process even for Events in the same nanosecond.
    sequence: AtomicU64,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// A publisher creating Events through `client`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventPublisher {
            client,
            reporter,
            sequence: AtomicU64::new(0),
        }
    }

    /// Creates one Event about `regarding`, stamped `now`.
    pub async fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<(), kube::Error> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let event = self.event(regarding, type_, reason, note, now, sequence);
        let namespace = event
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
    }

    /// The Event object, as client-go's events/v1 recorder fills it.
    fn event(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
        now: DateTime<Utc>,
        sequence: u64,
    ) -> Event {
        let controller = self.reporter.controller.clone();
        let object = regarding.name.clone().unwrap_or_else(|| controller.clone());
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        Event {
            metadata: ObjectMeta {
                // client-go's form, `<object>.<hex nanoseconds>`, plus a sequence number.
                name: Some(format!("{object}.{nanos:x}{sequence:x}")),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now_micros(now))),
            action: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            note: Some(truncate(note, NOTE_LIMIT).to_string()),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone().unwrap_or(controller)),
            regarding: Some(regarding),
            ..Event::default()
        }
    }
}

/// `now` in k8s-openapi's time type (microsecond precision on the wire).
fn now_micros(now: DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_microsecond(now.timestamp_micros()).unwrap_or_default()
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary,
/// with `…` in its last three bytes when something was cut.
fn truncate(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher() -> EventPublisher {
        let start = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new(start));
        let client = horolog_memserver::ApiServer::with_crds(clock, &crate::crd::crds()).client();
        EventPublisher::new(
            client,
            Reporter {
                controller: "horolog".into(),
                instance: Some("horolog-0".into()),
            },
        )
    }

    fn reference() -> ObjectReference {
        ObjectReference {
            api_version: Some("horolog.dev/v1alpha1".into()),
            kind: Some("JobRun".into()),
            name: Some("nightly-1767225600".into()),
            namespace: Some("jobs".into()),
            uid: Some("u-1".into()),
            ..ObjectReference::default()
        }
    }

    #[tokio::test]
    async fn an_event_names_its_object_reason_note_and_reporter() {
        let now = DateTime::from_timestamp(1_767_225_600, 123_456_789).unwrap_or_default();
        let event = publisher().event(reference(), EventType::Warning, "Failed", "exit code 1", now, 7);
        let name = event.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("nightly-1767225600."), "{name}");
        assert!(name.ends_with('7'), "the sequence number makes it unique: {name}");
        assert_eq!(event.metadata.namespace.as_deref(), Some("jobs"));
        assert_eq!(event.reason.as_deref(), Some("Failed"));
        assert_eq!(event.action.as_deref(), Some("Failed"));
        assert_eq!(event.note.as_deref(), Some("exit code 1"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reporting_controller.as_deref(), Some("horolog"));
        assert_eq!(event.reporting_instance.as_deref(), Some("horolog-0"));
        assert_eq!(event.regarding.and_then(|r| r.uid).as_deref(), Some("u-1"));
        let micros = event.event_time.map(|t| t.0.as_microsecond());
        assert_eq!(micros, Some(1_767_225_600_123_456));
    }

    #[tokio::test]
    async fn events_in_the_same_instant_get_different_names() {
        let publisher = publisher();
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        for _ in 0..3 {
            publisher
                .publish(reference(), EventType::Normal, "Started", "pod is running", now)
                .await
                .expect("each create succeeds: no name collides");
        }
    }

    #[test]
    fn the_warnings_policy_keeps_what_status_does_not_say() {
        let policy = EventPolicy::Warnings;
        assert!(policy.publishes(&Note::warning("Failed", "exit 1".into())));
        assert!(policy.publishes(&Note::normal("Skipped", "no slot".into())));
        assert!(policy.publishes(&Note::normal("Paused", String::new())));
        for routine in ROUTINE {
            assert!(
                !policy.publishes(&Note::normal(routine, String::new())),
                "{routine}"
            );
            assert!(EventPolicy::All.publishes(&Note::normal(routine, String::new())));
        }
    }

    #[test]
    fn notes_are_cut_to_the_api_limit_on_a_character_boundary() {
        assert_eq!(truncate("short", NOTE_LIMIT), "short");
        let long = "é".repeat(1000); // 2,000 bytes
        let cut = truncate(&long, NOTE_LIMIT);
        assert!(cut.len() <= NOTE_LIMIT, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(cut.len() > NOTE_LIMIT - 4, "keeps as much as fits: {}", cut.len());
    }
}
