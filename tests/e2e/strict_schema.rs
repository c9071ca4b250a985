//! What the API server alone refuses now that the CRDs carry the full typed pod template and
//! bounded durations (issue 20): a string `command`, a misspelt `comand`, an overlong
//! duration. Each fixture under tests/e2e/fixtures/strict/ is server-side applied as a dry
//! run with `fieldValidation=Strict`, as `kubectl apply --server-side` sends it, and must be
//! refused with a 4xx that names the field path. No operator.

use kube::api::ValidationDirective;

use super::*;

/// (fixture file, the field path the refusal must name)
const CASES: [(&str, &str); 3] = [
    (
        "string-command.yaml",
        "spec.jobTemplate.spec.template.spec.containers[0].command",
    ),
    (
        "misspelt-command.yaml",
        "spec.jobTemplate.spec.template.spec.containers[0].comand",
    ),
    ("overlong-duration.yaml", "spec.misfireGraceTime"),
];

fn fixture(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/fixtures/strict")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (API server) Each fixture is refused (400 or 422) with a message naming its field path,
/// and the same Schedule without the fault is accepted; offline, `parse_manifests` (preview,
/// local mode) refuses the same fixture at the same path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_what_cannot_run_naming_the_field() {
    // The offline half needs no cluster: it runs (and can fail) everywhere.
    for (file, field) in CASES {
        let text = serde_yaml::to_string(&fixture(file)).unwrap_or_default();
        let err = horolog::manifest::parse_manifests(&text, file)
            .err()
            .unwrap_or_else(|| panic!("{file}: read offline without an error"));
        assert_eq!(err.path, field, "{file}: {err}");
    }
    e2e("strict-schema", Needs::ApiServer, |env| async move {
        let schedules = ApiResource::erase::<Schedule>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &env.ns, &schedules);
        let params = PatchParams {
            dry_run: true,
            field_validation: Some(ValidationDirective::Strict),
            ..PatchParams::apply(harness::MANAGER).force()
        };
        for (file, field) in CASES {
            let object = fixture(file);
            match api
                .patch(&name_of(&object), &params, &Patch::Apply(&object))
                .await
            {
                Ok(_) => panic!("{file}: the API server accepted it"),
                Err(kube::Error::Api(status)) => {
                    assert!(
                        status.code == 400 || status.code == 422,
                        "{file}: {} {}",
                        status.code,
                        status.message
                    );
                    assert!(
                        status.message.contains(field),
                        "{file}: the refusal does not name {field}: {}",
                        status.message
                    );
                }
                Err(other) => panic!("{file}: {other}"),
            }
        }
        // Without the fault, the same Schedule is accepted.
        let mut good = fixture("misspelt-command.yaml");
        let container = &mut good["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
        if let Some(map) = container.as_object_mut() {
            map.remove("comand");
            map.insert("command".into(), serde_json::json!(["sh", "-c", "echo hi"]));
        }
        if let Err(e) = api.patch(&name_of(&good), &params, &Patch::Apply(&good)).await {
            panic!("the corrected Schedule was refused: {e}");
        }
    })
    .await;
}
