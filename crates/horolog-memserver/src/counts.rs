//! Request counting as the real API server's `apiserver_request_total` counts: by client
//! (`User-Agent`), verb, resource, subresource and response code.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::request::{RequestInfo, Verb};

/// The client the server's own garbage collection is counted under: on a real cluster
/// kube-controller-manager's garbage collector and namespace controller send those deletes.
pub const GARBAGE_COLLECTOR: &str = "garbage-collector";

/// What one counter of `apiserver_request_total` counts (the real metric also has `version`,
/// `scope`, `component` and `dry_run` labels, which this server does not keep).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    /// The request's `User-Agent` (`unknown` without one; browsers are `Browser`).
    pub client: String,
    /// What the request did.
    pub verb: Verb,
    /// The API group, `""` for the core group.
    pub group: String,
    /// The resource's plural, e.g. `pods`; `""` for requests that are not for a resource.
    pub resource: String,
    /// E.g. `status`; `""` for the object itself.
    pub subresource: String,
    /// The HTTP status code of the response.
    pub code: u16,
}

/// The counters of one server.
#[derive(Default)]
pub(crate) struct RequestCounts {
    /// Keyed by the hash of the key's fields, so a request is counted without building an owned
    /// key unless it is the first of its kind; collisions share a bucket.
    buckets: Mutex<Buckets>,
}

/// Counters by the hash of their key: the key is hashed once, so the map needs no second hash.
type Buckets = HashMap<u64, Vec<(RequestKey, u64)>, BuildHasherDefault<Prehashed>>;

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with it; fold anything else in rather than panic.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// The fields of a key, borrowed from a request.
struct KeyView<'a> {
    client: &'a str,
    verb: Verb,
    group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    code: u16,
}

impl KeyView<'_> {
    fn hash(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        (
            self.client,
            self.verb,
            self.group,
            self.resource,
            self.subresource,
            self.code,
        )
            .hash(&mut hasher);
        hasher.finish()
    }

    fn is(&self, key: &RequestKey) -> bool {
        self.verb == key.verb
            && self.code == key.code
            && self.client == key.client
            && self.resource == key.resource
            && self.subresource == key.subresource
            && self.group == key.group
    }

    fn to_key(&self) -> RequestKey {
        RequestKey {
            client: self.client.to_string(),
            verb: self.verb,
            group: self.group.to_string(),
            resource: self.resource.to_string(),
            subresource: self.subresource.to_string(),
            code: self.code,
        }
    }
}

impl RequestCounts {
    /// Counts one answered request (requests of methods the API does not serve are not counted).
    pub fn count_request(&self, request: &RequestInfo<'_>, code: u16) {
        if let Some(verb) = request.verb {
            self.count(KeyView {
                client: request.client,
                verb,
                group: request.group,
                resource: request.resource,
                subresource: request.subresource,
                code,
            });
        }
    }

    /// Counts one request the garbage collector would have sent (answered 200).
    pub fn count_garbage_collection(&self, verb: Verb, group: &str, resource: &str) {
        self.count(KeyView {
            client: GARBAGE_COLLECTOR,
            verb,
            group,
            resource,
            subresource: "",
            code: 200,
        });
    }

    fn count(&self, view: KeyView<'_>) {
        let hash = view.hash();
        let mut buckets = self.lock();
        let bucket = buckets.entry(hash).or_default();
        match bucket.iter_mut().find(|(key, _)| view.is(key)) {
            Some((_, count)) => *count += 1,
            None => bucket.push((view.to_key(), 1)),
        }
    }

    /// Every counter, ordered by key.
    pub fn snapshot(&self) -> Vec<(RequestKey, u64)> {
        let mut counts: Vec<(RequestKey, u64)> = self.lock().values().flatten().cloned().collect();
        counts.sort();
        counts
    }

    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Buckets> {
        // Counters are plain numbers: a panic elsewhere leaves them usable.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sum of the counts of writes (create, update, patch, apply, delete, deletecollection),
/// of any response code, by `client` and of `resource` where given.
pub(crate) fn write_count(counts: &[(RequestKey, u64)], client: Option<&str>, resource: Option<&str>) -> u64 {
    counts
        .iter()
        .filter(|(key, _)| {
            key.verb.is_write()
                && client.is_none_or(|client| key.client == client)
                && resource.is_none_or(|resource| key.resource == resource)
        })
        .map(|(_, count)| count)
        .sum()
}

/// The counters in the Prometheus text exposition format, as the real server's `/metrics` shows
/// `apiserver_request_total` (with the labels kept here).
pub(crate) fn metrics_text(counts: &[(RequestKey, u64)]) -> String {
    let mut text = String::from(
        "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, \
         group, resource, subresource, client, and HTTP response code.\n\
         # TYPE apiserver_request_total counter\n",
    );
    for (key, count) in counts {
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "apiserver_request_total{{verb=\"{}\",group=\"{}\",resource=\"{}\",subresource=\"{}\",code=\"{}\",client=\"{}\"}} {count}",
            key.verb.metric_label(),
            escape(&key.group),
            escape(&key.resource),
            escape(&key.subresource),
            key.code,
            escape(&key.client),
        );
    }
    text
}

/// A label value as the text format writes it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_for_the_text_format() {
        let counts = vec![(
            RequestKey {
                client: "odd \"client\"\\\n".into(),
                verb: Verb::Apply,
                group: "horolog.dev".into(),
                resource: "jobruns".into(),
                subresource: "status".into(),
                code: 200,
            },
            3,
        )];
        let text = metrics_text(&counts);
        assert!(
            text.ends_with(
                "apiserver_request_total{verb=\"APPLY\",group=\"horolog.dev\",resource=\"jobruns\",\
                 subresource=\"status\",code=\"200\",client=\"odd \\\"client\\\"\\\\\\n\"} 3\n"
            ),
            "{text}"
        );
    }
}
