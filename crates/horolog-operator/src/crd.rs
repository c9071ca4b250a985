//! The CustomResourceDefinitions, generated from the Rust types (`horolog crds`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::json;

use crate::api::{Backfill, Calendar, JobRun, Schedule, Task};

/// Every horolog CRD, as the API server gets it.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut schedule = Schedule::crd();
    // A Schedule without a timezone fires in UTC; with the default in the schema, the
    // TIMEZONE column of `kubectl get hs` says so instead of staying blank.
    set_default(&mut schedule, &["spec", "trigger", "timezone"], json!("UTC"));
    let mut jobrun = JobRun::crd();
    // A new JobRun reads as Scheduled before the operator writes anything (the API server
    // defaults status when it reads the object back, as it does for Gateway API objects), so
    // `kubectl get jobruns -w` shows a phase from the start, and a run staged ahead of its
    // fire time shows Scheduled, without a status write.
    set_default(&mut jobrun, &["status"], json!({"phase": "Scheduled"}));
    vec![schedule, jobrun, Task::crd(), Backfill::crd(), Calendar::crd()]
}

/// Sets `default` on the property at `path` (from the root of the object) in every version's
/// schema.
fn set_default(crd: &mut CustomResourceDefinition, path: &[&str], default: serde_json::Value) {
    for version in &mut crd.spec.versions {
        let root = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut());
        if let Some(props) = root.and_then(|root| property(root, path)) {
            props.default = Some(JSON(default.clone()));
        }
    }
}

/// The schema of the property at `path` under `schema`.
fn property<'a>(schema: &'a mut JSONSchemaProps, path: &[&str]) -> Option<&'a mut JSONSchemaProps> {
    match path.split_first() {
        None => Some(schema),
        Some((step, rest)) => property(schema.properties.as_mut()?.get_mut(*step)?, rest),
    }
}

/// File name under `crds/` of each CRD, with its YAML.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            serde_yaml::to_string(&crd).map(|yaml| (name, yaml))
        })
        .collect()
}

/// Every CRD as one multi-document YAML stream, as `horolog crds` prints it.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for (_, yaml) in crd_files()? {
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(crd: &CustomResourceDefinition) -> serde_json::Value {
        serde_json::to_value(&crd.spec.versions[0].schema).unwrap()
    }

    #[test]
    fn a_fresh_jobrun_defaults_to_pending_and_a_schedule_to_utc() {
        let crds = crds();
        let schedule = schema_of(&crds[0]);
        assert_eq!(
            schedule
                .pointer("/openAPIV3Schema/properties/spec/properties/trigger/properties/timezone/default"),
            Some(&json!("UTC"))
        );
        assert_eq!(
            schedule.pointer("/openAPIV3Schema/properties/spec/properties/paused/default"),
            Some(&json!(false))
        );
        let jobrun = schema_of(&crds[1]);
        assert_eq!(
            jobrun.pointer("/openAPIV3Schema/properties/status/default"),
            Some(&json!({"phase": "Scheduled"}))
        );
    }

    #[test]
    fn there_is_one_crd_per_kind() {
        let names: Vec<String> = crds()
            .iter()
            .map(|c| c.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "schedules.horolog.dev",
                "jobruns.horolog.dev",
                "tasks.horolog.dev",
                "backfills.horolog.dev",
                "calendars.horolog.dev"
            ]
        );
    }
}
