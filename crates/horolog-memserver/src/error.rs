//! API errors as the Kubernetes API server reports them: a `Status` object with a code and a
//! reason, so `kube::Error::Api(status)` and its `is_not_found()` family work unchanged.

use serde_json::{Value, json};

use super::ResourceType;

/// A failed request, turned into a `Status` response body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// The HTTP status code, e.g. 404.
    pub code: u16,
    /// The machine-readable reason, e.g. `NotFound`.
    pub reason: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The object the error is about: (resource type, name).
    details: Option<(String, String, String)>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = Some((rt.group.clone(), rt.plural.clone(), name.to_string()));
        self
    }

    /// 404: the object does not exist.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_name()),
        )
        .about(rt, name)
    }

    /// 404: no resource is served at this path.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    /// 409 AlreadyExists: create of a name that is taken.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_name()),
        )
        .about(rt, name)
    }

    /// 409 Conflict: a write based on a stale resourceVersion (or a failed precondition).
    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                rt.qualified_name()
            ),
        )
        .about(rt, name)
    }

    /// 409 Conflict for a stale resourceVersion, worded as the real server words it.
    pub fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 400: the request cannot be understood (bad JSON, bad selector, bad query).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422: the object is well-formed but not acceptable.
    pub fn invalid(rt: &ResourceType, name: &str, message: impl Into<String>) -> Self {
        let message = format!(
            "{} \"{name}\" is invalid: {}",
            rt.qualified_name(),
            message.into()
        );
        Self::new(422, "Invalid", message).about(rt, name)
    }

    /// 410: the requested resourceVersion is older than the kept history.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 405: the verb is not supported on this path.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    /// 415: a patch type the server does not know.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// The answer to a request failed on purpose ([`crate::Faults::fail`]): the reason and
    /// message the real server gives with `code` (429 also says when to retry).
    pub(crate) fn injected(code: u16) -> Self {
        let (reason, message) = match code {
            400 => ("BadRequest", "the request is invalid (injected fault)"),
            401 => ("Unauthorized", "Unauthorized"),
            403 => ("Forbidden", "forbidden (injected fault)"),
            404 => (
                "NotFound",
                "the server could not find the requested resource (injected fault)",
            ),
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected fault)",
            ),
            410 => ("Expired", "too old resource version (injected fault)"),
            422 => ("Invalid", "the object is invalid (injected fault)"),
            429 => ("TooManyRequests", "Too many requests, please try again later."),
            500 => ("InternalError", "Internal error occurred: injected fault"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            _ => ("", "injected fault"),
        };
        Self::new(code, reason, message)
    }

    /// When the client may retry (`Retry-After` and `details.retryAfterSeconds`): a second
    /// after a 429, as API Priority and Fairness answers.
    pub(crate) fn retry_after_seconds(&self) -> Option<u32> {
        (self.code == 429).then_some(1)
    }

    /// The error as a `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((group, kind, name)) = &self.details {
            status["details"] = json!({"name": name, "group": group, "kind": kind});
        }
        if let Some(seconds) = self.retry_after_seconds() {
            status["details"]["retryAfterSeconds"] = json!(seconds);
        }
        status
    }
}
