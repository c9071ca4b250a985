//! The resource types the API server knows: which URL segment maps to which kind, its scope,
//! and whether it has a status subresource.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event as CoreEvent, Namespace, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};

use crate::api::{JobRun, Schedule};

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

    /// The resources the operator (and its tests) use; [`super::ApiServer::register`] adds more.
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
            ResourceType::of::<Schedule>().with_status_subresource(),
            ResourceType::of::<JobRun>().with_status_subresource(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_group_plural_and_scope_off_rust_types() {
        let jobruns = ResourceType::of::<JobRun>();
        assert_eq!(jobruns.api_version(), "horolog.dev/v1alpha1");
        assert_eq!(jobruns.plural, "jobruns");
        assert!(jobruns.namespaced);
        let namespaces = ResourceType::of::<Namespace>();
        assert_eq!(namespaces.api_version(), "v1");
        assert!(!namespaces.namespaced);
    }
}
