//! The reconcile queues: one per kind, fed by the watches and the recovery watch and read by
//! that kind's applier. Each knows which objects wait for a reconcile they asked for, so its
//! depth is a metric (`horolog_reconcile_queue_depth`): a queue that stays deep means the
//! reconcilers do not keep up (raise `--concurrency`, or look at the API server's latency).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use super::Observer;
use crate::api::{Backfill, Calendar, JobRun, Schedule, Task};

/// The reconcile requests of one kind.
pub(super) struct Queue<K: Resource<DynamicType = ()>> {
    tx: UnboundedSender<ObjectRef<K>>,
    waiting: Arc<Waiting>,
}

impl<K: Resource<DynamicType = ()>> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Queue {
            tx: self.tx.clone(),
            waiting: self.waiting.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Queue<K> {
    /// Asks for a reconcile of `object`.
    pub(super) fn send(&self, object: ObjectRef<K>) {
        let key = format!(
            "{}/{}/{}",
            K::kind(&()),
            object.namespace.as_deref().unwrap_or_default(),
            object.name
        );
        self.waiting.requested(key);
        // The receiver lives as long as the appliers; a closed channel means we are shutting
        // down.
        let _ = self.tx.unbounded_send(object);
    }
}

/// The objects of one kind whose requested reconcile has not started yet. The applier merges
/// requests for one object, so a set counts what waits.
pub(super) struct Waiting {
    controller: &'static str,
    /// Each waiting object, with when it started waiting.
    keys: Mutex<HashMap<String, Instant>>,
    observer: Option<Arc<dyn Observer>>,
}

impl Waiting {
    fn new(controller: &'static str, observer: Option<Arc<dyn Observer>>) -> Arc<Waiting> {
        Arc::new(Waiting {
            controller,
            keys: Mutex::new(HashMap::new()),
            observer,
        })
    }

    fn requested(&self, key: String) {
        let depth = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if keys.contains_key(&key) {
                return;
            }
            keys.insert(key, Instant::now());
            keys.len()
        };
        if let Some(observer) = &self.observer {
            observer.queue_added(self.controller);
        }
        self.report(depth);
    }

    /// A reconcile of `key` (as `status::key_of` names it) starts: whatever it waited for is
    /// served by it.
    pub(super) fn started(&self, key: &str) {
        let (depth, since) = {
            let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            let Some(since) = keys.remove(key) else {
                return;
            };
            (keys.len(), since)
        };
        if let Some(observer) = &self.observer {
            observer.queue_waited(self.controller, since.elapsed());
        }
        self.report(depth);
    }

    fn report(&self, depth: usize) {
        if let Some(observer) = &self.observer {
            observer.queue_depth(self.controller, depth);
        }
    }
}

/// The queues, one per kind.
#[derive(Clone)]
pub(super) struct Queues {
    pub(super) schedules: Queue<Schedule>,
    pub(super) jobruns: Queue<JobRun>,
    pub(super) tasks: Queue<Task>,
    pub(super) backfills: Queue<Backfill>,
    pub(super) calendars: Queue<Calendar>,
    receivers: Arc<Mutex<Option<Receivers>>>,
}

/// The receiving end of one queue, with its set of waiting objects.
pub(super) type Receiver<K> = (UnboundedReceiver<ObjectRef<K>>, Arc<Waiting>);

/// The receiving ends of [`Queues`].
pub(super) struct Receivers {
    pub(super) schedules: Receiver<Schedule>,
    pub(super) jobruns: Receiver<JobRun>,
    pub(super) tasks: Receiver<Task>,
    pub(super) backfills: Receiver<Backfill>,
    pub(super) calendars: Receiver<Calendar>,
}

fn queue<K: Resource<DynamicType = ()>>(
    controller: &'static str,
    observer: &Option<Arc<dyn Observer>>,
) -> (Queue<K>, Receiver<K>) {
    let (tx, rx) = unbounded();
    let waiting = Waiting::new(controller, observer.clone());
    (
        Queue {
            tx,
            waiting: waiting.clone(),
        },
        (rx, waiting),
    )
}

impl Queues {
    /// The queues, reporting their depth to `observer`.
    pub(super) fn new(observer: &Option<Arc<dyn Observer>>) -> Queues {
        let (schedules, schedule_rx) = queue("schedule", observer);
        let (jobruns, jobrun_rx) = queue("jobrun", observer);
        let (tasks, task_rx) = queue("task", observer);
        let (backfills, backfill_rx) = queue("backfill", observer);
        let (calendars, calendar_rx) = queue("calendar", observer);
        let receivers = Receivers {
            schedules: schedule_rx,
            jobruns: jobrun_rx,
            tasks: task_rx,
            backfills: backfill_rx,
            calendars: calendar_rx,
        };
        Queues {
            schedules,
            jobruns,
            tasks,
            backfills,
            calendars,
            receivers: Arc::new(Mutex::new(Some(receivers))),
        }
    }

    /// The receiving ends; once (later calls get closed queues).
    pub(super) fn receivers(&self) -> Receivers {
        let taken = self
            .receivers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        taken.unwrap_or_else(|| Receivers {
            schedules: queue("schedule", &None).1,
            jobruns: queue("jobrun", &None).1,
            tasks: queue("task", &None).1,
            backfills: queue("backfill", &None).1,
            calendars: queue("calendar", &None).1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Depths(Mutex<Vec<(&'static str, usize)>>);

    impl Observer for Depths {
        fn queue_depth(&self, controller: &'static str, depth: usize) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((controller, depth));
        }
    }

    #[test]
    fn depth_counts_each_waiting_object_once_until_its_reconcile_starts() {
        let depths = Arc::new(Depths::default());
        let observer: Option<Arc<dyn Observer>> = Some(depths.clone());
        let queues = Queues::new(&observer);
        let receivers = queues.receivers();
        queues.schedules.send(ObjectRef::new("a").within("ns"));
        queues.schedules.send(ObjectRef::new("a").within("ns"));
        queues.schedules.send(ObjectRef::new("b").within("ns"));
        receivers.schedules.1.started("Schedule/ns/a");
        receivers.schedules.1.started("Schedule/ns/a");
        receivers.schedules.1.started("Schedule/ns/b");
        let seen = depths.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            seen,
            [("schedule", 1), ("schedule", 2), ("schedule", 1), ("schedule", 0)]
        );
    }
}
