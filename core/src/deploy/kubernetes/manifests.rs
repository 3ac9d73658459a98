//! From a rendered component to the objects to apply: its multi-document YAML parsed into
//! dynamic objects, checked against the component's object list (same order), placed in the
//! target namespace and stamped with their spec hash.

use kube::api::DynamicObject;
use serde::Deserialize;

use super::SPEC_HASH_ANNOTATION;
use super::kinds::{KnownKind, describe, known_kind};
use crate::blueprint::{ObjectRef, RenderedComponent};
use crate::deploy::DeployError;

/// One object of a component, ready to apply.
#[derive(Debug, Clone)]
pub(super) struct Document {
    /// The object as it is sent, spec-hash annotation included.
    pub object: DynamicObject,
    /// The object as the renderer recorded it.
    pub reference: ObjectRef,
    /// Where its kind lives in the API.
    pub kind: KnownKind,
    /// The namespace it is applied in; `None` for cluster-wide kinds.
    pub namespace: Option<String>,
}

impl Document {
    /// The object's name.
    pub fn name(&self) -> &str {
        &self.reference.name
    }

    /// `Kind namespace/name`, for progress lines and errors.
    pub fn describe(&self) -> String {
        describe(
            &self.reference.kind,
            self.namespace.as_deref(),
            &self.reference.name,
        )
    }

    /// True for the Namespace object called `namespace`.
    pub fn is_namespace(&self, namespace: &str) -> bool {
        self.reference.kind == "Namespace" && self.reference.name == namespace
    }

    /// The values of a Secret's `stringData` and `data`; nothing for other kinds.
    pub fn secret_values(&self) -> Vec<&str> {
        if self.reference.kind != "Secret" {
            return Vec::new();
        }
        ["stringData", "data"]
            .iter()
            .filter_map(|field| self.object.data.get(field)?.as_object())
            .flat_map(|entries| entries.values().filter_map(|value| value.as_str()))
            .collect()
    }
}

/// Parses `component`'s manifests for applying in `namespace`.
///
/// Fails (permanently) when the YAML does not parse, a document's kind is not one the
/// deployer handles, or the documents and the component's object list disagree — each of
/// which means the plan is broken, and applying half of it would not help.
pub(super) fn parse_documents(
    component: &RenderedComponent,
    namespace: &str,
) -> Result<Vec<Document>, DeployError> {
    let broken = |reason: String| {
        DeployError::permanent(format!(
            "the manifests of {} cannot be applied: {reason}",
            component.name
        ))
    };
    let mut objects = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(&component.manifests).enumerate()
    {
        // Syntax errors only say where; they never quote the text, so no secret leaks.
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| broken(format!("document {} is not valid YAML: {e}", index + 1)))?;
        if value.is_null() {
            continue;
        }
        let object: DynamicObject = serde_json::from_value(value).map_err(|_| {
            broken(format!(
                "document {} is not a Kubernetes object (it needs apiVersion, kind and metadata)",
                index + 1
            ))
        })?;
        objects.push(object);
    }
    if objects.len() != component.objects.len() {
        return Err(broken(format!(
            "{} documents for {} recorded objects",
            objects.len(),
            component.objects.len()
        )));
    }
    objects
        .into_iter()
        .zip(&component.objects)
        .map(|(object, reference)| prepare(object, reference, namespace).map_err(&broken))
        .collect()
}

fn prepare(
    mut object: DynamicObject,
    reference: &ObjectRef,
    namespace: &str,
) -> Result<Document, String> {
    let types = object.types.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    if types.kind != reference.kind || name != reference.name {
        return Err(format!(
            "document {} {name} does not match recorded object {} {}",
            types.kind, reference.kind, reference.name
        ));
    }
    let kind = known_kind(&types.kind).ok_or_else(|| {
        format!(
            "{} {name}: the deployer does not handle kind {}",
            types.kind, types.kind
        )
    })?;
    if types.api_version != kind.api_version() {
        return Err(format!(
            "{} {name} has apiVersion {}, expected {}",
            types.kind,
            types.api_version,
            kind.api_version()
        ));
    }
    let target = if kind.namespaced {
        match object.metadata.namespace.as_deref() {
            None => object.metadata.namespace = Some(namespace.to_owned()),
            Some(own) if own == namespace => {}
            Some(own) => {
                return Err(format!(
                    "{} {name} is rendered for namespace {own}, not {namespace}",
                    types.kind
                ));
            }
        }
        Some(namespace.to_owned())
    } else {
        object.metadata.namespace = None;
        None
    };
    object
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(SPEC_HASH_ANNOTATION.to_owned(), reference.spec_hash.clone());
    Ok(Document {
        object,
        reference: ObjectRef {
            namespace: target.clone(),
            ..reference.clone()
        },
        kind,
        namespace: target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::{Catalogue, Platform, RenderRequest, render};

    fn redis(namespace: &str) -> RenderedComponent {
        let mut request = RenderRequest::new(&["redis"], Platform::Kubernetes);
        request.namespace = namespace.to_owned();
        let plan = render(&Catalogue::builtin(), &request).unwrap();
        plan.component("redis").unwrap().clone()
    }

    #[test]
    fn documents_follow_the_recorded_objects_and_carry_their_hash() {
        let component = redis("cache");
        let documents = parse_documents(&component, "cache").unwrap();
        let kinds: Vec<_> = documents.iter().map(|d| d.describe()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace cache",
                "Secret cache/redis-secrets",
                "StatefulSet cache/redis",
                "Service cache/redis"
            ]
        );
        for (document, reference) in documents.iter().zip(&component.objects) {
            let annotations = document.object.metadata.annotations.as_ref().unwrap();
            assert_eq!(annotations[SPEC_HASH_ANNOTATION], reference.spec_hash);
        }
        assert!(!documents[1].secret_values().is_empty());
        assert!(documents[2].secret_values().is_empty());
    }

    #[test]
    fn refuses_unknown_kinds_and_foreign_namespaces() {
        let mut component = redis("cache");
        let error = parse_documents(&component, "elsewhere").unwrap_err();
        assert!(
            error.message.contains("rendered for namespace cache"),
            "{error}"
        );
        component.manifests = component
            .manifests
            .replace("kind: Service", "kind: CronJob");
        component.objects[3].kind = "CronJob".to_owned();
        let error = parse_documents(&component, "cache").unwrap_err();
        assert!(!error.retryable);
        assert!(
            error.message.contains("does not handle kind CronJob"),
            "{error}"
        );
    }
}
