//! The CustomResourceDefinitions, generated from the Rust types (`horolog crds`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{JobRun, Schedule};

/// Every horolog CRD, as the API server gets it.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Schedule::crd(), JobRun::crd()]
}

/// File name under `crds/` of each CRD, with its YAML.
pub fn crd_files() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    Ok(vec![
        (
            "schedules.horolog.dev.yaml",
            serde_yaml::to_string(&Schedule::crd())?,
        ),
        ("jobruns.horolog.dev.yaml", serde_yaml::to_string(&JobRun::crd())?),
    ])
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
