//! Which objects a verb acts on: names, `-l SELECTOR` or `--all`, as kubectl's verbs take them.

use std::fmt::Debug;

use clap::Args;
use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::{Error, Scope};

/// The objects a verb acts on: names, or every one `-l` selects, or `--all`.
#[derive(Debug, Clone, Default, Args)]
pub struct Targets {
    /// The names (none with -l or --all).
    pub names: Vec<String>,
    /// Every object whose labels match, e.g. -l team=data,tier!=batch.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Every object in the namespace (with -A, in every namespace).
    #[arg(long)]
    pub all: bool,
}

impl Targets {
    /// The names given.
    pub fn named(names: &[&str]) -> Targets {
        Targets {
            names: names.iter().map(|n| n.to_string()).collect(),
            ..Targets::default()
        }
    }

    /// Checks that exactly one way of choosing is given.
    pub fn check(&self, kind: &str) -> Result<(), Error> {
        let ways = usize::from(!self.names.is_empty())
            + usize::from(self.selector.is_some())
            + usize::from(self.all);
        match ways {
            1 => Ok(()),
            0 => Err(Error::Invalid(format!(
                "name a {kind}, or choose with -l SELECTOR or --all"
            ))),
            _ => Err(Error::Invalid(format!(
                "give {kind} names, -l SELECTOR or --all, not more than one of them"
            ))),
        }
    }

    /// The objects `-l` or `--all` choose, as (namespace, object), sorted by namespace and
    /// name; `None` when names were given (the verb looks each up itself, with suggestions).
    pub async fn select<K>(&self, client: &Client, scope: &Scope, kind: &str) -> Result<Option<Vec<K>>, Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        self.check(kind)?;
        if !self.names.is_empty() {
            return Ok(None);
        }
        let api: Api<K> = match scope.all_namespaces {
            true => Api::all(client.clone()),
            false => Api::namespaced(client.clone(), &scope.namespace),
        };
        let mut params = ListParams::default();
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        let mut items = api
            .list(&params)
            .await
            .map_err(Error::api(format!("listing {}s", kind.to_lowercase())))?
            .items;
        items.sort_by_key(|o| (o.namespace(), o.name_any()));
        Ok(Some(items))
    }
}

/// What `-l` / `--all` say when they choose nothing.
pub fn nothing_chosen(kind: &str, targets: &Targets, scope: &Scope) -> String {
    let place = match scope.all_namespaces {
        true => "in any namespace".to_string(),
        false => format!("in namespace {}", scope.namespace),
    };
    match &targets.selector {
        Some(selector) => format!("no {kind} matches -l {selector} {place}"),
        None => format!("no {kind} {place}"),
    }
}

/// The scope of one chosen object: its own namespace, no -A.
pub fn scope_of(scope: &Scope, namespace: Option<String>) -> Scope {
    Scope {
        namespace: namespace.unwrap_or_else(|| scope.namespace.clone()),
        all_namespaces: false,
        output: scope.output.clone(),
    }
}
