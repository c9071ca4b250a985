//! Fault injection: refused connections, failed and delayed requests, a crash after a chosen
//! request, and watches ended from the server side, so tests see what an unreliable API server
//! does to a client without a private fake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;

use super::request::{RequestInfo, RequestMatch};

/// A handle on the faults of one [`crate::ApiServer`] ([`crate::ApiServer::faults`]). Cloning
/// is cheap and shares the faults; they apply to every client of the server, and last until
/// [`Faults::restore`] (or until used up, for [`Faults::fail`] and [`Faults::fail_nth`]).
///
/// A request meets the faults in this order: a matching [`Faults::delay`] holds it first (on
/// tokio time); then it is refused if refusing is on ([`Faults::refuse_all`], [`Faults::refuse`],
/// a triggered [`Faults::refuse_after`]); then the failure rules ([`Faults::fail`],
/// [`Faults::fail_nth`]) see it in the order they were added, and the first that fires answers
/// it with its status code; a request answered or refused never reaches the later rules.
#[derive(Clone)]
pub struct Faults {
    state: Arc<FaultState>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("active", &self.state.is_active())
            .finish_non_exhaustive()
    }
}

/// What the faults decided about one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve it.
    Proceed,
    /// Fail it as a refused connection.
    Refuse,
    /// Answer it with a `Status` with this code, and this reason and message when set (else
    /// the ones the real server gives with that code).
    Fail(u16, Option<Answer>),
}

/// The faults of one server, shared by its clones and every [`Faults`] handle.
pub(crate) struct FaultState {
    /// True while any rule is set: requests check this one flag when the server is healthy.
    active: AtomicBool,
    rules: Mutex<Rules>,
    /// The open watch streams, to end them all at once.
    watches: Mutex<Vec<Weak<WatchEnd>>>,
}

/// How a watch stream learns the faults ended it: a flag and the waker of its last poll, so
/// waiting costs a watch an atomic or two rather than a lock on every poll.
#[derive(Default)]
pub(crate) struct WatchEnd {
    ended: AtomicBool,
    waker: AtomicWaker,
}

impl WatchEnd {
    /// Ready once the watch has been ended.
    pub fn poll_ended(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.ended.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Ended between the check and the registration: the wake may have missed us.
        if self.ended.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.waker.wake();
    }
}

#[derive(Default)]
struct Rules {
    refuse: Vec<RequestMatch>,
    failures: Vec<Failure>,
    refuse_after: Vec<RequestMatch>,
    delays: Vec<(RequestMatch, Duration)>,
    watch_lags: Vec<(RequestMatch, Duration)>,
}

impl Rules {
    fn is_empty(&self) -> bool {
        self.refuse.is_empty()
            && self.failures.is_empty()
            && self.refuse_after.is_empty()
            && self.delays.is_empty()
            && self.watch_lags.is_empty()
    }

    fn needs_name(&self) -> bool {
        self.refuse.iter().any(RequestMatch::needs_name)
            || self.failures.iter().any(|f| f.matching.needs_name())
            || self.refuse_after.iter().any(RequestMatch::needs_name)
            || self.delays.iter().any(|(m, _)| m.needs_name())
            || self.watch_lags.iter().any(|(m, _)| m.needs_name())
    }
}

/// The reason and message of a `Status` chosen by the test ([`Faults::fail_with`]).
pub(crate) type Answer = (&'static str, String);

/// `times` matching requests after skipping `skip` get `code` (with `answer`, if set).
struct Failure {
    matching: RequestMatch,
    skip: usize,
    times: usize,
    code: u16,
    answer: Option<Answer>,
}

impl Default for FaultState {
    fn default() -> Self {
        FaultState {
            active: AtomicBool::new(false),
            rules: Mutex::default(),
            watches: Mutex::default(),
        }
    }
}

impl FaultState {
    /// True while any fault is set; false means every request is served as it comes.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// True when a rule matches by name, so the request's name must be resolved first.
    pub fn needs_name(&self) -> bool {
        self.lock().needs_name()
    }

    /// Registers a new watch stream, to be ended by [`Faults::drop_watches`] and refusals.
    pub fn register_watch(&self) -> Arc<WatchEnd> {
        let end = Arc::new(WatchEnd::default());
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed watches leave dead entries; sweeping them here keeps the list at the open ones.
        watches.retain(|watch| watch.strong_count() > 0);
        watches.push(Arc::downgrade(&end));
        end
    }

    /// Holds, refuses, fails or lets through one request (see [`Faults`] for the order).
    pub async fn admit(&self, request: &RequestInfo<'_>) -> Admission {
        let delay = self
            .lock()
            .delays
            .iter()
            .filter(|(matching, _)| matching.matches(request))
            .map(|(_, by)| *by)
            .max();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut rules = self.lock();
        if rules.refuse.iter().any(|matching| matching.matches(request)) {
            return Admission::Refuse;
        }
        let mut answer = None;
        for failure in rules.failures.iter_mut() {
            if failure.times == 0 || !failure.matching.matches(request) {
                continue;
            }
            if failure.skip > 0 {
                failure.skip -= 1;
                continue;
            }
            failure.times -= 1;
            answer = Some(Admission::Fail(failure.code, failure.answer.clone()));
            break;
        }
        rules.failures.retain(|failure| failure.times > 0);
        if answer.is_none()
            && let Some(at) = rules.refuse_after.iter().position(|m| m.matches(request))
        {
            // This request is served; from now on nothing else is, as after a crash.
            rules.refuse_after.remove(at);
            rules.refuse.push(RequestMatch::any());
            self.end_watches();
        }
        self.update_active(&rules);
        answer.unwrap_or(Admission::Proceed)
    }

    /// How long each event of a watch opened by `request` is held back, if a rule says so.
    pub fn watch_lag(&self, request: &RequestInfo<'_>) -> Option<Duration> {
        self.lock()
            .watch_lags
            .iter()
            .filter(|(matching, _)| matching.matches(request))
            .map(|(_, by)| *by)
            .max()
    }

    fn change(&self, change: impl FnOnce(&mut Rules)) {
        let mut rules = self.lock();
        change(&mut rules);
        self.update_active(&rules);
    }

    fn update_active(&self, rules: &Rules) {
        self.active.store(!rules.is_empty(), Ordering::Release);
    }

    fn end_watches(&self) {
        let watches = std::mem::take(&mut *self.watches.lock().unwrap_or_else(PoisonError::into_inner));
        for watch in watches.iter().filter_map(Weak::upgrade) {
            watch.end();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rules> {
        // Rules are whole values between statements; a panic elsewhere leaves them usable.
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Faults {
    pub(crate) fn new(state: Arc<FaultState>) -> Self {
        Faults { state }
    }

    /// Refuses every request as a stopped API server does: the client gets a transport error
    /// (an `std::io::Error` of kind `ConnectionRefused`, inside `kube::Error::Service`), not an
    /// HTTP status. Open watches end at once. Until [`Faults::restore`].
    pub fn refuse_all(&self) {
        self.state.change(|rules| rules.refuse.push(RequestMatch::any()));
        self.state.end_watches();
    }

    /// Refuses the matching requests as [`Faults::refuse_all`] refuses every one, e.g. the
    /// requests of one client (a replica cut off from the API server). Open watches stay open;
    /// end them with [`Faults::drop_watches`]. Until [`Faults::restore`].
    pub fn refuse(&self, matching: RequestMatch) {
        self.state.change(|rules| rules.refuse.push(matching));
    }

    /// Clears every fault: delays, refusals and unused failures.
    pub fn restore(&self) {
        self.state.change(|rules| *rules = Rules::default());
    }

    /// Answers the next `times` matching requests with a `Status` of `code` instead of serving
    /// them (e.g. 500, 503, 409, or 429 with `Retry-After: 1`); `usize::MAX` for "until
    /// [`Faults::restore`]". Failed requests change nothing and are counted with `code`.
    pub fn fail(&self, matching: RequestMatch, times: usize, code: u16) {
        self.state.change(|rules| {
            rules.failures.push(Failure {
                matching,
                skip: 0,
                times,
                code,
                answer: None,
            })
        });
    }

    /// Like [`Faults::fail`], but the `Status` carries `reason` and `message`: what a real
    /// server says when a ResourceQuota or an admission webhook refuses a request, e.g. 403
    /// `Forbidden` with `exceeded quota: q, requested: count/pods=1, used: count/pods=0,
    /// limited: count/pods=0`.
    pub fn fail_with(
        &self,
        matching: RequestMatch,
        times: usize,
        code: u16,
        reason: &'static str,
        message: impl Into<String>,
    ) {
        let message = message.into();
        self.state.change(|rules| {
            rules.failures.push(Failure {
                matching,
                skip: 0,
                times,
                code,
                answer: Some((reason, message)),
            })
        });
    }

    /// Answers only the `n`-th matching request from now (1-based) with a `Status` of `code`;
    /// the ones before it are served. `n == 0` fails nothing.
    pub fn fail_nth(&self, matching: RequestMatch, n: usize, code: u16) {
        if n == 0 {
            return;
        }
        self.state.change(|rules| {
            rules.failures.push(Failure {
                matching,
                skip: n - 1,
                times: 1,
                code,
                answer: None,
            })
        });
    }

    /// Serves the next matching request, then refuses every request (of any client) as
    /// [`Faults::refuse_all`] does, open watches included: a crash right after that call.
    /// Refusing starts when that request arrives, so nothing else gets through while it is
    /// served. Until [`Faults::restore`].
    pub fn refuse_after(&self, matching: RequestMatch) {
        self.state.change(|rules| rules.refuse_after.push(matching));
    }

    /// Holds every matching request for `by` on tokio time before it is served (so tests under
    /// `tokio::time::pause()` see it at no cost); with several matching delays, the longest.
    /// A very long delay makes requests hang. Until [`Faults::restore`].
    pub fn delay(&self, matching: RequestMatch, by: Duration) {
        self.state.change(|rules| rules.delays.push((matching, by)));
    }

    /// Holds back every event of the matching watches opened from now on by `by` (tokio time)
    /// before sending it, one after the other, so a client's cache falls behind the writes it
    /// makes, as a busy API server's watch cache or a slow connection does. Until
    /// [`Faults::restore`] (watches already open keep their lag until they end).
    pub fn lag_watches(&self, matching: RequestMatch, by: Duration) {
        self.state.change(|rules| rules.watch_lags.push((matching, by)));
    }

    /// Ends every open watch stream now, as an API server restart or a load balancer does;
    /// clients see the stream end and watch again.
    pub fn drop_watches(&self) {
        self.state.end_watches();
    }
}
