//! Gateways in the watcher: the Gateway API kinds discovered when their CRDs
//! are installed (at start and again every minute), one reflector each, the
//! Gateways each change concerns queued as `gateway:<namespace>/<name>`, and
//! one Gateway's reconcile: its finalizer, the apply with its routes, grants,
//! backends, namespaces and certificate Secrets (read one by one through the
//! Gateway's references: Secrets are never listed), the statuses written back
//! (the Gateway's, each route's parent entry of this controller, the
//! GatewayClass's Accepted), and on deletion the server's DELETE before the
//! finalizer goes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::controller::Controller;
use super::gateway_store::{
    GatewayStores, KINDS, ROUTE_KINDS, backends_of, gateway_key, ns_of, parents_of,
};
use super::queue::{Outcome, Queue};
use crate::gateway::api::{CONTROLLER_NAME, GROUP};

/// The finalizer that holds a Gateway's deletion until its load balancer is gone.
pub const FINALIZER: &str = "svc-lbaas.io/gateway";
/// How often the kinds are discovered again (CRDs installed later).
pub const DISCOVERY_PERIOD: Duration = Duration::from_secs(60);
const NOT_CONVERGED_PAUSE: Duration = Duration::from_secs(5);

/// Discovers the Gateway API kinds the cluster serves and starts a
/// reflector for each not watched yet; again every `DISCOVERY_PERIOD`.
pub async fn discover_loop(
    client: kube::Client,
    stores: Arc<GatewayStores>,
    queue: Arc<Queue>,
    relisted: Arc<tokio::sync::Notify>,
    namespaces: reflector::store::Writer<Namespace>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut namespaces = Some(namespaces);
    loop {
        match kube::discovery::group(&client, GROUP).await {
            Ok(group) => {
                // Namespaces' labels, for listeners' selectors: once
                // Gateways are served.
                if served_version(&group, "Gateway").is_some()
                    && let Some(writer) = namespaces.take()
                {
                    let stream = watcher(Api::<Namespace>::all(client.clone()), Default::default())
                        .default_backoff()
                        .modify(|n| n.managed_fields_mut().clear())
                        .reflect(writer);
                    let (stores, queue) = (stores.clone(), queue.clone());
                    tasks.spawn(async move {
                        futures_util::pin_mut!(stream);
                        while let Some(item) = stream.next().await {
                            match item {
                                Err(e) => {
                                    tracing::warn!(error = %e, "the Namespace watch failed; retrying");
                                }
                                Ok(watcher::Event::InitDone) => stores.mark_listed("Namespace"),
                                // Labels decide `from: Selector`: every Gateway may change.
                                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                                    for (n, g) in stores.gateway_names() {
                                        queue.add(&gateway_key(&n, &g));
                                    }
                                }
                                Ok(_) => {}
                            }
                        }
                    });
                }
                for kind in KINDS {
                    if stores.watches(kind) {
                        continue;
                    }
                    let Some(ar) = served_version(&group, kind) else {
                        continue;
                    };
                    let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
                    let store = writer.as_reader();
                    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
                    let stream = watcher(api, Default::default())
                        .default_backoff()
                        .modify(|o| o.managed_fields_mut().clear())
                        .reflect(writer);
                    stores.add_kind(kind, ar.clone(), store);
                    tracing::info!(kind, version = %ar.version, "watching a Gateway API kind");
                    tasks.spawn(follow(
                        kind,
                        stream,
                        stores.clone(),
                        queue.clone(),
                        relisted.clone(),
                    ));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "no Gateway API served (its CRDs are not installed)")
            }
        }
        tokio::time::sleep(DISCOVERY_PERIOD).await;
    }
}

/// The version a kind is read at: the group's preferred one if it serves
/// the kind, else the first that does (TCPRoute and UDPRoute are served only
/// in v1alpha2, ReferenceGrant in v1beta1 where v1 is preferred).
fn served_version(group: &kube::discovery::ApiGroup, kind: &str) -> Option<ApiResource> {
    let preferred = group.preferred_version_or_latest().to_string();
    std::iter::once(preferred.as_str())
        .chain(group.versions())
        .find_map(|v| {
            group
                .versioned_resources(v)
                .into_iter()
                .find(|(ar, _)| ar.kind == kind)
                .map(|(ar, _)| ar)
        })
}

type WatchItem = Result<watcher::Event<DynamicObject>, watcher::Error>;

/// One kind's events to the keys of the Gateways they concern; a (re)list
/// of Gateways queues them all and asks for a Gateway sync.
async fn follow(
    kind: &'static str,
    stream: impl futures_util::Stream<Item = WatchItem>,
    stores: Arc<GatewayStores>,
    queue: Arc<Queue>,
    relisted: Arc<tokio::sync::Notify>,
) {
    futures_util::pin_mut!(stream);
    // Deleted routes are queued by their last known parents.
    let mut listing: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(kind, error = %e, "a Gateway API watch failed; retrying");
                continue;
            }
        };
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(o) => listing.extend(stores.keys_for(kind, &o)),
            watcher::Event::InitDone => {
                stores.mark_listed(kind);
                for key in listing.drain(..) {
                    queue.add(&key);
                }
                if kind == "Gateway" {
                    // Deleted while unwatched: the sync collects them.
                    stores.set_gateways_listed();
                    relisted.notify_one();
                }
            }
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                for key in stores.keys_for(kind, &o) {
                    queue.add(&key);
                }
            }
        }
    }
}

/// A status's conditions keep their lastTransitionTime where nothing else
/// changed (Gateway API's rule), so an unchanged status compares equal.
fn keep_transition_times(new: &mut Value, old: &Value) {
    let Some(conditions) = new.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for c in conditions {
        let same = old["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| {
                o["type"] == c["type"]
                    && o["status"] == c["status"]
                    && o["reason"] == c["reason"]
                    && o["message"] == c["message"]
                    && o["observedGeneration"] == c["observedGeneration"]
            });
        if let Some(o) = same {
            c["lastTransitionTime"] = o["lastTransitionTime"].clone();
        }
    }
}

/// A Gateway's status, the old transition times kept for conditions that
/// did not change, its listeners' too.
fn gateway_status(new: &Value, old: &Value) -> Value {
    let mut status = new.clone();
    keep_transition_times(&mut status, old);
    if let Some(listeners) = status.get_mut("listeners").and_then(Value::as_array_mut) {
        for l in listeners {
            let before = old["listeners"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["name"] == l["name"])
                .cloned()
                .unwrap_or(Value::Null);
            keep_transition_times(l, &before);
        }
    }
    status
}

/// A route's `status.parents`: other controllers' entries kept, this
/// controller's replaced by `ours` (their transition times kept).
fn route_parents(current: &Value, ours: &Value, names_this: impl Fn(&Value) -> bool) -> Value {
    let mut parents: Vec<Value> = current["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["controllerName"] != CONTROLLER_NAME || !names_this(&p["parentRef"]))
        .cloned()
        .collect();
    for p in ours["parents"].as_array().into_iter().flatten() {
        let mut p = p.clone();
        let before = current["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["controllerName"] == CONTROLLER_NAME && o["parentRef"] == p["parentRef"])
            .cloned()
            .unwrap_or(Value::Null);
        keep_transition_times(&mut p, &before);
        parents.push(p);
    }
    json!({"parents": parents})
}

impl Controller {
    fn dynamic_api(&self, kind: &str, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
        let ar = self.gateways.resource(kind)?;
        Some(match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        })
    }

    async fn gateway_finalizer(
        &self,
        gw: &DynamicObject,
        present: bool,
    ) -> Result<(), kube::Error> {
        let mut finalizers: Vec<String> = gw
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        if present {
            finalizers.push(FINALIZER.to_string());
        }
        let Some(api) = self.dynamic_api("Gateway", Some(&ns_of(gw))) else {
            return Ok(());
        };
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": gw.resource_version()}});
        api.patch(
            &gw.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
    }

    /// The apply request: the Gateway with its class, the routes that name
    /// it, every ReferenceGrant and Namespace, the routes' Services and
    /// their EndpointSlices, and the Secrets its listeners reference.
    async fn gateway_request(&self, gw: &DynamicObject, class: &DynamicObject) -> Value {
        let (gw_ns, gw_name) = (ns_of(gw), gw.name_any());
        let mut routes = Vec::new();
        let mut backends: BTreeSet<(String, String)> = BTreeSet::new();
        for kind in ROUTE_KINDS {
            for r in self.gateways.all(kind) {
                if parents_of(&r)
                    .iter()
                    .any(|(n, g)| *n == gw_ns && *g == gw_name)
                {
                    backends.extend(backends_of(&r));
                    routes.push(serde_json::to_value(&*r).unwrap_or_default());
                }
            }
        }
        let services: Vec<Value> = self
            .stores
            .services
            .state_filter(|s| backends.contains(&(s.namespace().unwrap_or_default(), s.name_any())))
            .iter()
            .filter_map(|s| serde_json::to_value(&**s).ok())
            .collect();
        let slices: Vec<Value> = self
            .stores
            .slices
            .state_filter(|s| {
                s.labels()
                    .get("kubernetes.io/service-name")
                    .is_some_and(|svc| {
                        backends.contains(&(s.namespace().unwrap_or_default(), svc.clone()))
                    })
            })
            .iter()
            .filter_map(|s| serde_json::to_value(&**s).ok())
            .collect();
        let grants: Vec<Value> = self
            .gateways
            .all("ReferenceGrant")
            .iter()
            .filter_map(|g| serde_json::to_value(&**g).ok())
            .collect();
        let namespaces: Vec<Value> = self
            .namespaces
            .state()
            .iter()
            .filter_map(|n| serde_json::to_value(&**n).ok())
            .collect();
        let mut secrets = Vec::new();
        let refs = gw.data["spec"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|l| l["tls"]["certificateRefs"].as_array().into_iter().flatten());
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for r in refs {
            let core = r["group"].as_str().is_none_or(str::is_empty)
                && r["kind"].as_str().is_none_or(|k| k == "Secret");
            if let (true, Some(name)) = (core, r["name"].as_str()) {
                let ns = r["namespace"]
                    .as_str()
                    .map_or(gw_ns.clone(), str::to_string);
                wanted.insert((ns, name.to_string()));
            }
        }
        for (ns, name) in wanted {
            // Another namespace's Secret is read only where it lets this
            // Gateway in: the server would refuse it, but its key would
            // already have travelled.
            if ns != gw_ns && !self.grants_secret(&gw_ns, &ns, &name) {
                continue;
            }
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
            match api.get_opt(&name).await {
                Ok(Some(s)) => secrets.push(serde_json::to_value(&s).unwrap_or_default()),
                // Absent: the listener's ResolvedRefs says so.
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "could not read a Gateway's certificate Secret")
                }
            }
        }
        json!({
            "gateway": gw, "gatewayClass": class, "routes": routes,
            "referenceGrants": grants, "services": services, "endpointSlices": slices,
            "namespaces": namespaces, "tlsSecrets": secrets,
        })
    }

    /// Whether a ReferenceGrant in `ns` lets Gateways of `gw_ns` use Secret `name`.
    fn grants_secret(&self, gw_ns: &str, ns: &str, name: &str) -> bool {
        self.gateways.all("ReferenceGrant").iter().any(|g| {
            ns_of(g) == ns
                && g.data["spec"]["from"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| {
                        f["group"] == GROUP && f["kind"] == "Gateway" && f["namespace"] == gw_ns
                    })
                && g.data["spec"]["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| {
                        t["group"].as_str().is_none_or(str::is_empty)
                            && t["kind"] == "Secret"
                            && t["name"].as_str().is_none_or(|n| n == name)
                    })
        })
    }

    async fn publish_on(
        &self,
        object: &DynamicObject,
        type_: EventType,
        reason: &str,
        text: String,
    ) {
        let Some(ar) = self.gateways.resource("Gateway") else {
            return;
        };
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(text.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &object.object_ref(&ar)).await {
            tracing::warn!(error = %e, "could not record an event on a Gateway");
        }
    }

    /// Writes the Gateway's and its routes' statuses where they changed,
    /// and the class's Accepted.
    async fn write_gateway_statuses(
        &self,
        gw: &DynamicObject,
        class: &DynamicObject,
        answer: &Value,
    ) -> Result<(), kube::Error> {
        let status = gateway_status(&answer["gateway"]["status"], &gw.data["status"]);
        if status != gw.data["status"]
            && let Some(api) = self.dynamic_api("Gateway", Some(&ns_of(gw)))
        {
            api.patch_status(
                &gw.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await?;
        }
        for outcome in answer["routes"].as_array().into_iter().flatten() {
            let (Some(kind), Some(ns), Some(name)) = (
                outcome["kind"].as_str(),
                outcome["namespace"].as_str(),
                outcome["name"].as_str(),
            ) else {
                continue;
            };
            let Some(route) = self.gateways.find(kind, Some(ns), name) else {
                continue;
            };
            let (gw_ns, gw_name) = (ns_of(gw), gw.name_any());
            let route_ns = ns_of(&route);
            let status = route_parents(&route.data["status"], &outcome["status"], |p| {
                p["name"].as_str() == Some(gw_name.as_str())
                    && p["namespace"].as_str().unwrap_or(&route_ns) == gw_ns
            });
            if status == route.data["status"] {
                continue;
            }
            if let Some(api) = self.dynamic_api(kind, Some(ns)) {
                api.patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await?;
            }
        }
        let accepted = class.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Accepted" && c["status"] == "True");
        if !accepted && let Some(api) = self.dynamic_api("GatewayClass", None) {
            let now = crate::sim::format_time(std::time::SystemTime::now());
            let status = json!({"status": {"conditions": [{
                "type": "Accepted", "status": "True", "reason": "Accepted",
                "message": "served by svc-lbaas on Octavia",
                "observedGeneration": class.metadata.generation,
                "lastTransitionTime": now}]}});
            api.patch_status(
                &class.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
        }
        Ok(())
    }

    pub async fn reconcile_gateway(&self, key: &str) -> Outcome {
        let Some((namespace, name)) = key.split_once('/') else {
            return Outcome::Done;
        };
        if !self.gateways.all_listed() {
            return Outcome::After(Duration::from_secs(1));
        }
        let Some(gw) = self.gateways.find("Gateway", Some(namespace), name) else {
            return Outcome::Done;
        };
        let ours = gw.finalizers().iter().any(|f| f == FINALIZER);
        let class_name = gw.data["spec"]["gatewayClassName"].as_str().unwrap_or("");
        let class = self.gateways.find("GatewayClass", None, class_name);
        // Another controller's class (a Gateway moved to it): ours goes.
        // A class not seen (yet: reflectors list in any order) decides
        // nothing.
        let other = class
            .as_ref()
            .is_some_and(|c| c.data["spec"]["controllerName"] != CONTROLLER_NAME);
        if gw.metadata.deletion_timestamp.is_some() || other {
            if !ours {
                return Outcome::Done;
            }
            // Deleted, or moved to another controller's class: ours goes.
            return match self.server.delete_gateway(namespace, name).await {
                Ok(answer) => {
                    let operations = answer["operations"].as_array().map_or(0, Vec::len);
                    if let Err(e) = self.gateway_finalizer(&gw, false).await {
                        return self.kube_failed(key, "removing the Gateway's finalizer", &e);
                    }
                    tracing::info!(gateway = %key, operations, "Gateway's load balancer deleted; finalizer removed");
                    self.metrics.reconciled("deleted");
                    Outcome::Done
                }
                Err(e) => {
                    self.publish_on(
                        &gw,
                        EventType::Warning,
                        "LoadBalancerDeleteFailed",
                        e.summary(),
                    )
                    .await;
                    self.failed(key, "delete", &e);
                    Outcome::Retry
                }
            };
        }
        let Some(class) = class else {
            // Its class's event queues it again once the class is seen.
            return Outcome::Done;
        };
        if !ours && let Err(e) = self.gateway_finalizer(&gw, true).await {
            return self.kube_failed(key, "adding the Gateway's finalizer", &e);
        }
        let request = self.gateway_request(&gw, &class).await;
        let answer = match self.server.apply_gateway(&request).await {
            Ok(a) => a,
            Err(e) => {
                self.publish_on(&gw, EventType::Warning, "LoadBalancerFailed", e.summary())
                    .await;
                return self.failed(key, "apply", &e);
            }
        };
        if let Err(e) = self.write_gateway_statuses(&gw, &class, &answer).await {
            return self.kube_failed(key, "writing the Gateway API statuses", &e);
        }
        let action = answer["action"].as_str().unwrap_or("").to_string();
        let operations = answer["operations"].as_array().map_or(0, Vec::len);
        let address = answer
            .pointer("/gateway/status/addresses/0/value")
            .and_then(Value::as_str)
            .unwrap_or("none yet")
            .to_string();
        match action.as_str() {
            "created" => {
                self.publish_on(
                    &gw,
                    EventType::Normal,
                    "LoadBalancerCreated",
                    format!("load balancer created, address {address}"),
                )
                .await;
            }
            "updated" => {
                self.publish_on(
                    &gw,
                    EventType::Normal,
                    "LoadBalancerUpdated",
                    format!("load balancer updated ({operations} operations), address {address}"),
                )
                .await;
            }
            _ => {}
        }
        tracing::info!(gateway = %key, action = %action, operations, "Gateway applied");
        self.metrics.reconciled(match action.as_str() {
            "created" => "created",
            "updated" => "updated",
            "unchanged" => "unchanged",
            _ => "other",
        });
        if answer["converged"] == false {
            return Outcome::After(NOT_CONVERGED_PAUSE);
        }
        Outcome::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn routes_name_their_gateways_and_backends_with_the_routes_namespace_by_default() {
        let r = object(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "apps"},
            "spec": {"parentRefs": [{"name": "gw"}, {"name": "edge", "namespace": "infra"},
                                    {"name": "svc", "kind": "Service", "group": ""}],
                     "rules": [{"backendRefs": [{"name": "web", "port": 80},
                                                {"name": "api", "namespace": "shop", "port": 80},
                                                {"name": "bucket", "group": "example.com", "kind": "Bucket"}]}]}}),
        );
        assert_eq!(
            parents_of(&r),
            vec![
                ("apps".into(), "gw".into()),
                ("infra".into(), "edge".into())
            ]
        );
        assert_eq!(
            backends_of(&r),
            vec![("apps".into(), "web".into()), ("shop".into(), "api".into())]
        );
        assert_eq!(gateway_key("infra", "edge"), "gateway:infra/edge");
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time_and_other_controllers_their_entries() {
        let old = json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
            "message": "m", "observedGeneration": 1, "lastTransitionTime": "T0"}],
            "listeners": [{"name": "web", "conditions": [{"type": "Programmed", "status": "True",
                "reason": "Programmed", "message": "p", "lastTransitionTime": "T0"}]}]});
        let new = json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
            "message": "m", "observedGeneration": 1, "lastTransitionTime": "T1"}],
            "listeners": [{"name": "web", "conditions": [{"type": "Programmed", "status": "False",
                "reason": "Pending", "message": "p", "lastTransitionTime": "T1"}]}]});
        let merged = gateway_status(&new, &old);
        assert_eq!(merged["conditions"][0]["lastTransitionTime"], "T0");
        assert_eq!(
            merged["listeners"][0]["conditions"][0]["lastTransitionTime"],
            "T1"
        );

        let current = json!({"parents": [
            {"parentRef": {"name": "gw"}, "controllerName": "example.com/other", "conditions": []},
            {"parentRef": {"name": "gw"}, "controllerName": CONTROLLER_NAME, "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "attached", "lastTransitionTime": "T0"}]}]});
        let ours = json!({"parents": [{"parentRef": {"name": "gw"}, "controllerName": CONTROLLER_NAME,
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "attached", "lastTransitionTime": "T1"}]}]});
        let merged = route_parents(&current, &ours, |p| p["name"] == "gw");
        assert_eq!(merged["parents"].as_array().unwrap().len(), 2);
        assert_eq!(merged["parents"][0]["controllerName"], "example.com/other");
        assert_eq!(
            merged["parents"][1]["conditions"][0]["lastTransitionTime"],
            "T0"
        );
        assert_eq!(merged, current, "nothing changed: nothing to write");
    }
}
