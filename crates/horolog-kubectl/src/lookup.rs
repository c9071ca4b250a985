//! Finding an object by name, and when it is not there, naming the closest ones that are.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Error, Scope};

/// How many close names a not-found error suggests.
const SUGGESTIONS: usize = 3;

/// The object `name` of kind `K` in the scope's namespace (with `-A`, in whichever namespace
/// holds it, if only one does). `kind` names the kind in messages.
pub(crate) async fn find<K>(
    client: &Client,
    scope: &Scope,
    kind: &'static str,
    name: &str,
) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if scope.all_namespaces {
        return find_anywhere(client, kind, name).await;
    }
    let api: Api<K> = Api::namespaced(client.clone(), &scope.namespace);
    let doing = || format!("reading {} {name}", kind.to_lowercase());
    if let Some(object) = api.get_opt(name).await.map_err(Error::api(doing()))? {
        return Ok(object);
    }
    let names = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| listing_failed(kind, e))?
        .items
        .into_iter()
        .map(|meta| meta.name_any());
    Err(Error::NotFound {
        kind,
        name: name.to_string(),
        namespace: Some(scope.namespace.clone()),
        nearby: nearest(name, names),
    })
}

async fn find_anywhere<K>(client: &Client, kind: &'static str, name: &str) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let all = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(|e| listing_failed(kind, e))?
        .items;
    let namespaces: Vec<String> = all
        .iter()
        .filter(|meta| meta.name_any() == name)
        .filter_map(|meta| meta.namespace())
        .collect();
    match namespaces.as_slice() {
        [namespace] => {
            let api: Api<K> = Api::namespaced(client.clone(), namespace);
            api.get(name).await.map_err(Error::api(format!(
                "reading {} {namespace}/{name}",
                kind.to_lowercase()
            )))
        }
        [] => Err(Error::NotFound {
            kind,
            name: name.to_string(),
            namespace: None,
            nearby: nearest(
                name,
                all.iter()
                    .map(|meta| format!("{}/{}", meta.namespace().unwrap_or_default(), meta.name_any())),
            ),
        }),
        _ => Err(Error::Ambiguous {
            kind,
            name: name.to_string(),
            namespaces,
        }),
    }
}

/// A failed list; when the server does not serve the kind at all (a GET of a missing object
/// and of a missing type both answer 404, so this is where it shows), says what to install.
fn listing_failed(kind: &str, error: kube::Error) -> Error {
    let unserved = matches!(&error, kube::Error::Api(status) if status.is_not_found());
    let horolog = ["Schedule", "JobRun", "Task", "Backfill"].contains(&kind);
    if unserved && horolog {
        return Error::Invalid(format!(
            "the server does not serve {kind}s: are horolog's CRDs installed? (kubectl apply --server-side -f crds/)"
        ));
    }
    Error::api(format!("listing {}s", kind.to_lowercase()))(error)
}

/// The names closest to `name` by edit distance (up to 3, closest first, ties by name). A
/// `namespace/name` candidate is compared by its name.
pub fn nearest(name: &str, candidates: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = candidates
        .into_iter()
        .map(|candidate| {
            let bare = candidate.rsplit('/').next().unwrap_or(&candidate);
            (strsim::levenshtein(name, bare), candidate)
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(SUGGESTIONS)
        .map(|(_, candidate)| candidate)
        .collect()
}

/// `Schedule "x" not found in namespace "default"; did you mean a, b or c?`
pub(crate) fn not_found_message(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    nearby: &[String],
) -> String {
    let place = match namespace {
        Some(namespace) => format!("in namespace {namespace:?}"),
        None => "in any namespace".to_string(),
    };
    // "JobRun or Schedule" -> "JobRuns or Schedules"
    let plural: Vec<String> = kind.split(" or ").map(|k| format!("{k}s")).collect();
    let plural = plural.join(" or ");
    let hint = match nearby {
        [] if namespace.is_some() => format!("; there are no {plural} in it"),
        [] => format!("; there are no {plural}"),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    };
    format!("{kind} {name:?} not found {place}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nearest_names_come_closest_first_and_at_most_three() {
        let found = nearest(
            "nightly-reprot",
            names(&[
                "weekly-report",
                "nightly-report",
                "hourly",
                "nightly-export",
                "zzz",
            ]),
        );
        assert_eq!(found, ["nightly-report", "nightly-export", "weekly-report"]);
    }

    #[test]
    fn a_namespaced_candidate_is_compared_by_its_name() {
        let found = nearest("report", names(&["team-a/other", "zz/report"]));
        assert_eq!(found[0], "zz/report");
    }

    #[test]
    fn the_message_names_the_closest_or_says_there_are_none() {
        assert_eq!(
            not_found_message("Schedule", "x", Some("default"), &names(&["a", "b", "c"])),
            r#"Schedule "x" not found in namespace "default"; did you mean a, b or c?"#
        );
        assert_eq!(
            not_found_message("JobRun", "x", Some("ns"), &[]),
            r#"JobRun "x" not found in namespace "ns"; there are no JobRuns in it"#
        );
        assert_eq!(
            not_found_message("Schedule", "x", None, &names(&["a/x1"])),
            r#"Schedule "x" not found in any namespace; did you mean a/x1?"#
        );
    }
}
