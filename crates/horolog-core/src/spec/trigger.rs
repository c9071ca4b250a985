//! The `spec.trigger` of a Schedule: what users write. Compiled into a
//! `crate::trigger::Trigger` by the trigger engine.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Duration, ExclusionSpec};

/// The CEL rule that makes the trigger kinds mutually exclusive at `kubectl apply` time.
pub const EXACTLY_ONE_TRIGGER_RULE: &str = "[has(self.cron), has(self.cronFields), has(self.interval), has(self.date), has(self.calendarInterval), has(self.anyOf), has(self.allOf)].filter(x, x).size() == 1";
/// The message users see when [`EXACTLY_ONE_TRIGGER_RULE`] fails.
pub const EXACTLY_ONE_TRIGGER_MESSAGE: &str =
    "exactly one of cron, cronFields, interval, date, calendarInterval, anyOf, allOf must be set";
/// The same rule for members of anyOf/allOf, which cannot nest.
pub const EXACTLY_ONE_LEAF_RULE: &str = "[has(self.cron), has(self.cronFields), has(self.interval), has(self.date), has(self.calendarInterval)].filter(x, x).size() == 1";
/// The message users see when [`EXACTLY_ONE_LEAF_RULE`] fails.
pub const EXACTLY_ONE_LEAF_MESSAGE: &str =
    "each anyOf/allOf member sets exactly one of cron, cronFields, interval, date, calendarInterval";
/// `endTime` must come after `startTime`.
pub const END_AFTER_START_RULE: &str =
    "!has(self.startTime) || !has(self.endTime) || timestamp(self.endTime) > timestamp(self.startTime)";
/// The message users see when [`END_AFTER_START_RULE`] fails.
pub const END_AFTER_START_MESSAGE: &str = "endTime must be after startTime";

/// A calendarInterval moves at least one day.
pub const CALENDAR_INTERVAL_RULE: &str = "self.years + self.months + self.weeks + self.days > 0";
/// The message users see when [`CALENDAR_INTERVAL_RULE`] fails.
pub const CALENDAR_INTERVAL_MESSAGE: &str =
    "calendarInterval needs at least one of years, months, weeks, days greater than 0";

/// When a Schedule fires: exactly one trigger kind (cron, cronFields, interval, date,
/// calendarInterval, anyOf, allOf), plus an optional timezone and time window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": EXACTLY_ONE_TRIGGER_RULE, "message": EXACTLY_ONE_TRIGGER_MESSAGE},
    {"rule": END_AFTER_START_RULE, "message": END_AFTER_START_MESSAGE},
]))]
pub struct TriggerSpec {
    /// Crontab expression: 5 fields `minute hour day-of-month month day-of-week`
    /// (day-of-week 0 and 7 are Sunday; names such as `mon-fri` and `jan` work),
    /// 6 fields with a leading seconds field, or one of `@yearly @annually @monthly
    /// @weekly @daily @midnight @hourly`. Example: `0 9 * * mon-fri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub cron: Option<String>,

    /// APScheduler CronTrigger fields, each with its full expression syntax
    /// (`*`, `*/15`, `1-5`, `1-10/2`, lists, `jan`..`dec`, `mon`..`sun`, `last`,
    /// `last fri`, `2nd mon`). Unset fields less significant than the least
    /// significant set field take their minimum; more significant ones are `*`.
    /// Example: `{dayOfWeek: "mon-fri", hour: "9", minute: "30"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_fields: Option<CronFields>,

    /// Fixed period of elapsed time, anchored at startTime (default: the Schedule's
    /// creation time); a DST switch never stretches or shrinks it. Example: `1h30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,

    /// Fires once, at this RFC 3339 instant. Example: `2026-12-31T23:59:59Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<FixedOffset>>,

    /// Calendar-based interval (APScheduler CalendarIntervalTrigger): every N years,
    /// months, weeks and days at a wall-clock time of day in `timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_interval: Option<CalendarInterval>,

    /// Fires whenever any member fires (APScheduler OrTrigger). Members are leaf
    /// triggers; they inherit timezone, startTime and endTime unless they set their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub any_of: Option<Vec<LeafTrigger>>,

    /// Fires when all members fire within `allOfThreshold` of each other
    /// (APScheduler AndTrigger). Members are leaf triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub all_of: Option<Vec<LeafTrigger>>,

    /// How far apart allOf members' fire times may be and still count as one fire
    /// time. Default `1s`, as APScheduler's AndTrigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_of_threshold: Option<Duration>,

    /// IANA time zone the trigger's wall-clock fields are read in. Default `UTC`.
    /// Example: `Europe/Berlin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,

    /// No fire time before this RFC 3339 instant (inclusive). Example: `2026-01-01T00:00:00Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<FixedOffset>>,

    /// No fire time after this RFC 3339 instant (inclusive). Example: `2027-01-01T00:00:00Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<FixedOffset>>,

    /// Times in which this trigger does not fire, the same shape as a Calendar's spec (`days`,
    /// `ranges`, `recurring`; its `timezone` defaults to the trigger's). Applied together with
    /// the Schedule's and its Task's `calendarRefs`; `onExcluded` says what an excluded fire
    /// time becomes. Default: nothing excluded. Example: `{recurring: [{dayOfWeek: "sat,sun"}]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<ExclusionSpec>,
}

/// One member of `anyOf` or `allOf`: exactly one leaf trigger kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": EXACTLY_ONE_LEAF_RULE, "message": EXACTLY_ONE_LEAF_MESSAGE},
    {"rule": END_AFTER_START_RULE, "message": END_AFTER_START_MESSAGE},
]))]
pub struct LeafTrigger {
    /// Crontab expression, as `trigger.cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub cron: Option<String>,
    /// APScheduler CronTrigger fields, as `trigger.cronFields`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_fields: Option<CronFields>,
    /// Fixed period of elapsed time, as `trigger.interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// A single RFC 3339 instant, as `trigger.date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<FixedOffset>>,
    /// Calendar-based interval, as `trigger.calendarInterval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar_interval: Option<CalendarInterval>,
    /// IANA time zone of this member. Default: the enclosing trigger's timezone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub timezone: Option<String>,
    /// No fire time of this member before this instant. Default: the enclosing trigger's startTime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// No fire time of this member after this instant. Default: the enclosing trigger's endTime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<DateTime<FixedOffset>>,
}

/// APScheduler CronTrigger fields. Each is a string (or a plain number) with
/// APScheduler's expression syntax.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronFields {
    /// Four-digit year, 1970-9999. Example: `2027`, `*/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<CronField>,
    /// Month 1-12 or `jan`..`dec`. Example: `jan-mar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<CronField>,
    /// Day of month 1-31, `last`, `last fri`, `2nd mon`. Example: `1,15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<CronField>,
    /// ISO week of the year 1-53. Example: `*/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub week: Option<CronField>,
    /// Day of week `mon`..`sun`, or crontab numbers 0-7 (0 and 7 are Sunday). Example: `mon-fri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<CronField>,
    /// Hour 0-23. Example: `9-17`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<CronField>,
    /// Minute 0-59. Example: `*/15`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute: Option<CronField>,
    /// Second 0-59. Example: `30`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second: Option<CronField>,
}

impl CronFields {
    /// The eight fields from most to least significant: year, month, day, week, dayOfWeek,
    /// hour, minute, second (the order the cron engine and exclusions read them in).
    pub fn in_order(&self) -> [&Option<CronField>; 8] {
        [
            &self.year,
            &self.month,
            &self.day,
            &self.week,
            &self.day_of_week,
            &self.hour,
            &self.minute,
            &self.second,
        ]
    }
}

/// One CronTrigger field expression. YAML users may write a plain number (`hour: 9`);
/// it is kept as its decimal string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CronField(pub String);

impl CronField {
    /// The expression text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for CronField {
    fn from(s: &str) -> Self {
        CronField(s.to_string())
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CronField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CronField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CronField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cron field expression (string or non-negative integer)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CronField, E> {
                Ok(CronField(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CronField, E> {
                Ok(CronField(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CronField, E> {
                Ok(CronField(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for CronField {
    fn schema_name() -> Cow<'static, str> {
        "CronField".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer", "minimum": 0, "maximum": 9999}, {"type": "string", "minLength": 1, "maxLength": 128}],
        })
    }
}

/// APScheduler's CalendarIntervalTrigger: fires every `years`/`months`/`weeks`/`days`
/// at `hour:minute:second` local time. At least one of the four periods must be non-zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": CALENDAR_INTERVAL_RULE, "message": CALENDAR_INTERVAL_MESSAGE},
]))]
pub struct CalendarInterval {
    /// Years between fire dates. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub years: i32,
    /// Months between fire dates. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 12000))]
    pub months: i32,
    /// Weeks between fire dates. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 52000))]
    pub weeks: i32,
    /// Days between fire dates. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 365000))]
    pub days: i32,
    /// Hour of day to fire at, 0-23. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 23))]
    pub hour: i32,
    /// Minute to fire at, 0-59. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 59))]
    pub minute: i32,
    /// Second to fire at, 0-59. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 59))]
    pub second: i32,
}

impl LeafTrigger {
    /// The trigger kinds this member sets, by their YAML names (valid: exactly one).
    pub fn kinds_set(&self) -> Vec<&'static str> {
        [
            ("cron", self.cron.is_some()),
            ("cronFields", self.cron_fields.is_some()),
            ("interval", self.interval.is_some()),
            ("date", self.date.is_some()),
            ("calendarInterval", self.calendar_interval.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

impl TriggerSpec {
    /// The trigger kinds this spec sets, by their YAML names (valid: exactly one).
    pub fn kinds_set(&self) -> Vec<&'static str> {
        let mut kinds = self.as_leaf().kinds_set();
        kinds.extend(self.any_of.as_ref().map(|_| "anyOf"));
        kinds.extend(self.all_of.as_ref().map(|_| "allOf"));
        kinds
    }

    /// The leaf part of this trigger (cron, cronFields, interval, date, calendarInterval, window).
    pub fn as_leaf(&self) -> LeafTrigger {
        LeafTrigger {
            cron: self.cron.clone(),
            cron_fields: self.cron_fields.clone(),
            interval: self.interval,
            date: self.date,
            calendar_interval: self.calendar_interval.clone(),
            timezone: self.timezone.clone(),
            start_time: self.start_time,
            end_time: self.end_time,
        }
    }
}
