//! Kubernetes watch events, typed: a watch event `{"type", "object"}` or a
//! `List` (of objects, or of events) decoded into the work each asks of the
//! cloud (a Service applied or deleted; Endpoints, and the EndpointSlices of
//! one Service together, reconciled into members), and the runs of that
//! work, a few Services at a time. REST and gRPC only format the answers.

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::{ApplyInput, ApplyOptions, ApplyResponse, MembersOutcome, ReconcileError, Reconciler};
use crate::error::{Kind, Problem};
use crate::model::ServiceRef;
use crate::response::PlanResponse;

/// What became of one event or sync item: its answer, or its problem.
pub type Outcome = Result<Answer, Box<Problem>>;

/// One object of an event request and what became of it.
pub struct EventItem {
    /// The object's `kind`, the event's `type`, and whom it names.
    pub kind: String,
    pub event: String,
    pub namespace: String,
    pub name: String,
    pub outcome: Outcome,
}

/// What an event request did; `single`: it was one watch event (not a List).
pub struct EventsReport {
    pub single: bool,
    pub items: Vec<EventItem>,
}

impl Reconciler {
    /// Runs the objects of an event request. `allowed` says whether the
    /// caller may touch a namespace (the API's check, handed in).
    pub async fn handle_events(
        &self,
        value: Value,
        allowed: &(dyn Fn(&str) -> Result<(), Box<Problem>> + Sync),
        options: ApplyOptions,
    ) -> Result<EventsReport, Box<Problem>> {
        let decoded = decode(value, allowed)?;
        let mut items = Vec::with_capacity(decoded.events.len());
        let mut work = Vec::new();
        for (slot, e) in decoded.events.into_iter().enumerate() {
            let outcome = match e.step {
                Ok(Step::Answered(answer)) => Ok(answer),
                Ok(Step::Work(w)) => {
                    work.push((slot, w));
                    Ok(Answer::Queued)
                }
                Err(p) => Err(p),
            };
            items.push(EventItem {
                kind: e.kind,
                event: e.event,
                namespace: e.namespace,
                name: e.name,
                outcome,
            });
        }
        for (slot, outcome) in self.run_all(work, options).await {
            items[slot].outcome = outcome.map_err(|e| Box::new(crate::error::problem(&e)));
        }
        Ok(EventsReport {
            single: decoded.single,
            items,
        })
    }
}

/// What one event (or sync item) asks of the cloud.
pub enum Work {
    Apply(Box<ApplyInput>),
    /// A dry run's apply: the plan, no writes.
    Plan(Box<ApplyInput>),
    Delete {
        service: ServiceRef,
        keep_floating_ip: bool,
    },
    Endpoints {
        service: ServiceRef,
        endpoints: Box<Endpoints>,
    },
    Slices {
        service: ServiceRef,
        slices: Vec<EndpointSlice>,
    },
}

impl Work {
    /// The Service it works on: work on one Service runs in order.
    fn service(&self) -> ServiceRef {
        match self {
            Work::Apply(input) | Work::Plan(input) => ServiceRef {
                namespace: input.namespace().to_string(),
                name: input.service.metadata.name.clone().unwrap_or_default(),
            },
            Work::Delete { service, .. }
            | Work::Endpoints { service, .. }
            | Work::Slices { service, .. } => service.clone(),
        }
    }
}

/// The answer of one event or sync item, typed: REST writes it as JSON,
/// gRPC field by field.
pub enum Answer {
    Applied(Box<ApplyResponse>),
    /// A deletion: 200 even while Octavia still deletes (`converged` says so).
    Deleted(Box<ApplyResponse>),
    Planned(Box<PlanResponse>),
    /// Members for a Service that has no load balancer yet.
    Pending(&'static str),
    /// An event that asks nothing of the cloud, and why.
    Ignored(String),
    /// Waiting for its work (filled in when it ran).
    Queued,
}

impl Answer {
    /// Whether the cloud holds what was asked: an apply still converging,
    /// and pending members, do not.
    pub fn converged(&self) -> bool {
        match self {
            Answer::Applied(a) => a.converged,
            Answer::Pending(_) => false,
            _ => true,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Answer::Applied(a) | Answer::Deleted(a) => {
                serde_json::to_value(a).unwrap_or(Value::Null)
            }
            Answer::Planned(p) => serde_json::to_value(p).unwrap_or(Value::Null),
            Answer::Pending(reason) => json!({"pending": reason}),
            Answer::Ignored(reason) => json!({"ignored": reason}),
            Answer::Queued => Value::Null,
        }
    }
}

/// One object of an event request, decoded.
pub struct Event {
    /// The object's `kind`, the event's `type`, and whom it names.
    pub kind: String,
    pub event: String,
    pub namespace: String,
    pub name: String,
    /// What it asks of the cloud; `Answered` when nothing (and why).
    pub step: Result<Step, Box<Problem>>,
}

pub enum Step {
    Work(Work),
    Answered(Answer),
}

/// The objects of an event request; `single`: it was one watch event, not a
/// List.
pub struct Events {
    pub single: bool,
    pub events: Vec<Event>,
}

/// Decodes an event request. `allowed` says whether the caller may touch a
/// namespace: an object it may not touch is refused before it is read.
/// EndpointSlices of one Service become one event, after the others.
pub fn decode(
    value: Value,
    allowed: &dyn Fn(&str) -> Result<(), Box<Problem>>,
) -> Result<Events, Box<Problem>> {
    let single = value.get("object").is_some();
    let entries: Vec<(String, Value)> = if single {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        vec![(kind.to_string(), value["object"].clone())]
    } else if value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
    {
        crate::k8s::list_items(&value)
            .map(|items| {
                items
                    .into_iter()
                    .map(|i| match i.get("object") {
                        Some(o) => (i["type"].as_str().unwrap_or("").to_string(), o.clone()),
                        None => ("MODIFIED".to_string(), i),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        let p = Problem::of(
            Kind::InvalidEvent,
            "expected a watch event {\"type\", \"object\"} or a List",
        );
        return Err(Box::new(p.with_field("type")));
    };
    let mut events = Vec::with_capacity(entries.len());
    let mut slices: Vec<(ServiceRef, String, Vec<EndpointSlice>)> = Vec::new();
    for (index, (event, object)) in entries.into_iter().enumerate() {
        let (kind, namespace, name) = meta(&object);
        let type_field = || {
            if single {
                "type".to_string()
            } else {
                format!("items[{index}].type")
            }
        };
        let step = match allowed(&namespace) {
            Err(p) => Err(p),
            Ok(()) if !is_event_type(&event) => Err(Box::new(
                Problem::of(
                    Kind::InvalidEvent,
                    format!(
                        "event type {:?} is not ADDED, MODIFIED, DELETED, BOOKMARK or ERROR",
                        event.chars().take(40).collect::<String>()
                    ),
                )
                .with_field(type_field()),
            )),
            Ok(()) if kind == "EndpointSlice" && event != "DELETED" && !is_quiet(&event) => {
                match slice_of(&namespace, object) {
                    Ok((service, slice)) => {
                        match slices.iter_mut().find(|(k, _, _)| *k == service) {
                            Some((_, _, list)) => list.push(slice),
                            None => slices.push((service, event.clone(), vec![slice])),
                        }
                        continue;
                    }
                    Err(p) => Err(p),
                }
            }
            Ok(()) => step(&kind, &event, &namespace, &name, object),
        };
        events.push(Event {
            kind,
            event,
            namespace,
            name,
            step,
        });
    }
    for (service, event, list) in slices {
        events.push(Event {
            kind: "EndpointSlice".into(),
            event,
            namespace: service.namespace.clone(),
            name: service.name.clone(),
            step: Ok(Step::Work(Work::Slices {
                service,
                slices: list,
            })),
        });
    }
    Ok(Events { single, events })
}

fn is_event_type(event: &str) -> bool {
    matches!(
        event,
        "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR"
    )
}

/// Events that carry no change.
fn is_quiet(event: &str) -> bool {
    matches!(event, "BOOKMARK" | "ERROR")
}

/// What an event other than an EndpointSlice's change asks.
fn step(
    kind: &str,
    event: &str,
    namespace: &str,
    name: &str,
    object: Value,
) -> Result<Step, Box<Problem>> {
    let ignored = |why: &str| Ok(Step::Answered(Answer::Ignored(why.to_string())));
    let work = |w| Ok(Step::Work(w));
    let decoded = |e: crate::k8s::InputError| Box::new(Problem::from(&e));
    if is_quiet(event) {
        return ignored(&format!("{event} events carry no change"));
    }
    match (kind, event) {
        ("Service", "DELETED") => {
            let svc: Service = crate::k8s::decode("event", "object.", object).map_err(decoded)?;
            // Only the annotation matters, read alone: a Service that no
            // longer translates (a setting narrowed since) still has its
            // load balancer removed, its floating IP kept as it says.
            let keep_floating_ip = svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::translate::annotation::KEEP_FLOATING_IP))
                .and_then(|v| crate::translate::parse_bool(v))
                .unwrap_or(false);
            work(Work::Delete {
                service: named(namespace, name)?,
                keep_floating_ip,
            })
        }
        ("Service", _) => ApplyInput::from_json(json!({"service": object}))
            .map_err(decoded)
            .and_then(|input| work(Work::Apply(Box::new(input)))),
        ("Endpoints", "DELETED") => {
            ignored("deleted Endpoints: the Service's deletion removes the load balancer")
        }
        ("Endpoints", _) => {
            let endpoints: Endpoints =
                crate::k8s::decode("event", "object.", object).map_err(decoded)?;
            work(Work::Endpoints {
                service: named(namespace, name)?,
                endpoints: Box::new(endpoints),
            })
        }
        ("EndpointSlice", _) => ignored(
            "a deleted EndpointSlice: send the Service's remaining slices together to reconcile",
        ),
        _ => ignored("not a Service, Endpoints or EndpointSlice event"),
    }
}

/// `kind`, namespace (`default` when absent) and name of an event's object.
fn meta(object: &Value) -> (String, String, String) {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    (text("/kind"), namespace, text("/metadata/name"))
}

fn named(namespace: &str, name: &str) -> Result<ServiceRef, Box<Problem>> {
    crate::translate::parse_service_ref(namespace, name, "object.metadata.")
        .map_err(|e| Box::new(Problem::from(&e)))
}

/// An EndpointSlice event's slice and the Service it belongs to (its label).
fn slice_of(namespace: &str, object: Value) -> Result<(ServiceRef, EndpointSlice), Box<Problem>> {
    let label_field = "object.metadata.labels[\"kubernetes.io/service-name\"]";
    let slice: EndpointSlice =
        crate::k8s::decode("event", "object.", object).map_err(|e| Box::new(Problem::from(&e)))?;
    let Some(service) = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
    else {
        let p = Problem::of(
            Kind::InvalidObject,
            "the label kubernetes.io/service-name is missing",
        );
        return Err(Box::new(
            p.titled("EndpointSlice without its Service")
                .with_field(label_field),
        ));
    };
    let service = named(namespace, service).map_err(|p| Box::new(p.with_field(label_field)))?;
    Ok((service, slice))
}

impl Reconciler {
    /// Runs the work, `[openstack] services_at_once` Services at a time; the
    /// work of one Service one after the other, in its order. Answers each
    /// slot's outcome.
    pub async fn run_all(
        &self,
        work: Vec<(usize, Work)>,
        options: ApplyOptions,
    ) -> Vec<(usize, Result<Answer, ReconcileError>)> {
        use futures_util::StreamExt as _;
        let mut index: std::collections::HashMap<ServiceRef, usize> = Default::default();
        let mut groups: Vec<Vec<(usize, Work)>> = Vec::new();
        for (slot, w) in work {
            let next = groups.len();
            let at = *index.entry(w.service()).or_insert(next);
            if at == next {
                groups.push(Vec::new());
            }
            groups[at].push((slot, w));
        }
        let at_once = self.settings.openstack.services_at_once.max(1);
        futures_util::stream::iter(groups.into_iter().map(|list| async move {
            let mut done = Vec::with_capacity(list.len());
            for (slot, w) in list {
                done.push((slot, self.run(w, options).await));
            }
            done
        }))
        .buffer_unordered(at_once)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
    }

    /// Runs one piece of work.
    pub async fn run(&self, work: Work, options: ApplyOptions) -> Result<Answer, ReconcileError> {
        let applied = |a| Answer::Applied(Box::new(a));
        Ok(match work {
            Work::Apply(input) => applied(self.apply(&input, options).await?),
            Work::Plan(input) => Answer::Planned(Box::new(self.plan(&input, false).await?)),
            Work::Delete {
                service,
                keep_floating_ip,
            } => Answer::Deleted(Box::new(
                self.delete(&service, keep_floating_ip, options).await?,
            )),
            Work::Endpoints { service, endpoints } => {
                let backends = crate::translate::Backends {
                    endpoints: Some(&endpoints),
                    endpoint_slices: &[],
                };
                members(self.apply_members(&service, backends, options).await?)
            }
            Work::Slices { service, slices } => {
                let backends = crate::translate::Backends {
                    endpoints: None,
                    endpoint_slices: &slices,
                };
                members(self.apply_members(&service, backends, options).await?)
            }
        })
    }
}

fn members(outcome: MembersOutcome) -> Answer {
    match outcome {
        MembersOutcome::Pending => {
            Answer::Pending("no load balancer for this Service yet: members come with its apply")
        }
        MembersOutcome::Applied(answer) => Answer::Applied(answer),
    }
}
