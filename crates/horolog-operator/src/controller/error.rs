//! What can go wrong in a reconcile, and how it is told apart (how soon it is retried is
//! `recovery::retry_delay`, beside the count of failures in a row).
//!
//! A user's mistake is not an error: it becomes a condition and an Event, and the reconcile
//! succeeds. What remains are the API server's answers, sorted into [`ErrorKind`]s:
//! `reconcile_errors_total{reason}` counts by kind, and `recovery::retry_delay` picks the backoff.

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed (retried with backoff).
    #[error("could not {action} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was attempted, e.g. `create`.
        action: &'static str,
        /// The kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The horolog CRDs are not installed in the cluster (or not readable by the operator).
    #[error("the horolog CRDs are not installed or not readable (kubectl apply --server-side -f crds/): {0}")]
    CrdsMissing(#[source] kube::Error),
    /// A JobRun's Pod or Job could not be built.
    #[error(transparent)]
    Pod(#[from] crate::pod::PodError),
    /// The API server refused to create an object the operator makes (a JobRun, Pod or Job):
    /// a ResourceQuota, an admission webhook or policy, a name or label rule. The refusal is
    /// already on the owner's status and in a Warning Event (reason `CreateRefused`); this
    /// error only makes the reconcile retry with backoff.
    #[error("the API server refused to create {kind} {namespace}/{name}: {message}")]
    Refused {
        /// The kind of the object.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The server's message.
        message: String,
        /// Retry no later than this (a run's start deadline, so it is Missed on time).
        retry_by: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// The kinds of failure, as `horolog_reconcile_errors_total{reason}` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 409: another writer was first, or the cache was behind; retried at once with a
    /// fresh read.
    Conflict,
    /// The API server could not be reached, timed out, or answered 429 or 5xx: it is
    /// (temporarily) unavailable. Retried soon, and at once when it answers again.
    Unavailable,
    /// 401/403: the operator's ServiceAccount lacks a permission (see the chart's RBAC).
    Forbidden,
    /// Any other answer (400, 404, 422, ...), or a request the operator could not build.
    Rejected,
    /// A create the API server refused (quota, webhook, admission, name or label rules), shown
    /// on status as `CreateRefused` and retried with backoff.
    Refused,
}

impl ErrorKind {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Refused => "refused",
        }
    }
}

impl Error {
    /// An API error while doing `action` to `kind` `namespace/name`.
    pub fn api(
        action: &'static str,
        kind: impl Into<String>,
        namespace: &str,
        name: &str,
        source: kube::Error,
    ) -> Self {
        Error::Api {
            action,
            kind: kind.into(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api { source, .. } => kind_of(source),
            Error::CrdsMissing(source) => kind_of(source),
            Error::Pod(_) => ErrorKind::Rejected,
            Error::Refused { .. } => ErrorKind::Refused,
        }
    }

    /// The latest instant the failed reconcile must be retried by, if any.
    pub fn retry_by(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Error::Refused { retry_by, .. } => *retry_by,
            _ => None,
        }
    }
}

/// The server's message when `err` is the API server refusing a create: a ResourceQuota or an
/// admission webhook or policy (403), a name or label rule (400, 422). `None` for anything
/// else (a conflict, an outage, a missing namespace), which is retried as the error it is.
pub(crate) fn refusal(err: &kube::Error) -> Option<String> {
    match err {
        kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422) => Some(status.message.clone()),
        _ => None,
    }
}

/// Sorts a client error into its [`ErrorKind`].
pub fn kind_of(err: &kube::Error) -> ErrorKind {
    match err {
        kube::Error::Api(status) => match status.code {
            409 => ErrorKind::Conflict,
            401 | 403 => ErrorKind::Forbidden,
            408 | 429 | 500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Rejected,
        },
        // Transport trouble: connection refused or reset, a timeout, a broken TLS session.
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Rejected,
    }
}

/// True when `err` says the object does not exist.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.is_not_found())
}

/// True when `err` says the object already exists.
pub(crate) fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str) -> Error {
        let status = kube::core::Status::failure("test", reason).with_code(code);
        Error::api(
            "patch status of",
            "JobRun".to_string(),
            "default",
            "r",
            kube::Error::Api(status.boxed()),
        )
    }

    #[test]
    fn answers_are_sorted_into_kinds() {
        assert_eq!(api_error(409, "Conflict").kind(), ErrorKind::Conflict);
        assert_eq!(
            api_error(503, "ServiceUnavailable").kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(api_error(429, "TooManyRequests").kind(), ErrorKind::Unavailable);
        assert_eq!(api_error(403, "Forbidden").kind(), ErrorKind::Forbidden);
        assert_eq!(api_error(422, "Invalid").kind(), ErrorKind::Rejected);
        let refused = kube::Error::Service(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(kind_of(&refused), ErrorKind::Unavailable);
    }

    #[test]
    fn refused_creates_are_told_from_other_answers() {
        let status = |code: u16, message: &str| {
            kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            )
        };
        let quota = status(403, "jobruns.horolog.dev \"a\" is forbidden: exceeded quota: q");
        assert!(refusal(&quota).is_some_and(|m| m.contains("exceeded quota")));
        assert!(refusal(&status(403, "admission webhook \"w\" denied the request")).is_some());
        assert!(refusal(&status(422, "metadata.labels: Invalid value")).is_some());
        assert!(refusal(&status(409, "conflict")).is_none());
        assert!(refusal(&status(503, "unavailable")).is_none());
    }
}
