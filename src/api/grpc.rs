//! The gRPC API `svclbaas.v1.Translator` (tonic) over the very same core as
//! REST: Kubernetes objects travel as `google.protobuf.Struct`, answers are the
//! REST answers mapped field by field, errors the REST problems mapped to gRPC
//! codes. Bearer tokens come in the `authorization` metadata.

use std::pin::Pin;
use std::sync::Arc;

use prost_types::value::Kind;
use serde_json::{Map, Value, json};
use tonic::{Request, Response, Status};

use super::auth;
use super::shared::{AppState, authorize, gateway_input, named_gateway, sync_json, sync_scope};
use crate::error::Problem;
use crate::reconcile::ProgressEvent;
use crate::reconcile::events::Answer;
use crate::reconcile::sync::SyncMode;
use crate::reconcile::{ApplyInput, ApplyOptions, ApplyResponse};

/// The generated messages and service (generated code: lints of its own).
#[allow(clippy::large_enum_variant, clippy::all)]
pub mod pb {
    // Generated from proto/ (tests/proto.rs regenerates it and requires the same bytes).
    include!("../../proto/generated/svclbaas.v1.rs");
}

/// The generated service's codec: prost's, except that a message that cannot
/// be decoded (malformed, or nested past prost's recursion limit) is the
/// client's INVALID_ARGUMENT, not prost's INTERNAL.
pub mod codec {
    use tonic::Status;
    use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
    use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

    pub struct ArgumentCodec<T, U>(ProstCodec<T, U>);

    impl<T, U> Default for ArgumentCodec<T, U> {
        fn default() -> Self {
            ArgumentCodec(ProstCodec::default())
        }
    }

    impl<T, U> Codec for ArgumentCodec<T, U>
    where
        T: prost::Message + Send + 'static,
        U: prost::Message + Default + Send + 'static,
    {
        type Encode = T;
        type Decode = U;
        type Encoder = ProstEncoder<T>;
        type Decoder = ArgumentDecoder<U>;

        fn encoder(&mut self) -> Self::Encoder {
            self.0.encoder()
        }

        fn decoder(&mut self) -> Self::Decoder {
            ArgumentDecoder(self.0.decoder())
        }
    }

    pub struct ArgumentDecoder<U>(ProstDecoder<U>);

    impl<U: prost::Message + Default> Decoder for ArgumentDecoder<U> {
        type Item = U;
        type Error = Status;

        fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
            self.0.decode(buf).map_err(|e| {
                crate::error::grpc_status(&crate::error::Problem::of(
                    crate::error::Kind::UnreadableBody,
                    format!("the message cannot be decoded: {}", e.message()),
                ))
            })
        }

        fn buffer_settings(&self) -> BufferSettings {
            self.0.buffer_settings()
        }
    }
}

/// The descriptor set server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!("../../proto/generated/translator_descriptor.bin");

// ---------------------------------------------------------------- Struct <-> JSON

pub fn struct_to_json(s: &prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        // Struct numbers are doubles: whole ones become integers, as JSON would have them.
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
            json!(*n as i64)
        }
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

pub fn json_to_struct(v: &Value) -> prost_types::Struct {
    match v {
        Value::Object(map) => prost_types::Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        _ => prost_types::Struct::default(),
    }
}

fn json_to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

// ---------------------------------------------------------------- errors

/// The REST problem as a gRPC status (the classification's code).
pub fn status(p: &Problem) -> Status {
    crate::error::grpc_status(p)
}

fn problem_status(p: super::error::ProblemResponse) -> Status {
    status(&p.0)
}

// ---------------------------------------------------------------- answers

impl From<&crate::plan::OperationSummary> for pb::Operation {
    fn from(o: &crate::plan::OperationSummary) -> Self {
        pb::Operation {
            op: o.op.to_string(),
            resource: o.resource.to_string(),
            name: o.name.clone(),
            id: o.id.clone().unwrap_or_default(),
            detail: o.detail.clone().unwrap_or_default(),
        }
    }
}

impl From<&crate::reconcile::LoadBalancerView> for pb::LoadBalancer {
    fn from(lb: &crate::reconcile::LoadBalancerView) -> Self {
        pb::LoadBalancer {
            id: lb.id.clone(),
            name: lb.name.clone().unwrap_or_default(),
            vip_address: lb.vip_address.map(|a| a.to_string()).unwrap_or_default(),
            vip_port_id: lb.vip_port_id.clone().unwrap_or_default(),
            provisioning_status: lb.provisioning_status.clone(),
            operating_status: lb.operating_status.clone(),
            listeners: lb
                .listeners
                .iter()
                .map(|l| pb::Listener {
                    id: l.id.clone(),
                    name: l.name.clone(),
                    protocol: l.protocol.clone(),
                    protocol_port: u32::from(l.protocol_port),
                    allowed_cidrs: l.allowed_cidrs.clone(),
                    insert_headers: l.insert_headers.clone(),
                    default_tls_container_ref: l
                        .default_tls_container_ref
                        .clone()
                        .unwrap_or_default(),
                    sni_container_refs: l.sni_container_refs.clone(),
                    pool: l.pool.as_ref().map(|p| pb::Pool {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        protocol: p.protocol.clone(),
                        lb_algorithm: p.lb_algorithm.clone(),
                        session_persistence: p.session_persistence.clone().unwrap_or_default(),
                        members: p
                            .members
                            .iter()
                            .map(|m| pb::Member {
                                id: m.id.clone(),
                                address: m.address.to_string(),
                                protocol_port: u32::from(m.protocol_port),
                                weight: m.weight.map(u32::from),
                                operating_status: m.operating_status.clone(),
                            })
                            .collect(),
                    }),
                })
                .collect(),
        }
    }
}

/// The typed answer as the gRPC message, field by field (a renamed field is
/// a compile error here, not an empty string on the wire).
impl From<&ApplyResponse> for pb::ApplyResponse {
    fn from(a: &ApplyResponse) -> Self {
        pb::ApplyResponse {
            service: a.service.clone(),
            action: a.action.as_str().to_string(),
            reason: a.reason.clone().unwrap_or_default(),
            converged: a.converged,
            load_balancer: a.load_balancer.as_ref().map(pb::LoadBalancer::from),
            floating_ip: a.floating_ip.as_ref().map(|f| pb::FloatingIp {
                id: f.id.clone().unwrap_or_default(),
                address: f.address.to_string(),
                method: f.method.to_string(),
            }),
            status: Some(json_to_struct(&a.status)),
            operations: a.operations.iter().map(pb::Operation::from).collect(),
            openstack_calls: Some(pb::OpenStackCalls {
                reads: a.openstack_calls.reads,
                writes: a.openstack_calls.writes,
                waits: a.openstack_calls.waits,
            }),
        }
    }
}

impl From<&crate::response::PlanResponse> for pb::PlanResponse {
    fn from(p: &crate::response::PlanResponse) -> Self {
        pb::PlanResponse {
            service: p.service.clone(),
            action: p.action.as_str().to_string(),
            reason: p.reason.clone().unwrap_or_default(),
            desired: p.desired.as_ref().map(|d| json_to_struct(&to_json(d))),
            operations: p.operations.iter().map(pb::Operation::from).collect(),
            notes: p.notes.clone(),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------- the service

pub struct Translator {
    pub state: Arc<AppState>,
}

impl Translator {
    /// The caller of a request, from `authorization: Bearer <token>`.
    fn caller<T>(&self, req: &Request<T>) -> Result<auth::Caller, Status> {
        let presented = req
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        auth::authenticate(self.state.tokens.as_ref(), presented)
            .map_err(|detail| status(&Problem::of(crate::error::Kind::Unauthenticated, detail)))
    }

    /// Reads an ApplyRequest and checks the caller may touch its namespace.
    fn input(
        &self,
        caller: &auth::Caller,
        req: Option<pb::ApplyRequest>,
    ) -> Result<(ApplyInput, ApplyOptions), Status> {
        let req = req.ok_or_else(|| {
            status(&Problem::of(
                crate::error::Kind::InvalidJson,
                "request is missing",
            ))
        })?;
        let mut body = Map::new();
        body.insert(
            "service".into(),
            req.service.as_ref().map_or(Value::Null, struct_to_json),
        );
        if let Some(e) = &req.endpoints {
            body.insert("endpoints".into(), struct_to_json(e));
        }
        if !req.endpoint_slices.is_empty() {
            body.insert(
                "endpointSlices".into(),
                Value::Array(req.endpoint_slices.iter().map(struct_to_json).collect()),
            );
        }
        if !req.tls_secrets.is_empty() {
            body.insert(
                "tlsSecrets".into(),
                Value::Array(req.tls_secrets.iter().map(struct_to_json).collect()),
            );
        }
        let input =
            ApplyInput::from_json(Value::Object(body)).map_err(|e| status(&Problem::from(&e)))?;
        authorize(caller, input.namespace()).map_err(problem_status)?;
        let options = ApplyOptions::requested(req.wait, req.timeout_s.map(u64::from));
        Ok((input, options))
    }
}

/// A ServiceKey's namespace and name, validated as Kubernetes does.
fn parse_key(key: &pb::ServiceKey) -> Result<crate::model::ServiceRef, Status> {
    crate::translate::parse_service_ref(&key.namespace, &key.name, "")
        .map_err(|e| status(&Problem::from(&e)))
}

type ProgressStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ApplyProgress, Status>> + Send>>;

#[tonic::async_trait]
impl pb::translator_server::Translator for Translator {
    async fn plan(
        &self,
        req: Request<pb::PlanRequest>,
    ) -> Result<Response<pb::PlanResponse>, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        let (input, _) = self.input(&caller, req.request)?;
        let plan = self
            .state
            .reconciler
            .plan(&input, req.offline)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(pb::PlanResponse::from(&plan)))
    }

    async fn apply(
        &self,
        req: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&req)?;
        let (input, options) = self.input(&caller, Some(req.into_inner()))?;
        let answer = self
            .state
            .reconciler
            .apply(&input, options)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(pb::ApplyResponse::from(&answer)))
    }

    type ApplyStreamStream = ProgressStream;

    async fn apply_stream(
        &self,
        req: Request<pb::ApplyRequest>,
    ) -> Result<Response<Self::ApplyStreamStream>, Status> {
        let caller = self.caller(&req)?;
        let (input, options) = self.input(&caller, Some(req.into_inner()))?;
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let (out_tx, out_rx) =
            tokio::sync::mpsc::unbounded_channel::<Result<pb::ApplyProgress, Status>>();
        let state = self.state.clone();
        // The apply runs on; a client that hangs up only stops the stream.
        let worker = tokio::spawn(async move {
            state
                .reconciler
                .apply_reporting(&input, options, Some(progress_tx))
                .await
        });
        tokio::spawn(async move {
            while let Some(event) = progress_rx.recv().await {
                let event = match event {
                    ProgressEvent::Started(op) => {
                        pb::apply_progress::Event::Started(pb::Operation::from(&op))
                    }
                    ProgressEvent::Finished(op) => {
                        pb::apply_progress::Event::Finished(pb::Operation::from(&op))
                    }
                    ProgressEvent::Waited {
                        load_balancer_id,
                        status,
                        elapsed_ms,
                    } => pb::apply_progress::Event::Wait(pb::Wait {
                        load_balancer_id,
                        provisioning_status: status,
                        elapsed_ms: elapsed_ms.min(u64::from(u32::MAX)) as u32,
                    }),
                };
                let _ = out_tx.send(Ok(pb::ApplyProgress { event: Some(event) }));
            }
            let last = match worker.await {
                Ok(Ok(answer)) => Ok(pb::ApplyProgress {
                    event: Some(pb::apply_progress::Event::Done(pb::ApplyResponse::from(
                        &answer,
                    ))),
                }),
                Ok(Err(e)) => Err(status(&super::error::problem(&e))),
                Err(e) => Err(status(&Problem::of(
                    crate::error::Kind::Internal,
                    format!("the apply stopped: {e}"),
                ))),
            };
            let _ = out_tx.send(last);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(out_rx),
        )))
    }

    async fn get(
        &self,
        req: Request<pb::ServiceKey>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&req)?;
        let key = req.into_inner();
        let service = parse_key(&key)?;
        authorize(&caller, &key.namespace).map_err(problem_status)?;
        let answer = self
            .state
            .reconciler
            .get(&service)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(pb::ApplyResponse::from(&answer)))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        let service = parse_key(&pb::ServiceKey {
            namespace: req.namespace.clone(),
            name: req.name.clone(),
        })?;
        authorize(&caller, &req.namespace).map_err(problem_status)?;
        let options = ApplyOptions::requested(req.wait, req.timeout_s.map(u64::from));
        let answer = self
            .state
            .reconciler
            .delete(&service, req.keep_floating_ip.unwrap_or(false), options)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(pb::ApplyResponse::from(&answer)))
    }

    async fn handle_event(
        &self,
        req: Request<pb::EventRequest>,
    ) -> Result<Response<pb::EventResponse>, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        let event = req.event.as_ref().map_or(Value::Null, struct_to_json);
        let options = ApplyOptions::requested(None, req.timeout_s.map(u64::from));
        let allowed = |ns: &str| authorize(&caller, ns).map_err(|p| p.0);
        let report = self
            .state
            .reconciler
            .handle_events(event, &allowed, options)
            .await
            .map_err(|p| status(&p))?;
        let single = report.single;
        let mut results = Vec::with_capacity(report.items.len());
        for item in report.items {
            match item.outcome {
                Ok(Answer::Applied(a) | Answer::Deleted(a)) => {
                    results.push(pb::ApplyResponse::from(&*a))
                }
                Ok(other) => {
                    // Pending, ignored (or planned): said in the action and the reason.
                    let (action, reason) = match other {
                        Answer::Pending(r) => ("pending", r.to_string()),
                        Answer::Ignored(r) => ("ignored", r),
                        _ => ("", String::new()),
                    };
                    results.push(pb::ApplyResponse {
                        service: format!("{}/{}", item.namespace, item.name),
                        action: action.into(),
                        reason,
                        ..Default::default()
                    });
                }
                Err(p) if single => return Err(status(&p)),
                Err(p) => {
                    // Counted as REST counts a List's failed items.
                    crate::error::record(&p);
                    results.push(pb::ApplyResponse {
                        service: format!("{}/{}", item.namespace, item.name),
                        action: "failed".into(),
                        reason: p.shown_detail().into_owned(),
                        ..Default::default()
                    })
                }
            }
        }
        Ok(Response::new(pb::EventResponse { results }))
    }

    async fn sync(
        &self,
        req: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        self.run_sync(req).await.map(Response::new)
    }

    async fn apply_gateway(
        &self,
        req: Request<pb::GatewayRequest>,
    ) -> Result<Response<pb::GatewayResponse>, Status> {
        self.run_gateway(req, true).await.map(Response::new)
    }

    async fn plan_gateway(
        &self,
        req: Request<pb::GatewayRequest>,
    ) -> Result<Response<pb::GatewayResponse>, Status> {
        self.run_gateway(req, false).await.map(Response::new)
    }

    async fn get_gateway(
        &self,
        req: Request<pb::GatewayKey>,
    ) -> Result<Response<pb::GatewayResponse>, Status> {
        let caller = self.caller(&req)?;
        let key = req.into_inner();
        named_gateway(&key.namespace, &key.name).map_err(problem_status)?;
        authorize(&caller, &key.namespace).map_err(problem_status)?;
        let answer = self
            .state
            .reconciler
            .gateway_get(&key.namespace, &key.name)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(gateway_response(&answer)))
    }

    async fn delete_gateway(
        &self,
        req: Request<pb::GatewayDeleteRequest>,
    ) -> Result<Response<pb::GatewayResponse>, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        named_gateway(&req.namespace, &req.name).map_err(problem_status)?;
        authorize(&caller, &req.namespace).map_err(problem_status)?;
        let options = ApplyOptions::requested(req.wait, req.timeout_s.map(u64::from));
        let answer = self
            .state
            .reconciler
            .gateway_delete(&req.namespace, &req.name, options)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(Response::new(gateway_response(&answer)))
    }
}

/// A Gateway answer: REST's JSON as a Struct, and whether it converged.
fn gateway_response(answer: &crate::reconcile::gateway::GatewayAnswer) -> pb::GatewayResponse {
    let json = serde_json::to_value(answer).unwrap_or(Value::Null);
    pb::GatewayResponse {
        result: Some(json_to_struct(&json)),
        converged: answer.converged,
    }
}

impl Translator {
    /// ApplyGateway (`write`) and PlanGateway: the REST body in a Struct,
    /// checked and authorized as REST checks it.
    async fn run_gateway(
        &self,
        req: Request<pb::GatewayRequest>,
        write: bool,
    ) -> Result<pb::GatewayResponse, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        let body = req.request.as_ref().map_or(Value::Null, struct_to_json);
        let input = gateway_input(&caller, body).map_err(problem_status)?;
        let options = if write {
            ApplyOptions::requested(req.wait, req.timeout_s.map(u64::from))
        } else {
            ApplyOptions::requested(Some(false), req.timeout_s.map(u64::from))
        };
        let answer = self
            .state
            .reconciler
            .gateway_apply(&input, options, write)
            .await
            .map_err(|e| status(&super::error::problem(&e)))?;
        Ok(gateway_response(&answer))
    }
}

fn sync_mode(req: &pb::SyncRequest) -> SyncMode {
    SyncMode {
        dry_run: req.dry_run,
        orphans_only: req.orphans_only,
    }
}

impl Translator {
    async fn run_sync(&self, req: Request<pb::SyncRequest>) -> Result<pb::SyncResponse, Status> {
        let caller = self.caller(&req)?;
        let req = req.into_inner();
        let list = req.list.as_ref().map_or(Value::Null, struct_to_json);
        let options = ApplyOptions::requested(None, req.timeout_s.map(u64::from));
        let mode = sync_mode(&req);
        let namespaces = (!req.namespaces.is_empty()).then_some(req.namespaces);
        let scope = sync_scope(&caller, namespaces).map_err(problem_status)?;
        let report = self
            .state
            .reconciler
            .sync(list, mode, scope.as_deref(), options)
            .await
            .map_err(|p| status(&p))?;
        Ok(pb::SyncResponse {
            result: Some(json_to_struct(&sync_json(&report))),
        })
    }
}

/// The gRPC router: Translator, standard health (SERVING), reflection v1 and v1alpha.
pub async fn router(state: Arc<AppState>) -> Result<tonic::service::Routes, String> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::translator_server::TranslatorServer<Translator>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| e.to_string())?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| e.to_string())?;
    let mut routes = tonic::service::Routes::default();
    routes = routes
        .add_service(
            // The same size limit as REST bodies.
            pb::translator_server::TranslatorServer::new(Translator { state })
                .max_decoding_message_size(super::shared::DEFAULT_BODY_LIMIT),
        )
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_and_json_round_trip_with_whole_numbers_as_integers() {
        let v = json!({"spec": {"ports": [{"port": 80, "weight": 1.5}], "ok": true, "none": null}, "name": "web"});
        assert_eq!(struct_to_json(&json_to_struct(&v)), v);
    }

    #[test]
    fn actions_on_the_wire_are_their_rest_names() {
        use crate::reconcile::ApplyAction as A;
        use crate::response::PlanAction as P;
        for a in [A::Created, A::Updated, A::Unchanged, A::Deleted, A::Skipped] {
            assert_eq!(to_json(&a), json!(a.as_str()));
        }
        for p in [P::Create, P::Update, P::Unchanged, P::Delete, P::Skip] {
            assert_eq!(to_json(&p), json!(p.as_str()));
        }
    }
}
