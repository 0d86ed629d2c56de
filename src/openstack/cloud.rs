//! The load-balancing cloud, as a client: the API version, the reads that
//! observe what exists for a Service in as few calls as the API allows, and
//! the checks of user-named objects. The writes are one function per call in
//! `octavia.rs` and `neutron.rs`; what to write, and when to wait, is
//! decided above this client. Octavia or the legacy Neutron LBaaS
//! v2 API (which has no tags: ownership goes into the description, and into
//! the name of members).

use std::collections::HashMap;

use reqwest::Method;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::{Calls, Service, SharedSession};
use super::wire;
use crate::config::Api;
use crate::model::ReferenceKind;

/// A subnet's details as last read, and when (`None`: not read yet).
type KeptSubnet = std::sync::Arc<Mutex<Option<(SubnetInfo, std::time::Instant)>>>;

pub use crate::model::SubnetInfo;

/// Who uses a Neutron port: its device (`lb-<id>` for an Octavia-made VIP
/// port), its tags, and the load balancers whose VIP it is.
#[derive(Debug, Clone, Default)]
pub struct PortUse {
    pub device_id: String,
    pub tags: Vec<String>,
    pub network_id: String,
    /// The subnets of its fixed IPs.
    pub subnet_ids: Vec<String>,
    pub load_balancers: Vec<crate::model::ObservedLoadBalancer>,
}

/// What a full read found under a load balancer: its listeners and its
/// pools with their monitors (members are read every time, from the tree).
#[derive(Debug, Clone)]
pub struct Details {
    /// The load balancer's `updated_at` they were read at; `None` while a
    /// change this process made is settling (set by the next ACTIVE read).
    pub(super) updated_at: Option<String>,
    pub(super) read_at: std::time::Instant,
    pub(super) listeners: Vec<crate::model::ObservedListener>,
    pub(super) pools: Vec<crate::model::ObservedPool>,
}

pub struct Cloud {
    session: SharedSession,
    pub api: Api,
    /// Octavia's newest API minor version (`None`: the legacy API, or no
    /// version document), once read.
    discovered: Mutex<Option<Option<u32>>>,
    /// The providers Octavia offers (`None`: not read yet).
    providers: Mutex<Option<Vec<String>>>,
    /// Subnets read, with when: trusted for `subnet_cache`. One lock each,
    /// held across its read: many applies at once read a subnet once, and
    /// different subnets are read at the same time.
    subnets: std::sync::Mutex<HashMap<String, KeptSubnet>>,
    subnet_cache: std::time::Duration,
    external_network: Mutex<Option<String>>,
    /// User-named networks, flavors and availability zones found to exist.
    known: Mutex<std::collections::HashSet<String>>,
    /// Barbican references' names, once read (names never change).
    certificate_names: Mutex<HashMap<String, Option<String>>>,
    /// What full reads found under each load balancer (`observe.rs`).
    pub(super) details: std::sync::Mutex<HashMap<String, Details>>,
    /// Bumped (under `details`' lock) by every write that voids what was
    /// read: a full read that began before a write is not kept after it.
    pub(super) details_epoch: std::sync::atomic::AtomicU64,
    pub(super) full_read_every: std::time::Duration,
    /// The load balancer (id, VIP port) each name last was, as this process
    /// saw or made it: its status tree and VIP port's floating IPs are then
    /// read with the lookup by name, in one round trip (`observe.rs`).
    pub(super) last_seen: std::sync::Mutex<HashMap<String, (String, Option<String>)>>,
    /// The members a fully populated create answered, as a status tree, by
    /// load balancer (until a write changes it): the observation right
    /// after that create's writes takes them instead of reading the tree.
    pub(super) created_trees: std::sync::Mutex<HashMap<String, wire::StatusTree>>,
}

impl Cloud {
    pub fn new(session: SharedSession, api: Api) -> Cloud {
        Cloud {
            session,
            api,
            subnets: std::sync::Mutex::new(HashMap::new()),
            subnet_cache: std::time::Duration::from_secs(300),
            external_network: Mutex::new(None),
            known: Mutex::new(Default::default()),
            certificate_names: Mutex::new(HashMap::new()),
            discovered: Mutex::new(None),
            providers: Mutex::new(None),
            details: std::sync::Mutex::new(HashMap::new()),
            details_epoch: std::sync::atomic::AtomicU64::new(0),
            full_read_every: std::time::Duration::from_secs(300),
            last_seen: std::sync::Mutex::new(HashMap::new()),
            created_trees: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// How long what a full read found is trusted while nothing changed.
    pub fn with_full_read_every(mut self, every: std::time::Duration) -> Cloud {
        self.full_read_every = every;
        self
    }

    /// How long a subnet's details, once read, are trusted (0: each apply
    /// reads them).
    pub fn with_subnet_cache(mut self, keep: std::time::Duration) -> Cloud {
        self.subnet_cache = keep;
        self
    }

    pub fn session(&self) -> &SharedSession {
        &self.session
    }

    /// Where load balancer objects live: Octavia's endpoint or Neutron's `/lbaas`.
    pub(super) fn lb_service(&self) -> Service {
        match self.api {
            Api::Octavia => Service::LoadBalancer,
            Api::NeutronLbaas => Service::Network,
        }
    }

    /// A call of the load-balancing API whose answer is read into `T`
    /// (`None`: no body).
    pub(super) async fn lb_call<T: DeserializeOwned>(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<Option<T>, OpenStackError> {
        let r = self
            .session
            .call_as(
                calls,
                self.lb_service(),
                method.clone(),
                &path.below("/lbaas"),
                body,
            )
            .await;
        self.after_write(&method, &r);
        r
    }

    /// A call of the load-balancing API whose answer is not needed.
    pub(super) async fn lb_send(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<(), OpenStackError> {
        self.lb_call::<IgnoredAny>(calls, method, path, body)
            .await
            .map(drop)
    }

    /// A call of Neutron's API whose answer is read into `T`.
    pub(super) async fn net_call<T: DeserializeOwned>(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<Option<T>, OpenStackError> {
        let r = self
            .session
            .call_as(calls, Service::Network, method.clone(), &path, body)
            .await;
        self.after_write(&method, &r);
        r
    }

    /// A call of Neutron's API whose answer is not needed.
    pub(super) async fn net_send(
        &self,
        calls: &Calls,
        method: Method,
        path: ApiPath,
        body: Option<&Value>,
    ) -> Result<(), OpenStackError> {
        self.net_call::<IgnoredAny>(calls, method, path, body)
            .await
            .map(drop)
    }

    /// Octavia's newest API minor version, from its version document (read
    /// once); `None` on the legacy API or when the document cannot be read.
    pub async fn octavia_minor(&self, calls: &Calls) -> Result<Option<u32>, OpenStackError> {
        if self.api == Api::NeutronLbaas {
            return Ok(None);
        }
        if let Some(m) = *self.discovered.lock().await {
            return Ok(m);
        }
        // The version document is at the endpoint's root, one level above `/v2`.
        let doc: Result<Option<wire::Versions>, _> = self
            .session
            .call_as(
                calls,
                Service::LoadBalancer,
                Method::GET,
                &ApiPath::version_document(),
                None,
            )
            .await;
        let minor = match doc {
            Ok(v) => v.unwrap_or_default().max_minor(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read Octavia's versions; assuming the newest API");
                None
            }
        };
        tracing::info!(?minor, "load-balancer API version");
        *self.discovered.lock().await = Some(minor);
        Ok(minor)
    }

    /// The providers Octavia offers (`/v2/lbaas/providers`, read once;
    /// `None` on the legacy API).
    pub async fn providers(&self, calls: &Calls) -> Result<Option<Vec<String>>, OpenStackError> {
        if self.api == Api::NeutronLbaas {
            return Ok(None);
        }
        let mut providers = self.providers.lock().await;
        if let Some(p) = &*providers {
            return Ok(Some(p.clone()));
        }
        let read: Option<wire::Providers> = self
            .lb_call(calls, Method::GET, ApiPath::of("providers"), None)
            .await?;
        let names: Vec<String> = read
            .unwrap_or_default()
            .providers
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        *providers = Some(names.clone());
        Ok(Some(names))
    }

    /// A subnet's network and CIDR: read once per request, and kept for
    /// `subnet_cache` (a subnet's network and CIDR never change; the subnet
    /// may go, and a write the cloud refuses forgets them all).
    pub async fn subnet(&self, calls: &Calls, id: &str) -> Result<SubnetInfo, OpenStackError> {
        if let Some(s) = calls.subnet_known(id) {
            return Ok(s);
        }
        let asked = std::time::Instant::now();
        let entry = {
            let mut subnets = self.subnets.lock().unwrap_or_else(|e| e.into_inner());
            subnets.entry(id.to_string()).or_default().clone()
        };
        // Held across the read (with a cache of 0 too: a read that ended
        // while this one waited for the lock is as fresh as its own).
        let mut kept = entry.lock().await;
        if let Some((s, at)) = &*kept
            && (at.elapsed() < self.subnet_cache || *at >= asked)
        {
            calls.subnet_seen(id, s);
            return Ok(s.clone());
        }
        let read: Option<wire::OneSubnet> = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("subnets").id("subnet id", id)?,
                None,
            )
            .await?;
        let s = read.map(|r| r.subnet).unwrap_or_default();
        let info = SubnetInfo {
            network_id: s.network_id.unwrap_or_default(),
            cidr: s.cidr.and_then(|c| c.parse().ok()).ok_or_else(|| {
                OpenStackError::Precondition(format!("subnet {id} has no readable CIDR"))
            })?,
        };
        *kept = Some((info.clone(), std::time::Instant::now()));
        calls.subnet_seen(id, &info);
        Ok(info)
    }

    /// A create or update refused with a 400 or a 404 may have named a
    /// subnet that went: what was kept of subnets is read again. (A DELETE's
    /// 404 is something already gone.)
    fn after_write(&self, method: &Method, result: &Result<impl Sized, OpenStackError>) {
        if matches!(*method, Method::POST | Method::PUT)
            && let Err(e) = result
            && matches!(e.status(), Some(400 | 404))
        {
            self.subnets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    /// The subnets of `network_id` that `m` selects (Neutron filters the
    /// tags, the name pattern is matched here), by name: `(id, name)`.
    pub async fn matching_subnets(
        &self,
        calls: &Calls,
        network_id: &str,
        m: &crate::model::FloatingSubnetMatch,
    ) -> Result<Vec<(String, String)>, OpenStackError> {
        let filter = m.tag_filter();
        let mut query = vec![
            ("network_id", network_id),
            ("fields", "id"),
            ("fields", "name"),
        ];
        if let Some((key, tags)) = &filter {
            query.push((key, tags.as_str()));
        }
        let list: Option<wire::SubnetList> = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("subnets").query(&query),
                None,
            )
            .await?;
        let mut found: Vec<(String, String)> = list
            .unwrap_or_default()
            .subnets
            .into_iter()
            .filter_map(|s| {
                let name = s.name.unwrap_or_default();
                m.name_matches(&name)
                    .then_some((wire::present(&s.id)?, name))
            })
            .collect();
        found.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        Ok(found)
    }

    /// Checks that a user-named object exists: `Missing` on a 404. Found ones
    /// are remembered (subnets with their CIDR), so a Service re-applied pays
    /// nothing. Flavors and availability zones are Octavia's: on the legacy
    /// API the create itself is the check.
    pub async fn require(
        &self,
        calls: &Calls,
        kind: ReferenceKind,
        id: &str,
    ) -> Result<(), OpenStackError> {
        let missing = |e: OpenStackError| {
            if e.is_not_found() {
                OpenStackError::Missing {
                    kind: kind.as_str(),
                    id: id.to_string(),
                }
            } else {
                e
            }
        };
        if kind == ReferenceKind::Subnet {
            return self.subnet(calls, id).await.map(|_| ()).map_err(missing);
        }
        let key = format!("{}:{id}", kind.as_str());
        if self.known.lock().await.contains(&key) {
            return Ok(());
        }
        let result = match (kind, self.api) {
            (ReferenceKind::Network, _) => {
                let path = ApiPath::of("networks")
                    .id("network id", id)?
                    .query(&[("fields", "id")]);
                self.net_send(calls, Method::GET, path, None).await
            }
            (ReferenceKind::Port, _) => {
                let path = ApiPath::of("ports")
                    .id("port id", id)?
                    .query(&[("fields", "id")]);
                self.net_send(calls, Method::GET, path, None).await
            }
            (ReferenceKind::Flavor, Api::Octavia) => {
                let path = ApiPath::of("flavors")
                    .id("flavor id", id)?
                    .query(&[("fields", "id")]);
                self.lb_send(calls, Method::GET, path, None).await
            }
            (ReferenceKind::Certificate, _) => self.certificate_name(calls, id).await.map(drop),
            (ReferenceKind::AvailabilityZone, Api::Octavia) => {
                let path = ApiPath::of("availabilityzones")
                    .name(id)
                    .query(&[("fields", "name")]);
                self.lb_send(calls, Method::GET, path, None).await
            }
            _ => return Ok(()),
        };
        result.map_err(missing)?;
        self.known.lock().await.insert(key);
        Ok(())
    }

    /// A listener's certificate reference, read from Barbican before any
    /// write (Octavia would refuse it only after the load balancer was made),
    /// with its name: whose it is (svc-lbaas names the containers it stores
    /// after their Service). Its container or secret id is read from the
    /// catalog's Barbican (the token goes nowhere else): one of another
    /// Barbican is `Missing`.
    pub async fn certificate_name(
        &self,
        calls: &Calls,
        reference: &str,
    ) -> Result<Option<String>, OpenStackError> {
        if let Some(name) = self.certificate_names.lock().await.get(reference) {
            return Ok(name.clone());
        }
        let missing = || OpenStackError::Missing {
            kind: ReferenceKind::Certificate.as_str(),
            id: reference.to_string(),
        };
        if self.session.endpoint(Service::KeyManager).await?.is_none() {
            return Err(OpenStackError::NoEndpoint {
                service: "key-manager".into(),
                interface: self.session.credentials().interface.clone(),
                region: self.session.credentials().region.clone(),
            });
        }
        // Its id, read from the catalog's Barbican: Octavia reads the id too.
        let path = Cloud::barbican_path("containers", reference)
            .or_else(|_| Cloud::barbican_path("secrets", reference))
            .map_err(|_| missing())?;
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(default)]
            name: Option<String>,
        }
        let read: Option<Named> = self
            .session
            .call_as(calls, Service::KeyManager, Method::GET, &path, None)
            .await?;
        let name = read.and_then(|r| r.name);
        self.certificate_names
            .lock()
            .await
            .insert(reference.to_string(), name.clone());
        Ok(name)
    }

    /// The external network for floating IPs when neither a subnet nor a
    /// network is configured: the only `router:external` network.
    pub(super) async fn external_network(&self, calls: &Calls) -> Result<String, OpenStackError> {
        if let Some(n) = self.external_network.lock().await.clone() {
            return Ok(n);
        }
        let networks: Option<wire::Networks> = self
            .net_call(
                calls,
                Method::GET,
                ApiPath::of("networks").query(&[("router:external", "true"), ("fields", "id")]),
                None,
            )
            .await?;
        let ids: Vec<String> = networks
            .unwrap_or_default()
            .networks
            .iter()
            .filter_map(|n| wire::present(&n.id))
            .collect();
        match ids.as_slice() {
            [one] => {
                *self.external_network.lock().await = Some(one.clone());
                Ok(one.clone())
            }
            [] => Err(OpenStackError::Precondition("no external network for floating IPs: set [neutron_defaults] external_svc_subnet".into())),
            _ => Err(OpenStackError::Precondition("several external networks: set [neutron_defaults] external_svc_subnet or the floating-network-id annotation".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_newest_octavia_version_is_found() {
        let doc: super::wire::Versions = serde_json::from_value(
            json!({"versions": [{"id": "v2.0"}, {"id": "v2.29"}, {"id": "v2.12"}, {"id": "v1"}]}),
        )
        .unwrap();
        assert_eq!(doc.max_minor(), Some(29));
        assert_eq!(super::wire::Versions::default().max_minor(), None);
    }
}
