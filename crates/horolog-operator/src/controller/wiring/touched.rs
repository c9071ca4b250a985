//! The objects a reflected watch touched, each handed on once its store holds it.

use futures::{Stream, StreamExt, stream};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

/// The objects of `events` (a watch already applied to the store `reader` reads), as
/// `touched_objects()` gives them, except that the objects of a (re)list come at its end.
///
/// kube's reflector keeps a list's objects aside and puts them in the store only when the
/// list ends (`InitDone`), while `touched_objects()` hands each one on as it arrives. The
/// reconcile queued for it then found no object in the store, and kube's applier drops such a
/// request (`ObjectNotFound`): after a watch was ended with 410 Gone and relisted, every object
/// created while it was down was never reconciled (3,787 of 10,000 Schedules in one sandbox
/// run, BENCHMARKS.md).
pub(super) fn touched<K>(
    reader: Store<K>,
    events: impl Stream<Item = Result<Event<K>, watcher::Error>>,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut listed: Vec<ObjectRef<K>> = Vec::new();
    events.flat_map(move |event| {
        let out: Vec<Result<K, watcher::Error>> = match event {
            Ok(Event::Apply(object) | Event::Delete(object)) => vec![Ok(object)],
            Ok(Event::Init) => {
                listed.clear();
                Vec::new()
            }
            Ok(Event::InitApply(object)) => {
                listed.push(ObjectRef::from_obj(&object));
                Vec::new()
            }
            Ok(Event::InitDone) => std::mem::take(&mut listed)
                .iter()
                .filter_map(|key| reader.get(key))
                .map(|object| Ok(K::clone(&object)))
                .collect(),
            Err(err) => vec![Err(err)],
        };
        stream::iter(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::{self, store::Writer};

    fn object(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[tokio::test]
    async fn each_object_is_handed_on_once_the_store_holds_it() {
        let writer: Writer<ConfigMap> = Writer::default();
        let reader = writer.as_reader();
        let events = stream::iter([
            Ok(Event::Init),
            Ok(Event::InitApply(object("a"))),
            Ok(Event::InitApply(object("b"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(object("c"))),
            // A relist that no longer has `b`.
            Ok(Event::Init),
            Ok(Event::InitApply(object("a"))),
            Ok(Event::InitDone),
        ]);
        // Each object with whether the store held it when it was handed on.
        let handed: Vec<(String, bool)> = touched(reader.clone(), reflector::reflector(writer, events))
            .map(|object| {
                let object = object.unwrap();
                let held = reader.get(&ObjectRef::from_obj(&object)).is_some();
                (object.metadata.name.unwrap(), held)
            })
            .collect()
            .await;
        let expected = [("a", true), ("b", true), ("c", true), ("a", true)];
        assert_eq!(handed, expected.map(|(name, held)| (name.to_string(), held)));
        assert!(
            reader.get(&ObjectRef::from_obj(&object("b"))).is_none(),
            "the relist dropped b"
        );
    }
}
