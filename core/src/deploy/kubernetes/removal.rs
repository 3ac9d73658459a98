//! Removing what an apply created: objects are deleted one at a time in the order given,
//! objects already gone are skipped, namespaces are never deleted, and volume claims (named
//! ones and those a StatefulSet created from its claim templates) only on request.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{DeleteParams, DynamicObject, ListParams};
use kube::{Api, Client};

use super::api_errors::{api_failure, is_not_found};
use super::kinds::{describe, known_kind};
use super::redaction::Redactor;
use crate::deploy::{DeployError, Progress, RecordedObject};

/// Deletes `objects` in order; see the module documentation.
pub(super) async fn remove_objects(
    client: &Client,
    objects: &[RecordedObject],
    remove_volumes: bool,
    progress: &Progress,
) -> Result<(), DeployError> {
    for object in objects {
        let what = describe(&object.kind, object.namespace.as_deref(), &object.name);
        match object.kind.as_str() {
            "Namespace" => {
                let _ = progress.send(format!("kept {what}: namespaces are never deleted"));
                continue;
            }
            "PersistentVolumeClaim" if !remove_volumes => {
                let _ = progress.send(format!("kept volume claim {}", claim_name(object)));
                continue;
            }
            _ => {}
        }
        let kind = known_kind(&object.kind).ok_or_else(|| {
            DeployError::permanent(format!(
                "cannot remove {what}: the deployer does not handle kind {}",
                object.kind
            ))
        })?;
        let namespace = match (kind.namespaced, object.namespace.as_deref()) {
            (true, None) => {
                return Err(DeployError::permanent(format!(
                    "cannot remove {what}: no namespace was recorded for it"
                )));
            }
            (true, namespace) => namespace,
            (false, _) => None,
        };
        delete(&kind.api(client, namespace), &object.name, &what, progress).await?;
        if let ("StatefulSet", Some(namespace)) = (object.kind.as_str(), namespace) {
            volume_claims_of_set(client, namespace, &object.name, remove_volumes, progress).await?;
        }
    }
    Ok(())
}

fn claim_name(object: &RecordedObject) -> String {
    match &object.namespace {
        Some(namespace) => format!("{namespace}/{}", object.name),
        None => object.name.clone(),
    }
}

/// Deletes one object; one already gone counts as deleted.
async fn delete(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    progress: &Progress,
) -> Result<(), DeployError> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            let _ = progress.send(format!("deleted {what}"));
            Ok(())
        }
        Err(error) if is_not_found(&error) => {
            let _ = progress.send(format!("{what} was already gone"));
            Ok(())
        }
        Err(error) => Err(api_failure(
            &format!("deleting {what}"),
            error,
            &Redactor::default(),
        )),
    }
}

/// Deletes, or reports as kept, the claims a StatefulSet created from its claim templates.
///
/// Kubernetes keeps them when the set is deleted. They carry the set's pod labels and are
/// named `<template>-<set>-<ordinal>`; both are checked, so a claim of another set whose
/// name merely starts the same is left alone.
async fn volume_claims_of_set(
    client: &Client,
    namespace: &str,
    set: &str,
    remove_volumes: bool,
    progress: &Progress,
) -> Result<(), DeployError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let selector =
        format!("app.kubernetes.io/managed-by=orchestrator,app.kubernetes.io/name={set}");
    let what = describe("StatefulSet", Some(namespace), set);
    let claims = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| {
            api_failure(
                &format!("listing the volume claims of {what}"),
                e,
                &Redactor::default(),
            )
        })?;
    let claim_kind = known_kind("PersistentVolumeClaim").ok_or_else(|| {
        DeployError::permanent("PersistentVolumeClaim is missing from the kind table")
    })?;
    let claim_api = claim_kind.api(client, Some(namespace));
    for claim in claims.items {
        let Some(name) = claim.metadata.name.as_deref() else {
            continue;
        };
        if !is_claim_of_set(name, set) {
            continue;
        }
        if remove_volumes {
            let what = describe("PersistentVolumeClaim", Some(namespace), name);
            delete(&claim_api, name, &what, progress).await?;
        } else {
            let _ = progress.send(format!("kept volume claim {namespace}/{name}"));
        }
    }
    Ok(())
}

/// True for `<template>-<set>-<ordinal>`.
fn is_claim_of_set(claim: &str, set: &str) -> bool {
    claim.rsplit_once('-').is_some_and(|(rest, ordinal)| {
        !ordinal.is_empty()
            && ordinal.bytes().all(|b| b.is_ascii_digit())
            && rest
                .strip_suffix(set)
                .is_some_and(|template| template.len() > 1 && template.ends_with('-'))
    })
}

#[cfg(test)]
mod tests {
    use super::is_claim_of_set;

    #[test]
    fn recognises_claims_made_from_templates() {
        assert!(is_claim_of_set("data-redis-0", "redis"));
        assert!(is_claim_of_set("media-authentik-12", "authentik"));
        assert!(!is_claim_of_set("data-redis-cache-0", "redis"));
        assert!(!is_claim_of_set("redis-0", "redis"));
        assert!(!is_claim_of_set("data-redis-x", "redis"));
    }
}
