//! A fake of the Kubernetes API with watch semantics, on loopback, for
//! `svc-lbaas watch`'s tests (there is no kube-apiserver on these machines).
//!
//! What it does: one resourceVersion counter for every write; lists of
//! Services, Endpoints and EndpointSlices (all namespaces) with the list's
//! resourceVersion; watches from a resourceVersion that replay the log after
//! it, then stream new events and a BOOKMARK every 500 ms until
//! `timeoutSeconds`; a watch from a compacted resourceVersion answers an
//! ERROR event with 410 Gone (`compact()` also ends open watches, as an API
//! server restart does); deletion of a Service with finalizers sets its
//! deletionTimestamp, and the patch that empties its finalizers deletes it;
//! JSON merge patches of Services with a resourceVersion precondition (409);
//! server-side apply of `status` (the given fields replace the status's);
//! Events (events.k8s.io/v1: create and merge patch); Leases (get, create,
//! update with the resourceVersion checked); an ingress IP's `ipMode`
//! defaulted to VIP on status writes, as API servers do. Every request is
//! logged, in order of arrival, with the caller's bearer token; `/svc-lbaas/`
//! is forwarded to a real `svc-lbaas serve`, so the watcher's server calls
//! are ordered among its Kubernetes calls.
//!
//! What it does not: authentication and RBAC (tokens are only recorded),
//! admission, field selectors, pagination (one page), server-side apply's
//! field ownership (a status apply replaces the fields it gives), strategic
//! merge, generation bookkeeping beyond spec changes, other resources.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Service,
    Endpoints,
    EndpointSlice,
    Event,
    Lease,
    Namespace,
    Secret,
    GatewayClass,
    Gateway,
    HttpRoute,
    TcpRoute,
    ReferenceGrant,
}

/// The Gateway API kinds the fake serves once `serve_gateway_api()` is
/// called: (kind, group version, plural, namespaced).
const GATEWAY_KINDS: [(Kind, &str, &str, bool); 5] = [
    (
        Kind::GatewayClass,
        "gateway.networking.k8s.io/v1",
        "gatewayclasses",
        false,
    ),
    (
        Kind::Gateway,
        "gateway.networking.k8s.io/v1",
        "gateways",
        true,
    ),
    (
        Kind::HttpRoute,
        "gateway.networking.k8s.io/v1",
        "httproutes",
        true,
    ),
    (
        Kind::TcpRoute,
        "gateway.networking.k8s.io/v1alpha2",
        "tcproutes",
        true,
    ),
    (
        Kind::ReferenceGrant,
        "gateway.networking.k8s.io/v1beta1",
        "referencegrants",
        true,
    ),
];

fn gateway_kind(version: &str, plural: &str) -> Option<Kind> {
    GATEWAY_KINDS
        .iter()
        .find(|(_, gv, p, _)| gv.ends_with(&format!("/{version}")) && *p == plural)
        .map(|(k, ..)| *k)
}

impl Kind {
    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Service => ("v1", "ServiceList"),
            Kind::Endpoints => ("v1", "EndpointsList"),
            Kind::EndpointSlice => ("discovery.k8s.io/v1", "EndpointSliceList"),
            Kind::Event => ("events.k8s.io/v1", "EventList"),
            Kind::Lease => ("coordination.k8s.io/v1", "LeaseList"),
            Kind::Namespace => ("v1", "NamespaceList"),
            Kind::Secret => ("v1", "SecretList"),
            Kind::GatewayClass => ("gateway.networking.k8s.io/v1", "GatewayClassList"),
            Kind::Gateway => ("gateway.networking.k8s.io/v1", "GatewayList"),
            Kind::HttpRoute => ("gateway.networking.k8s.io/v1", "HTTPRouteList"),
            Kind::TcpRoute => ("gateway.networking.k8s.io/v1alpha2", "TCPRouteList"),
            Kind::ReferenceGrant => ("gateway.networking.k8s.io/v1beta1", "ReferenceGrantList"),
        }
    }
    fn kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Service => ("v1", "Service"),
            Kind::Endpoints => ("v1", "Endpoints"),
            Kind::EndpointSlice => ("discovery.k8s.io/v1", "EndpointSlice"),
            Kind::Event => ("events.k8s.io/v1", "Event"),
            Kind::Lease => ("coordination.k8s.io/v1", "Lease"),
            Kind::Namespace => ("v1", "Namespace"),
            Kind::Secret => ("v1", "Secret"),
            Kind::GatewayClass => ("gateway.networking.k8s.io/v1", "GatewayClass"),
            Kind::Gateway => ("gateway.networking.k8s.io/v1", "Gateway"),
            Kind::HttpRoute => ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            Kind::TcpRoute => ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
            Kind::ReferenceGrant => ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
        }
    }
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Its order of arrival.
    pub seq: u64,
    pub method: String,
    pub uri: String,
    pub token: String,
    pub content_type: String,
    pub body: Value,
    pub status: u16,
}

#[derive(Default)]
struct World {
    rv: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    log: Vec<(u64, Kind, &'static str, Value)>,
    /// Watches of a kind from a resourceVersion below this get 410 Gone.
    compacted: BTreeMap<Kind, u64>,
    /// Bumped to end every open watch of a kind.
    epoch: BTreeMap<Kind, u64>,
    /// Sequence number of requests, at arrival.
    seq: u64,
    /// Where `/svc-lbaas/...` is forwarded (a real `svc-lbaas serve`).
    upstream: Option<String>,
    /// Lease requests hang (an API server that stopped answering them).
    hang_leases: bool,
    requests: Vec<Request>,
    /// Watches answered 410 Gone.
    gone: usize,
    /// The Gateway API's CRDs are installed (discovery lists the group).
    gateway_api: bool,
}

#[derive(Clone)]
pub struct FakeKube {
    world: Arc<Mutex<World>>,
    changed: Arc<Notify>,
    pub addr: SocketAddr,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// RFC 7386.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn now() -> String {
    // The simulator's OpenStack timestamps, in Kubernetes' RFC 3339 form.
    format!(
        "{}Z",
        svc_lbaas::sim::format_time(std::time::SystemTime::now())
    )
}

impl World {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores an object (new resourceVersion) and logs the watch event.
    fn write(&mut self, kind: Kind, mut obj: Value, event: &'static str) -> Value {
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let (api_version, k) = kind.kind();
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(k);
        let key = key_of(kind, &obj);
        if event == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, obj.clone());
        }
        self.log.push((rv, kind, event, obj.clone()));
        obj
    }

    fn create_or_update(&mut self, kind: Kind, mut obj: Value) -> Value {
        let key = key_of(kind, &obj);
        match self.objects.get(&key).cloned() {
            None => {
                obj["metadata"]["uid"] = json!(uuid());
                obj["metadata"]["creationTimestamp"] = json!(now());
                obj["metadata"]["generation"] = json!(1);
                self.write(kind, obj, "ADDED")
            }
            Some(mut current) => {
                // A user's update: spec and labels/annotations; the status,
                // finalizers and deletion stay the cluster's.
                let spec_changed = current.get("spec") != obj.get("spec");
                for field in ["spec", "endpoints", "ports", "subsets", "addressType"] {
                    match obj.get(field) {
                        Some(v) => current[field] = v.clone(),
                        None => {
                            if let Some(o) = current.as_object_mut() {
                                o.remove(field);
                            }
                        }
                    }
                }
                for field in ["labels", "annotations"] {
                    match (
                        obj["metadata"].get(field),
                        current["metadata"].as_object_mut(),
                    ) {
                        (Some(v), Some(m)) => {
                            m.insert(field.into(), v.clone());
                        }
                        (None, Some(m)) => {
                            m.remove(field);
                        }
                        _ => {}
                    }
                }
                if spec_changed {
                    let g = current["metadata"]["generation"].as_u64().unwrap_or(1);
                    current["metadata"]["generation"] = json!(g + 1);
                }
                self.write(kind, current, "MODIFIED")
            }
        }
    }
}

fn uuid() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

fn key_of(kind: Kind, obj: &Value) -> (Kind, String, String) {
    let m = &obj["metadata"];
    (
        kind,
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = FakeKube {
            world: Arc::new(Mutex::new(World::default())),
            changed: Arc::new(Notify::new()),
            addr,
        };
        let app = Router::new()
            .route("/api/v1/services", get(list_services))
            .route("/api/v1/endpoints", get(list_endpoints))
            .route("/apis/discovery.k8s.io/v1/endpointslices", get(list_slices))
            .route(
                "/api/v1/namespaces/{ns}/services/{name}",
                get(get_service).patch(patch_service),
            )
            .route(
                "/api/v1/namespaces/{ns}/services/{name}/status",
                axum::routing::patch(patch_status),
            )
            .route(
                "/apis/events.k8s.io/v1/namespaces/{ns}/events",
                axum::routing::post(create_event),
            )
            .route(
                "/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}",
                axum::routing::patch(patch_event),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                axum::routing::post(create_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(get_lease).put(put_lease),
            )
            .route("/apis", get(api_groups))
            .route(
                "/apis/gateway.networking.k8s.io/{version}",
                get(gateway_resources),
            )
            .route(
                "/apis/gateway.networking.k8s.io/{version}/{plural}",
                get(list_gateway_kind),
            )
            .route(
                "/apis/gateway.networking.k8s.io/{version}/namespaces/{ns}/{plural}/{name}",
                axum::routing::patch(patch_gateway_object),
            )
            .route(
                "/apis/gateway.networking.k8s.io/{version}/namespaces/{ns}/{plural}/{name}/status",
                axum::routing::patch(patch_gateway_status),
            )
            .route(
                "/apis/gateway.networking.k8s.io/{version}/{plural}/{name}/status",
                axum::routing::patch(patch_cluster_gateway_status),
            )
            .route("/api/v1/namespaces", get(list_namespaces))
            .route("/api/v1/namespaces/{ns}/secrets/{name}", get(get_secret))
            .route("/svc-lbaas/{*rest}", axum::routing::any(forward))
            .fallback(|| async { status(404, "NotFound", "the fake serves no such path") })
            .layer(axum::middleware::from_fn_with_state(fake.clone(), record))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kubeconfig for this fake, authenticating with `token`.
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\ncurrent-context: fake\nusers:\n- name: u\n  user:\n    token: {token}\n",
            self.addr
        )
    }

    /// A user creates or updates an object (kubectl apply).
    pub fn put(&self, kind: Kind, obj: Value) -> Value {
        let out = self.lock().create_or_update(kind, obj);
        self.changed.notify_waiters();
        out
    }

    /// A user deletes an object: with finalizers, only marked.
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        {
            let mut w = self.lock();
            let key = (kind, namespace.to_string(), name.to_string());
            let Some(mut obj) = w.objects.get(&key).cloned() else {
                return;
            };
            let finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if finalizers {
                if obj["metadata"]["deletionTimestamp"].is_null() {
                    obj["metadata"]["deletionTimestamp"] = json!(now());
                    w.write(kind, obj, "MODIFIED");
                }
            } else {
                w.write(kind, obj, "DELETED");
            }
        }
        self.changed.notify_waiters();
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }

    pub fn all(&self, kind: Kind) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// etcd compacted and the watch cache restarted: open watches end, and
    /// resuming from any resourceVersion seen so far answers 410 Gone.
    pub fn compact(&self) {
        for kind in [Kind::Service, Kind::Endpoints, Kind::EndpointSlice] {
            self.compact_kind(kind);
        }
    }

    /// The same for one kind's watches only.
    pub fn compact_kind(&self, kind: Kind) {
        {
            let mut w = self.lock();
            let rv = w.rv;
            w.compacted.insert(kind, rv + 1);
            *w.epoch.entry(kind).or_default() += 1;
        }
        self.changed.notify_waiters();
    }

    /// An object goes and its watch event is lost (as in a compaction):
    /// only a re-list can tell.
    pub fn delete_unseen(&self, kind: Kind, namespace: &str, name: &str) {
        self.lock()
            .objects
            .remove(&(kind, namespace.to_string(), name.to_string()));
    }

    /// The Gateway API's CRDs are installed from now on.
    pub fn serve_gateway_api(&self) {
        self.lock().gateway_api = true;
    }

    /// Forwards `/svc-lbaas/...` to this server (recorded like the rest).
    pub fn set_upstream(&self, addr: &str) {
        self.lock().upstream = Some(addr.to_string());
    }

    /// Lease requests hang from now (true) or are answered again (false).
    pub fn hang_leases(&self, hang: bool) {
        self.lock().hang_leases = hang;
    }

    pub fn gone_answers(&self) -> usize {
        self.lock().gone
    }

    /// Every request so far, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        let mut r = self.lock().requests.clone();
        r.sort_by_key(|r| r.seq);
        r
    }
}

/// Logs every request with its bearer token and body.
async fn record(
    State(fake): State<FakeKube>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let seq = {
        let mut w = fake.lock();
        w.seq += 1;
        w.seq
    };
    let hang = fake.lock().hang_leases && req.uri().path().contains("/leases");
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body_value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let method = parts.method.to_string();
    let uri = parts.uri.to_string();
    let response = next
        .run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await;
    fake.lock().requests.push(Request {
        seq,
        method,
        uri,
        token,
        content_type,
        body: body_value,
        status: response.status().as_u16(),
    });
    response
}

async fn list_services(s: State<FakeKube>, q: Query<BTreeMap<String, String>>) -> Response {
    list_or_watch(s, q, Kind::Service).await
}
async fn list_endpoints(s: State<FakeKube>, q: Query<BTreeMap<String, String>>) -> Response {
    list_or_watch(s, q, Kind::Endpoints).await
}
async fn list_slices(s: State<FakeKube>, q: Query<BTreeMap<String, String>>) -> Response {
    list_or_watch(s, q, Kind::EndpointSlice).await
}

async fn list_or_watch(
    State(fake): State<FakeKube>,
    Query(q): Query<BTreeMap<String, String>>,
    kind: Kind,
) -> Response {
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    if !watching {
        let w = fake.lock();
        let items: Vec<Value> = w
            .objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect();
        let (api_version, list_kind) = kind.list_kind();
        return axum::Json(json!({"apiVersion": api_version, "kind": list_kind,
            "metadata": {"resourceVersion": w.rv.to_string()}, "items": items}))
        .into_response();
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(290),
    );
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let line = |v: Value| {
        let mut s = v.to_string();
        s.push('\n');
        Bytes::from(s)
    };
    let (epoch, gone) = {
        let mut w = fake.lock();
        let gone = from < w.compacted.get(&kind).copied().unwrap_or(0);
        w.gone += usize::from(gone);
        (w.epoch.get(&kind).copied().unwrap_or(0), gone)
    };
    if gone {
        let _ = tx
            .send(line(
                json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {from}")}}),
            ))
            .await;
    } else {
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut after = from;
            loop {
                let notified = fake.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let (events, rv, ended) = {
                    let w = fake.lock();
                    let events: Vec<(u64, &'static str, Value)> = w
                        .log
                        .iter()
                        .filter(|(rv, k, _, _)| *rv > after && *k == kind)
                        .map(|(rv, _, t, o)| (*rv, *t, o.clone()))
                        .collect();
                    (
                        events,
                        w.rv,
                        w.epoch.get(&kind).copied().unwrap_or(0) != epoch,
                    )
                };
                if ended {
                    return;
                }
                for (rv, t, o) in events {
                    after = rv;
                    if tx
                        .send(line(json!({"type": t, "object": o})))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {
                        if bookmarks {
                            let (api_version, k) = kind.kind();
                            let bm = json!({"type": "BOOKMARK", "object": {"apiVersion": api_version,
                                "kind": k, "metadata": {"resourceVersion": rv.max(after).to_string()}}});
                            if tx.send(line(bm)).await.is_err() {
                                return;
                            }
                            after = after.max(rv);
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => return,
                }
            }
        });
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "response"))
}

async fn get_service(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match fake.get(Kind::Service, &ns, &name) {
        Some(o) => axum::Json(o).into_response(),
        None => status(404, "NotFound", &format!("services \"{name}\" not found")),
    }
}

async fn patch_service(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct != "application/merge-patch+json" {
        return status(
            415,
            "UnsupportedMediaType",
            &format!("the fake takes merge patches of Services, not {ct:?}"),
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let out = {
        let mut w = fake.lock();
        let key = (Kind::Service, ns.clone(), name.clone());
        let Some(mut obj) = w.objects.get(&key).cloned() else {
            return status(404, "NotFound", &format!("services \"{name}\" not found"));
        };
        if let Some(rv) = patch["metadata"]["resourceVersion"].as_str()
            && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
        {
            return status(
                409,
                "Conflict",
                "Operation cannot be fulfilled on services: the object has been modified; please apply your changes to the latest version and try again",
            );
        }
        merge(&mut obj, &patch);
        let finalizers_left = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let event = if !obj["metadata"]["deletionTimestamp"].is_null() && !finalizers_left {
            "DELETED"
        } else {
            "MODIFIED"
        };
        w.write(Kind::Service, obj, event)
    };
    fake.changed.notify_waiters();
    axum::Json(out).into_response()
}

async fn patch_status(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let apply = ct == "application/apply-patch+yaml";
    if (apply && !q.contains_key("fieldManager"))
        || (!apply && ct != "application/merge-patch+json")
    {
        return status(
            415,
            "UnsupportedMediaType",
            "the fake takes server-side apply (with a fieldManager) or merge patches of services/status",
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let out = {
        let mut w = fake.lock();
        let key = (Kind::Service, ns, name.clone());
        let Some(mut obj) = w.objects.get(&key).cloned() else {
            return status(404, "NotFound", &format!("services \"{name}\" not found"));
        };
        if apply {
            if let Some(given) = patch["status"].as_object() {
                for (k, v) in given {
                    obj["status"][k] = v.clone();
                }
            }
        } else {
            let mut status = obj["status"].take();
            merge(&mut status, &patch["status"]);
            obj["status"] = status;
        }
        // As an API server does (Kubernetes 1.30 on): an ingress IP's
        // ipMode defaults to VIP.
        if let Some(entries) = obj
            .pointer_mut("/status/loadBalancer/ingress")
            .and_then(Value::as_array_mut)
        {
            for e in entries {
                if e.get("ip").is_some() && e.get("ipMode").is_none() {
                    e["ipMode"] = json!("VIP");
                }
            }
        }
        w.write(Kind::Service, obj, "MODIFIED")
    };
    fake.changed.notify_waiters();
    axum::Json(out).into_response()
}

/// POST of an Event or a Lease: 409 AlreadyExists when the name is taken.
fn create(fake: &FakeKube, kind: Kind, ns: String, body: &[u8]) -> Response {
    let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "not JSON");
    };
    obj["metadata"]["namespace"] = json!(ns);
    let mut w = fake.lock();
    if w.objects.contains_key(&key_of(kind, &obj)) {
        return status(409, "AlreadyExists", &format!("{kind:?} already exists"));
    }
    let out = w.write(kind, obj, "ADDED");
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

async fn create_event(
    State(fake): State<FakeKube>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    create(&fake, Kind::Event, ns, &body)
}

async fn patch_event(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let mut w = fake.lock();
    let Some(mut obj) = w.objects.get(&(Kind::Event, ns, name.clone())).cloned() else {
        return status(404, "NotFound", &format!("events \"{name}\" not found"));
    };
    // Without a precondition: the patch's own resourceVersion is the old one.
    let mut patch = patch;
    if let Some(m) = patch["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    merge(&mut obj, &patch);
    let out = w.write(Kind::Event, obj, "MODIFIED");
    axum::Json(out).into_response()
}

async fn get_lease(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match fake.get(Kind::Lease, &ns, &name) {
        Some(o) => axum::Json(o).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    }
}

async fn create_lease(
    State(fake): State<FakeKube>,
    Path(ns): Path<String>,
    body: Bytes,
) -> Response {
    create(&fake, Kind::Lease, ns, &body)
}

async fn put_lease(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Ok(mut obj) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    obj["metadata"]["namespace"] = json!(ns);
    let mut w = fake.lock();
    let Some(current) = w.objects.get(&(Kind::Lease, ns, name.clone())) else {
        return status(404, "NotFound", &format!("leases \"{name}\" not found"));
    };
    if obj["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
        return status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on leases.coordination.k8s.io: the object has been modified",
        );
    }
    let out = w.write(Kind::Lease, obj, "MODIFIED");
    axum::Json(out).into_response()
}

/// `/svc-lbaas/...` forwarded to the upstream server as it came (method,
/// query, body, bearer token), so that the log orders the watcher's server
/// calls among its Kubernetes calls.
async fn forward(
    State(fake): State<FakeKube>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(upstream) = fake.lock().upstream.clone() else {
        return status(502, "BadGateway", "no upstream");
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .trim_start_matches("/svc-lbaas");
    let Ok(method) = reqwest::Method::from_bytes(method.as_str().as_bytes()) else {
        return status(405, "MethodNotAllowed", "method");
    };
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{upstream}{path}"))
        .body(body.to_vec());
    for h in ["authorization", "content-type"] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            req = req.header(h, v);
        }
    }
    match req.send().await {
        Ok(r) => {
            let code = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = r.bytes().await.unwrap_or_default();
            (code, [("content-type", "application/json")], bytes).into_response()
        }
        Err(e) => status(502, "BadGateway", &e.to_string()),
    }
}

/// `GET /apis`: the Gateway API group once its CRDs are installed (the
/// fake lists no other group: clients that discover only it ask here).
async fn api_groups(State(fake): State<FakeKube>) -> Response {
    let served = fake.lock().gateway_api;
    let groups = if served {
        let versions: Vec<Value> = ["v1", "v1beta1", "v1alpha2"]
            .iter()
            .map(
                |v| json!({"groupVersion": format!("gateway.networking.k8s.io/{v}"), "version": v}),
            )
            .collect();
        json!([{"name": "gateway.networking.k8s.io", "versions": versions,
                "preferredVersion": {"groupVersion": "gateway.networking.k8s.io/v1", "version": "v1"}}])
    } else {
        json!([])
    };
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

/// `GET /apis/gateway.networking.k8s.io/{version}`: its resources.
async fn gateway_resources(State(fake): State<FakeKube>, Path(version): Path<String>) -> Response {
    if !fake.lock().gateway_api {
        return status(404, "NotFound", "the Gateway API is not installed");
    }
    let gv = format!("gateway.networking.k8s.io/{version}");
    let mut resources = Vec::new();
    for (kind, group_version, plural, namespaced) in GATEWAY_KINDS {
        if group_version != gv {
            continue;
        }
        let (_, k) = kind.kind();
        resources.push(
            json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": k,
            "verbs": ["get", "list", "watch", "patch", "update", "create", "delete"]}),
        );
        resources.push(
            json!({"name": format!("{plural}/status"), "singularName": "", "namespaced": namespaced,
            "kind": k, "verbs": ["get", "patch", "update"]}),
        );
    }
    axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
        .into_response()
}

async fn list_gateway_kind(
    s: State<FakeKube>,
    Path((version, plural)): Path<(String, String)>,
    q: Query<BTreeMap<String, String>>,
) -> Response {
    if !s.lock().gateway_api {
        return status(404, "NotFound", "the Gateway API is not installed");
    }
    match gateway_kind(&version, &plural) {
        Some(kind) => list_or_watch(s, q, kind).await,
        None => status(404, "NotFound", "no such Gateway API resource"),
    }
}

async fn list_namespaces(s: State<FakeKube>, q: Query<BTreeMap<String, String>>) -> Response {
    list_or_watch(s, q, Kind::Namespace).await
}

async fn get_secret(
    State(fake): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    match fake.get(Kind::Secret, &ns, &name) {
        Some(o) => axum::Json(o).into_response(),
        None => status(404, "NotFound", &format!("secrets \"{name}\" not found")),
    }
}

/// A merge patch of a Gateway API object: its finalizers (with the
/// resourceVersion precondition), deletion once the last one goes.
async fn patch_gateway_object(
    State(fake): State<FakeKube>,
    Path((version, ns, plural, name)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    let Some(kind) = gateway_kind(&version, &plural) else {
        return status(404, "NotFound", "no such Gateway API resource");
    };
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let out = {
        let mut w = fake.lock();
        let Some(mut obj) = w.objects.get(&(kind, ns, name.clone())).cloned() else {
            return status(404, "NotFound", &format!("{plural} \"{name}\" not found"));
        };
        if let Some(rv) = patch["metadata"]["resourceVersion"].as_str()
            && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
        {
            return status(409, "Conflict", "the object has been modified");
        }
        merge(&mut obj, &patch);
        let finalizers_left = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let event = if !obj["metadata"]["deletionTimestamp"].is_null() && !finalizers_left {
            "DELETED"
        } else {
            "MODIFIED"
        };
        w.write(kind, obj, event)
    };
    fake.changed.notify_waiters();
    axum::Json(out).into_response()
}

fn patch_status_of(fake: &FakeKube, kind: Kind, ns: String, name: String, body: &[u8]) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "not JSON");
    };
    let out = {
        let mut w = fake.lock();
        let Some(mut obj) = w.objects.get(&(kind, ns, name.clone())).cloned() else {
            return status(404, "NotFound", &format!("\"{name}\" not found"));
        };
        let mut current = obj["status"].take();
        merge(&mut current, &patch["status"]);
        obj["status"] = current;
        w.write(kind, obj, "MODIFIED")
    };
    fake.changed.notify_waiters();
    axum::Json(out).into_response()
}

async fn patch_gateway_status(
    State(fake): State<FakeKube>,
    Path((version, ns, plural, name)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    match gateway_kind(&version, &plural) {
        Some(kind) => patch_status_of(&fake, kind, ns, name, &body),
        None => status(404, "NotFound", "no such Gateway API resource"),
    }
}

async fn patch_cluster_gateway_status(
    State(fake): State<FakeKube>,
    Path((version, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    match gateway_kind(&version, &plural) {
        Some(kind) => patch_status_of(&fake, kind, String::new(), name, &body),
        None => status(404, "NotFound", "no such Gateway API resource"),
    }
}
