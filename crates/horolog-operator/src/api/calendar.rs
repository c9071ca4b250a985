//! The `Calendar` custom resource: holidays, business days and blackout windows, shared by the
//! Schedules and Tasks that name it in `calendarRefs`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, ExclusionSpec};

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
    /// What it excludes: `timezone` (default `UTC`), `days`, `ranges` and `recurring`, the
    /// same fields as a trigger's inline `exclude`.
    #[serde(flatten)]
    pub exclude: ExclusionSpec,

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
        self.exclude.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_spec_reads_and_writes_the_exclusion_fields_flat_and_refuses_unknown_ones() {
        let written = json!({"timezone": "America/New_York", "days": ["2027-01-01"],
                             "recurring": [{"dayOfWeek": "sat,sun"}], "calendarRefs": [{"name": "us"}]});
        let spec: CalendarSpec = serde_json::from_value(written.clone()).unwrap();
        assert_eq!(spec.exclusions().days, ["2027-01-01"]);
        assert_eq!(spec.ref_names(), ["us"]);
        assert_eq!(serde_json::to_value(&spec).unwrap(), written);
        for bad in [json!({"days": [], "dayz": []}), json!({"exclude": {"days": []}})] {
            let err = serde_json::from_value::<CalendarSpec>(bad.clone()).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{bad}: {err}");
        }
    }
}
