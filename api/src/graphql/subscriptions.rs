//! Subscriptions: `executionUpdated`, `executionLogs` and `events`. Each entity subscription
//! first sends the current state, then every change in sequence order (duplicates dropped), and
//! completes after a terminal status. A subscriber that lagged behind the bus re-reads the
//! current state from the database instead of replaying what it missed.

use std::collections::VecDeque;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Json, SimpleObject, Subscription};
use futures::Stream;
use orchestrator_core::CoreContext;
use orchestrator_core::engine::service;
use orchestrator_core::events::{Event, EventKind as CoreEventKind};
use orchestrator_entity::{Role as DbRole, backends, executions, intents, logs};
use sea_orm::EntityTrait;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::backends::Backend;
use super::executions::{Execution, LogLine};
use super::intents::Intent;
use super::projects::parse_id;
use crate::auth::caller;
use crate::error::IntoGql;

/// Log lines read from the database per round while catching up.
const LOG_PAGE: u64 = 500;

/// Kinds of status-change events.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "orchestrator_core::events::EventKind")]
pub enum EventKind {
    ExecutionUpdated,
    StageUpdated,
    LogAppended,
    IntentUpdated,
    BackendUpdated,
    PromptVersionUpdated,
    WorkerUpdated,
}

/// One status change in a project.
#[derive(SimpleObject)]
pub struct ProjectEvent {
    pub kind: EventKind,
    pub entity_id: ID,
    /// The execution (intent, backend) a child row belongs to.
    pub parent_id: Option<ID>,
    pub sequence: i64,
    /// The row as committed (credentials and hashes left out).
    pub payload: Json<Value>,
}

#[derive(Default)]
pub struct SubscriptionRoot;

/// A row an entity subscription follows: which events carry it, its per-entity sequence, and
/// when it has reached its end.
trait Watched: sea_orm::ModelTrait + serde::de::DeserializeOwned + Send + Sync + 'static {
    const KIND: CoreEventKind;
    fn sequence(&self) -> i64;
    fn is_terminal(&self) -> bool;
}

impl Watched for executions::Model {
    const KIND: CoreEventKind = CoreEventKind::ExecutionUpdated;
    fn sequence(&self) -> i64 {
        self.sequence
    }
    fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

impl Watched for intents::Model {
    const KIND: CoreEventKind = CoreEventKind::IntentUpdated;
    fn sequence(&self) -> i64 {
        self.sequence
    }
    fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// One change as a subscriber sends it: decoded once per event and shared by every subscriber
/// of the entity in this process.
struct Seen<T> {
    sequence: i64,
    terminal: bool,
    item: Arc<T>,
}

impl<T> Seen<T> {
    fn of<M: Watched>(model: M) -> Seen<T>
    where
        T: From<M>,
    {
        Seen {
            sequence: model.sequence(),
            terminal: model.is_terminal(),
            item: Arc::new(T::from(model)),
        }
    }
}

/// One entity's changes: the current row first, then every newer one, until terminal.
struct EntityWatch<M, T> {
    core: CoreContext,
    rx: broadcast::Receiver<Arc<Event>>,
    id: Uuid,
    first: Option<Seen<T>>,
    last_sequence: i64,
    done: bool,
    _row: std::marker::PhantomData<fn() -> M>,
}

impl<M, T> EntityWatch<M, T>
where
    M: Watched,
    M::Entity: EntityTrait<Model = M>,
    <M::Entity as EntityTrait>::PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType = Uuid>,
    T: From<M> + Send + Sync + 'static,
{
    /// Subscribed before `current` was read, so no change in between is lost.
    fn new(core: CoreContext, rx: broadcast::Receiver<Arc<Event>>, id: Uuid, current: M) -> Self {
        EntityWatch {
            core,
            rx,
            id,
            last_sequence: current.sequence() - 1,
            first: Some(Seen::of(current)),
            done: false,
            _row: std::marker::PhantomData,
        }
    }

    fn emit(&mut self, seen: &Seen<T>) -> Arc<T> {
        self.last_sequence = seen.sequence;
        self.done = seen.terminal;
        seen.item.clone()
    }

    async fn next(&mut self) -> Option<Arc<T>> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(self.emit(&first));
        }
        loop {
            match self.rx.recv().await {
                Ok(event) => {
                    if event.kind == M::KIND
                        && event.entity_id == self.id
                        && event.sequence > self.last_sequence
                        && let Some(seen) =
                            event.view(|payload| M::deserialize(payload).ok().map(Seen::<T>::of))
                    {
                        return Some(self.emit(&seen));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(id = %self.id, missed, "subscriber lagged; re-reading");
                    // Boxed: the read is rare, and held inline it would make every idle
                    // subscription as large as a database query in flight.
                    let read = Box::pin(M::Entity::find_by_id(self.id).one(&self.core.db));
                    if let Ok(Some(model)) = read.await
                        && model.sequence() > self.last_sequence
                    {
                        return Some(self.emit(&Seen::of(model)));
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The watch as a stream of GraphQL objects.
    fn stream(self) -> impl Stream<Item = Arc<T>> {
        futures::stream::unfold(
            self,
            |mut w| async move { w.next().await.map(|item| (item, w)) },
        )
    }
}

struct LogWatch {
    core: CoreContext,
    rx: broadcast::Receiver<Arc<Event>>,
    id: Uuid,
    last_id: Option<i64>,
    buffer: VecDeque<logs::Model>,
    /// The execution ended: drain what is left in the database, then complete.
    finishing: bool,
    done: bool,
}

impl LogWatch {
    /// Reads the next page of stored lines after the last one sent (boxed, so a waiting
    /// subscription does not carry the size of a query in flight).
    async fn catch_up(&mut self) -> bool {
        match Box::pin(service::logs_of(
            &self.core,
            self.id,
            self.last_id,
            LOG_PAGE,
        ))
        .await
        {
            Ok(rows) if !rows.is_empty() => {
                self.buffer.extend(rows);
                true
            }
            _ => false,
        }
    }

    async fn next(&mut self) -> Option<LogLine> {
        loop {
            if let Some(row) = self.buffer.pop_front() {
                if self.last_id.is_some_and(|last| row.id <= last) {
                    continue;
                }
                self.last_id = Some(row.id);
                return Some(row.into());
            }
            if self.done {
                return None;
            }
            if self.finishing {
                if !self.catch_up().await {
                    self.done = true;
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(event) => match event.kind {
                    CoreEventKind::LogAppended if event.parent_id == Some(self.id) => {
                        // Read from the store rather than taken from the event: lines written
                        // by different processes can be published out of order, and the
                        // store returns them in order after the last one sent.
                        self.catch_up().await;
                    }
                    // Every line is its own event; the execution's end means: send what is
                    // left, then complete.
                    CoreEventKind::ExecutionUpdated
                        if event.entity_id == self.id
                            && executions::Model::deserialize(&event.payload)
                                .is_ok_and(|e| e.status.is_terminal()) =>
                    {
                        self.finishing = true;
                    }
                    _ => {}
                },
                Err(RecvError::Lagged(_)) => {
                    self.catch_up().await;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Removes credential material from an event payload before it leaves the process.
fn redacted(mut payload: Value) -> Value {
    if let Value::Object(map) = &mut payload {
        map.retain(|key, _| !(key.ends_with("_hash") || key == "secrets" || key == "token"));
    }
    payload
}

#[Subscription]
impl SubscriptionRoot {
    /// The execution now, then every change until it succeeds, fails or is cancelled.
    async fn execution_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Arc<Execution>>> {
        let who = caller(ctx)?.clone();
        let core = ctx.data::<CoreContext>()?.clone();
        let id = parse_id(&id, "execution")?;
        // Subscribe before reading, so no change between the read and the first event is lost.
        let rx = core.events.subscribe();
        let current = service::get_execution(&core, &who, id).await.gql()?;
        Ok(EntityWatch::<_, Execution>::new(core, rx, id, current).stream())
    }

    /// The intent now, then every change until it completes, fails, is cancelled or is
    /// rolled back.
    async fn intent_updated(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Arc<Intent>>> {
        let who = caller(ctx)?.clone();
        let core = ctx.data::<CoreContext>()?.clone();
        let id = parse_id(&id, "intent")?;
        let rx = core.events.subscribe();
        let current =
            orchestrator_core::intent::service::intent_for(&core, &who, id, DbRole::Viewer)
                .await
                .gql()?;
        Ok(EntityWatch::<_, Intent>::new(core, rx, id, current).stream())
    }

    /// Log lines of an execution after line `after` (all when absent), then new lines as they
    /// are written; completes once the execution has ended and every line was sent.
    async fn execution_logs(
        &self,
        ctx: &Context<'_>,
        id: ID,
        after: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = LogLine>> {
        let who = caller(ctx)?.clone();
        let core = ctx.data::<CoreContext>()?.clone();
        let id = parse_id(&id, "execution")?;
        let rx = core.events.subscribe();
        let execution = service::get_execution(&core, &who, id).await.gql()?;
        let mut watch = LogWatch {
            core,
            rx,
            id,
            last_id: after,
            buffer: VecDeque::new(),
            finishing: execution.status.is_terminal(),
            done: false,
        };
        watch.catch_up().await;
        Ok(futures::stream::unfold(watch, |mut w| async move {
            w.next().await.map(|item| (item, w))
        }))
    }

    /// The project's backends now (one item each), then every change of any of them:
    /// status, health, drift. Never completes.
    async fn backend_updated(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = Backend>> {
        let who = caller(ctx)?.clone();
        let core = ctx.data::<CoreContext>()?.clone();
        let project_id = parse_id(&project_id, "project")?;
        let rx = core.events.subscribe();
        let current = orchestrator_core::backends::service::list_backends(
            &core,
            &who,
            project_id,
            None,
            None,
            orchestrator_core::paging::PageRequest::new(Some(100), None).gql()?,
        )
        .await
        .gql()?;
        let mut last: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
        let mut first: VecDeque<backends::Model> = VecDeque::new();
        for (_, row) in current.items {
            last.insert(row.id, row.sequence);
            first.push_back(row);
        }
        Ok(futures::stream::unfold(
            (rx, first, last),
            move |(mut rx, mut first, mut last)| async move {
                if let Some(row) = first.pop_front() {
                    return Some((Backend::from(row), (rx, first, last)));
                }
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if event.kind != CoreEventKind::BackendUpdated
                                || event.project_id != project_id
                                || last
                                    .get(&event.entity_id)
                                    .is_some_and(|s| *s >= event.sequence)
                            {
                                continue;
                            }
                            if let Ok(row) = backends::Model::deserialize(&event.payload) {
                                last.insert(row.id, row.sequence);
                                return Some((Backend::from(row), (rx, first, last)));
                            }
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }

    /// Every status change in a project, optionally only of some kinds. Never completes.
    async fn events(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        kinds: Option<Vec<EventKind>>,
    ) -> async_graphql::Result<impl Stream<Item = Arc<ProjectEvent>>> {
        let who = caller(ctx)?.clone();
        let core = ctx.data::<CoreContext>()?.clone();
        let project_id = parse_id(&project_id, "project")?;
        orchestrator_core::projects::get_authorized(&core, &who, project_id, DbRole::Viewer)
            .await
            .gql()?;
        let kinds: Option<Vec<CoreEventKind>> =
            kinds.map(|k| k.into_iter().map(Into::into).collect());
        let rx = core.events.subscribe();
        Ok(futures::stream::unfold(rx, move |mut rx| {
            let kinds = kinds.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if event.project_id != project_id
                                || kinds.as_ref().is_some_and(|k| !k.contains(&event.kind))
                            {
                                continue;
                            }
                            // Built once per event, shared by every subscriber.
                            let item = event.view(|payload| {
                                Some(ProjectEvent {
                                    kind: event.kind.into(),
                                    entity_id: ID(event.entity_id.to_string()),
                                    parent_id: event.parent_id.map(|p| ID(p.to_string())),
                                    sequence: event.sequence,
                                    payload: Json(redacted(payload.clone())),
                                })
                            });
                            if let Some(item) = item {
                                return Some((item, rx));
                            }
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        }))
    }
}
