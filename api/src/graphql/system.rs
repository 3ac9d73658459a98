//! `health` and `viewer`.

use async_graphql::{Context, Object, SimpleObject};
use orchestrator_core::CoreContext;

use super::enums::Role;
use super::projects::Project;
use crate::auth::caller;
use crate::error::{GqlResult, IntoGql};

/// Liveness of the API process.
#[derive(SimpleObject)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// The running version.
    pub version: String,
}

/// A project and the caller's role in it.
#[derive(SimpleObject)]
pub struct ProjectRole {
    pub project: Project,
    pub role: Role,
}

/// The caller.
#[derive(SimpleObject)]
pub struct Viewer {
    /// The token subject.
    pub subject: String,
    /// A role over every project, if the token carries one.
    pub global_role: Option<Role>,
    /// Every project the caller can see, with the effective role.
    pub projects: Vec<ProjectRole>,
}

#[derive(Default)]
pub struct SystemQuery;

#[Object]
impl SystemQuery {
    /// Answers without credentials.
    async fn health(&self) -> Health {
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// Who am I, and my role per project.
    async fn viewer(&self, ctx: &Context<'_>) -> GqlResult<Viewer> {
        let who = caller(ctx)?;
        let core = ctx.data::<CoreContext>()?;
        let projects = orchestrator_core::projects::list_visible(core, who)
            .await
            .gql()?;
        Ok(Viewer {
            subject: who.subject.clone(),
            global_role: who.global_role.map(Into::into),
            projects: projects
                .into_iter()
                .filter_map(|p| {
                    who.role_in(&p.slug).map(|role| ProjectRole {
                        role: role.into(),
                        project: p.into(),
                    })
                })
                .collect(),
        })
    }
}
