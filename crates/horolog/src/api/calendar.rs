//! The `Calendar` custom resource: holidays, business days and blackout windows, shared by the
//! Schedules and Tasks that name it in `calendarRefs`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, CronFields, ExclusionRange, ExclusionSpec};

/// A Calendar is a set of excluded times (whole days, ranges, recurring cron-field patterns)
/// that Schedules and Tasks name in `calendarRefs`: their fire times in it do not fire, or move
/// to the next / previous free day (`onExcluded`).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "horolog.dev",
    version = "v1alpha1",
    kind = "Calendar",
    namespaced,
    status = "CalendarStatus",
    shortname = "hcal",
    category = "horolog",
    doc = "A Calendar is a set of excluded times (holidays, weekends, blackout windows) that Schedules and Tasks name in calendarRefs.",
    printcolumn = r#"{"name": "Timezone", "type": "string", "jsonPath": ".spec.timezone"}"#,
    printcolumn = r#"{"name": "Next Excluded", "type": "string", "jsonPath": ".status.nextExcludedDay"}"#,
    printcolumn = r#"{"name": "Schedules", "type": "integer", "jsonPath": ".status.schedules"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarSpec {
    /// IANA time zone that `days`, local `ranges` and `recurring` fields are read in.
    /// Default `UTC`. Example: `America/New_York`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,

    /// Whole local days excluded, as `YYYY-MM-DD`. Default: none.
    /// Example: `["2027-01-01", "2027-01-18"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4096))]
    pub days: Vec<String>,

    /// Half-open ranges `[from, to)` excluded: local times (`2027-12-24T00:00:00`, read in
    /// `timezone`) or RFC 3339 instants with an offset. Default: none.
    /// Example: `[{from: "2027-12-24T00:00:00", to: "2027-12-27T00:00:00"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub ranges: Vec<ExclusionRange>,

    /// Recurring exclusions as APScheduler cron fields (year, month, day, week, dayOfWeek,
    /// hour, minute, second). A time is excluded when it matches every field an entry gives;
    /// fields left out match everything. Default: none.
    /// Example: `[{dayOfWeek: "sat,sun"}, {month: "12", day: "25"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub recurring: Vec<CronFields>,

    /// Other Calendars of this namespace whose exclusions this one includes (the union).
    /// Calendars that include each other in a cycle are not Ready. Default: none.
    /// Example: `[{name: us-federal}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub calendar_refs: Vec<CalendarRef>,
}

impl CalendarSpec {
    /// Its own exclusions (without the Calendars it includes).
    pub fn exclusions(&self) -> ExclusionSpec {
        ExclusionSpec {
            timezone: self.timezone.clone(),
            days: self.days.clone(),
            ranges: self.ranges.clone(),
            recurring: self.recurring.clone(),
        }
    }

    /// The names of the Calendars it includes.
    pub fn ref_names(&self) -> Vec<String> {
        self.calendar_refs.iter().map(|r| r.name.clone()).collect()
    }

    /// The Calendar as the core's resolver sees it: its exclusions and the Calendars it
    /// includes.
    pub fn def(&self) -> horolog_core::exclusion::CalendarDef {
        horolog_core::exclusion::CalendarDef {
            spec: self.exclusions(),
            refs: self.ref_names(),
        }
    }
}

/// A reference to a Calendar in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarRef {
    /// The Calendar's name. Example: `nyse-2027`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator knows about a Calendar.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: True when the Calendar and every Calendar it includes are valid; False with
    /// reason `InvalidCalendar` (the message names the field), `CalendarCycle` or
    /// `CalendarNotFound`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// How many Schedules and Tasks name this Calendar in their calendarRefs.
    #[serde(default)]
    pub schedules: i32,
    /// The next local day (in the Calendar's timezone, from today, at most a year ahead) that
    /// some exclusion of this Calendar touches, as `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_excluded_day: Option<String>,
}
