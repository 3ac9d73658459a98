//! Live status: typed events for every status change, published after the change is
//! committed, delivered to subscribers in this process and — through Redis pub/sub when
//! `REDIS_URL` is set — in every other process.
//!
//! An event carries the committed row as JSON, so a subscriber can answer without a database
//! read, and the row's per-entity `sequence`, so it can drop duplicates and notice gaps.

mod bus;
mod publish;

use std::any::{Any, TypeId};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use bus::{BusStats, EventBus};
pub use publish::{
    publish_backend, publish_backend_row, publish_execution, publish_execution_row, publish_intent,
    publish_intent_row, publish_log, publish_logs, publish_prompt_version_row, publish_rows,
    publish_stage, publish_stage_row, publish_worker,
};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    ExecutionUpdated,
    StageUpdated,
    LogAppended,
    IntentUpdated,
    BackendUpdated,
    PromptVersionUpdated,
    WorkerUpdated,
}

/// One committed change.
#[derive(Debug, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// The project the row belongs to; subscribers filter on it.
    pub project_id: Uuid,
    /// The changed row.
    pub entity_id: Uuid,
    /// The execution (or intent, backend) the row belongs to, for child rows.
    pub parent_id: Option<Uuid>,
    /// Increases with every change of the entity.
    pub sequence: i64,
    /// The row as committed.
    pub payload: serde_json::Value,
    /// The payload decoded once for every subscriber of this process (see [`Event::view`]).
    #[serde(skip)]
    views: [OnceLock<(TypeId, Arc<dyn Any + Send + Sync>)>; 2],
}

impl Event {
    /// A committed change of `entity_id`.
    pub fn new(
        kind: EventKind,
        project_id: Uuid,
        entity_id: Uuid,
        parent_id: Option<Uuid>,
        sequence: i64,
        payload: serde_json::Value,
    ) -> Event {
        Event {
            kind,
            project_id,
            entity_id,
            parent_id,
            sequence,
            payload,
            views: Default::default(),
        }
    }

    /// The payload as `T`, built by `make` from the payload the first time any subscriber of
    /// this process asks and shared by all the others: ten thousand subscribers of one
    /// execution decode its row once, not ten thousand times. `None` when `make` refuses the
    /// payload. Two views of one event are kept (an entity subscription's and `events`'); a
    /// third type is decoded on every call.
    pub fn view<T, F>(&self, make: F) -> Option<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce(&serde_json::Value) -> Option<T>,
    {
        let wanted = TypeId::of::<T>();
        for slot in &self.views {
            match slot.get() {
                Some((kind, view)) if *kind == wanted => return view.clone().downcast::<T>().ok(),
                Some(_) => continue,
                None => {
                    let made = Arc::new(make(&self.payload)?);
                    let shared: Arc<dyn Any + Send + Sync> = made.clone();
                    let _ = slot.set((wanted, shared));
                    return Some(made);
                }
            }
        }
        make(&self.payload).map(Arc::new)
    }
}

impl Clone for Event {
    fn clone(&self) -> Event {
        Event::new(
            self.kind,
            self.project_id,
            self.entity_id,
            self.parent_id,
            self.sequence,
            self.payload.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::new(
            EventKind::ExecutionUpdated,
            Uuid::nil(),
            Uuid::nil(),
            None,
            3,
            serde_json::json!({ "status": "RUNNING" }),
        )
    }

    #[test]
    fn a_view_is_made_once_and_shared() {
        let event = event();
        let mut made = 0;
        let first = event.view(|p| {
            made += 1;
            p["status"].as_str().map(str::to_owned)
        });
        let second = event.view(|p| {
            made += 1;
            p["status"].as_str().map(str::to_owned)
        });
        assert_eq!(made, 1);
        assert!(Arc::ptr_eq(
            first.as_ref().unwrap(),
            second.as_ref().unwrap()
        ));
        assert_eq!(first.unwrap().as_str(), "RUNNING");
    }

    #[test]
    fn two_kinds_of_view_are_kept_and_a_third_is_made_each_time() {
        let event = event();
        let a = event.view(|_| Some(1u32)).unwrap();
        let b = event.view(|_| Some(2u64)).unwrap();
        assert!(Arc::ptr_eq(&a, &event.view(|_| Some(9u32)).unwrap()));
        assert!(Arc::ptr_eq(&b, &event.view(|_| Some(9u64)).unwrap()));
        let c = event.view(|_| Some(3i8)).unwrap();
        assert!(!Arc::ptr_eq(&c, &event.view(|_| Some(3i8)).unwrap()));
    }

    #[test]
    fn a_refused_payload_is_not_cached_and_clones_start_empty() {
        let event = event();
        assert!(event.view::<u8, _>(|_| None).is_none());
        assert_eq!(*event.view(|_| Some(7u8)).unwrap(), 7);
        let copy = event.clone();
        assert_eq!(*copy.view(|_| Some(8u8)).unwrap(), 8);
        // The round trip through Redis carries no view.
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains("views"));
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(*back.view(|_| Some(9u8)).unwrap(), 9);
    }
}
