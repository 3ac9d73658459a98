//! Blueprint engine: parse, validate, resolve dependencies, render for Kubernetes and Docker.
//!
//! A blueprint is a YAML application template (`blueprints/README.md` documents the format).
//! The flow is pure and synchronous, so plans and dry runs are instant:
//!
//! 1. [`parse_blueprint`] / [`parse_blueprint_in`] read YAML into a [`Blueprint`], reporting
//!    every problem as a [`BlueprintError`] with field path, line and column.
//! 2. A [`Catalogue`] holds the builtins (compiled in) plus a project's own blueprints, and
//!    computes install order ([`Catalogue::resolve_install_order`]).
//! 3. [`render`] turns a [`RenderRequest`] into a [`RenderedPlan`]: per component, Kubernetes
//!    manifests or a Docker container, plus a docker-compose export. Secrets are generated
//!    once and returned for the caller to store; they never appear as literal values in
//!    Deployments, Docker plans or compose files.
//!
//! Around the pure engine, [`store`] keeps each project's own blueprints in the database
//! (versioned, validated before anything is written), [`browse`] reads a project's catalogue
//! and renders previews with secrets masked, and [`usage`] decides what still uses a
//! blueprint.

#![warn(missing_docs)]

pub mod browse;
mod catalogue;
mod component;
mod compose;
mod k8s_workload;
mod model;
mod parse;
mod quantity;
mod references;
mod render;
mod render_docker;
mod render_k8s;
mod resolve;
mod schema;
mod source_map;
pub mod store;
pub(crate) mod suggest;
mod template;
pub mod usage;
mod validate;
mod vars;

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod render_options_tests;
#[cfg(test)]
mod render_tests;

pub use catalogue::{BUILTIN_SOURCES, Catalogue, Origin};
pub use model::{
    Blueprint, Defaults, Healthcheck, ParamType, Parameter, Platform, PlatformSupport, PortSpec,
    Protocol, ResourceAmounts, Resources, TemplateValue, VolumeSpec,
};
pub use parse::{BlueprintError, parse_blueprint, parse_blueprint_in};
pub use references::validate_against;
pub use render::{
    Features, ObjectRef, RenderError, RenderRequest, RenderedComponent, RenderedPlan, render,
    render_blueprint,
};
pub use render_docker::{
    DockerContainer, DockerHealthcheck, DockerMount, DockerPlan, DockerPort, DockerVolume,
};
pub use resolve::ResolveError;
pub use schema::json_schema;
pub use validate::{IMPLICIT_PARAMETERS, is_dns_label};
