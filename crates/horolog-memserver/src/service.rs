//! The HTTP face of the store: URL routing, query parameters, patch types, status codes, and
//! watch streams as newline-delimited JSON.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Sleep;

use super::apply::{apply, record_update};
use super::faults::{Admission, WatchEnd};
use super::patch::{json_patch, merge_patch};
use super::request::RequestInfo;
use super::selector::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, Filter, Object, Store, Target, meta_str};
use super::{ApiError, ApiServer, Change, ChangeKind, ResourceType, ResponseBody, encode};

/// How often an idle watch with `allowWatchBookmarks` reports the resource version it is at.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// How long a watch without `timeoutSeconds` lasts (the real server picks 30 to 60 minutes).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The Accept header parameter of kube's metadata-only list, get and watch (`metadata_watcher`,
/// used by `Controller::owns`).
const PARTIAL_METADATA: &str = "as=PartialObjectMetadata";

/// What a request resolved to.
struct Route {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    target: Target,
}

/// The decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect();
        Query(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn filter(&self, namespace: Option<String>) -> Result<Filter, ApiError> {
        Ok(Filter {
            namespace,
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or_default())
                .map_err(ApiError::bad_request)?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
                .map_err(ApiError::bad_request)?,
        })
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| v == "All")
    }
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |offset: usize| bytes.get(i + offset).and_then(|b| (*b as char).to_digit(16));
                match (hex(1), hex(2)) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(store: &Store, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route(path)),
    };
    // `namespaces/{ns}/status` is the Namespace's own subresource, not a resource called status.
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty() && matches!(*plural, "status" | "finalize")) && tail.len() <= 2 =>
        {
            (Some(ns.to_string()), &rest[2..])
        }
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(*sub)),
        _ => return Err(ApiError::no_route(path)),
    };
    let rt = store
        .resource(group, version, plural)
        .ok_or_else(|| ApiError::no_route(path))?;
    let scope_fits = match (&namespace, &name) {
        (Some(_), _) => rt.namespaced,
        (None, Some(_)) => !rt.namespaced,
        (None, None) => true,
    };
    let target = match subresource {
        None => Target::Main,
        Some("status") if rt.status_subresource => Target::Status,
        Some(_) => return Err(ApiError::no_route(path)),
    };
    if !scope_fits {
        return Err(ApiError::no_route(path));
    }
    Ok(Route {
        rt,
        namespace,
        name,
        target,
    })
}

/// A response: an object, a list or a Status with a code, or a watch stream. Encoding to JSON
/// waits until the store's lock is released.
enum Reply {
    Json(StatusCode, Value),
    Object(StatusCode, Object),
    List(List),
    Watch(Box<WatchStream>),
}

impl Reply {
    /// A stored object, or its metadata alone.
    fn object(code: StatusCode, object: Object, metadata_only: bool) -> Self {
        if metadata_only {
            Reply::Json(code, partial_metadata(&object.value))
        } else {
            Reply::Object(code, object)
        }
    }
}

/// A list response body: the items are shared with the store, not copied.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct List {
    // In the order `serde_json::Value` writes an object's keys.
    api_version: String,
    items: Items,
    kind: String,
    metadata: Value,
}

struct Items(Vec<Arc<Value>>);

impl serde::Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|item| &**item))
    }
}

/// Serves one request: through the faults (only when some are set), then the store; counts it
/// unless it was refused. A refusal is the service's error: to a `kube::Client` it is a
/// transport error, as from an API server that is down.
pub(crate) async fn handle<B>(
    server: ApiServer,
    request: http::Request<B>,
) -> Result<Response<ResponseBody>, std::io::Error>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| ApiError::bad_request(format!("reading the request body: {}", error.into())));
    let mut info = RequestInfo::parse(&parts);
    if server.faults.is_active() {
        if server.faults.needs_name()
            && let Ok(body) = &body
        {
            info.resolve_name(parts.uri.query(), body);
        }
        match server.faults.admit(&info).await {
            Admission::Proceed => {}
            Admission::Refuse => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused (the in-memory API server is refusing requests)",
                ));
            }
            Admission::Fail(code, answer) => {
                let error = match answer {
                    Some((reason, message)) => ApiError::new(code, reason, message),
                    None => ApiError::injected(code),
                };
                let response = error_response(&error);
                server.counts.count_request(&info, code);
                return Ok(response);
            }
        }
    }
    let mut reply = body.and_then(|body| dispatch(&server, &parts, body));
    if server.faults.is_active()
        && let Ok(Reply::Watch(stream)) = &mut reply
    {
        stream.lag = server.faults.watch_lag(&info);
    }
    let response = respond(reply);
    server.counts.count_request(&info, response.status().as_u16());
    Ok(response)
}

fn respond(reply: Result<Reply, ApiError>) -> Response<ResponseBody> {
    match reply {
        Ok(Reply::Json(code, value)) => json_response(code, encode(&value)),
        Ok(Reply::Object(code, object)) => json_response(code, object.encoded()),
        Ok(Reply::List(list)) => json_response(StatusCode::OK, encode(&list)),
        Ok(Reply::Watch(stream)) => watch_response(*stream),
        Err(error) => error_response(&error),
    }
}

fn error_response(error: &ApiError) -> Response<ResponseBody> {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(code, encode(&error.to_status()));
    if let Some(seconds) = error.retry_after_seconds() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn json_response(code: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let body = Full::new(body).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// The body of a create, replace or patch as a value (an apply configuration may be YAML).
/// Errors are kept for the request to report after routing, as it did before decoding moved
/// out of the store's lock.
fn decode_body(method: &Method, content_type: &str, body: &Bytes) -> Result<Value, ApiError> {
    match *method {
        Method::POST | Method::PUT => parse_json(body),
        Method::PATCH if media_type(content_type) == "application/apply-patch+yaml" => {
            serde_json::from_slice(body)
                .or_else(|_| serde_yaml::from_slice(body))
                .map_err(|e| ApiError::bad_request(format!("the apply configuration is not valid YAML: {e}")))
        }
        Method::PATCH => parse_json(body),
        _ => Ok(Value::Null),
    }
}

fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

fn dispatch(server: &ApiServer, parts: &Parts, body: Bytes) -> Result<Reply, ApiError> {
    let query = Query::parse(parts.uri.query());
    let metadata_only = header_text(parts, header::ACCEPT).contains(PARTIAL_METADATA);
    let content_type = header_text(parts, header::CONTENT_TYPE);
    let decoded = decode_body(&parts.method, content_type, &body);
    let mut store = server.lock();
    let Route {
        rt,
        namespace,
        name,
        target,
    } = route(&store, parts.uri.path())?;
    let ns = namespace.clone().unwrap_or_default();
    let dry_run = query.dry_run();
    match (&parts.method, name) {
        (&Method::GET, Some(name)) => {
            let object = Object::new(store.get(&rt, &ns, &name)?);
            Ok(Reply::object(StatusCode::OK, object, metadata_only))
        }
        (&Method::GET, None) if query.flag("watch") => {
            let stream = open_watch(
                server,
                &store,
                rt,
                query.filter(namespace)?,
                &query,
                metadata_only,
            )?;
            Ok(Reply::Watch(Box::new(stream)))
        }
        (&Method::GET, None) => {
            let filter = query.filter(namespace)?;
            let (items, version) = store.list(&rt, &filter);
            Ok(Reply::List(paginate(&rt, items, version, &query, metadata_only)?))
        }
        (&Method::POST, None) if target == Target::Main && (namespace.is_some() || !rt.namespaced) => {
            let created = store.create(&rt, &ns, decoded?, dry_run)?;
            Ok(Reply::Object(StatusCode::CREATED, created))
        }
        (&Method::PUT, Some(name)) => {
            let mut object = decoded?;
            if target == Target::Main
                && let Ok(current) = store.get(&rt, &ns, &name)
            {
                let now = store.now();
                record_update(&current, &mut object, update_manager(parts, &query), &now);
            }
            let replaced = store.replace(&rt, &ns, &name, target, object, dry_run)?;
            Ok(Reply::Object(StatusCode::OK, replaced))
        }
        (&Method::PATCH, Some(name)) => {
            let (patched, created) = patch(
                &mut store,
                &rt,
                &ns,
                &name,
                target,
                content_type,
                query.get("fieldManager"),
                update_manager(parts, &query),
                decoded,
                dry_run,
            )?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(Reply::object(code, patched, metadata_only))
        }
        (&Method::DELETE, Some(name)) => {
            let (options, dry_run_in_body) = delete_options(&query, &body)?;
            let deleted = store.delete(&rt, &ns, &name, &options, dry_run || dry_run_in_body)?;
            Ok(Reply::Object(StatusCode::OK, deleted))
        }
        (&Method::DELETE, None) => {
            let (options, _) = delete_options(&query, &body)?;
            let deleted = store.delete_collection(&rt, &query.filter(namespace)?, &options);
            let version = store.resource_version();
            Ok(Reply::List(list_body(&rt, deleted, version, None, false)))
        }
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}",
            parts.uri.path()
        ))),
    }
}

/// A request header's value as text; empty when absent or not text.
/// The manager a write that is not an apply is recorded under in managedFields: its
/// `fieldManager`, else its User-Agent (as the real server derives it), else `unknown`.
fn update_manager<'a>(parts: &'a Parts, query: &'a Query) -> &'a str {
    query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .or_else(|| Some(header_text(parts, header::USER_AGENT)).filter(|a| !a.is_empty()))
        .unwrap_or("unknown")
}

fn header_text(parts: &Parts, name: header::HeaderName) -> &str {
    parts
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// A watch of `rt` from the `resourceVersion` the query names: the initial events (or the
/// replay, or a 410 for a version older than the history) queued, then the store's changes
/// until `timeoutSeconds` (default [`DEFAULT_WATCH_TIMEOUT`]).
fn open_watch(
    server: &ApiServer,
    store: &Store,
    rt: Arc<ResourceType>,
    filter: Filter,
    query: &Query,
    metadata_only: bool,
) -> Result<WatchStream, ApiError> {
    let after = match query.get("resourceVersion").unwrap_or_default() {
        "" | "0" => None,
        version => Some(
            version
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {version:?}")))?,
        ),
    };
    let initial_events = query.flag("sendInitialEvents");
    let start = store.watch(&rt, &filter, after, initial_events);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|&t| t > 0)
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let mut stream = WatchStream {
        pending: VecDeque::new(),
        receiver: start.receiver,
        rt,
        filter,
        metadata_only,
        bookmarks: query.flag("allowWatchBookmarks"),
        last_version: start.resource_version,
        next_bookmark: Box::pin(tokio::time::sleep(BOOKMARK_INTERVAL)),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        end: server.faults.register_watch(),
        finished: false,
        lag: None,
    };
    if start.expired {
        let message = format!(
            "too old resource version: {} ({})",
            after.unwrap_or(0),
            store.resource_version()
        );
        stream
            .pending
            .push_back(event_line("ERROR", &ApiError::gone(message).to_status()));
        stream.finished = true;
    }
    for object in start.initial {
        let line = stream.event_line("ADDED", &Object::new(object));
        stream.pending.push_back(line);
    }
    for change in start.replay {
        if let Some(line) = stream.translate(&change) {
            stream.pending.push_back(line);
        }
    }
    if initial_events {
        let line = stream.bookmark(true);
        stream.pending.push_back(line);
    }
    Ok(stream)
}

#[allow(clippy::too_many_arguments)]
fn patch(
    store: &mut Store,
    rt: &Arc<ResourceType>,
    ns: &str,
    name: &str,
    target: Target,
    content_type: &str,
    field_manager: Option<&str>,
    update_manager: &str,
    body: Result<Value, ApiError>,
    dry_run: bool,
) -> Result<(Object, bool), ApiError> {
    let now = store.now();
    let record = |current: &Value, patched: &mut Value| {
        if target == Target::Main {
            record_update(current, patched, update_manager, &now);
        }
    };
    match media_type(content_type) {
        // Strategic merge is treated as a JSON merge patch: lists are replaced, not merged by key.
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let patch = body?;
            let merge = |current: &Value| {
                let mut patched = current.clone();
                merge_patch(&mut patched, &patch);
                record(current, &mut patched);
                Ok(patched)
            };
            store.patch(rt, ns, name, target, merge, false, dry_run)
        }
        "application/json-patch+json" => {
            let operations = body?;
            let apply = |current: &Value| {
                let mut patched =
                    json_patch(current, &operations).map_err(|e| ApiError::invalid(rt, name, e))?;
                record(current, &mut patched);
                Ok(patched)
            };
            store.patch(rt, ns, name, target, apply, false, dry_run)
        }
        // Server-side apply, approximated (see `apply.rs`); creates the object if absent.
        "application/apply-patch+yaml" => {
            let config = body?;
            if !config.is_object() {
                return Err(ApiError::bad_request("the apply configuration must be an object"));
            }
            let manager = field_manager.filter(|m| !m.is_empty()).ok_or_else(|| {
                ApiError::invalid(
                    rt,
                    name,
                    "fieldManager: Required value: is required for apply patch",
                )
            })?;
            let subresource = if target == Target::Status { "status" } else { "" };
            let now = store.now();
            let apply = |current: &Value| Ok(apply(current, &config, manager, subresource, &now));
            store.patch(rt, ns, name, target, apply, true, dry_run)
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// The DeleteOptions of a DELETE (from its body and query) and whether it is a dry run.
fn delete_options(query: &Query, body: &Bytes) -> Result<(DeleteOptions, bool), ApiError> {
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_json(body)?
    };
    let text = |pointer: &str| {
        options
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let policy = text("/propagationPolicy").or_else(|| query.get("propagationPolicy").map(str::to_string));
    let dry_run = options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    Ok((
        DeleteOptions {
            precondition_uid: text("/preconditions/uid"),
            precondition_resource_version: text("/preconditions/resourceVersion"),
            orphan: policy.as_deref() == Some("Orphan")
                || options.get("orphanDependents").and_then(Value::as_bool) == Some(true),
            grace_period_seconds: options
                .get("gracePeriodSeconds")
                .and_then(Value::as_i64)
                .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        },
        dry_run,
    ))
}

/// A list response, honouring `limit` and `continue`. Continue tokens carry the resource version
/// of the first page, so a paged relist followed by a watch replays what changed meanwhile.
fn paginate(
    rt: &ResourceType,
    items: Vec<Arc<Value>>,
    version: u64,
    query: &Query,
    metadata_only: bool,
) -> Result<List, ApiError> {
    let bad_token = || ApiError::bad_request("invalid continue token");
    let (version, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let mut parts = token.splitn(3, '/');
            let version = parts
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(bad_token)?;
            let ns = parts.next().ok_or_else(bad_token)?.to_string();
            let name = parts.next().ok_or_else(bad_token)?.to_string();
            (version, Some((ns, name)))
        }
        None => (version, None),
    };
    fn key(object: &Value) -> (&str, &str) {
        (
            meta_str(object, "namespace").unwrap_or_default(),
            meta_str(object, "name").unwrap_or_default(),
        )
    }
    let mut items: Vec<Arc<Value>> = match &after {
        Some((ns, name)) => items
            .into_iter()
            .filter(|o| key(o) > (ns.as_str(), name.as_str()))
            .collect(),
        None => items,
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0);
    let mut token = None;
    if let Some(limit) = limit.filter(|&l| items.len() > l) {
        items.truncate(limit);
        if let Some(last) = items.last() {
            let (ns, name) = key(last);
            token = Some(format!("{version}/{ns}/{name}"));
        }
    }
    Ok(list_body(rt, items, version, token, metadata_only))
}

fn list_body(
    rt: &ResourceType,
    items: Vec<Arc<Value>>,
    version: u64,
    token: Option<String>,
    metadata_only: bool,
) -> List {
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if let Some(token) = token {
        metadata["continue"] = json!(token);
    }
    if metadata_only {
        List {
            api_version: "meta.k8s.io/v1".into(),
            items: Items(
                items
                    .iter()
                    .map(|item| Arc::new(partial_metadata(item)))
                    .collect(),
            ),
            kind: "PartialObjectMetadataList".into(),
            metadata,
        }
    } else {
        List {
            api_version: rt.api_version(),
            items: Items(items),
            kind: format!("{}List", rt.kind),
            metadata,
        }
    }
}

fn partial_metadata(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    event_line_of_json(kind, &encode(object))
}

/// A watch event line around an object already encoded, written as
/// `json!({"type": kind, "object": object})` would be (keys in order).
fn event_line_of_json(kind: &str, object: &[u8]) -> Bytes {
    const HEAD: &[u8] = br#"{"object":"#;
    const TYPE: &[u8] = br#","type":""#;
    const TAIL: &[u8] = b"\"}\n";
    let mut line = Vec::with_capacity(HEAD.len() + object.len() + TYPE.len() + kind.len() + TAIL.len());
    line.extend_from_slice(HEAD);
    line.extend_from_slice(object);
    line.extend_from_slice(TYPE);
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(TAIL);
    Bytes::from(line)
}

/// One open watch: lines still to send, then whatever the store broadcasts, until the timeout.
struct WatchStream {
    pending: VecDeque<Bytes>,
    receiver: broadcast::Receiver<Arc<Change>>,
    rt: Arc<ResourceType>,
    filter: Filter,
    metadata_only: bool,
    bookmarks: bool,
    /// The newest change this watch has seen (of any resource): all of its own changes up to
    /// here have been sent, so a bookmark may name it.
    last_version: u64,
    /// The timers live as long as the watch: making them anew on every wait would register
    /// two timers per watch per change.
    next_bookmark: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    /// Set when `Faults::drop_watches` (or a refusal) ends every open watch.
    end: Arc<WatchEnd>,
    finished: bool,
    /// Each event is held back this long before it is sent (`Faults::lag_watches`).
    lag: Option<Duration>,
}

impl WatchStream {
    /// The event line for `object` as this watch shows it (whole, or its metadata alone).
    fn event_line(&self, kind: &str, object: &Object) -> Bytes {
        if self.metadata_only {
            event_line(kind, &partial_metadata(&object.value))
        } else {
            event_line_of_json(kind, &object.encoded())
        }
    }

    /// The watch event a change means for this watch, if any. A change that moves an object into
    /// or out of the selection is an ADDED or DELETED, as on the real server.
    fn translate(&self, change: &Change) -> Option<Bytes> {
        let rt = &change.resource;
        if (&rt.group, &rt.version, &rt.plural) != (&self.rt.group, &self.rt.version, &self.rt.plural) {
            return None;
        }
        let now = self.filter.matches(&change.object);
        let before = change
            .previous
            .as_ref()
            .is_some_and(|previous| self.filter.matches(previous));
        let kind = match change.kind {
            ChangeKind::Added => now.then_some("ADDED"),
            ChangeKind::Deleted => now.then_some("DELETED"),
            ChangeKind::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }?;
        Some(self.event_line(kind, &Object::of(change)))
    }

    fn bookmark(&self, initial_events_end: bool) -> Bytes {
        let (api_version, kind) = if self.metadata_only {
            ("meta.k8s.io/v1".to_string(), "PartialObjectMetadata".to_string())
        } else {
            (self.rt.api_version(), self.rt.kind.clone())
        };
        let mut metadata = json!({"resourceVersion": self.last_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line(
            "BOOKMARK",
            &json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}),
        )
    }

    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.finished {
                return None;
            }
            tokio::select! {
                biased;
                received = self.receiver.recv() => match received {
                    Ok(change) => {
                        self.last_version = change.resource_version;
                        if let Some(line) = self.translate(&change) {
                            if let Some(lag) = self.lag {
                                tokio::time::sleep(lag).await;
                            }
                            return Some(line);
                        }
                    }
                    // Fell too far behind: like the real server, end with 410 so the client relists.
                    Err(RecvError::Lagged(_)) => {
                        self.finished = true;
                        let gone = ApiError::gone("the watch fell behind; relist");
                        return Some(event_line("ERROR", &gone.to_status()));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.deadline.as_mut() => return None,
                // Ended by the faults (or the server is gone): the client sees the stream end.
                () = std::future::poll_fn(|cx| self.end.poll_ended(cx)) => return None,
                _ = self.next_bookmark.as_mut(), if self.bookmarks => {
                    let next = self.next_bookmark.deadline() + BOOKMARK_INTERVAL;
                    self.next_bookmark.as_mut().reset(next);
                    return Some(self.bookmark(false));
                }
            }
        }
    }
}

fn watch_response(stream: WatchStream) -> Response<ResponseBody> {
    let lines = futures::stream::unfold(stream, |mut stream| async move {
        let line = stream.next_line().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), stream))
    });
    let mut response = Response::new(StreamBody::new(lines).boxed_unsync());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_as_kube_encodes_them() {
        let query = Query::parse(Some(
            "&watch=true&labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&limit=5",
        ));
        assert!(query.flag("watch"));
        assert_eq!(query.get("labelSelector"), Some("app=web,tier in (a,b)"));
        assert_eq!(query.get("limit"), Some("5"));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
