//! References: the translation, then the checks that need the cloud: a
//! `port-id` port free for this Service, a certificate its namespace's, the
//! endpoint addresses inside the member CIDRs.

use super::*;
use crate::model::Translation;
use crate::names::{self, is_owned};
use crate::openstack::OpenStackError;
use crate::translate::{self, TranslateError};
use cloud::Calls;

impl Reconciler {
    /// Translates (once), then, online, checks what the translation names in
    /// the cloud: SCTP support, the annotated objects, the VIP's subnet (a
    /// clusterIP outside it is caught before any write).
    pub async fn translate(
        &self,
        input: &ApplyInput,
        calls: &Calls,
        online: bool,
    ) -> Result<Translation, ReconcileError> {
        let mut first = self.translate_unchecked(input)?;
        let allowed = self.check_online(input, calls, &first, online).await?;
        leave_out_members(&mut first, allowed.as_deref());
        Ok(first)
    }

    /// The translation alone (no call): its endpoint addresses are checked
    /// by [`leave_out_members`] with what [`Self::check_online`] answers.
    pub(super) fn translate_unchecked(
        &self,
        input: &ApplyInput,
    ) -> Result<Translation, ReconcileError> {
        let tls = translate::TlsInput {
            secrets: input.tls_secrets.as_ref().map(|s| s.0.as_slice()),
            now: std::time::SystemTime::now(),
        };
        Ok(translate::translate_with(
            &self.settings,
            &input.service,
            input.backends(),
            tls,
        )?)
    }

    /// What the translation names, checked in the cloud before any write
    /// (online; reads only, so an apply runs them beside its observation):
    /// answers the CIDRs endpoint addresses must lie in.
    pub(super) async fn check_online(
        &self,
        input: &ApplyInput,
        calls: &Calls,
        first: &Translation,
        online: bool,
    ) -> Result<Option<Vec<ipnet::IpNet>>, ReconcileError> {
        let Translation::LoadBalancer(d) = first else {
            return Ok(None);
        };
        if !online {
            return self.member_cidrs(calls, false).await;
        }
        // The member subnets, the VIP's and the floating IP's are read
        // together (each once), with the checks of what the annotations name.
        let (allowed, checked, vip, floating) = tokio::join!(
            self.member_cidrs(calls, true),
            self.check_references(input, calls, d),
            self.check_vip_subnet(calls, d),
            self.read_floating_subnet(calls, d),
        );
        let allowed = allowed?;
        checked?;
        vip?;
        floating?;
        Ok(allowed)
    }

    /// The subnet a floating IP is to come from, read now (a create needs
    /// its network after the load balancer's POST: then it is known).
    async fn read_floating_subnet(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
    ) -> Result<(), ReconcileError> {
        match &d.floating_ip {
            FloatingIpIntent::Pool {
                subnet_id: Some(s),
                network_id: None,
                ..
            } => match self.cloud.subnet(calls, s).await {
                // The create that needs it says so, with its context.
                Err(e) if e.is_not_found() => Ok(()),
                other => other.map(drop).map_err(Into::into),
            },
            _ => Ok(()),
        }
    }

    async fn check_references(
        &self,
        input: &ApplyInput,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
    ) -> Result<(), ReconcileError> {
        // The API's version and providers (each read once a process) together.
        let offered = async {
            match &self.settings.octavia_defaults.provider {
                Some(_) => self.cloud.providers(calls).await,
                None => Ok(None),
            }
        };
        let (caps, offered) = tokio::join!(self.capabilities(calls), offered);
        // SCTP came with Octavia API 2.23: name the port on older clouds.
        let caps = caps?;
        let ports = input.service.spec.as_ref().and_then(|s| s.ports.as_ref());
        if !caps.sctp
            && let Some(i) =
                ports.and_then(|p| p.iter().position(|p| p.protocol.as_deref() == Some("SCTP")))
        {
            return Err(TranslateError::Field {
                field: format!("service.spec.ports[{i}].protocol"),
                message: "SCTP is not offered by this cloud's load-balancer API (Octavia API 2.23 or later is needed)".into(),
            }
            .into());
        }
        // The configured provider must be one the cloud offers.
        if let Some(provider) = &self.settings.octavia_defaults.provider
            && let Some(offered) = offered?
            && !offered.iter().any(|o| o == provider)
        {
            return Err(OpenStackError::Config(format!(
                "[octavia_defaults] provider {provider:?} is not offered by this cloud (it offers: {})",
                offered.join(", ")
            ))
            .into());
        }
        // What the annotations name must exist before anything is written.
        // (A VIP port is read whole, fresh, by port_is_free_for below.)
        for r in translate::references(&input.service)? {
            if r.kind == crate::model::ReferenceKind::Port {
                continue;
            }
            self.cloud
                .require(calls, r.kind, &r.id)
                .await
                .map_err(ReconcileError::named_by(r.annotation))?;
            if r.kind == crate::model::ReferenceKind::Certificate {
                self.certificate_is_the_namespaces(calls, d, &r).await?;
            }
        }
        if let Some(port) = &d.vip.port_id {
            self.port_is_free_for(calls, d, port).await?;
        }
        Ok(())
    }

    /// The VIP inside its subnet (a clusterIP outside it is caught before
    /// any write).
    async fn check_vip_subnet(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
    ) -> Result<(), ReconcileError> {
        let Some(subnet) = d.vip.subnet_id.clone() else {
            // A VIP network (network-id) or port (port-id) alone: Neutron's subnet.
            if d.vip.network_id.is_none() && d.vip.port_id.is_none() {
                // Octavia would answer a 400 about the VIP; say what to configure instead.
                return Err(OpenStackError::Config(
                    "no VIP subnet: set [neutron_defaults] service_subnet (SVC_LBAAS_SERVICE_SUBNET) or the loadbalancer.openstack.org/subnet-id or network-id annotation".into(),
                )
                .into());
            }
            return Ok(());
        };
        // An annotated subnet was found above: a missing one here is a setting's.
        let cidr = match self.cloud.subnet(calls, &subnet).await {
            Ok(info) => info.cidr,
            Err(e) if e.is_not_found() => {
                return Err(OpenStackError::Config(format!(
                    "the VIP subnet {subnet} of [neutron_defaults] does not exist"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        // Translated once; the subnet's CIDR only adds a check of the VIP.
        translate::check_vip_in_subnet(&d.vip, cidr)?;
        Ok(())
    }

    /// The translation, its endpoint addresses outside the member CIDRs
    /// left out (with a note, and a WARN).
    pub(super) async fn translate_members(
        &self,
        calls: &Calls,
        input: &ApplyInput,
        tls: translate::TlsInput<'_>,
        online: bool,
    ) -> Result<Translation, ReconcileError> {
        let mut translation =
            translate::translate_with(&self.settings, &input.service, input.backends(), tls)?;
        if matches!(translation, Translation::LoadBalancer(_)) {
            let allowed = self.member_cidrs(calls, online).await?;
            leave_out_members(&mut translation, allowed.as_deref());
        }
        Ok(translation)
    }

    /// A `port-id` port must be bound to no device but this Service's own
    /// load balancer, be no other load balancer's VIP, and carry no other
    /// Service's ownership tag: another's VIP port (and its floating IP) is
    /// not the Service's to take. Checked before any write; the message names
    /// no other user's object.
    pub(super) async fn port_is_free_for(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
        port: &str,
    ) -> Result<(), ReconcileError> {
        let annotation = translate::annotation::PORT_ID;
        let used = self
            .cloud
            .port_use(calls, port)
            .await
            .map_err(ReconcileError::named_by(annotation))?;
        let own = |tags: &[String]| is_owned(tags, &d.owner_tags);
        let others = used.load_balancers.iter().any(|lb| !own(&lb.tags));
        let device = used.device_id.is_empty()
            || used.device_id.strip_prefix("lb-").is_some_and(|id| {
                used.load_balancers
                    .iter()
                    .any(|lb| lb.id == id && own(&lb.tags))
            });
        let claimed = names::service_tag(&used.tags)
            .is_some_and(|t| Some(t) != names::service_tag(&d.owner_tags));
        // The port puts the VIP on its network and subnet: the operator's
        // lists hold for it as for network-id and subnet-id.
        let t = &self.settings.tenancy;
        let network_closed = t
            .vip_networks
            .as_ref()
            .is_some_and(|open| !open.contains(&used.network_id));
        let subnet_closed = t
            .vip_subnets
            .as_ref()
            .is_some_and(|open| used.subnet_ids.iter().any(|s| !open.contains(s)));
        if network_closed || subnet_closed {
            return Err(ReconcileError::forbidden(
                annotation,
                format!(
                    "port {} is on a network or subnet not in [tenancy] vip_networks / vip_subnets",
                    crate::echo::quote(port)
                ),
            ));
        }
        if others || !device || claimed {
            tracing::warn!(service = %d.service, "refused a port-id in use by another");
            return Err(ReconcileError::in_use(
                annotation,
                format!(
                    "port {} is in use by another load balancer or device, or held by another Service; name a free port",
                    crate::echo::quote(port)
                ),
            ));
        }
        Ok(())
    }

    /// A certificate reference must be the Service's namespace's: one
    /// svc-lbaas stored from a Secret of that namespace, or a user's where
    /// `[tenancy] user_containers_namespaces` opens them to it.
    pub(super) async fn certificate_is_the_namespaces(
        &self,
        calls: &Calls,
        d: &crate::model::DesiredLoadBalancer,
        r: &translate::Reference,
    ) -> Result<(), ReconcileError> {
        let (service, owner) = (&d.service, &d.owner_tags);
        let name = self
            .cloud
            .certificate_name(calls, &r.id)
            .await
            .map_err(ReconcileError::named_by(r.annotation))?;
        let why = match names::holder_of_certificate(name.as_deref().unwrap_or_default(), owner) {
            names::Holder::Namespace(ns) if ns == service.namespace => return Ok(()),
            names::Holder::Nobody
                if self
                    .settings
                    .tenancy
                    .user_containers_open_to(&service.namespace) =>
            {
                return Ok(());
            }
            names::Holder::Nobody => {
                "is not svc-lbaas's, and [tenancy] user_containers_namespaces does not open such references to this namespace"
            }
            _ => "was stored by svc-lbaas for a Service of another namespace",
        };
        tracing::warn!(service = %service, annotation = r.annotation, "refused a certificate reference of another namespace's");
        Err(ReconcileError::forbidden(
            r.annotation,
            format!(
                "the certificate reference {} {why}",
                crate::echo::quote(&r.id)
            ),
        ))
    }

    /// The CIDRs endpoint addresses must lie in to become members:
    /// `[tenancy] member_cidrs`, else the CIDRs of the configured pod subnet
    /// and every class's member subnet (read once, then cached), else of the
    /// VIP subnets (where members then go), else unchecked (`None`;
    /// link-local and loopback are still left out). Offline, only the
    /// setting counts.
    pub(super) async fn member_cidrs(
        &self,
        calls: &Calls,
        online: bool,
    ) -> Result<Option<Vec<ipnet::IpNet>>, ReconcileError> {
        if let Some(cidrs) = &self.settings.tenancy.member_cidrs {
            return Ok(Some(cidrs.clone()));
        }
        let subnets: std::collections::BTreeSet<&str> = self
            .settings
            .neutron_defaults
            .pod_subnet
            .iter()
            .chain(
                self.settings
                    .load_balancer_classes
                    .values()
                    .filter_map(|c| c.member_subnet_id.as_ref()),
            )
            .map(String::as_str)
            .collect();
        // No member subnet configured: members go on the VIP subnet.
        let d = &self.settings.neutron_defaults;
        let subnets = if subnets.is_empty() {
            d.service_subnet
                .iter()
                .chain(d.service_subnet_ipv6.iter())
                .map(String::as_str)
                .collect()
        } else {
            subnets
        };
        if !online || subnets.is_empty() {
            return Ok(None);
        }
        let mut cidrs = Vec::new();
        for id in subnets {
            match self.cloud.subnet(calls, id).await {
                Ok(info) => cidrs.push(info.cidr),
                Err(e) if e.is_not_found() => {
                    return Err(OpenStackError::Config(format!(
                        "the member subnet {id} of the settings does not exist"
                    ))
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(cidrs))
    }
}

/// Endpoint addresses outside the member CIDRs `allowed` left out (with a
/// note, and a WARN): every translation an apply or a plan acts on comes
/// through here.
pub(super) fn leave_out_members(translation: &mut Translation, allowed: Option<&[ipnet::IpNet]>) {
    if let Translation::LoadBalancer(d) = translation {
        let left = translate::leave_out_desired_members(d, allowed);
        if let Some(first) = left.first() {
            tracing::warn!(service = %d.service, left_out = left.len(), first = %first, "endpoint addresses outside [tenancy] member_cidrs (or link-local, loopback) left out of the members");
        }
    }
}
