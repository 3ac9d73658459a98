//! The migrations build a schema the entities can use, on SQLite and on PostgreSQL: the
//! migrations go up, down and up again, then rows with JSON, enum, default and auto-increment
//! columns are written through the entities and read back unchanged.
//!
//! The PostgreSQL run needs `ORCH_TEST_POSTGRES_URL` (a server where the test may create a
//! database); without it the run is skipped, unless `ORCH_TEST_REQUIRE_SERVICES=1` says the
//! services must be there, in which case it fails.

use chrono::{DateTime, SubsecRound, Utc};
use orchestrator_entity::prelude::*;
use orchestrator_entity::{executions, logs, projects, stages};
use orchestrator_migration::sea_orm_migration::SchemaManager;
use orchestrator_migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait,
    IntoActiveModel, ModelTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

const TABLES: [&str; 14] = [
    "projects",
    "api_keys",
    "backends",
    "prompt_versions",
    "blueprints",
    "pipelines",
    "executions",
    "stages",
    "handshakes",
    "workers",
    "intents",
    "resources",
    "logs",
    "audit_log",
];

#[tokio::test]
async fn migrations_and_entities_agree_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("orchestrator.db").display()
    );
    let db = Database::connect(&url).await.expect("open SQLite file");
    exercise_schema(&db).await;
    db.close().await.expect("close SQLite");
}

#[tokio::test]
async fn migrations_and_entities_agree_on_postgres() {
    let Some(server_url) = postgres_server_url() else {
        return;
    };
    // sqlx may negotiate TLS with the server; rustls needs one process-wide crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let admin = Database::connect(&server_url)
        .await
        .expect("connect to ORCH_TEST_POSTGRES_URL");
    let database = format!("orch_test_{}", Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
        .await
        .expect("create a scratch database");

    // Run in a task so that a failed assertion still lets the scratch database be dropped.
    let url = with_database(&server_url, &database);
    let outcome = tokio::spawn(async move {
        let db = Database::connect(&url)
            .await
            .expect("connect to scratch database");
        exercise_schema(&db).await;
        db.close().await.expect("close scratch database");
    })
    .await;

    admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await
        .expect("drop the scratch database");
    admin.close().await.expect("close admin connection");

    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

#[test]
fn scratch_database_url_replaces_only_the_database_name() {
    assert_eq!(
        with_database(
            "postgres://u:p@localhost:5432/postgres?sslmode=disable",
            "x"
        ),
        "postgres://u:p@localhost:5432/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://localhost:5432", "x"),
        "postgres://localhost:5432/x"
    );
}

/// The server URL to test against, or `None` to skip; panics when services are required.
fn postgres_server_url() -> Option<String> {
    match std::env::var("ORCH_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("ORCH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("ORCH_TEST_REQUIRE_SERVICES=1 but ORCH_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("skipping the PostgreSQL run: ORCH_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// `server_url` pointed at `database` instead of its own database, keeping any query string.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority = base.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let server = match base[authority..].find('/') {
        Some(path) => &base[..authority + path],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Timestamps as the database keeps them: PostgreSQL stores microseconds.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn exercise_schema(db: &DatabaseConnection) {
    migrate_up_down_up(db).await;
    let project = insert_project(db).await;
    let execution = execution_round_trip(db, &project).await;
    defaults_apply(db, &project).await;
    logs_page_in_order(db, &project, &execution).await;
    deleting_a_project_cascades(db, project, &execution).await;
}

async fn migrate_up_down_up(db: &DatabaseConnection) {
    let schema = SchemaManager::new(db);

    Migrator::up(db, None).await.expect("first up");
    for table in TABLES {
        assert!(schema.has_table(table).await.unwrap(), "{table} after up");
    }

    Migrator::down(db, None).await.expect("down");
    for table in TABLES {
        assert!(
            !schema.has_table(table).await.unwrap(),
            "{table} after down"
        );
    }

    Migrator::up(db, None).await.expect("second up");
    for table in TABLES {
        assert!(
            schema.has_table(table).await.unwrap(),
            "{table} after re-up"
        );
    }
    let pending = Migrator::get_pending_migrations(db).await.unwrap();
    assert!(pending.is_empty(), "migrations left pending after up");
}

async fn insert_project(db: &DatabaseConnection) -> projects::Model {
    let project = projects::Model {
        id: Uuid::new_v4(),
        slug: "ml-platform".to_owned(),
        name: "ML platform".to_owned(),
        created_at: now(),
    };
    let inserted = project
        .clone()
        .into_active_model()
        .insert(db)
        .await
        .unwrap();
    assert_eq!(inserted, project);
    let found = Project::find_by_id(project.id).one(db).await.unwrap();
    assert_eq!(found.as_ref(), Some(&project));

    let same_slug = projects::Model {
        id: Uuid::new_v4(),
        ..project.clone()
    };
    assert!(
        same_slug.into_active_model().insert(db).await.is_err(),
        "project slugs are unique"
    );
    project
}

async fn execution_round_trip(
    db: &DatabaseConnection,
    project: &projects::Model,
) -> executions::Model {
    let created = now();
    let execution = executions::Model {
        id: Uuid::new_v4(),
        project_id: project.id,
        pipeline: "summarise".to_owned(),
        status: ExecutionStatus::Running,
        priority: Priority::High,
        input: json!({"document": "s3://bucket/a.pdf", "languages": ["en", "fr"], "pages": 12}),
        output: Some(json!({"summary": "short", "nested": {"ok": true, "score": 0.5}})),
        error: None,
        tokens_used: 12_345_678_901,
        cost_usd: 0.125,
        duration_ms: Some(1_500),
        stages_total: 3,
        stages_completed: 1,
        cancel_requested: true,
        intent_id: Some(Uuid::new_v4()),
        created_by: "alice".to_owned(),
        sequence: 7,
        created_at: created,
        started_at: Some(created),
        finished_at: None,
        updated_at: created,
    };
    let inserted = execution
        .clone()
        .into_active_model()
        .insert(db)
        .await
        .unwrap();
    assert_eq!(inserted, execution);
    let found = Execution::find_by_id(execution.id).one(db).await.unwrap();
    assert_eq!(found.as_ref(), Some(&execution));

    // Enums are stored as their upper-case names, readable without the entity.
    let (status, priority): (String, String) = Execution::find_by_id(execution.id)
        .select_only()
        .column(executions::Column::Status)
        .column(executions::Column::Priority)
        .into_tuple()
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.as_str(), priority.as_str()), ("RUNNING", "HIGH"));

    let running = Execution::find()
        .filter(executions::Column::ProjectId.eq(project.id))
        .filter(executions::Column::Status.eq(ExecutionStatus::Running))
        .all(db)
        .await
        .unwrap();
    assert_eq!(running, vec![execution.clone()]);

    let stage = stages::Model {
        id: Uuid::new_v4(),
        project_id: project.id,
        execution_id: execution.id,
        position: 0,
        name: "extract".to_owned(),
        action: "remote".to_owned(),
        capability: Some("pdf".to_owned()),
        definition: json!({"timeoutMs": 30_000, "maxAttempts": 3}),
        status: StageStatus::Retrying,
        attempt: 2,
        max_attempts: 3,
        input: None,
        output: None,
        error: Some("worker timed out".to_owned()),
        worker_id: None,
        tokens_used: 10,
        cost_usd: 0.01,
        duration_ms: None,
        sequence: 2,
        next_attempt_at: Some(created),
        claimed_by_job: Some("01JDQ5Z4V1Y7N3K8M2P6R9T0WX".to_owned()),
        slot_worker_id: Some(Uuid::new_v4()),
        created_at: created,
        started_at: Some(created),
        finished_at: None,
        updated_at: created,
    };
    stage.clone().into_active_model().insert(db).await.unwrap();
    let stages = execution.find_related(Stage).all(db).await.unwrap();
    assert_eq!(stages, vec![stage.clone()]);

    let same_position = stages::Model {
        id: Uuid::new_v4(),
        ..stage
    };
    assert!(
        same_position.into_active_model().insert(db).await.is_err(),
        "two stages of one execution cannot share a position"
    );
    execution
}

/// Counters, money, flags and sequences start at zero when the caller leaves them out.
async fn defaults_apply(db: &DatabaseConnection, project: &projects::Model) {
    let created = now();
    let inserted = executions::ActiveModel {
        id: Set(Uuid::new_v4()),
        project_id: Set(project.id),
        pipeline: Set("echo".to_owned()),
        status: Set(ExecutionStatus::Queued),
        priority: Set(Priority::Normal),
        input: Set(json!({})),
        created_by: Set("bob".to_owned()),
        created_at: Set(created),
        updated_at: Set(created),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    assert_eq!(inserted.tokens_used, 0);
    assert_eq!(inserted.cost_usd, 0.0);
    assert_eq!((inserted.stages_total, inserted.stages_completed), (0, 0));
    assert!(!inserted.cancel_requested);
    assert_eq!(inserted.sequence, 0);
    assert_eq!(inserted.output, None);
}

async fn logs_page_in_order(
    db: &DatabaseConnection,
    project: &projects::Model,
    execution: &executions::Model,
) {
    let mut written = Vec::new();
    for (level, message) in [
        ("info", "started"),
        ("warn", "slow worker"),
        ("info", "done"),
    ] {
        let line = logs::ActiveModel {
            project_id: Set(project.id),
            execution_id: Set(Some(execution.id)),
            level: Set(level.to_owned()),
            message: Set(message.to_owned()),
            created_at: Set(now()),
            ..Default::default()
        }
        .insert(db)
        .await
        .unwrap();
        written.push(line);
    }
    logs::ActiveModel {
        project_id: Set(project.id),
        level: Set("info".to_owned()),
        message: Set("about nothing in particular".to_owned()),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();

    assert!(
        written.windows(2).all(|pair| pair[0].id < pair[1].id),
        "log ids increase: {:?}",
        written.iter().map(|line| line.id).collect::<Vec<_>>()
    );

    let after_first = Log::find()
        .filter(logs::Column::ExecutionId.eq(execution.id))
        .filter(logs::Column::Id.gt(written[0].id))
        .order_by_asc(logs::Column::Id)
        .all(db)
        .await
        .unwrap();
    assert_eq!(after_first, written[1..]);
}

async fn deleting_a_project_cascades(
    db: &DatabaseConnection,
    project: projects::Model,
    execution: &executions::Model,
) {
    let project_id = project.id;
    project.delete(db).await.unwrap();

    assert_eq!(
        Execution::find_by_id(execution.id).one(db).await.unwrap(),
        None
    );
    let orphan_stages = Stage::find()
        .filter(stages::Column::ExecutionId.eq(execution.id))
        .all(db)
        .await
        .unwrap();
    assert!(orphan_stages.is_empty(), "stages go with their execution");

    // Log lines name their subjects by id only and survive them.
    let lines = Log::find()
        .filter(logs::Column::ProjectId.eq(project_id))
        .all(db)
        .await
        .unwrap();
    assert_eq!(lines.len(), 4);
}
