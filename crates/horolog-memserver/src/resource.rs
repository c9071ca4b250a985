//! The resource types the API server knows: which URL segment maps to which kind, its scope,
//! whether it has a status subresource, and (for custom resources) the schema it defaults by.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event as CoreEvent, Namespace, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde_json::Value;

/// One kind of object the server stores and serves, e.g. `pods` in the core group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceType {
    /// API group, `""` for the core group.
    pub group: String,
    /// API version within the group, e.g. `v1`.
    pub version: String,
    /// The URL segment, e.g. `pods`.
    pub plural: String,
    /// The object kind, e.g. `Pod`.
    pub kind: String,
    /// True when objects live in a namespace.
    pub namespaced: bool,
    /// True when `.status` is written only through the `/status` subresource.
    pub status_subresource: bool,
    /// The version's `openAPIV3Schema` (custom resources), whose `default`s the server applies
    /// to every object it writes; `None` for no defaulting (the server keeps a schema only if it
    /// declares a default).
    pub schema: Option<Arc<Value>>,
}

/// A resource scope whose namespacing is known at compile time (implemented for k8s-openapi's
/// two static scopes), so [`ResourceType::of`] can read it off a Rust type.
pub trait StaticScope {
    /// True for namespaced resources.
    const NAMESPACED: bool;
}

impl StaticScope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl StaticScope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

impl ResourceType {
    /// The resource type of a Rust Kubernetes type, without a status subresource.
    pub fn of<K>() -> Self
    where
        K: kube::Resource<DynamicType = ()>,
        K::Scope: StaticScope,
    {
        ResourceType {
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            namespaced: <K::Scope as StaticScope>::NAMESPACED,
            status_subresource: false,
            schema: None,
        }
    }

    /// The same resource type, with a `/status` subresource.
    pub fn with_status_subresource(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// The `apiVersion` of its objects, e.g. `v1` or `horolog.dev/v1alpha1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as the API server names a resource in messages, e.g. `jobruns.horolog.dev`.
    pub(crate) fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The resource types a CustomResourceDefinition declares: one per served version, with
    /// that version's schema.
    pub fn from_crd(crd: &CustomResourceDefinition) -> Vec<ResourceType> {
        let spec = &crd.spec;
        spec.versions
            .iter()
            .filter(|version| version.served)
            .map(|version| ResourceType {
                group: spec.group.clone(),
                version: version.name.clone(),
                plural: spec.names.plural.clone(),
                kind: spec.names.kind.clone(),
                namespaced: spec.scope == "Namespaced",
                status_subresource: version.subresources.as_ref().is_some_and(|s| s.status.is_some()),
                schema: version
                    .schema
                    .as_ref()
                    .and_then(|schema| schema.open_api_v3_schema.as_ref())
                    .and_then(|schema| serde_json::to_value(schema).ok())
                    .map(Arc::new),
            })
            .collect()
    }

    /// [`ResourceType::from_crd`] of a CRD given as JSON (as stored); empty if it is not one.
    pub(crate) fn from_crd_value(object: &Value) -> Vec<ResourceType> {
        serde_json::from_value::<CustomResourceDefinition>(object.clone())
            .map(|crd| ResourceType::from_crd(&crd))
            .unwrap_or_default()
    }

    /// True for `customresourcedefinitions.apiextensions.k8s.io`: creating one registers the
    /// resource types it declares, as a real API server starts serving them.
    pub(crate) fn is_crd(&self) -> bool {
        self.group == "apiextensions.k8s.io" && self.plural == "customresourcedefinitions"
    }

    /// The built-in resources the server knows from the start; custom resources come from
    /// their CRDs ([`super::ApiServer::register_crd`], or creating the CRD object).
    pub fn defaults() -> Vec<ResourceType> {
        vec![
            ResourceType::of::<Pod>().with_status_subresource(),
            ResourceType::of::<ConfigMap>(),
            ResourceType::of::<Secret>(),
            ResourceType::of::<Service>().with_status_subresource(),
            ResourceType::of::<ServiceAccount>(),
            ResourceType::of::<CoreEvent>(),
            ResourceType::of::<Namespace>().with_status_subresource(),
            ResourceType::of::<Event>(),
            ResourceType::of::<Lease>(),
            ResourceType::of::<Job>().with_status_subresource(),
            ResourceType::of::<CronJob>().with_status_subresource(),
            ResourceType::of::<CustomResourceDefinition>().with_status_subresource(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_group_plural_and_scope_off_rust_types() {
        let leases = ResourceType::of::<Lease>();
        assert_eq!(leases.api_version(), "coordination.k8s.io/v1");
        assert_eq!(leases.plural, "leases");
        assert!(leases.namespaced);
        let namespaces = ResourceType::of::<Namespace>();
        assert_eq!(namespaces.api_version(), "v1");
        assert!(!namespaces.namespaced);
    }
}
