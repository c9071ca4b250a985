//! Fixtures the plugin's test files share.

use horolog::api::{JobRun, SCHEDULE_LABEL};

/// The namespace every fixture lives in.
pub const NS: &str = "default";

/// A JobRun of `schedule` for `fire_time`, named and labelled as the operator does.
pub fn run_of(schedule: &str, name: &str, fire_time: &str) -> JobRun {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: horolog.dev/v1alpha1
kind: JobRun
metadata: {{name: {name}, namespace: {NS}, labels: {{"{SCHEDULE_LABEL}": {schedule}}}}}
spec:
  scheduleName: {schedule}
  fireTime: "{fire_time}"
  template: {{spec: {{containers: [{{name: main, image: busybox}}]}}}}
"#
    ))
    .unwrap()
}
