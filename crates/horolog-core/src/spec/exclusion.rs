//! Exclusions: the days, ranges and recurring times in which a Schedule does not fire (a
//! `Calendar`'s spec, and a trigger's inline `exclude`), and what happens to a fire time that
//! falls in one (`onExcluded`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CronFields;

/// Times in which nothing fires: whole local days, half-open ranges and recurring cron-field
/// patterns. A time is excluded when any entry excludes it. The same shape is a Calendar's spec
/// (with `calendarRefs`) and a trigger's inline `exclude`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionSpec {
    /// IANA time zone that `days`, local `ranges` and `recurring` fields are read in. Default:
    /// `UTC` for a Calendar, the trigger's timezone for an inline `exclude`.
    /// Example: `America/New_York`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,

    /// Whole local days excluded, as `YYYY-MM-DD`. Default: none.
    /// Example: `["2027-01-01", "2027-12-24"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4096))]
    pub days: Vec<String>,

    /// Half-open ranges `[from, to)` excluded: local times (`2027-12-24T00:00:00`, read in
    /// `timezone`) or RFC 3339 instants with an offset. Default: none.
    /// Example: `[{from: "2027-12-24T00:00:00", to: "2027-12-27T00:00:00"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    pub ranges: Vec<ExclusionRange>,

    /// Recurring exclusions written as APScheduler cron fields (year, month, day, week,
    /// dayOfWeek, hour, minute, second). A time is excluded when it matches every field an entry
    /// gives; fields left out match everything. Default: none.
    /// Example: `[{dayOfWeek: "sat,sun"}, {month: "12", day: "24-26"}, {hour: "0-5"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub recurring: Vec<CronFields>,
}

/// A half-open range `[from, to)` of excluded time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExclusionRange {
    /// Start, inclusive: a local time `YYYY-MM-DDTHH:MM[:SS]` or an RFC 3339 instant with an
    /// offset. Example: `2027-12-24T00:00:00`.
    #[schemars(length(min = 1, max = 64))]
    pub from: String,
    /// End, exclusive, in the same forms. Example: `2027-12-27T00:00:00`.
    #[schemars(length(min = 1, max = 64))]
    pub to: String,
}

impl ExclusionSpec {
    /// True when the spec excludes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.ranges.is_empty() && self.recurring.is_empty()
    }
}

/// What happens to a fire time that an exclusion covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OnExcluded {
    /// No run; counted in `status.excludedFireTimes` (never a miss).
    #[default]
    Skip,
    /// The same local time of the next day that is not excluded (at most 31 days later, else
    /// skipped), the "following business day" convention.
    Following,
    /// The same local time of the previous day that is not excluded (at most 31 days earlier,
    /// else skipped), the "preceding business day" convention: the run happens ahead of time.
    Preceding,
}
