//! What a request is about, as the real API server's request info resolver reads it off the
//! method, path, query and `User-Agent`: the verb, the resource, the object. Fault injection
//! matches requests by it ([`RequestMatch`]) and request counting counts by it.

use std::borrow::Cow;

use http::request::Parts;
use http::{Method, header};

/// The client a request without a `User-Agent` is counted under.
pub(crate) const UNKNOWN_CLIENT: &str = "unknown";

/// What a request does, as the API server's request info names it.
///
/// [`Verb::name`] is the lowercase verb of RBAC and of the request info (`get`, `list`, `watch`,
/// `create`, `update`, `patch`, `delete`, `deletecollection`); [`Verb::metric_label`] is the
/// uppercase `verb` label `apiserver_request_total` counts it under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// GET of one object (or of a path that is not a resource, e.g. discovery).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH with a merge, strategic merge or JSON patch.
    Patch,
    /// PATCH with `application/apply-patch+yaml` (server-side apply): a `patch` to RBAC and to
    /// [`RequestMatch::verb`], `APPLY` in `apiserver_request_total`.
    Apply,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb as RBAC and the request info name it; server-side apply is a `patch`.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch | Verb::Apply => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// The `verb` label of `apiserver_request_total`: the HTTP method, except `LIST` and
    /// `WATCH` for collection reads, `APPLY` for server-side apply and `DELETECOLLECTION`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            Verb::Apply => "APPLY",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    /// True for the verbs that write: create, update, patch (and apply), delete, deletecollection.
    pub fn is_write(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// One request as the server reads it. Borrows from the request; the name of a create (in the
/// body) or of a list narrowed to one name (`fieldSelector=metadata.name=x`) is filled in only
/// when a fault rule needs it ([`RequestInfo::resolve_name`]).
#[derive(Clone, Debug)]
pub(crate) struct RequestInfo<'a> {
    /// The `User-Agent`, or [`UNKNOWN_CLIENT`].
    pub client: &'a str,
    /// `None` for methods the API does not serve (they are answered 405 and not counted).
    pub verb: Option<Verb>,
    pub group: &'a str,
    /// The plural, e.g. `pods`; empty for requests that are not for a resource.
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: Cow<'a, str>,
}

impl<'a> RequestInfo<'a> {
    /// Reads a request as the real server's `RequestInfoFactory` does.
    pub fn parse(parts: &'a Parts) -> Self {
        let client = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .filter(|agent| !agent.is_empty())
            .map_or(UNKNOWN_CLIENT, |agent| {
                // The real server counts every browser as one client.
                if agent.starts_with("Mozilla/") {
                    "Browser"
                } else {
                    agent
                }
            });
        let mut segments = parts.uri.path().split('/').filter(|s| !s.is_empty());
        let (group, api_path) = match segments.next() {
            Some("api") => ("", true),
            Some("apis") => (segments.next().unwrap_or_default(), true),
            _ => ("", false),
        };
        let _version = segments.next();
        // The first five segments after the version are all a request is read by; keeping them
        // in an array spares every request an allocation.
        let mut rest = [""; 5];
        if api_path {
            for (slot, segment) in rest.iter_mut().zip(segments) {
                *slot = segment;
            }
        }
        let mut rest = &rest[..];
        let mut namespace = "";
        if rest[0] == "namespaces" && !rest[1].is_empty() {
            namespace = rest[1];
            // `namespaces/{ns}/status` and `/finalize` are the Namespace's own subresources.
            if !rest[2].is_empty() && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        let (resource, name, subresource) = (rest[0], rest[1], rest[2]);
        let resource_request = !resource.is_empty();
        let verb = match parts.method {
            Method::GET if !resource_request || !name.is_empty() => Some(Verb::Get),
            Method::GET if is_watch(parts.uri.query()) => Some(Verb::Watch),
            Method::GET => Some(Verb::List),
            Method::POST => Some(Verb::Create),
            Method::PUT => Some(Verb::Update),
            Method::PATCH if is_apply(parts) => Some(Verb::Apply),
            Method::PATCH => Some(Verb::Patch),
            Method::DELETE if name.is_empty() => Some(Verb::DeleteCollection),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        };
        RequestInfo {
            client,
            verb,
            group,
            resource,
            subresource,
            namespace,
            name: Cow::Borrowed(name),
        }
    }

    /// Fills in the name the path does not carry: a create's `metadata.name`, a list's or
    /// watch's `fieldSelector=metadata.name=...` (as the real request info does).
    pub fn resolve_name(&mut self, query: Option<&str>, body: &[u8]) {
        if !self.name.is_empty() {
            return;
        }
        match self.verb {
            Some(Verb::Create) => {
                #[derive(serde::Deserialize)]
                struct Named {
                    metadata: Option<Metadata>,
                }
                #[derive(serde::Deserialize)]
                struct Metadata {
                    name: Option<String>,
                }
                if let Ok(Named {
                    metadata: Some(Metadata { name: Some(name) }),
                }) = serde_json::from_slice::<Named>(body)
                {
                    self.name = Cow::Owned(name);
                }
            }
            Some(Verb::List | Verb::Watch) => {
                let selector = query_pairs(query)
                    .filter(|(key, _)| *key == "fieldSelector")
                    .map(|(_, value)| crate::service::percent_decode(value))
                    .next_back();
                if let Some(selector) = selector {
                    let exact = selector.split(',').find_map(|term| {
                        let (field, value) = term.split_once("==").or_else(|| term.split_once('='))?;
                        (field.trim() == "metadata.name").then(|| value.trim().to_string())
                    });
                    if let Some(name) = exact {
                        self.name = Cow::Owned(name);
                    }
                }
            }
            _ => {}
        }
    }
}

fn query_pairs(query: Option<&str>) -> impl DoubleEndedIterator<Item = (&str, &str)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// `watch=true` (or any other spelling of true Go's `strconv.ParseBool` accepts).
fn is_watch(query: Option<&str>) -> bool {
    query_pairs(query)
        .find(|(key, _)| *key == "watch")
        .is_some_and(|(_, value)| matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

fn is_apply(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.split(';').next().unwrap_or_default().trim() == "application/apply-patch+yaml")
}

/// The [`RequestMatch`] builder methods that narrow one text field to one value: each sets
/// `self.$field` and is named after it.
macro_rules! only_requests_with {
    ($($(#[$doc:meta])* $field:ident($value:ident);)+) => {$(
        $(#[$doc])*
        pub fn $field(mut self, $value: impl Into<String>) -> Self {
            self.$field = Some($value.into());
            self
        }
    )+};
}

/// Which requests a fault applies to: every field left unset matches anything. Build it from
/// [`RequestMatch::any`]:
///
/// ```
/// # use horolog_memserver::RequestMatch;
/// let pod_status_writes = RequestMatch::any().verb("patch").resource("pods").subresource("status");
/// let operator = RequestMatch::any().client("horolog");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    client: Option<String>,
    verb: Option<String>,
    writes: bool,
    group: Option<String>,
    resource: Option<String>,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        RequestMatch::default()
    }

    /// Only writes: create, update, patch, delete and deletecollection.
    pub fn writes(mut self) -> Self {
        self.writes = true;
        self
    }

    only_requests_with! {
        /// Only requests whose `User-Agent` is `user_agent` (see [`crate::ApiServer::client_as`]);
        /// `unknown` matches requests without one.
        client(user_agent);
        /// Only requests with this verb, as RBAC names it: `get`, `list`, `watch`, `create`,
        /// `update`, `patch` (merge, JSON and server-side apply patches), `delete`,
        /// `deletecollection`; `apply` matches server-side apply patches alone. Any other word
        /// matches nothing.
        verb(verb);
        /// Only requests for resources of this API group (`""` for the core group).
        group(group);
        /// Only requests for this resource, by its plural, e.g. `pods`.
        resource(plural);
        /// Only requests for this subresource, e.g. `status`; `""` matches requests for the
        /// object itself.
        subresource(subresource);
        /// Only requests in this namespace.
        namespace(namespace);
        /// Only requests for the object with this name: from the path, the body of a create, or a
        /// list's or watch's `metadata.name` field selector.
        name(name);
    }

    /// True when `request` is one of the requests this selects.
    pub(crate) fn matches(&self, request: &RequestInfo<'_>) -> bool {
        fn fits(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|want| want == have)
        }
        let verb_fits = match (&self.verb, request.verb) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(Verb::Apply)) => want == "patch" || want == "apply",
            (Some(want), Some(verb)) => want == verb.name(),
        };
        verb_fits
            && (!self.writes || request.verb.is_some_and(Verb::is_write))
            && fits(&self.client, request.client)
            && fits(&self.group, request.group)
            && fits(&self.resource, request.resource)
            && fits(&self.subresource, request.subresource)
            && fits(&self.namespace, request.namespace)
            && fits(&self.name, &request.name)
    }

    /// True when it needs a request's name (which may have to be read from the body).
    pub(crate) fn needs_name(&self) -> bool {
        self.name.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_of(method: Method, uri: &str, content_type: &str) -> (Parts, ()) {
        let (parts, ()) = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .expect("a valid request")
            .into_parts();
        (parts, ())
    }

    #[test]
    fn request_info_reads_verb_resource_and_object_off_the_path_like_the_real_server() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p",
                "",
                Verb::Get,
                "",
                "pods",
                "",
                "a",
                "p",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods",
                "",
                Verb::List,
                "",
                "pods",
                "",
                "a",
                "",
            ),
            (
                Method::GET,
                "/api/v1/pods?watch=true",
                "",
                Verb::Watch,
                "",
                "pods",
                "",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/pods?watch=0",
                "",
                Verb::List,
                "",
                "pods",
                "",
                "",
                "",
            ),
            (
                Method::POST,
                "/apis/batch/v1/namespaces/a/jobs",
                "",
                Verb::Create,
                "batch",
                "jobs",
                "",
                "a",
                "",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/pods/p/status",
                "",
                Verb::Update,
                "",
                "pods",
                "status",
                "a",
                "p",
            ),
            (
                Method::PATCH,
                "/apis/horolog.dev/v1alpha1/namespaces/a/jobruns/r/status",
                "application/apply-patch+yaml",
                Verb::Apply,
                "horolog.dev",
                "jobruns",
                "status",
                "a",
                "r",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/a/pods/p",
                "application/merge-patch+json",
                Verb::Patch,
                "",
                "pods",
                "",
                "a",
                "p",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods/p",
                "",
                Verb::Delete,
                "",
                "pods",
                "",
                "a",
                "p",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                "",
                Verb::DeleteCollection,
                "",
                "pods",
                "",
                "a",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a",
                "",
                Verb::Get,
                "",
                "namespaces",
                "",
                "a",
                "a",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/finalize",
                "",
                Verb::Update,
                "",
                "namespaces",
                "finalize",
                "a",
                "a",
            ),
            (Method::GET, "/version", "", Verb::Get, "", "", "", "", ""),
        ];
        for (method, uri, content_type, verb, group, resource, subresource, namespace, name) in cases {
            let (parts, ()) = info_of(method, uri, content_type);
            let info = RequestInfo::parse(&parts);
            assert_eq!(
                (
                    info.verb,
                    info.group,
                    info.resource,
                    info.subresource,
                    info.namespace,
                    &*info.name
                ),
                (Some(verb), group, resource, subresource, namespace, name),
                "{uri}"
            );
            assert_eq!(info.client, UNKNOWN_CLIENT);
        }
    }

    #[test]
    fn names_come_from_a_create_body_or_a_name_field_selector() {
        let (parts, ()) = info_of(Method::POST, "/api/v1/namespaces/a/pods", "application/json");
        let mut info = RequestInfo::parse(&parts);
        info.resolve_name(None, br#"{"metadata":{"name":"p"}}"#);
        assert_eq!(info.name, "p");
        let (parts, ()) = info_of(
            Method::GET,
            "/api/v1/namespaces/a/pods?fieldSelector=metadata.name%3Dp&watch=1",
            "",
        );
        let mut info = RequestInfo::parse(&parts);
        info.resolve_name(parts.uri.query(), b"");
        assert_eq!((info.verb, &*info.name), (Some(Verb::Watch), "p"));
    }

    #[test]
    fn a_patch_match_also_selects_server_side_apply() {
        let (parts, ()) = info_of(
            Method::PATCH,
            "/api/v1/namespaces/a/pods/p",
            "application/apply-patch+yaml",
        );
        let info = RequestInfo::parse(&parts);
        assert!(RequestMatch::any().verb("patch").matches(&info));
        assert!(RequestMatch::any().verb("apply").matches(&info));
        assert!(
            RequestMatch::any()
                .writes()
                .resource("pods")
                .subresource("")
                .matches(&info)
        );
        assert!(!RequestMatch::any().verb("update").matches(&info));
        assert!(!RequestMatch::any().subresource("status").matches(&info));
        assert!(!RequestMatch::any().client("horolog").matches(&info));
    }
}
