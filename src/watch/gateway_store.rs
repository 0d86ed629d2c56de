//! The reflected Gateway API objects (the kinds the cluster serves), what a
//! Gateway's queue key is, and which Gateways an object's change concerns:
//! what the Service controller and the Gateway reconcile both read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::reflector::Store;

use crate::gateway::api::GROUP;

/// What a Gateway's queue key starts with (no namespace holds a `:`).
pub const KEY_PREFIX: &str = "gateway:";
/// The kinds watched, when the cluster serves them.
pub const KINDS: [&str; 7] = [
    "GatewayClass",
    "Gateway",
    "HTTPRoute",
    "TLSRoute",
    "TCPRoute",
    "UDPRoute",
    "ReferenceGrant",
];
pub(super) const ROUTE_KINDS: [&str; 4] = ["HTTPRoute", "TLSRoute", "TCPRoute", "UDPRoute"];

/// The reflected Gateway API objects, by kind (those the cluster serves).
#[derive(Default)]
pub struct GatewayStores {
    kinds: RwLock<HashMap<&'static str, (ApiResource, Store<DynamicObject>)>>,
    /// Gateways are served and listed: a Gateway sync may run (never from
    /// an empty store that was not listed, which would collect them all).
    listed: std::sync::atomic::AtomicBool,
    /// The kinds (and `Namespace`) whose first list is in.
    ready: std::sync::Mutex<BTreeSet<&'static str>>,
}

pub fn gateway_key(namespace: &str, name: &str) -> String {
    format!("{KEY_PREFIX}{namespace}/{name}")
}

pub(super) fn ns_of(o: &DynamicObject) -> String {
    o.namespace().unwrap_or_else(|| "default".into())
}

/// The Gateways (`namespace`, `name`) a route's parentRefs name.
pub(super) fn parents_of(route: &DynamicObject) -> Vec<(String, String)> {
    let route_ns = ns_of(route);
    route.data["spec"]["parentRefs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["group"].as_str().is_none_or(|g| g == GROUP)
                && p["kind"].as_str().is_none_or(|k| k == "Gateway")
        })
        .filter_map(|p| {
            let name = p["name"].as_str()?.to_string();
            let ns = p["namespace"]
                .as_str()
                .map_or(route_ns.clone(), str::to_string);
            Some((ns, name))
        })
        .collect()
}

/// The Services (`namespace`, `name`) a route's rules send to.
pub(super) fn backends_of(route: &DynamicObject) -> Vec<(String, String)> {
    let route_ns = ns_of(route);
    route.data["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
        .filter(|b| {
            b["group"].as_str().is_none_or(str::is_empty)
                && b["kind"].as_str().is_none_or(|k| k == "Service")
        })
        .filter_map(|b| {
            let name = b["name"].as_str()?.to_string();
            let ns = b["namespace"]
                .as_str()
                .map_or(route_ns.clone(), str::to_string);
            Some((ns, name))
        })
        .collect()
}

impl GatewayStores {
    pub(super) fn store(&self, kind: &str) -> Option<Store<DynamicObject>> {
        let kinds = self.kinds.read().unwrap_or_else(|e| e.into_inner());
        kinds.get(kind).map(|(_, s)| s.clone())
    }

    pub(super) fn resource(&self, kind: &str) -> Option<ApiResource> {
        let kinds = self.kinds.read().unwrap_or_else(|e| e.into_inner());
        kinds.get(kind).map(|(ar, _)| ar.clone())
    }

    /// Whether every kind watched, and the Namespaces, were listed: before,
    /// a Gateway's apply would lack routes or grants the cluster has and
    /// take down what they programmed.
    pub fn all_listed(&self) -> bool {
        let kinds: Vec<&'static str> = self
            .kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready.contains("Namespace") && kinds.iter().all(|k| ready.contains(k))
    }

    pub(super) fn mark_listed(&self, kind: &'static str) {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind);
    }

    /// Whether a reflector of `kind` runs.
    pub(super) fn watches(&self, kind: &str) -> bool {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(kind)
    }

    pub(super) fn add_kind(
        &self,
        kind: &'static str,
        ar: ApiResource,
        store: Store<DynamicObject>,
    ) {
        self.kinds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind, (ar, store));
    }

    /// Gateways were listed: the Gateway sync may run.
    pub(super) fn set_gateways_listed(&self) {
        self.listed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether Gateways are watched and were listed.
    pub fn gateways_listed(&self) -> bool {
        self.listed.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn all(&self, kind: &str) -> Vec<Arc<DynamicObject>> {
        self.store(kind).map(|s| s.state()).unwrap_or_default()
    }

    pub(super) fn find(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<DynamicObject>> {
        self.store(kind)?
            .state_filter(|o| o.name_any() == name && namespace.is_none_or(|n| ns_of(o) == n))
            .into_iter()
            .next()
    }

    /// Every Gateway of the cluster (`namespace`, `name`).
    pub fn gateway_names(&self) -> Vec<(String, String)> {
        self.all("Gateway")
            .iter()
            .map(|g| (ns_of(g), g.name_any()))
            .collect()
    }

    /// The Gateways whose routes send to Service `namespace/name`.
    pub fn keys_for_service(&self, namespace: &str, name: &str) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for kind in ROUTE_KINDS {
            for route in self.all(kind) {
                if backends_of(&route)
                    .iter()
                    .any(|(n, s)| n == namespace && s == name)
                {
                    keys.extend(
                        parents_of(&route)
                            .into_iter()
                            .map(|(n, g)| gateway_key(&n, &g)),
                    );
                }
            }
        }
        keys.into_iter().collect()
    }

    /// The Gateways a change of `object` (of `kind`) concerns.
    pub(super) fn keys_for(&self, kind: &str, object: &DynamicObject) -> Vec<String> {
        match kind {
            "Gateway" => vec![gateway_key(&ns_of(object), &object.name_any())],
            "GatewayClass" => self
                .all("Gateway")
                .iter()
                .filter(|g| g.data["spec"]["gatewayClassName"].as_str() == Some(&object.name_any()))
                .map(|g| gateway_key(&ns_of(g), &g.name_any()))
                .collect(),
            // A grant may open any Gateway's reference: all of them.
            "ReferenceGrant" => self
                .gateway_names()
                .iter()
                .map(|(n, g)| gateway_key(n, g))
                .collect(),
            _ => parents_of(object)
                .into_iter()
                .map(|(n, g)| gateway_key(&n, &g))
                .collect(),
        }
    }
}
