//! One Service's reconcile: the finalizer before the first apply, the apply
//! with the Service's EndpointSlices (or Endpoints), the status written with
//! server-side apply, an Event when something changed or failed, and on
//! deletion the server's DELETE before the finalizer goes.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::metrics::WatchMetrics;
use super::queue::Outcome;
use super::server::{CallError, ServerClient};

/// The finalizer that holds a Service's deletion until its load balancer is gone.
pub const FINALIZER: &str = "svc-lbaas.io/load-balancer";
/// The field manager of the status this watcher writes.
pub const FIELD_MANAGER: &str = "svc-lbaas-watcher";
/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How soon an apply that did not converge (202) is repeated.
const NOT_CONVERGED_PAUSE: Duration = Duration::from_secs(5);

pub struct Stores {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub endpoints: Store<Endpoints>,
}

pub struct Controller {
    pub client: kube::Client,
    pub server: ServerClient,
    pub stores: Stores,
    pub recorder: Recorder,
    pub metrics: Arc<WatchMetrics>,
    /// The Gateway API objects (the kinds the cluster serves).
    pub gateways: Arc<super::gateway_store::GatewayStores>,
    /// Namespaces and their labels (listeners' `from: Selector`), reflected
    /// once Gateways are served.
    pub namespaces: Store<k8s_openapi::api::core::v1::Namespace>,
}

/// `namespace/name`.
pub fn key_of(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

/// The Service an EndpointSlice belongs to.
pub fn slice_service_key(slice: &EndpointSlice) -> Option<String> {
    let service = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some(key_of(slice.namespace().as_deref()?, service))
}

pub fn has_finalizer(service: &Service) -> bool {
    service.finalizers().iter().any(|f| f == FINALIZER)
}

/// The part of a Service that a reconcile reads: a change elsewhere needs
/// none. Neither the status nor the finalizer (both written by this watcher:
/// each would cost one more apply per Service; a finalizer someone else
/// removes comes back at the next resync).
pub fn fingerprint(service: &Service) -> String {
    let m = &service.metadata;
    // The health annotation is this watcher's own note, not input.
    let annotations = m
        .annotations
        .as_ref()
        .map(|a| {
            a.iter()
                .filter(|(k, _)| k.as_str() != HEALTH_ANNOTATION)
                .collect::<std::collections::BTreeMap<_, _>>()
        })
        .filter(|a| !a.is_empty());
    serde_json::to_string(&(
        &service.spec,
        &annotations,
        &m.labels,
        m.deletion_timestamp.is_some(),
    ))
    .unwrap_or_default()
}

/// Where the watcher keeps the last unhealthy operating status it reported
/// for a Service's load balancer (absent: healthy), so that a change is one
/// Event, not one per resync nor per new leader.
pub const HEALTH_ANNOTATION: &str = "svc-lbaas.io/operating-status";

/// The most members a health text names (then `and N more`).
const NAMED_DOWN: usize = 5;

/// What an answer says of the load balancer's health: `None` when healthy
/// (neither it DEGRADED or ERROR nor a member ERROR), else a short text such
/// as `DEGRADED; members down: 10.1.0.6:8080`. A Service that joined
/// another's load balancer (its answer shows no name) speaks only of its own
/// members: the load balancer's status is its owner's to report.
pub fn health(answer: &Value) -> Option<String> {
    let lb = answer.get("loadBalancer").filter(|l| l.is_object())?;
    let owner = lb.get("name").is_some_and(Value::is_string);
    let status = if owner {
        lb["operatingStatus"].as_str().unwrap_or("")
    } else {
        ""
    };
    // Only the Service's own listeners (`ns/name:PROTOCOL:port`): an owner's
    // view shows its sharers' too, whose members are theirs to report.
    let own = answer["service"].as_str().map(|s| format!("{s}:"));
    let mut down: Vec<String> = lb["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| match (&own, l["name"].as_str()) {
            (Some(own), Some(name)) => name.starts_with(own.as_str()),
            _ => true,
        })
        .flat_map(|l| l["pool"]["members"].as_array().cloned().unwrap_or_default())
        .filter(|m| m["operatingStatus"] == "ERROR")
        .map(|m| {
            let address = m["address"].as_str().unwrap_or("?");
            let port = &m["protocolPort"];
            if address.contains(':') {
                format!("[{address}]:{port}")
            } else {
                format!("{address}:{port}")
            }
        })
        .collect();
    down.sort();
    down.dedup();
    if !matches!(status, "DEGRADED" | "ERROR") && down.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !status.is_empty() {
        parts.push(status.to_string());
    }
    if !down.is_empty() {
        let more = down.len().saturating_sub(NAMED_DOWN);
        let mut named = down[..down.len().min(NAMED_DOWN)].join(", ");
        if more > 0 {
            named.push_str(&format!(" and {more} more"));
        }
        parts.push(format!("members down: {named}"));
    }
    Some(parts.join("; "))
}

/// A `status.loadBalancer` as the API server keeps it: an ingress entry with
/// an IP and no `ipMode` is `ipMode: VIP` (the default an API server fills
/// in since Kubernetes 1.30), an empty ingress list is none.
fn normalized(mut lb: Value) -> Value {
    if let Some(entries) = lb.get_mut("ingress").and_then(Value::as_array_mut) {
        for e in entries.iter_mut() {
            if e.get("ip").is_some()
                && e.get("ipMode").is_none()
                && let Some(o) = e.as_object_mut()
            {
                o.insert("ipMode".into(), json!("VIP"));
            }
        }
    }
    if lb
        .get("ingress")
        .is_some_and(|i| i.as_array().is_some_and(Vec::is_empty) || i.is_null())
        && let Some(o) = lb.as_object_mut()
    {
        o.remove("ingress");
    }
    lb
}

/// The label of a reconcile's result: the server's action, when it is one.
fn result_label(action: &str) -> &'static str {
    match action {
        "created" => "created",
        "updated" => "updated",
        "unchanged" => "unchanged",
        "skipped" => "skipped",
        "deleted" => "deleted",
        _ => "other",
    }
}

/// The Service's `loadbalancer.openstack.org/keep-floatingip`.
fn keeps_floating_ip(service: &Service) -> bool {
    service
        .annotations()
        .get(crate::translate::annotation::KEEP_FLOATING_IP)
        .and_then(|v| crate::translate::parse_bool(v))
        .unwrap_or(false)
}

/// Whether the Service's status shows an ingress (a load balancer made for it).
fn shows_ingress(service: &Service) -> bool {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// An Event's note: at most 1 kB, as the Events API wants.
fn note(text: String) -> Option<String> {
    let mut text = text;
    if text.len() > 1000 {
        let mut end = 997;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    Some(text)
}

impl Controller {
    /// The apply request: the Service with its EndpointSlices, or its
    /// Endpoints when it has no slice (an empty list when it has neither:
    /// no members).
    fn request(&self, service: &Service) -> Value {
        let namespace = service.namespace().unwrap_or_default();
        let name = service.name_any();
        let slices: Vec<Value> = self
            .stores
            .slices
            .state_filter(|s| {
                s.namespace().as_deref() == Some(namespace.as_str())
                    && s.labels().get(SERVICE_NAME_LABEL) == Some(&name)
            })
            .iter()
            .filter_map(|s| serde_json::to_value(&**s).ok())
            .collect();
        let mut request = json!({"service": service});
        if slices.is_empty()
            && let Some(endpoints) = self
                .stores
                .endpoints
                .get(&ObjectRef::new(&name).within(&namespace))
        {
            request["endpoints"] = json!(&*endpoints);
        } else {
            request["endpointSlices"] = Value::Array(slices);
        }
        request
    }

    async fn publish(&self, service: &Service, type_: EventType, reason: &str, text: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: note(text),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self
            .recorder
            .publish(&event, &service.object_ref(&()))
            .await
        {
            tracing::warn!(service = %key_of(&service.namespace().unwrap_or_default(), &service.name_any()), error = %e, "could not record an event");
        }
    }

    /// A change of the load balancer's health since the last one reported
    /// (the Service's [`HEALTH_ANNOTATION`]) becomes one Event: Warning when
    /// it is down, Normal when it recovers. The annotation is written first
    /// (with the resourceVersion read): a leader that stops between the two
    /// loses at most that Event, and never repeats one.
    async fn report_health(&self, service: &Service, answer: &Value) -> Result<(), kube::Error> {
        let now = health(answer);
        let before = service.annotations().get(HEALTH_ANNOTATION).cloned();
        if now == before {
            return Ok(());
        }
        // No load balancer any more (skipped): the note goes, with no Event.
        let gone = !answer.get("loadBalancer").is_some_and(Value::is_object);
        let api: Api<Service> = Api::namespaced(
            self.client.clone(),
            &service.namespace().unwrap_or_default(),
        );
        let patch = json!({"metadata": {
            "annotations": {HEALTH_ANNOTATION: now},
            "resourceVersion": service.resource_version(),
        }});
        api.patch(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        match now {
            None if gone => {}
            Some(text) => {
                let reason = if text.starts_with("ERROR") {
                    "LoadBalancerError"
                } else if text.starts_with("DEGRADED") {
                    "LoadBalancerDegraded"
                } else {
                    "MembersDown"
                };
                let text = format!("Octavia reports the load balancer {text}");
                self.publish(service, EventType::Warning, reason, text)
                    .await;
            }
            None => {
                let was = before.unwrap_or_default();
                let text = format!("the load balancer is healthy again (was {was})");
                self.publish(service, EventType::Normal, "LoadBalancerRecovered", text)
                    .await;
            }
        }
        Ok(())
    }

    /// Adds or removes the finalizer; the patch carries the resourceVersion
    /// read, so a concurrent change makes it fail (409) instead of losing
    /// another controller's finalizer.
    async fn set_finalizer(
        &self,
        service: &Service,
        present: bool,
    ) -> Result<Service, kube::Error> {
        let mut finalizers: Vec<String> = service
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        if present {
            finalizers.push(FINALIZER.to_string());
        }
        let api: Api<Service> = Api::namespaced(
            self.client.clone(),
            &service.namespace().unwrap_or_default(),
        );
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": service.resource_version(),
        }});
        api.patch(
            &service.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    }

    /// Writes `status.loadBalancer` (server-side apply, this watcher's field
    /// manager) unless the Service already shows it. Clearing it is a merge
    /// patch: an apply cannot remove what another field manager wrote (an
    /// earlier watcher's ingress).
    async fn write_status(
        &self,
        service: &Service,
        answer: &Value,
    ) -> Result<Option<Service>, kube::Error> {
        let wanted = normalized(
            answer
                .pointer("/status/loadBalancer")
                .cloned()
                .unwrap_or_else(|| json!({})),
        );
        let current = normalized(
            service
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| serde_json::to_value(lb).ok())
                .unwrap_or_else(|| json!({})),
        );
        if current == wanted {
            return Ok(None);
        }
        let api: Api<Service> = Api::namespaced(
            self.client.clone(),
            &service.namespace().unwrap_or_default(),
        );
        if wanted
            .get("ingress")
            .is_none_or(|i| i.as_array().is_none_or(Vec::is_empty))
        {
            let clear = json!({"status": {"loadBalancer": {"ingress": null}}});
            return api
                .patch_status(
                    &service.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&clear),
                )
                .await
                .map(Some);
        }
        let patch = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service.name_any(), "namespace": service.namespace()},
            "status": {"loadBalancer": wanted},
        });
        api.patch_status(
            &service.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(Some)
    }

    pub(super) fn failed(&self, key: &str, what: &str, e: &CallError) -> Outcome {
        tracing::warn!(service = %key, error = %e.summary(), "{what} failed");
        self.metrics.reconciled("failed");
        if e.retryable() {
            Outcome::Retry
        } else {
            // The Service must change first (which queues it again), or the
            // periodic resync tries once more.
            Outcome::Done
        }
    }

    pub(super) fn kube_failed(&self, key: &str, what: &str, e: &kube::Error) -> Outcome {
        if matches!(e, kube::Error::Api(s) if s.code == 404) {
            // The Service went meanwhile (this view of it was stale).
            tracing::debug!(service = %key, "{what}: the Service is gone");
            return Outcome::Done;
        }
        tracing::warn!(service = %key, error = %e, "{what} failed");
        self.metrics.reconciled("failed");
        Outcome::Retry
    }

    pub async fn reconcile(&self, key: &str) -> Outcome {
        let Some((namespace, name)) = split_key(key) else {
            return Outcome::Done;
        };
        let Some(service) = self
            .stores
            .services
            .get(&ObjectRef::new(name).within(namespace))
        else {
            // Gone: its deletion went through the finalizer (or, without
            // one, the next sync collects what it left).
            self.metrics.load_balancer(key, None);
            return Outcome::Done;
        };
        let ours = has_finalizer(&service);
        if service.metadata.deletion_timestamp.is_some() {
            if !ours {
                return Outcome::Done;
            }
            return self.delete(key, &service).await;
        }
        let request = self.request(&service);
        // The Service as last written here (its finalizer's patch answers it).
        let mut current = (*service).clone();
        if !ours {
            // Services the server skips carry no finalizer: asked offline
            // first. One that still shows an ingress (a load balancer made
            // before it was skipped) is applied, which removes it.
            match self.server.plan_offline(&request).await {
                Ok(plan) if plan["action"] == "skip" && !shows_ingress(&service) => {
                    self.metrics.reconciled("skipped");
                    self.metrics.load_balancer(key, None);
                    return Outcome::Done;
                }
                Ok(plan) if plan["action"] == "skip" => {}
                Ok(_) => {
                    // Before the first apply: from now on its deletion waits for us.
                    match self.set_finalizer(&service, true).await {
                        Ok(patched) => current = patched,
                        Err(e) => return self.kube_failed(key, "adding the finalizer", &e),
                    }
                }
                Err(e) => {
                    let text = e.summary();
                    self.publish(&service, EventType::Warning, "LoadBalancerFailed", text)
                        .await;
                    return self.failed(key, "plan", &e);
                }
            }
        }
        let answer = match self.server.apply(&request).await {
            Ok(answer) => answer,
            Err(e) => {
                self.publish(
                    &service,
                    EventType::Warning,
                    "LoadBalancerFailed",
                    e.summary(),
                )
                .await;
                return self.failed(key, "apply", &e);
            }
        };
        let action = answer["action"].as_str().unwrap_or("").to_string();
        let operations = answer["operations"].as_array().map_or(0, Vec::len);
        match self.write_status(&service, &answer).await {
            Ok(Some(written)) => current = written,
            Ok(None) => {}
            Err(e) => return self.kube_failed(key, "writing the status", &e),
        }
        let ingress = answer
            .pointer("/status/loadBalancer/ingress/0")
            .and_then(|i| i.get("ip").or_else(|| i.get("hostname")))
            .and_then(Value::as_str)
            .unwrap_or("none yet")
            .to_string();
        match action.as_str() {
            "created" => {
                let text = format!("load balancer created, ingress {ingress}");
                self.publish(&service, EventType::Normal, "LoadBalancerCreated", text)
                    .await;
            }
            "updated" => {
                let text =
                    format!("load balancer updated ({operations} operations), ingress {ingress}");
                self.publish(&service, EventType::Normal, "LoadBalancerUpdated", text)
                    .await;
            }
            "skipped" => {
                if operations > 0 {
                    let reason = answer["reason"].as_str().unwrap_or("skipped");
                    let text = format!("load balancer deleted: {reason}");
                    self.publish(&service, EventType::Normal, "LoadBalancerDeleted", text)
                        .await;
                }
                // The Service needs none any more: nothing to hold its deletion.
                if has_finalizer(&current) {
                    match self.set_finalizer(&current, false).await {
                        Ok(patched) => current = patched,
                        Err(e) => return self.kube_failed(key, "removing the finalizer", &e),
                    }
                }
            }
            _ => {}
        }
        if let Err(e) = self.report_health(&current, &answer).await {
            return self.kube_failed(key, "writing the health annotation", &e);
        }
        tracing::info!(service = %key, action = %action, operations, "applied");
        self.metrics.reconciled(result_label(&action));
        self.metrics.load_balancer(
            key,
            answer
                .pointer("/loadBalancer/operatingStatus")
                .and_then(Value::as_str),
        );
        if answer["converged"] == false {
            return Outcome::After(NOT_CONVERGED_PAUSE);
        }
        Outcome::Done
    }

    async fn delete(&self, key: &str, service: &Service) -> Outcome {
        let namespace = service.namespace().unwrap_or_default();
        let keep = keeps_floating_ip(service);
        match self
            .server
            .delete(&namespace, &service.name_any(), keep)
            .await
        {
            Ok(answer) => {
                let operations = answer["operations"].as_array().map_or(0, Vec::len);
                if operations > 0 {
                    self.publish(
                        service,
                        EventType::Normal,
                        "LoadBalancerDeleted",
                        format!("load balancer deleted ({operations} operations)"),
                    )
                    .await;
                }
                if let Err(e) = self.set_finalizer(service, false).await {
                    return self.kube_failed(key, "removing the finalizer", &e);
                }
                tracing::info!(service = %key, operations, "deleted; finalizer removed");
                self.metrics.reconciled("deleted");
                self.metrics.load_balancer(key, None);
                Outcome::Done
            }
            Err(e) => {
                self.publish(
                    service,
                    EventType::Warning,
                    "LoadBalancerDeleteFailed",
                    e.summary(),
                )
                .await;
                // A deletion always retries: the finalizer holds the Service.
                self.failed(key, "delete", &e);
                Outcome::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(value: Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_slice_belongs_to_the_service_its_label_names() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": []
        }))
        .unwrap();
        assert_eq!(slice_service_key(&slice).as_deref(), Some("shop/web"));
        let orphan: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "shop"},
            "addressType": "IPv4", "endpoints": []
        }))
        .unwrap();
        assert_eq!(slice_service_key(&orphan), None);
    }

    #[test]
    fn the_fingerprint_ignores_what_the_watcher_writes_but_not_the_spec_annotations_or_deletion() {
        let base = json!({"metadata": {"name": "web", "namespace": "shop"},
                          "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        let a = service(base.clone());
        let mut with_status = base.clone();
        with_status["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.24.4.10"}]}});
        with_status["metadata"]["resourceVersion"] = json!("9");
        assert_eq!(fingerprint(&a), fingerprint(&service(with_status)));
        let mut port = base.clone();
        port["spec"]["ports"][0]["port"] = json!(81);
        assert_ne!(fingerprint(&a), fingerprint(&service(port)));
        let mut deleting = base.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-12-06T10:00:00Z");
        assert_ne!(fingerprint(&a), fingerprint(&service(deleting)));
        let mut finalized = base.clone();
        finalized["metadata"]["finalizers"] = json!([FINALIZER]);
        assert_eq!(fingerprint(&a), fingerprint(&service(finalized)));
        let mut annotated = base.clone();
        annotated["metadata"]["annotations"] = json!({"svc-lbaas.io/adopt": "x"});
        assert_ne!(fingerprint(&a), fingerprint(&service(annotated)));
        // The health this watcher notes on the Service is no input.
        let mut noted = base;
        noted["metadata"]["annotations"] = json!({HEALTH_ANNOTATION: "DEGRADED"});
        assert_eq!(fingerprint(&a), fingerprint(&service(noted)));
    }

    #[test]
    fn health_is_down_members_and_a_degraded_or_failed_load_balancer() {
        let answer = |lb: &str, members: Value| {
            json!({"loadBalancer": {"name": "shop/web", "operatingStatus": lb, "listeners": [
                {"pool": {"members": members}}, {"pool": null}]}})
        };
        let ok = json!([{"address": "10.1.0.5", "protocolPort": 8080, "operatingStatus": "ONLINE"},
                        {"address": "10.1.0.7", "protocolPort": 8080, "operatingStatus": "NO_MONITOR"}]);
        assert_eq!(health(&answer("ONLINE", ok.clone())), None);
        // OFFLINE (a cloud without a health manager) is no alarm.
        assert_eq!(health(&answer("OFFLINE", ok)), None);
        let down = json!([{"address": "10.1.0.6", "protocolPort": 8080, "operatingStatus": "ERROR"},
                          {"address": "10.1.0.5", "protocolPort": 8080, "operatingStatus": "ERROR"}]);
        assert_eq!(
            health(&answer("DEGRADED", down)).as_deref(),
            Some("DEGRADED; members down: 10.1.0.5:8080, 10.1.0.6:8080")
        );
        assert_eq!(
            health(&answer("ERROR", json!([]))).as_deref(),
            Some("ERROR")
        );
        assert_eq!(health(&json!({"action": "skipped"})), None);
        assert_eq!(health(&json!({"loadBalancer": null})), None);
        // Many down: five named; IPv6 in brackets.
        let many: Vec<Value> = (1..=7)
            .map(|i| json!({"address": format!("fd00::{i}"), "protocolPort": 80, "operatingStatus": "ERROR"}))
            .collect();
        assert_eq!(
            health(&answer("DEGRADED", json!(many))).as_deref(),
            Some(
                "DEGRADED; members down: [fd00::1]:80, [fd00::2]:80, [fd00::3]:80, [fd00::4]:80, [fd00::5]:80 and 2 more"
            )
        );
        // A sharer (its view has no name) speaks of its own members only.
        let mut shared = answer("DEGRADED", json!([]));
        assert_eq!(
            health(&shared).as_deref(),
            Some("DEGRADED"),
            "the owner's view"
        );
        shared["loadBalancer"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        assert_eq!(health(&shared), None, "the owner's DEGRADED is the owner's");
        shared["loadBalancer"]["listeners"][0]["pool"]["members"] =
            json!([{"address": "10.1.0.9", "protocolPort": 80, "operatingStatus": "ERROR"}]);
        assert_eq!(
            health(&shared).as_deref(),
            Some("members down: 10.1.0.9:80")
        );
        // An owner's view lists its sharers' listeners: their members are not its.
        let owner = json!({"service": "shop/web", "loadBalancer": {"name": "shop/web",
            "operatingStatus": "ONLINE", "listeners": [
            {"name": "shop/web:TCP:80", "pool": {"members": [
                {"address": "10.1.0.5", "protocolPort": 80, "operatingStatus": "ONLINE"}]}},
            {"name": "evil/x:TCP:81", "pool": {"members": [
                {"address": "10.1.0.8", "protocolPort": 81, "operatingStatus": "ERROR"}]}}]}});
        assert_eq!(health(&owner), None);
    }

    #[test]
    fn statuses_compare_as_the_api_server_keeps_them() {
        // An API server fills in ipMode VIP: the same status, no write.
        assert_eq!(
            normalized(json!({"ingress": [{"ip": "172.24.4.10"}]})),
            normalized(json!({"ingress": [{"ip": "172.24.4.10", "ipMode": "VIP"}]}))
        );
        assert_ne!(
            normalized(json!({"ingress": [{"ip": "172.24.4.10", "ipMode": "Proxy"}]})),
            normalized(json!({"ingress": [{"ip": "172.24.4.10"}]}))
        );
        assert_eq!(
            normalized(json!({"ingress": [{"hostname": "web.example.com"}]})),
            json!({"ingress": [{"hostname": "web.example.com"}]})
        );
        assert_eq!(normalized(json!({"ingress": []})), json!({}));
    }

    #[test]
    fn keep_floatingip_and_result_labels() {
        let mut v = json!({"metadata": {"name": "web", "namespace": "shop",
            "annotations": {"loadbalancer.openstack.org/keep-floatingip": "true"}}});
        assert!(keeps_floating_ip(&service(v.clone())));
        v["metadata"]["annotations"]["loadbalancer.openstack.org/keep-floatingip"] = json!("no");
        assert!(!keeps_floating_ip(&service(v)));
        assert_eq!(result_label("created"), "created");
        assert_eq!(result_label("x\"}\n"), "other");
    }

    #[test]
    fn event_notes_are_cut_at_a_kilobyte_on_a_character_boundary() {
        let long = "é".repeat(800);
        let n = note(long).unwrap();
        assert!(n.len() <= 1000, "{}", n.len());
        assert!(n.ends_with("..."));
        assert_eq!(note("short".into()).as_deref(), Some("short"));
    }
}
