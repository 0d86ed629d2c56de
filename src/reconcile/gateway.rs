//! Gateways: translate (the Gateway's annotations as a Service's, its
//! listeners and routes by `crate::gateway`), store the listeners'
//! certificates, observe the load balancer's tree, plan, execute one write
//! at a time (Octavia locks the load balancer until each is done), and
//! answer with the statuses Gateway API defines; plan, get and delete.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use super::*;
use crate::gateway::api::{CONTROLLER_NAME, Gateway, GatewayClass, ReferenceGrant, Route};
use crate::gateway::design::{
    Design, GatewayStatus, PolicyAction, RedirectTarget, RouteOutcome, SecretKey,
};
use crate::gateway::plan::{self as gwplan, GatewayOp, ObservedGateway, PlanContext};
use crate::gateway::translate as gwtranslate;
use crate::model::{IpFamily, Member, MemberSpec, Translation};
use crate::openstack::gateway::PolicyWrite;
use cloud::Calls;
use wait::WaitKind;

/// A Gateway with everything its translation reads (`POST /v1/gateways/apply`).
#[derive(Debug, Clone)]
pub struct GatewayInput {
    pub gateway: Gateway,
    pub gateway_class: Option<GatewayClass>,
    pub routes: Vec<Route>,
    pub reference_grants: Vec<ReferenceGrant>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub namespaces: Vec<Namespace>,
    pub tls_secrets: Vec<Secret>,
}

fn malformed(field: Option<String>, message: impl Into<String>) -> crate::k8s::InputError {
    crate::k8s::InputError {
        origin: "request".into(),
        object: None,
        field,
        message: message.into(),
    }
}

/// A list field of the request: absent or null is empty; each item decoded
/// and named by its index on error.
fn list<T: serde::de::DeserializeOwned>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Result<Vec<T>, crate::k8s::InputError> {
    match map.remove(field).filter(|v| !v.is_null()) {
        None => Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| crate::k8s::decode("request", &format!("{field}[{i}]."), v))
            .collect(),
        Some(_) => Err(malformed(Some(field.into()), "expected a list")),
    }
}

impl GatewayInput {
    /// Reads `{"gateway", "gatewayClass"?, "routes", "referenceGrants",
    /// "services", "endpointSlices", "namespaces", "tlsSecrets"}`; what is
    /// malformed is named by its field.
    pub fn from_json(body: serde_json::Value) -> Result<GatewayInput, crate::k8s::InputError> {
        let serde_json::Value::Object(mut map) = body else {
            return Err(malformed(None, "expected a JSON object with a \"gateway\""));
        };
        const FIELDS: [&str; 8] = [
            "gateway",
            "gatewayClass",
            "routes",
            "referenceGrants",
            "services",
            "endpointSlices",
            "namespaces",
            "tlsSecrets",
        ];
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(malformed(
                Some(unknown.clone()),
                format!("unknown field; expected one of {}", FIELDS.join(", ")),
            ));
        }
        let gateway = map
            .remove("gateway")
            .filter(|v| !v.is_null())
            .ok_or_else(|| malformed(Some("gateway".into()), "missing"))?;
        let gateway: Gateway = crate::k8s::decode("request", "gateway.", gateway)?;
        let name = gateway.metadata.name.as_deref().unwrap_or("");
        if name.is_empty() || !names::is_dns_name(name) || name.len() > 253 {
            return Err(malformed(
                Some("gateway.metadata.name".into()),
                format!("{name:?} is not a DNS-1123 subdomain"),
            ));
        }
        if let Some(ns) = &gateway.metadata.namespace
            && crate::model::DnsLabel::try_new(ns).is_err()
        {
            return Err(malformed(
                Some("gateway.metadata.namespace".into()),
                format!("{ns:?} is not a DNS-1123 label"),
            ));
        }
        let gateway_class = match map.remove("gatewayClass").filter(|v| !v.is_null()) {
            Some(v) => Some(crate::k8s::decode::<GatewayClass>(
                "request",
                "gatewayClass.",
                v,
            )?),
            None => None,
        };
        if let Some(class) = &gateway_class
            && class.metadata.name.as_deref() != Some(gateway.spec.gateway_class_name.as_str())
        {
            return Err(malformed(
                Some("gatewayClass.metadata.name".into()),
                format!(
                    "the Gateway's class is {:?}, not this one",
                    gateway.spec.gateway_class_name
                ),
            ));
        }
        Ok(GatewayInput {
            gateway,
            gateway_class,
            routes: list(&mut map, "routes")?,
            reference_grants: list(&mut map, "referenceGrants")?,
            services: list(&mut map, "services")?,
            endpoint_slices: list(&mut map, "endpointSlices")?,
            namespaces: list(&mut map, "namespaces")?,
            tls_secrets: list(&mut map, "tlsSecrets")?,
        })
    }

    /// Every namespace the request speaks for, each with the field that
    /// names it: a token must be allowed every one.
    pub fn namespaces_named(&self) -> Vec<(String, String)> {
        let ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.namespace.clone().unwrap_or_else(|| "default".into())
        };
        let mut out = vec![("gateway".to_string(), self.namespace())];
        out.extend(
            self.routes
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("routes[{i}]"), ns(r.metadata()))),
        );
        out.extend(
            self.reference_grants
                .iter()
                .enumerate()
                .map(|(i, g)| (format!("referenceGrants[{i}]"), ns(&g.metadata))),
        );
        out.extend(
            self.services
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("services[{i}]"), ns(&s.metadata))),
        );
        out.extend(
            self.endpoint_slices
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("endpointSlices[{i}]"), ns(&s.metadata))),
        );
        out.extend(
            self.tls_secrets
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("tlsSecrets[{i}]"), ns(&s.metadata))),
        );
        out
    }

    /// What the pure translation reads of this request.
    pub fn translation_inputs<'a>(
        &'a self,
        member_cidrs: Option<&'a [ipnet::IpNet]>,
        family: IpFamily,
        now: &'a str,
    ) -> gwtranslate::Inputs<'a> {
        gwtranslate::Inputs {
            gateway: &self.gateway,
            routes: &self.routes,
            reference_grants: &self.reference_grants,
            services: &self.services,
            endpoint_slices: &self.endpoint_slices,
            namespaces: &self.namespaces,
            tls_secrets: &self.tls_secrets,
            member_cidrs,
            family,
            now,
        }
    }

    pub fn namespace(&self) -> String {
        self.gateway
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }
    pub fn name(&self) -> String {
        self.gateway.metadata.name.clone().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    pub namespace: String,
    pub name: String,
    pub status: GatewayStatus,
}

/// A rule of an L7 policy, as read back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    #[serde(rename = "type")]
    pub kind: String,
    pub compare_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
    pub invert: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub id: String,
    pub position: u32,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_http_code: Option<u16>,
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListenerView {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pool: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    /// Who may connect (the PROMETHEUS listener's scrapers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub allowed_cidrs: Vec<ipnet::IpNet>,
    #[serde(rename = "l7Policies")]
    pub l7_policies: Vec<PolicyView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayPoolView {
    pub id: String,
    pub name: String,
    pub protocol: String,
    pub members: Vec<Member>,
}

/// The load balancer's tree, read back.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayLoadBalancerView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floating_ip: Option<String>,
    pub provisioning_status: String,
    pub operating_status: String,
    pub listeners: Vec<GatewayListenerView>,
    pub pools: Vec<GatewayPoolView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAnswer {
    /// `created`, `updated`, `unchanged`, `planned`, `ignored` (a class of
    /// another controller), `found`, `deleted` or `absent`.
    pub action: &'static str,
    pub converged: bool,
    pub gateway: GatewayRef,
    pub routes: Vec<RouteOutcome>,
    pub load_balancer: Option<GatewayLoadBalancerView>,
    pub operations: Vec<String>,
    pub openstack_calls: CallCounts,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where a Gateway's objects are found: its load balancer's name, its
/// owner tags, and its floating IPs' description.
struct Names {
    name: String,
    owner: Vec<String>,
    fip_description: String,
}

impl Names {
    fn of(cluster: &str, namespace: &str, name: &str) -> Names {
        let owner = gwtranslate::owner_tags(cluster, namespace, name);
        Names {
            name: gwtranslate::load_balancer_name(namespace, name),
            fip_description: names::owner_description(&owner),
            owner,
        }
    }

    /// One Barbican container name a certificate Secret.
    fn certificate(&self, secret: &SecretKey) -> String {
        let mut owner = self.owner.clone();
        owner.push(format!("secret:{}/{}", secret.namespace, secret.name));
        names::certificate_name(&owner)
    }
}

fn counts(calls: &Calls) -> CallCounts {
    let (reads, writes, waits) = calls.snapshot();
    CallCounts {
        reads,
        writes,
        waits,
    }
}

/// A translation error named in the Gateway's words.
fn gateway_field(e: ReconcileError) -> ReconcileError {
    match e {
        ReconcileError::Translate(crate::translate::TranslateError::Annotation {
            annotation,
            message,
        }) => ReconcileError::Translate(crate::translate::TranslateError::Field {
            field: crate::translate::annotation_field(&annotation)
                .replacen("service.", "gateway.", 1),
            message,
        }),
        ReconcileError::Translate(crate::translate::TranslateError::Field { field, message }) => {
            ReconcileError::Translate(crate::translate::TranslateError::Field {
                field: field.replacen("service.", "gateway.", 1),
                message,
            })
        }
        other => other,
    }
}

fn view(observed: &ObservedGateway) -> Option<GatewayLoadBalancerView> {
    let lb = observed.load_balancer.as_ref()?;
    let pool_name = |id: &str| {
        lb.pools
            .iter()
            .find(|p| p.id == id)
            .map_or(id.to_string(), |p| p.name.clone())
    };
    Some(GatewayLoadBalancerView {
        id: lb.id.clone(),
        name: lb.name.clone(),
        vip_address: lb.vip_address.map(|a| a.to_string()),
        floating_ip: observed.floating_ips.first().map(|f| f.address.to_string()),
        provisioning_status: lb.provisioning_status.clone(),
        operating_status: lb.operating_status.clone(),
        listeners: lb
            .listeners
            .iter()
            .map(|l| GatewayListenerView {
                id: l.id.clone(),
                name: l.name.clone(),
                protocol: l.protocol.clone(),
                port: l.port,
                default_pool: l.default_pool_id.as_deref().map(pool_name),
                certificates: l
                    .default_tls_container_ref
                    .iter()
                    .chain(&l.sni_container_refs)
                    .cloned()
                    .collect(),
                allowed_cidrs: l.allowed_cidrs.clone(),
                l7_policies: l
                    .policies
                    .iter()
                    .map(|p| PolicyView {
                        id: p.id.clone(),
                        position: p.position,
                        action: p.action.clone(),
                        redirect_pool: p.redirect_pool_id.as_deref().map(pool_name),
                        redirect_url: p.redirect_url.clone(),
                        redirect_prefix: p.redirect_prefix.clone(),
                        redirect_http_code: p.redirect_http_code,
                        rules: p
                            .rules
                            .iter()
                            .map(|r| RuleView {
                                kind: r.kind.clone(),
                                compare_type: r.compare_type.clone(),
                                key: r.key.clone(),
                                value: r.value.clone(),
                                invert: r.invert,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        pools: lb
            .pools
            .iter()
            .map(|p| GatewayPoolView {
                id: p.id.clone(),
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                members: p.members.clone(),
            })
            .collect(),
    })
}

/// The Gateway's address: its floating IP, else its VIP.
fn address(observed: &ObservedGateway) -> Option<String> {
    observed
        .floating_ips
        .first()
        .map(|f| f.address.to_string())
        .or_else(|| {
            observed
                .load_balancer
                .as_ref()
                .and_then(|lb| lb.vip_address.map(|a| a.to_string()))
        })
}

/// What execution learnt: ids by the names the plan uses.
#[derive(Default)]
struct Made {
    /// This apply created the load balancer (still provisioning).
    created: bool,
    load_balancer: Option<String>,
    vip_port: Option<String>,
    pools: BTreeMap<String, String>,
    listeners: BTreeMap<String, String>,
}

impl Reconciler {
    /// `POST /v1/gateways/plan` (`write` false) and `/apply`.
    pub async fn gateway_apply(
        &self,
        input: &GatewayInput,
        options: ApplyOptions,
        write: bool,
    ) -> Result<GatewayAnswer, ReconcileError> {
        if !write {
            return options
                .bounded(self.gateway_apply_within(input, options, write))
                .await;
        }
        let timer = crate::metrics::global().start(Verb::Apply, Subject::Gateway);
        let r = options
            .bounded(self.gateway_apply_within(input, options, write))
            .await;
        timed(timer, &r, |a| a.action);
        r
    }

    async fn gateway_apply_within(
        &self,
        input: &GatewayInput,
        options: ApplyOptions,
        write: bool,
    ) -> Result<GatewayAnswer, ReconcileError> {
        let calls = Calls::default();
        let (namespace, name) = (input.namespace(), input.name());
        let names = Names::of(&self.settings.cluster.name, &namespace, &name);
        let now = crate::sim::format_time(std::time::SystemTime::now());
        if let Some(class) = &input.gateway_class
            && class.spec.controller_name != CONTROLLER_NAME
        {
            return Ok(GatewayAnswer {
                action: "ignored",
                converged: true,
                gateway: GatewayRef {
                    namespace,
                    name,
                    status: GatewayStatus::default(),
                },
                routes: Vec::new(),
                load_balancer: None,
                operations: Vec::new(),
                openstack_calls: counts(&calls),
                notes: vec![format!(
                    "GatewayClass {} names controller {:?}, not {CONTROLLER_NAME}: the Gateway is left to it",
                    class.metadata.name.as_deref().unwrap_or(""),
                    class.spec.controller_name
                )],
            });
        }
        let lock = self.lock_for(&crate::model::ServiceRef {
            namespace: namespace.clone(),
            name: format!("gateway:{name}"),
        });
        let _guard = lock.lock().await;

        // The load balancer's settings, from the annotations as a Service's.
        let service_input = ApplyInput {
            service: gwtranslate::as_service(&input.gateway),
            endpoints: None,
            endpoint_slices: None,
            tls_secrets: None,
        };
        let translation = self
            .translate(&service_input, &calls, true)
            .await
            .map_err(gateway_field)?;
        let Translation::LoadBalancer(mut desired) = translation else {
            return Err(ReconcileError::Translate(
                crate::translate::TranslateError::Field {
                    field: "gateway".into(),
                    message: "the Gateway's annotations leave it no load balancer".into(),
                },
            ));
        };
        if desired.load_balancer_id.is_some() {
            return Err(ReconcileError::Translate(
                crate::translate::TranslateError::Field {
                    field: crate::translate::annotation_field(
                        crate::translate::annotation::LOAD_BALANCER_ID,
                    )
                    .replacen("service.", "gateway.", 1),
                    message: "a Gateway has a load balancer of its own; it joins no other".into(),
                },
            ));
        }
        desired.name = names.name.clone();
        desired.owner_tags = names.owner.clone();
        desired.tags = names.owner.clone();

        // Its one listener stands for the annotations' member subnet only:
        // the load balancer is created without children.
        let family = desired
            .vip
            .address
            .map_or(IpFamily::IPv4, |a| IpFamily::of(&a));
        // Members only where Services' may be: `[tenancy] member_cidrs`,
        // else the pod and member subnets' CIDRs (never any address an
        // EndpointSlice names).
        let cidrs = self.member_cidrs(&calls, true).await?;
        let design =
            gwtranslate::translate(&input.translation_inputs(cidrs.as_deref(), family, &now));
        desired.prometheus_listener = gwtranslate::prometheus_listener(
            &names.name,
            desired.prometheus_listener.as_ref(),
            &design,
        )?;
        // PROMETHEUS listeners came with Octavia API 2.25: refused before
        // anything is made, as for a Service.
        if desired.prometheus_listener.is_some()
            && !self.capabilities(&calls).await?.prometheus_listeners
        {
            return Err(crate::plan::PlanError::Unsupported {
                what: "a PROMETHEUS listener (svc-lbaas.io/prometheus-listener-port; Octavia API 2.25)"
                    .into(),
                api: "load-balancer",
            }
            .into());
        }

        let mut observed = self
            .cloud
            .read_gateway(&calls, &names.name, &names.owner, &names.fip_description)
            .await?;
        let existed = observed.load_balancer.is_some();
        let certificates = self
            .gateway_certificates(&calls, &names, &design, input, write)
            .await?;
        let wants_fip = !matches!(desired.floating_ip, crate::model::FloatingIpIntent::None);
        let address_now = address(&observed);
        let ops = gwplan::plan(
            &design,
            &observed,
            &PlanContext {
                name: &names.name,
                certificates: &certificates,
                address: address_now.as_deref(),
                floating_ip: wants_fip,
                prometheus: desired.prometheus_listener.as_ref(),
            },
        );
        let mut notes = Vec::new();
        if !write {
            return Ok(self.gateway_answer(
                "planned",
                false,
                input,
                design,
                &observed,
                ops.iter().map(GatewayOp::summary).collect(),
                &calls,
                notes,
            ));
        }
        let mut done = Vec::new();
        let mut made = Made::default();
        if let Some(lb) = &observed.load_balancer {
            made.load_balancer = Some(lb.id.clone());
            made.vip_port = lb.vip_port_id.clone();
            made.pools = lb
                .pools
                .iter()
                .map(|p| (p.name.clone(), p.id.clone()))
                .collect();
            made.listeners = lb
                .listeners
                .iter()
                .map(|l| (l.name.clone(), l.id.clone()))
                .collect();
        }
        let mut address = address_now;
        let mut converged = true;
        for op in &ops {
            match self
                .gateway_execute(
                    &calls,
                    op,
                    Some(&desired),
                    &names,
                    &mut made,
                    &mut address,
                    options,
                )
                .await
            {
                Ok(()) => done.push(op.summary()),
                Err(OpenStackError::WaitTimeout { .. }) => {
                    converged = false;
                    notes.push(format!("stopped waiting at: {}", op.summary()));
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Containers of the Gateway's Secrets no listener uses any more (an
        // older content of a Secret): deleted, as the key they hold.
        if converged {
            for (key, current) in &certificates {
                for stored in self
                    .cloud
                    .certificates(&calls, &names.certificate(key))
                    .await?
                {
                    if stored.container_ref != *current {
                        self.cloud
                            .delete_certificate(&calls, &stored.container_ref)
                            .await?;
                        done.push(format!(
                            "delete certificate container {}",
                            stored.container_ref
                        ));
                    }
                }
            }
        }
        // The last write settles before the answer says Programmed.
        if converged
            && !done.is_empty()
            && let Some(id) = made.load_balancer.clone()
        {
            if options.wait {
                match self.wait_settled(&calls, &id, options).await {
                    Ok(()) => {}
                    Err(OpenStackError::WaitTimeout { .. }) => converged = false,
                    Err(e) => return Err(e.into()),
                }
            } else {
                converged = false;
            }
        }
        if !done.is_empty() {
            observed = self
                .cloud
                .read_gateway(&calls, &names.name, &names.owner, &names.fip_description)
                .await?;
        }
        let action = match (existed, done.is_empty()) {
            (false, _) => "created",
            (true, true) => "unchanged",
            (true, false) => "updated",
        };
        Ok(self.gateway_answer(
            action, converged, input, design, &observed, done, &calls, notes,
        ))
    }

    /// Each certificate Secret's Barbican container: the one stored for
    /// this Gateway from the same Secret content (by digest), else (`write`)
    /// one stored now, else a pending marker.
    async fn gateway_certificates(
        &self,
        calls: &Calls,
        names: &Names,
        design: &Design,
        input: &GatewayInput,
        write: bool,
    ) -> Result<BTreeMap<SecretKey, String>, ReconcileError> {
        let mut out = BTreeMap::new();
        for key in design.listeners.iter().flat_map(|l| &l.certificates) {
            if out.contains_key(key) {
                continue;
            }
            let Some(secret) = input.tls_secrets.iter().find(|s| {
                s.metadata.namespace.as_deref().unwrap_or("default") == key.namespace
                    && s.metadata.name.as_deref() == Some(key.name.as_str())
            }) else {
                continue;
            };
            let material =
                crate::certificate::read(secret, std::time::SystemTime::now()).map_err(|r| {
                    crate::translate::TranslateError::Field {
                        field: format!("tlsSecrets[{}/{}]", key.namespace, key.name),
                        message: r.0,
                    }
                })?;
            let container = names.certificate(key);
            let stored = self.cloud.certificates(calls, &container).await?;
            let found = stored
                .iter()
                .find(|c| c.digest.as_deref() == Some(material.digest.as_str()))
                .map(|c| c.container_ref.clone());
            let reference = match found {
                Some(r) => r,
                None if write => {
                    let r = self
                        .cloud
                        .store_certificate(calls, &container, &material)
                        .await?;
                    tracing::info!(secret = %format!("{}/{}", key.namespace, key.name), container = %r, "stored a Gateway's certificate in Barbican");
                    r
                }
                None => format!(
                    "{}{}/{}",
                    names::PENDING_CERTIFICATE,
                    key.namespace,
                    key.name
                ),
            };
            out.insert(key.clone(), reference);
        }
        Ok(out)
    }

    /// One step, then the wait for the load balancer to settle.
    #[allow(clippy::too_many_arguments)]
    async fn gateway_execute(
        &self,
        calls: &Calls,
        op: &GatewayOp,
        desired: Option<&crate::model::DesiredLoadBalancer>,
        names: &Names,
        made: &mut Made,
        address: &mut Option<String>,
        options: ApplyOptions,
    ) -> Result<(), OpenStackError> {
        let cloud = &*self.cloud;
        let lb = || {
            made.load_balancer.clone().ok_or_else(|| {
                OpenStackError::Precondition("the Gateway's load balancer is not known yet".into())
            })
        };
        let owner = &names.owner;
        let desired_lb = || {
            desired.ok_or_else(|| {
                OpenStackError::Precondition(format!(
                    "{} needs the Gateway's settings",
                    op.summary()
                ))
            })
        };
        match op {
            GatewayOp::CreateLoadBalancer { .. } => {
                let _under_way = self.waits.create_under_way();
                let created = cloud
                    .create_load_balancer(calls, desired_lb()?, owner, false, false, &[])
                    .await?;
                made.created = true;
                made.load_balancer = created.id;
                made.vip_port = created.vip_port_id;
            }
            GatewayOp::CreateFloatingIp => {
                // The VIP port is known once the load balancer answered:
                // the floating IP is made while Octavia provisions.
                let crate::model::FloatingIpIntent::Pool {
                    network_id,
                    subnet_id,
                    subnet_match,
                } = &desired_lb()?.floating_ip
                else {
                    return Ok(());
                };
                // As a Service's: after the creates this process sent
                // before are answered (`StatusBoard::after_earlier_creates`).
                if made.created {
                    self.waits
                        .after_earlier_creates(options.wait_budget())
                        .await;
                }
                let network = cloud.floating_network(calls, network_id, subnet_id).await?;
                // A subnet chosen by name or tags: the first that matches.
                let subnet_id = match (subnet_id, subnet_match) {
                    (None, Some(m)) => cloud
                        .matching_subnets(calls, &network, m)
                        .await?
                        .into_iter()
                        .next()
                        .map(|(id, _)| id),
                    _ => subnet_id.clone(),
                };
                let port = made.vip_port.clone().ok_or_else(|| {
                    OpenStackError::Precondition("the VIP port is not known".into())
                })?;
                cloud
                    .create_floating_ip(calls, &network, &port, &subnet_id, &names.fip_description)
                    .await?;
                // The Gateway's address is the floating IP from now on:
                // read again before a redirect needs it.
                *address = None;
            }
            GatewayOp::BindFloatingIp { id, .. } => {
                let port = made.vip_port.clone().ok_or_else(|| {
                    OpenStackError::Precondition("the VIP port is not known".into())
                })?;
                cloud.set_floating_ip_port(calls, id, Some(&port)).await?;
                return Ok(());
            }
            GatewayOp::CreatePool { name, protocol } => {
                self.wait_settled(calls, &lb()?, options).await?;
                let id = cloud
                    .create_gateway_pool(calls, &lb()?, name, protocol, owner)
                    .await?;
                made.pools.insert(name.clone(), id);
            }
            GatewayOp::SetMembers { pool, members } => {
                self.wait_settled(calls, &lb()?, options).await?;
                let id = made.pools.get(pool).cloned().ok_or_else(|| {
                    OpenStackError::Precondition(format!("pool {pool} is not known"))
                })?;
                let specs: Vec<MemberSpec> = members
                    .iter()
                    .map(|m| MemberSpec {
                        member: *m,
                        subnet_id: desired
                            .and_then(|d| d.listeners.first())
                            .and_then(|l| l.pool.member_subnet.clone()),
                        owned: true,
                    })
                    .collect();
                cloud.replace_members(calls, &id, &specs, owner).await?;
            }
            GatewayOp::CreateListener {
                name,
                protocol,
                port,
                certificates,
                default_pool,
            } => {
                self.wait_settled(calls, &lb()?, options).await?;
                let pool_id = default_pool
                    .as_ref()
                    .and_then(|p| made.pools.get(p).cloned());
                let id = cloud
                    .create_gateway_listener(
                        calls,
                        &lb()?,
                        name,
                        protocol,
                        *port,
                        certificates,
                        pool_id.as_deref(),
                        owner,
                    )
                    .await?;
                made.listeners.insert(name.clone(), id);
            }
            GatewayOp::UpdateListener {
                id,
                certificates,
                default_pool,
                ..
            } => {
                self.wait_settled(calls, &lb()?, options).await?;
                let pool = default_pool
                    .as_ref()
                    .map(|p| p.as_ref().and_then(|p| made.pools.get(p).cloned()));
                cloud
                    .update_gateway_listener(
                        calls,
                        id,
                        certificates.as_deref(),
                        pool.as_ref().map(|p| p.as_deref()),
                    )
                    .await?;
            }
            GatewayOp::DeleteListener { id, name } => {
                self.wait_settled(calls, &lb()?, options).await?;
                cloud.delete_listener(calls, id).await?;
                made.listeners.remove(name);
            }
            GatewayOp::CreatePrometheusListener { listener } => {
                self.wait_settled(calls, &lb()?, options).await?;
                if let Some(id) = cloud
                    .create_prometheus_listener(calls, &lb()?, listener, owner)
                    .await?
                {
                    made.listeners.insert(listener.name.clone(), id);
                }
            }
            GatewayOp::SetAllowedCidrs {
                id, allowed_cidrs, ..
            } => {
                // Empty would open the metrics to everyone.
                if allowed_cidrs.is_empty() {
                    return Err(OpenStackError::Precondition(
                        "a PROMETHEUS listener is never opened to everyone".into(),
                    ));
                }
                self.wait_settled(calls, &lb()?, options).await?;
                let update = crate::model::ListenerUpdate {
                    allowed_cidrs: Some(allowed_cidrs.clone()),
                    ..Default::default()
                };
                cloud.update_listener(calls, id, &update).await?;
            }
            GatewayOp::DeletePolicy { id, .. } => {
                self.wait_settled(calls, &lb()?, options).await?;
                cloud.delete_l7_policy(calls, id).await?;
            }
            GatewayOp::EditPolicy {
                id, add, remove, ..
            } => {
                for rule in add {
                    self.wait_settled(calls, &lb()?, options).await?;
                    cloud.create_l7_rule(calls, id, rule, owner).await?;
                }
                for rule in remove {
                    self.wait_settled(calls, &lb()?, options).await?;
                    cloud.delete_l7_rule(calls, id, rule).await?;
                }
            }
            GatewayOp::MovePolicy { id, position, .. } => {
                self.wait_settled(calls, &lb()?, options).await?;
                cloud.move_l7_policy(calls, id, *position).await?;
            }
            GatewayOp::CreatePolicy {
                listener,
                position,
                policy,
            } => {
                self.wait_settled(calls, &lb()?, options).await?;
                let listener_id = made.listeners.get(listener).cloned().ok_or_else(|| {
                    OpenStackError::Precondition(format!("listener {listener} is not known"))
                })?;
                let here = address.clone().unwrap_or_default();
                let render = |t: &RedirectTarget| t.render(&here);
                let pool_id;
                let action = match &policy.action {
                    PolicyAction::RedirectToPool { pool } => {
                        pool_id = made.pools.get(pool).cloned().ok_or_else(|| {
                            OpenStackError::Precondition(format!("pool {pool} is not known"))
                        })?;
                        PolicyWrite::ToPool(&pool_id)
                    }
                    PolicyAction::RedirectToUrl { url, code } => {
                        PolicyWrite::ToUrl(render(url), *code)
                    }
                    PolicyAction::RedirectPrefix { prefix, code } => {
                        PolicyWrite::Prefix(render(prefix), *code)
                    }
                };
                let id = cloud
                    .create_l7_policy(
                        calls,
                        &listener_id,
                        *position,
                        &action,
                        &policy.source,
                        owner,
                    )
                    .await?;
                // One rule at a time: Octavia refuses a rule while the
                // policy is PENDING_* (and 500s on rules inline).
                for rule in &policy.rules {
                    self.wait_settled(calls, &lb()?, options).await?;
                    cloud.create_l7_rule(calls, &id, rule, owner).await?;
                }
                // Enabled only now: before, it would match more than its
                // rules together say (a failure here leaves it disabled,
                // and the next apply makes it again).
                self.wait_settled(calls, &lb()?, options).await?;
                cloud.enable_l7_policy(calls, &id).await?;
            }
            GatewayOp::DeletePool { id, name } => {
                self.wait_settled(calls, &lb()?, options).await?;
                cloud.delete_pool(calls, id).await?;
                made.pools.remove(name);
            }
            GatewayOp::DeleteFloatingIp { id, .. } => {
                cloud.delete_floating_ip(calls, id).await?;
                return Ok(());
            }
            GatewayOp::DeleteLoadBalancer { id, .. } => {
                self.wait_settled(calls, id, options).await.or_else(|e| {
                    // A load balancer in ERROR can still be deleted.
                    if matches!(e, OpenStackError::LoadBalancerError { .. }) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                cloud.delete_load_balancer(calls, id).await?;
                if options.wait {
                    self.waits
                        .wait(
                            cloud,
                            calls,
                            id,
                            WaitKind::Delete,
                            true,
                            options.wait_budget(),
                        )
                        .await?;
                }
                return Ok(());
            }
        }
        if address.is_none() && made.load_balancer.is_some() {
            // The VIP, for redirects to the Gateway's address, once known.
            let observed = self
                .cloud
                .read_gateway(calls, &names.name, &names.owner, &names.fip_description)
                .await?;
            *address = self::address(&observed);
        }
        Ok(())
    }

    async fn wait_settled(
        &self,
        calls: &Calls,
        id: &str,
        options: ApplyOptions,
    ) -> Result<(), OpenStackError> {
        self.waits
            .wait(
                &*self.cloud,
                calls,
                id,
                WaitKind::Update,
                false,
                options.wait_budget(),
            )
            .await
    }

    #[allow(clippy::too_many_arguments)]
    fn gateway_answer(
        &self,
        action: &'static str,
        converged: bool,
        input: &GatewayInput,
        design: Design,
        observed: &ObservedGateway,
        operations: Vec<String>,
        calls: &Calls,
        notes: Vec<String>,
    ) -> GatewayAnswer {
        let mut status = design.gateway_status;
        let meta = &input.gateway.metadata;
        let settled = observed
            .load_balancer
            .as_ref()
            .is_some_and(|lb| lb.provisioning_status == "ACTIVE");
        let programmed = converged && settled && action != "planned";
        if let Some(a) = address(observed) {
            status.addresses = vec![serde_json::json!({"type": "IPAddress", "value": a})];
        }
        for c in status.conditions.iter_mut().chain(
            status
                .listeners
                .iter_mut()
                .flat_map(|l| l.conditions.iter_mut()),
        ) {
            if c.kind == "Programmed" && c.reason == "Pending" && programmed {
                c.status = "True".into();
                c.reason = "Programmed".into();
                c.message = "the load balancer is ACTIVE with this configuration".into();
            }
        }
        let _ = meta;
        GatewayAnswer {
            action,
            converged: programmed || action == "planned",
            gateway: GatewayRef {
                namespace: input.namespace(),
                name: input.name(),
                status,
            },
            routes: design.routes,
            load_balancer: view(observed),
            operations,
            openstack_calls: counts(calls),
            notes,
        }
    }

    /// `GET /v1/gateways/{namespace}/{name}`: the load balancer's tree.
    pub async fn gateway_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<GatewayAnswer, ReconcileError> {
        let calls = Calls::default();
        let names = Names::of(&self.settings.cluster.name, namespace, name);
        let observed = self
            .cloud
            .read_gateway(&calls, &names.name, &names.owner, &names.fip_description)
            .await?;
        let Some(_) = &observed.load_balancer else {
            return Err(ReconcileError::NotFound(format!(
                "gateway {namespace}/{name}"
            )));
        };
        Ok(GatewayAnswer {
            action: "found",
            converged: true,
            gateway: GatewayRef {
                namespace: namespace.into(),
                name: name.into(),
                status: GatewayStatus {
                    addresses: address(&observed)
                        .map(|a| vec![serde_json::json!({"type": "IPAddress", "value": a})])
                        .unwrap_or_default(),
                    ..Default::default()
                },
            },
            routes: Vec::new(),
            load_balancer: view(&observed),
            operations: Vec::new(),
            openstack_calls: counts(&calls),
            notes: Vec::new(),
        })
    }

    /// `DELETE /v1/gateways/{namespace}/{name}`: its floating IPs, its load
    /// balancer with everything under it, its certificate containers. A
    /// Gateway that owns nothing answers `absent` with no operations.
    pub async fn gateway_delete(
        &self,
        namespace: &str,
        name: &str,
        options: ApplyOptions,
    ) -> Result<GatewayAnswer, ReconcileError> {
        let timer = crate::metrics::global().start(Verb::Delete, Subject::Gateway);
        let r = options
            .bounded(async {
                let calls = Calls::default();
                let names = Names::of(&self.settings.cluster.name, namespace, name);
                let lock = self.lock_for(&crate::model::ServiceRef {
                    namespace: namespace.into(),
                    name: format!("gateway:{name}"),
                });
                let _guard = lock.lock().await;
                let observed = self
                    .cloud
                    .read_gateway(&calls, &names.name, &names.owner, &names.fip_description)
                    .await?;
                let certificates: Vec<String> = observed
                    .load_balancer
                    .iter()
                    .flat_map(|lb| &lb.listeners)
                    .flat_map(|l| {
                        l.default_tls_container_ref
                            .iter()
                            .chain(&l.sni_container_refs)
                    })
                    .cloned()
                    .collect();
                let ops = gwplan::removal(&observed);
                let mut made = Made::default();
                let mut address = None;
                let mut done = Vec::new();
                for op in &ops {
                    self.gateway_execute(
                        &calls,
                        op,
                        None,
                        &names,
                        &mut made,
                        &mut address,
                        options,
                    )
                    .await?;
                    done.push(op.summary());
                }
                // Only containers named for this Gateway (a listener may
                // name another's by hand).
                let ours = format!("{},", names::certificate_name(&names.owner));
                for c in certificates {
                    let name = self.cloud.certificate_name(&calls, &c).await?;
                    if !name.is_some_and(|n| n.starts_with(&ours)) {
                        continue;
                    }
                    self.cloud.delete_certificate(&calls, &c).await?;
                    done.push(format!("delete certificate container {c}"));
                }
                Ok(GatewayAnswer {
                    action: if ops.is_empty() { "absent" } else { "deleted" },
                    converged: true,
                    gateway: GatewayRef {
                        namespace: namespace.into(),
                        name: name.into(),
                        status: GatewayStatus::default(),
                    },
                    routes: Vec::new(),
                    load_balancer: None,
                    operations: done,
                    openstack_calls: counts(&calls),
                    notes: Vec::new(),
                })
            })
            .await;
        timed(timer, &r, |a| a.action);
        r
    }
}

/// What a Gateway sync did with one Gateway's objects.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayOrphan {
    /// `namespace/name`.
    pub gateway: String,
    /// `deleted`, `would delete`, `skipped` or `failed`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySyncAnswer {
    pub dry_run: bool,
    pub orphans: Vec<GatewayOrphan>,
}

impl Reconciler {
    /// `POST /v1/gateways/sync`: the load balancers this cluster made for
    /// Gateways not in `listed` (`namespace`, `name`), within `scope` (the
    /// namespaces, `None`: all), deleted with what is theirs; one younger
    /// than `[cluster] orphan_grace_s` is left (its Gateway may be newer
    /// than the list). What a watcher sends after listing Gateways, so that
    /// one deleted while it was down leaves nothing.
    pub async fn gateway_orphans(
        &self,
        listed: &[(String, String)],
        scope: Option<&[String]>,
        dry_run: bool,
        options: ApplyOptions,
    ) -> Result<GatewaySyncAnswer, ReconcileError> {
        let calls = Calls::default();
        let cluster = names::cluster_tag(&self.settings.cluster.name);
        let (lbs, _) = self.cloud.owned_by_cluster(&calls, &cluster).await?;
        let grace = self.settings.cluster.orphan_grace_s as i64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut orphans = Vec::new();
        for lb in lbs {
            let Some((namespace, name)) = lb
                .name
                .strip_prefix("gateway:")
                .and_then(|n| n.split_once('/'))
            else {
                continue;
            };
            // Its name and every owner tag: a Gateway's, of this cluster.
            let owner = gwtranslate::owner_tags(&self.settings.cluster.name, namespace, name);
            if !owner.iter().all(|t| lb.tags.contains(t))
                || scope.is_some_and(|s| !s.iter().any(|n| n == namespace))
                || listed.iter().any(|(n, g)| n == namespace && g == name)
            {
                continue;
            }
            let gateway = format!("{namespace}/{name}");
            let age = lb
                .created_at
                .as_deref()
                .and_then(crate::openstack::session::parse_utc)
                .map(|c| now - c);
            if let Some(age) = age.filter(|a| *a < grace) {
                orphans.push(GatewayOrphan {
                    gateway,
                    action: "skipped",
                    reason: Some(format!(
                        "its load balancer is {age} s old, younger than [cluster] orphan_grace_s ({grace} s): its Gateway may be newer than the list"
                    )),
                    operations: Vec::new(),
                });
                continue;
            }
            if dry_run {
                orphans.push(GatewayOrphan {
                    gateway,
                    action: "would delete",
                    reason: None,
                    operations: Vec::new(),
                });
                continue;
            }
            match self.gateway_delete(namespace, name, options).await {
                Ok(answer) => {
                    tracing::info!(gateway = %gateway, operations = answer.operations.len(), "orphan Gateway collected");
                    orphans.push(GatewayOrphan {
                        gateway,
                        action: "deleted",
                        reason: None,
                        operations: answer.operations,
                    });
                }
                Err(e) => orphans.push(GatewayOrphan {
                    gateway,
                    action: "failed",
                    reason: Some(e.to_string()),
                    operations: Vec::new(),
                }),
            }
        }
        Ok(GatewaySyncAnswer { dry_run, orphans })
    }
}
