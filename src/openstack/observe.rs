//! Observing what exists for a Service, in as few calls and round trips as
//! the API allows. On Octavia an observation is one round trip: the load
//! balancer by name and this Service's floating IPs, with either (this
//! process saw a load balancer under the name) its status tree (the members
//! of every pool in one call) and the floating IPs on its VIP port, or (it
//! saw none) the load balancers carrying the Service's sharer tag. A guess
//! the lookup proves wrong costs a second round trip. Listeners, pools and
//! monitors (which only a change can alter) are read whole only when the
//! load balancer's `updated_at` moved since this process last read them
//! (every change made through the API moves it), when this process changed
//! them itself, or `full_read_every` after the last full read; those reads
//! run together in a second round trip. The legacy API is read object by
//! object.

use std::collections::HashMap;
use std::time::Instant;

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::cloud::{Cloud, Details};
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire;
use crate::config::Api;
use crate::model::{
    FloatingIpLookup, Lookup, Observed, ObservedFloatingIp, ObservedHealthMonitor,
    ObservedListener, ObservedLoadBalancer, ObservedMember, ObservedPool, ObservedSecurityGroup,
    ReferenceKind,
};
use crate::names::{LEGACY_TAGS, legacy_tags, owner_description};
use crate::selection::{Going, Selection, TreeRead};

/// How an observation reads members: not at all, from the status tree (one
/// call, no weights), or every pool's list (weights: a member drains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberRead {
    No,
    Tree,
    Lists,
}

impl Details {
    /// What a full read found (pools without members: those are read each time).
    fn of(
        updated_at: Option<String>,
        listeners: &[ObservedListener],
        pools: &[ObservedPool],
    ) -> Details {
        Details {
            updated_at,
            read_at: Instant::now(),
            listeners: listeners.to_vec(),
            pools: pools
                .iter()
                .map(|p| ObservedPool {
                    members: Vec::new(),
                    ..p.clone()
                })
                .collect(),
        }
    }

    fn holds(&self, id: &str) -> bool {
        self.listeners.iter().any(|l| l.id == id)
            || self
                .pools
                .iter()
                .any(|p| p.id == id || p.health_monitor.as_ref().is_some_and(|m| m.id == id))
    }
}

impl Cloud {
    /// Reads what exists for a Service: load balancers named `name` (or the
    /// one with `id_hint`), their listeners and pools, members only when
    /// `members` is true, floating IPs with the owner tags or bound to a VIP;
    /// and other tools' load balancers named one of `adoptable`, all of
    /// their trees (to take over).
    pub async fn observe(
        &self,
        calls: &Calls,
        lookup: Lookup<'_>,
    ) -> Result<Observed, OpenStackError> {
        // Which of what is read the observation holds: the rules a test
        // double applies too.
        let rules = Selection::new(lookup);
        let Lookup {
            name,
            owner_tags,
            adoptable,
            id_hint,
            user_address,
            members,
            member_weights,
            vip_port,
            security_group,
            shared,
            after_writes,
        } = lookup;
        let read_floating_ips = !after_writes;
        let members = match (members, member_weights) {
            (false, _) => MemberRead::No,
            (true, false) => MemberRead::Tree,
            (true, true) => MemberRead::Lists,
        };
        let sharer = rules.sharer();
        let ours =
            ApiPath::of("floatingips").query(&[("description", &owner_description(owner_tags))]);
        // Other tools' names for the Service's load balancer (adoption).
        let other_names: Vec<&String> = adoptable.iter().filter(|n| *n != name).collect();
        let others = futures_util::future::try_join_all(other_names.iter().map(|n| {
            let path = ApiPath::of("loadbalancers").query(&[("name", n.as_str())]);
            self.lb_read::<wire::LoadBalancers>(calls, path)
        }));
        // What this process last saw under this name: its tree and VIP
        // port's floating IPs are read in round one too (a re-apply then
        // takes one round trip); with nothing seen, the load balancers it
        // shares are (a create reads them: its annotation may have gone).
        let last = match (self.api, id_hint) {
            (Api::Octavia, None) => self.last_seen(name),
            _ => None,
        };
        let ahead_shared = !shared && last.is_none() && id_hint.is_none();
        // The load balancers it shares.
        let joined = self.shared_by(calls, sharer.filter(|_| shared || ahead_shared));
        // Right after a fully populated create, its answer's members (any
        // other observation lets them go).
        let created = match (&last, members) {
            (Some((id, _)), MemberRead::Tree) => self.created_tree(id, after_writes),
            _ => None,
        };
        let ahead_tree = async {
            match (&last, members, created.is_none()) {
                (Some((id, _)), MemberRead::Tree, true) => self.status_tree(calls, id).await.ok(),
                _ => None,
            }
        };
        let ahead_bound = async {
            match last
                .as_ref()
                .and_then(|(_, p)| p.as_deref())
                .filter(|_| read_floating_ips)
            {
                Some(p) if Some(p) != vip_port => {
                    let path = ApiPath::of("floatingips").query(&[("port_id", p)]);
                    self.floating_ips(calls, path).await.ok()
                }
                _ => None,
            }
        };
        // A VIP port of the user's: its floating IPs (a user's one is kept).
        let on_port = async {
            match vip_port.filter(|_| read_floating_ips) {
                Some(p) => {
                    let path = ApiPath::of("floatingips").query(&[("port_id", p)]);
                    self.floating_ips(calls, path).await
                }
                None => Ok(Vec::new()),
            }
        };
        // The VIP security group of this name, when one is wanted or may be left.
        let groups = async {
            match security_group {
                Some(n) => self.security_groups(calls, n).await,
                None => Ok(Vec::new()),
            }
        };
        // Round one: the load balancers and this Service's floating IPs.
        let (round_one, ahead_tree, mut ahead_bound) = tokio::join!(
            async {
                tokio::try_join!(
                    self.find_load_balancers(calls, name, id_hint),
                    async {
                        match read_floating_ips {
                            true => self.floating_ips(calls, ours).await,
                            false => Ok(Vec::new()),
                        }
                    },
                    others,
                    joined,
                    on_port,
                    groups,
                )
            },
            ahead_tree,
            ahead_bound
        );
        let (mut found, mut floating_ips, others, joined, on_port, security_groups) = round_one?;
        let mut ahead_tree = ahead_tree.or(created);
        add_missing(&mut floating_ips, on_port, |f| f.id.as_str());
        // Read ahead: held only where the rules read them (below).
        let (joined, joined_ahead) = if ahead_shared {
            (None, joined)
        } else {
            (joined, None)
        };
        let others = others.into_iter().flatten().chain(joined);
        add_missing(&mut found, others.flat_map(|l| l.loadbalancers), lb_key);
        // What else the Service may still be on, where that can change: a
        // load balancer of its own and others it shares, when it is to share
        // the one named by id; those it shares, when it has none of its own
        // (its annotation gone: about to create one). One more round, then.
        let seen = {
            let keys: Vec<(&str, Vec<String>)> = found
                .iter()
                .map(|lb| {
                    let id = lb.id.as_deref().unwrap_or_default();
                    (id, tags_or(&lb.tags, &lb.description))
                })
                .collect();
            rules.found(keys.iter().map(|(id, tags)| (*id, tags.as_slice())))
        };
        let shared_read = rules.reads_shared(seen);
        let to_share = seen.to_share;
        // The shared ones, unless round one read them.
        let by_tag = shared_read && !shared && !ahead_shared;
        if shared_read && let Some(ahead) = joined_ahead {
            add_missing(&mut found, ahead.loadbalancers, lb_key);
        }
        if to_share || by_tag {
            let named = async {
                if !to_share {
                    return Ok(None);
                }
                let path = ApiPath::of("loadbalancers").query(&[("name", name)]);
                self.lb_read::<wire::LoadBalancers>(calls, path).await
            };
            let tagged = self.shared_by(calls, sharer.filter(|_| by_tag));
            let (named, tagged) = tokio::try_join!(named, tagged)?;
            let more = named
                .into_iter()
                .chain(tagged)
                .flat_map(|l| l.loadbalancers);
            add_missing(&mut found, more, lb_key);
        }
        let mut load_balancers = Vec::new();
        let mut deleting = Vec::new();
        for lb in &found {
            // What the queries above returned is held: they are the selection's
            // reads (an exact re-filter would drop what a case-insensitive
            // database matched, and the Service would get a second one).
            let mut observed = parse_lb(lb);
            let tree_read = rules.tree(&observed);
            match rules.going(&observed) {
                Going::Deleting => deleting.push(observed.id.clone()),
                Going::Gone => {}
                Going::No => {
                    // Round two: its tree and the floating IPs on its VIP port,
                    // unless read ahead in round one. The user's port's were
                    // read in round one.
                    let port = observed
                        .vip_port_id
                        .clone()
                        .filter(|p| Some(p.as_str()) != vip_port && read_floating_ips);
                    let seen_before = last.as_ref().is_some_and(|(id, p)| {
                        *id == observed.id && p.as_deref() == observed.vip_port_id.as_deref()
                    });
                    let (prefetched, bound_ahead) = if seen_before {
                        (ahead_tree.take(), ahead_bound.take())
                    } else {
                        (None, None)
                    };
                    let bound = async {
                        if let Some(b) = bound_ahead {
                            return Ok(b);
                        }
                        match &port {
                            Some(p) => {
                                let path = ApiPath::of("floatingips").query(&[("port_id", p)]);
                                self.floating_ips(calls, path).await
                            }
                            None => Ok(Vec::new()),
                        }
                    };
                    let tree = async {
                        match tree_read {
                            TreeRead::Whole => {
                                return self.read_tree_one_by_one(calls, &mut observed, true).await;
                            }
                            TreeRead::Nothing => return Ok(()),
                            TreeRead::Own => {}
                        }
                        let updated_at = wire::present(&lb.updated_at);
                        self.read_tree(
                            calls,
                            &mut observed,
                            updated_at,
                            owner_tags,
                            members,
                            prefetched,
                        )
                        .await
                    };
                    let (tree, bound) = tokio::join!(tree, bound);
                    match tree {
                        Ok(()) => {}
                        // Its children went while they were read: another
                        // replica is deleting it (a copy it raced): going.
                        Err(e) if e.is_not_found() => {
                            deleting.push(observed.id.clone());
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    add_missing(&mut floating_ips, bound?, |f| f.id.as_str());
                    load_balancers.push(observed);
                }
            }
        }
        // Every reader sees several copies in the same order: the survivor first.
        crate::model::in_survival_order(&mut load_balancers);
        if self.api == Api::Octavia && id_hint.is_none() {
            let own = load_balancers.iter().find(|lb| rules.owns(&lb.tags));
            self.saw_load_balancer(
                name,
                own.map(|lb| (lb.id.as_str(), lb.vip_port_id.as_deref())),
            );
        }
        // Source ranges no longer wanting a VIP security group: the one the
        // load balancer still has is read, to be let go.
        let mut security_groups = security_groups;
        let left = rules.reads_left_security_group(&load_balancers);
        if left {
            security_groups = self.security_groups(calls, name).await?;
        }
        // The user's floating IP: among those read, else by its address.
        let user_floating_ip = match (rules.user_floating_ip(&floating_ips), user_address) {
            _ if !read_floating_ips => FloatingIpLookup::NotLookedUp,
            (FloatingIpLookup::NotFound, Some(a)) => self
                .floating_ips(
                    calls,
                    ApiPath::of("floatingips")
                        .query(&[("floating_ip_address", a.to_string().as_str())]),
                )
                .await?
                .into_iter()
                .next()
                .map_or(FloatingIpLookup::NotFound, FloatingIpLookup::Found),
            (known, _) => known,
        };
        Ok(Observed {
            load_balancers,
            floating_ips,
            user_floating_ip,
            deleting,
            security_groups,
        })
    }

    /// The load balancers carrying a sharer tag (`None`: not read). Octavia
    /// only: the legacy API's objects have no tags.
    async fn shared_by(
        &self,
        calls: &Calls,
        sharer: Option<&str>,
    ) -> Result<Option<wire::LoadBalancers>, OpenStackError> {
        match sharer {
            Some(tag) if self.api == Api::Octavia => {
                let path = ApiPath::of("loadbalancers").query(&[("tags", tag)]);
                self.lb_read(calls, path).await
            }
            _ => Ok(None),
        }
    }

    /// A load balancer's tags as they are now.
    pub async fn load_balancer_tags(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<Vec<String>, OpenStackError> {
        let path = ApiPath::of("loadbalancers").id("load balancer id", id)?;
        let one: Option<wire::OneLoadBalancer> = self.lb_read(calls, path).await?;
        Ok(one
            .map(|o| parse_lb(&o.loadbalancer).tags)
            .unwrap_or_default())
    }

    /// The load balancer with `id_hint` (a 404 is the user's mistake), else
    /// those named `name`.
    async fn find_load_balancers(
        &self,
        calls: &Calls,
        name: &str,
        id_hint: Option<&str>,
    ) -> Result<Vec<wire::LoadBalancerRead>, OpenStackError> {
        if let Some(id) = id_hint {
            let path = ApiPath::of("loadbalancers").id("load balancer id", id)?;
            match self.lb_read::<wire::OneLoadBalancer>(calls, path).await {
                Ok(Some(one)) => return Ok(vec![one.loadbalancer]),
                Ok(None) => {}
                // The user named it: a 404 is their mistake, not a reason to create another.
                Err(e) if e.is_not_found() => {
                    return Err(OpenStackError::Missing {
                        kind: "load balancer",
                        id: id.to_string(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let path = ApiPath::of("loadbalancers").query(&[("name", name)]);
        Ok(self
            .lb_read::<wire::LoadBalancers>(calls, path)
            .await?
            .unwrap_or_default()
            .loadbalancers)
    }

    /// The load balancers a list query answers, as observed.
    async fn list_load_balancers(
        &self,
        calls: &Calls,
        path: ApiPath,
    ) -> Result<Vec<ObservedLoadBalancer>, OpenStackError> {
        Ok(self
            .lb_read::<wire::LoadBalancers>(calls, path)
            .await?
            .unwrap_or_default()
            .loadbalancers
            .iter()
            .map(parse_lb)
            .collect())
    }

    /// Who uses the port `id` (a `port-id` annotation's): its device and
    /// tags, and the load balancers whose VIP port it is; `Missing` when
    /// there is no such port.
    pub async fn port_use(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<super::cloud::PortUse, OpenStackError> {
        let path = ApiPath::of("ports").id("port id", id)?;
        let port: Option<wire::OnePort> = self
            .net_call(calls, Method::GET, path, None)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    OpenStackError::Missing {
                        kind: ReferenceKind::Port.as_str(),
                        id: id.to_string(),
                    }
                } else {
                    e
                }
            })?;
        let port = port.map(|p| p.port).unwrap_or_default();
        let path = ApiPath::of("loadbalancers").query(&[("vip_port_id", id)]);
        let mut load_balancers = self.list_load_balancers(calls, path).await?;
        // The legacy API may ignore the filter.
        load_balancers.retain(|lb| lb.vip_port_id.as_deref() == Some(id));
        Ok(super::cloud::PortUse {
            device_id: port.device_id.unwrap_or_default(),
            tags: port.tags.unwrap_or_default(),
            network_id: port.network_id.unwrap_or_default(),
            subnet_ids: port
                .fixed_ips
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.subnet_id)
                .collect(),
            load_balancers,
        })
    }

    /// Everything this tool made for a cluster (`cluster_tag`): its load
    /// balancers (without their trees) and floating IPs, and every floating
    /// IP bound to one of those load balancers' VIP ports (a user's, maybe).
    pub async fn owned_by_cluster(
        &self,
        calls: &Calls,
        cluster_tag: &str,
    ) -> Result<(Vec<ObservedLoadBalancer>, Vec<ObservedFloatingIp>), OpenStackError> {
        let owned = |tags: &[String]| crate::names::is_cluster_owned(tags, cluster_tag);
        // Octavia filters by tag; the legacy API keeps tags in descriptions.
        let path = match self.api {
            Api::Octavia => ApiPath::of("loadbalancers").query(&[("tags", cluster_tag)]),
            Api::NeutronLbaas => ApiPath::of("loadbalancers"),
        };
        let mut load_balancers = self.list_load_balancers(calls, path).await?;
        load_balancers.retain(|lb| owned(&lb.tags));
        crate::model::in_survival_order(&mut load_balancers);
        let vip_ports: Vec<&str> = load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_deref())
            .collect();
        // Neutron cannot filter descriptions by part: read them all, once.
        let floating_ips = self
            .floating_ips(calls, ApiPath::of("floatingips"))
            .await?
            .into_iter()
            .filter(|f| {
                owned(&f.tags) || f.port_id.as_deref().is_some_and(|p| vip_ports.contains(&p))
            })
            .collect();
        Ok((load_balancers, floating_ips))
    }

    /// A typed GET of the load-balancing API (`None`: no body).
    async fn lb_read<T: DeserializeOwned>(
        &self,
        calls: &Calls,
        path: ApiPath,
    ) -> Result<Option<T>, OpenStackError> {
        self.lb_call(calls, Method::GET, path, None).await
    }

    /// Floating IPs a Neutron list answers.
    async fn floating_ips(
        &self,
        calls: &Calls,
        path: ApiPath,
    ) -> Result<Vec<ObservedFloatingIp>, OpenStackError> {
        let list: Option<wire::FloatingIps> = self.net_call(calls, Method::GET, path, None).await?;
        Ok(list
            .unwrap_or_default()
            .floatingips
            .iter()
            .filter_map(parse_fip)
            .collect())
    }

    /// The listeners and pools of `lb` (from what this process last read
    /// when nothing changed since), and with `members` every pool's members.
    async fn read_tree(
        &self,
        calls: &Calls,
        lb: &mut ObservedLoadBalancer,
        updated_at: Option<String>,
        owner_tags: &[String],
        members: MemberRead,
        prefetched: Option<wire::StatusTree>,
    ) -> Result<(), OpenStackError> {
        if self.api == Api::NeutronLbaas {
            let members = members != MemberRead::No;
            return self.read_tree_one_by_one(calls, lb, members).await;
        }
        let tree = async {
            match members {
                MemberRead::No => return Ok(None),
                // Every pool's list, read after the pools.
                MemberRead::Lists => return Ok(Some(wire::StatusTree::default())),
                MemberRead::Tree => {}
            }
            match prefetched {
                Some(tree) => Ok(Some(tree)),
                None => self.status_tree(calls, &lb.id).await.map(Some),
            }
        };
        let details = self.cached_details(&lb.id, updated_at.as_deref());
        let (details, tree) = match details {
            Some(d) => (d, tree.await?),
            None => {
                let epoch = self
                    .details_epoch
                    .load(std::sync::atomic::Ordering::Acquire);
                let (d, tree) =
                    tokio::try_join!(self.read_details(calls, &lb.id, owner_tags), tree)?;
                // Only a settled tree is worth keeping, and only if no write
                // of this process came while it was read: such a write may
                // settle within the same second of `updated_at` (Octavia's
                // resolution), and the stale read would then pass for current.
                if lb.provisioning_status == "ACTIVE" && updated_at.is_some() {
                    self.keep_details_if(epoch, &lb.id, updated_at, &d.0, &d.1);
                }
                (d, tree)
            }
        };
        (lb.listeners, lb.pools) = details;
        if let Some(tree) = tree {
            self.place_members(calls, lb, tree).await?;
        }
        Ok(())
    }

    /// A load balancer's status tree (its members, with their statuses).
    async fn status_tree(
        &self,
        calls: &Calls,
        lb_id: &str,
    ) -> Result<wire::StatusTree, OpenStackError> {
        let path = ApiPath::of("loadbalancers")
            .id("load balancer id", lb_id)?
            .then("status");
        let tree: Option<wire::StatusTree> = self.lb_read(calls, path).await?;
        Ok(tree.unwrap_or_default())
    }

    /// Listeners, pools and this Service's monitors, read together; a
    /// monitor on one of its pools without its tags (a user's) afterwards.
    async fn read_details(
        &self,
        calls: &Calls,
        lb_id: &str,
        owner_tags: &[String],
    ) -> Result<(Vec<ObservedListener>, Vec<ObservedPool>), OpenStackError> {
        let q = [("loadbalancer_id", lb_id)];
        let tags = owner_tags.join(",");
        let (listeners, pools, monitors) = tokio::try_join!(
            self.lb_read::<wire::Listeners>(calls, ApiPath::of("listeners").query(&q)),
            self.lb_read::<wire::Pools>(calls, ApiPath::of("pools").query(&q)),
            self.lb_read::<wire::Monitors>(
                calls,
                ApiPath::of("healthmonitors").query(&[("tags", &tags)])
            ),
        )?;
        let listeners = listeners.unwrap_or_default().listeners;
        let mut monitors: HashMap<String, wire::MonitorRead> = monitors
            .unwrap_or_default()
            .healthmonitors
            .into_iter()
            .filter_map(|m| Some((wire::present(&m.id)?, m)))
            .collect();
        let mut observed = Vec::new();
        for p in pools.unwrap_or_default().pools {
            let mut pool = pool_of(&p);
            if let Some(hm_id) = wire::present(&p.healthmonitor_id) {
                let read = match monitors.remove(&hm_id) {
                    Some(m) => m,
                    None => self.monitor(calls, &hm_id).await?,
                };
                pool.health_monitor = Some(monitor_of(hm_id, &read));
            }
            observed.push(pool);
        }
        Ok((listeners.iter().map(listener_of).collect(), observed))
    }

    async fn monitor(&self, calls: &Calls, id: &str) -> Result<wire::MonitorRead, OpenStackError> {
        let path = ApiPath::of("healthmonitors").id("health monitor id", id)?;
        let one: Option<wire::OneMonitor> = self.lb_read(calls, path).await?;
        Ok(one.map(|h| h.healthmonitor).unwrap_or_default())
    }

    /// Members from the status tree. A pool the tree does not show (on no
    /// listener; every pool when the tree is empty: `MemberRead::Lists`), or
    /// with a member whose name does not say whose it is (a user's, or one
    /// made before members were named), has its members read with their
    /// tags and weights.
    async fn place_members(
        &self,
        calls: &Calls,
        lb: &mut ObservedLoadBalancer,
        tree: wire::StatusTree,
    ) -> Result<(), OpenStackError> {
        let mut from_tree: HashMap<String, Vec<wire::Member>> = tree
            .statuses
            .loadbalancer
            .listeners
            .into_iter()
            .flat_map(|l| l.pools)
            .filter_map(|p| Some((wire::present(&p.id)?, p.members)))
            .collect();
        let mut unclear = Vec::new();
        for pool in &mut lb.pools {
            match from_tree.remove(&pool.id) {
                Some(members)
                    if members.iter().all(|m| {
                        m.name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(LEGACY_TAGS))
                    }) =>
                {
                    pool.members = members.into_iter().filter_map(member_of).collect();
                }
                _ => unclear.push(pool.id.clone()),
            }
        }
        let reads = unclear.iter().map(|id| self.members(calls, id));
        let read = futures_util::future::try_join_all(reads).await?;
        for (id, members) in unclear.into_iter().zip(read) {
            if let Some(pool) = lb.pools.iter_mut().find(|p| p.id == id) {
                pool.members = members;
            }
        }
        Ok(())
    }

    async fn members(
        &self,
        calls: &Calls,
        pool_id: &str,
    ) -> Result<Vec<ObservedMember>, OpenStackError> {
        let path = ApiPath::of("pools").id("pool id", pool_id)?.then("members");
        let list: Option<wire::MemberList> = self.lb_read(calls, path).await?;
        Ok(list
            .map(|m| m.members)
            .unwrap_or_default()
            .into_iter()
            .filter_map(member_of)
            .collect())
    }

    /// The legacy API's tree, object by object.
    async fn read_tree_one_by_one(
        &self,
        calls: &Calls,
        lb: &mut ObservedLoadBalancer,
        members: bool,
    ) -> Result<(), OpenStackError> {
        let q = [("loadbalancer_id", lb.id.as_str())];
        let listeners: wire::Listeners = self
            .lb_read(calls, ApiPath::of("listeners").query(&q))
            .await?
            .unwrap_or_default();
        lb.listeners = listeners.listeners.iter().map(listener_of).collect();
        let pools: wire::Pools = self
            .lb_read(calls, ApiPath::of("pools").query(&q))
            .await?
            .unwrap_or_default();
        for p in pools.pools {
            let mut pool = pool_of(&p);
            if members {
                pool.members = self.members(calls, &pool.id).await?;
            }
            if let Some(hm_id) = wire::present(&p.healthmonitor_id) {
                let read = self.monitor(calls, &hm_id).await?;
                pool.health_monitor = Some(monitor_of(hm_id, &read));
            }
            lb.pools.push(pool);
        }
        Ok(())
    }

    // ------------------------------------------------- what full reads found

    fn details_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Details>> {
        self.details.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the last full read found under `lb_id`, if the load balancer's
    /// `updated_at` is still the one it was read at and it is recent enough.
    fn cached_details(
        &self,
        lb_id: &str,
        updated_at: Option<&str>,
    ) -> Option<(Vec<ObservedListener>, Vec<ObservedPool>)> {
        let map = self.details_map();
        let d = map.get(lb_id)?;
        (updated_at.is_some()
            && d.updated_at.as_deref() == updated_at
            && d.read_at.elapsed() < self.full_read_every)
            .then(|| (d.listeners.clone(), d.pools.clone()))
    }

    /// `keep_details`, unless a write voided reads since `epoch`.
    fn keep_details_if(
        &self,
        epoch: u64,
        lb_id: &str,
        updated_at: Option<String>,
        listeners: &[ObservedListener],
        pools: &[ObservedPool],
    ) {
        let mut map = self.details_map();
        if self
            .details_epoch
            .load(std::sync::atomic::Ordering::Acquire)
            != epoch
        {
            return;
        }
        map.insert(lb_id.to_string(), Details::of(updated_at, listeners, pools));
    }

    fn keep_details(
        &self,
        lb_id: &str,
        updated_at: Option<String>,
        listeners: &[ObservedListener],
        pools: &[ObservedPool],
    ) {
        self.details_map()
            .insert(lb_id.to_string(), Details::of(updated_at, listeners, pools));
    }

    /// What a fully populated create made, as it answered: trusted once the
    /// load balancer is ACTIVE.
    pub(super) fn keep_created(&self, lb_id: &str, created: &wire::CreatedTree) {
        let listeners: Vec<ObservedListener> = created.listeners.iter().map(listener_of).collect();
        let pools: Vec<ObservedPool> = created
            .pools
            .iter()
            .map(|p| {
                let mut pool = pool_of(&p.pool);
                pool.health_monitor = p.healthmonitor.as_ref().and_then(|m| {
                    let id = wire::present(&m.id)?;
                    Some(monitor_of(id, m))
                });
                pool
            })
            .collect();
        if listeners.iter().any(|l| l.id.is_empty()) || pools.iter().any(|p| p.id.is_empty()) {
            return;
        }
        self.keep_details(lb_id, None, &listeners, &pools);
        // Members' statuses change without this process only where a
        // monitor watches them: without one, what the create answered
        // stays true until the next write.
        if created.pools.iter().any(|p| p.healthmonitor.is_some()) {
            return;
        }
        let pools = created
            .pools
            .iter()
            .map(|p| wire::TreePool {
                id: p.pool.id.clone(),
                // As the status tree shows them: no weights.
                members: p
                    .members
                    .iter()
                    .map(|m| wire::Member {
                        weight: None,
                        ..m.clone()
                    })
                    .collect(),
            })
            .collect();
        let tree = wire::StatusTree {
            statuses: wire::TreeStatuses {
                loadbalancer: wire::TreeLoadBalancer {
                    listeners: vec![wire::TreeListener { id: None, pools }],
                },
            },
        };
        self.created_trees().insert(lb_id.to_string(), tree);
    }

    fn created_trees(&self) -> std::sync::MutexGuard<'_, HashMap<String, wire::StatusTree>> {
        self.created_trees.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The members a fully populated create of `lb_id` answered, once, if
    /// no write of this process changed that load balancer since (`take`:
    /// only right after the create's writes; any other observation lets
    /// them go).
    fn created_tree(&self, lb_id: &str, take: bool) -> Option<wire::StatusTree> {
        let tree = self.created_trees().remove(lb_id)?;
        take.then_some(tree)
    }

    /// A write changed `id` (a load balancer, or a listener or pool of the
    /// load balancers `under`): their create's answer is no longer what is.
    fn created_trees_void(&self, id: &str, under: &[String]) {
        self.created_trees().retain(|lb_id, tree| {
            let pools = &tree.statuses.loadbalancer.listeners;
            lb_id != id
                && !under.contains(lb_id)
                && !pools
                    .iter()
                    .flat_map(|l| &l.pools)
                    .any(|p| p.id.as_deref() == Some(id))
        });
    }

    /// A write changed a listener, pool or monitor (`id`, or what the load
    /// balancer `id` holds): the next observe reads them again.
    pub(super) fn forget_details(&self, id: &str) {
        let mut map = self.details_map();
        self.details_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let under: Vec<String> = map
            .iter()
            .filter(|(_, d)| d.holds(id))
            .map(|(lb_id, _)| lb_id.clone())
            .collect();
        map.retain(|lb_id, d| lb_id != id && !d.holds(id));
        drop(map);
        self.created_trees_void(id, &under);
    }

    /// A write changed members of the pool `pool_id` only: what was read of
    /// the rest stays true, from the load balancer's next ACTIVE read on.
    pub(super) fn members_written(&self, pool_id: &str) {
        let mut map = self.details_map();
        self.details_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        for d in map.values_mut() {
            if d.pools.iter().any(|p| p.id == pool_id) {
                d.updated_at = None;
            }
        }
        drop(map);
        self.created_trees_void(pool_id, &[]);
    }

    /// The load balancer (id, VIP port) named `name` as this process last
    /// saw or made it.
    fn last_seen(&self, name: &str) -> Option<(String, Option<String>)> {
        let seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(name).cloned()
    }

    /// What an observation found (or a create made) under `name`: `None`
    /// when it has none (deleted, or not made yet).
    pub(super) fn saw_load_balancer(&self, name: &str, lb: Option<(&str, Option<&str>)>) {
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        match lb {
            Some((id, port)) => {
                seen.insert(name.to_string(), (id.to_string(), port.map(str::to_string)));
            }
            None => {
                seen.remove(name);
            }
        }
    }

    /// A load balancer deleted: no name leads to it any more.
    pub(super) fn forget_load_balancer(&self, lb_id: &str) {
        let mut seen = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, (id, _)| id != lb_id);
        drop(seen);
        self.created_tree(lb_id, false);
    }

    /// A status read saw a load balancer `status` at `updated_at`: details
    /// waiting for this process's own change to settle take it.
    pub(super) fn saw_status(&self, lb_id: &str, status: &str, updated_at: Option<&str>) {
        if status != "ACTIVE" {
            return;
        }
        if let (Some(d), Some(at)) = (self.details_map().get_mut(lb_id), updated_at)
            && d.updated_at.is_none()
        {
            d.updated_at = Some(at.to_string());
        }
    }
}

fn listener_of(l: &wire::ListenerRead) -> ObservedListener {
    let timeout = |t: Option<i64>| t.and_then(|t| u64::try_from(t).ok());
    ObservedListener {
        id: l.id.clone().unwrap_or_default(),
        name: l.name.clone().unwrap_or_default(),
        protocol: l.protocol.clone().unwrap_or_default(),
        protocol_port: l
            .protocol_port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        allowed_cidrs: wire::cidrs(&l.allowed_cidrs),
        connection_limit: l.connection_limit,
        timeout_client_data: timeout(l.timeout_client_data),
        timeout_member_connect: timeout(l.timeout_member_connect),
        timeout_member_data: timeout(l.timeout_member_data),
        timeout_tcp_inspect: timeout(l.timeout_tcp_inspect),
        insert_headers: {
            let mut on: Vec<String> = l
                .insert_headers
                .iter()
                .flatten()
                .filter(|(_, v)| v.eq_ignore_ascii_case("true"))
                .map(|(k, _)| k.clone())
                .collect();
            on.sort();
            on
        },
        default_tls_container_ref: wire::present(&l.default_tls_container_ref),
        sni_container_refs: l.sni_container_refs.clone().unwrap_or_default(),
        alpn_protocols: l.alpn_protocols.clone().unwrap_or_default(),
        default_pool_id: wire::present(&l.default_pool_id),
        tags: tags_or(&l.tags, &l.description),
    }
}

fn pool_of(p: &wire::PoolRead) -> ObservedPool {
    ObservedPool {
        id: p.id.clone().unwrap_or_default(),
        name: p.name.clone().unwrap_or_default(),
        protocol: p.protocol.clone().unwrap_or_default(),
        lb_algorithm: p.lb_algorithm.clone().unwrap_or_default(),
        session_persistence: p
            .session_persistence
            .as_ref()
            .and_then(|s| wire::present(&s.kind)),
        persistence_timeout: p
            .session_persistence
            .as_ref()
            .and_then(|s| s.persistence_timeout)
            .and_then(|t| u32::try_from(t).ok()),
        members: Vec::new(),
        health_monitor: None,
        tags: tags_or(&p.tags, &p.description),
    }
}

fn monitor_of(id: String, h: &wire::MonitorRead) -> ObservedHealthMonitor {
    let n = |x: Option<i64>| x.and_then(|x| u32::try_from(x).ok()).unwrap_or(0);
    ObservedHealthMonitor {
        id,
        kind: h.kind.clone().unwrap_or_default(),
        delay: n(h.delay),
        timeout: n(h.timeout),
        max_retries: n(h.max_retries),
        max_retries_down: n(h.max_retries_down),
        http_method: h.http_method.clone(),
        url_path: h.url_path.clone(),
        expected_codes: h.expected_codes.clone(),
        tags: tags_or(&h.tags, &h.name),
    }
}

/// A member, its ownership from its tags or else its name.
fn member_of(m: wire::Member) -> Option<ObservedMember> {
    let mut tags = match m.tags.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => legacy_tags(m.name.as_deref()),
    };
    // Drained by this tool: weight 0, also where the weight was not read.
    let drained = tags.iter().any(|t| t == crate::names::DRAINING_TAG);
    tags.retain(|t| t != crate::names::DRAINING_TAG);
    let weight = m.weight.and_then(|w| u16::try_from(w).ok());
    Some(ObservedMember {
        id: wire::present(&m.id)?,
        address: m.address.as_deref()?.parse().ok()?,
        protocol_port: m.protocol_port.and_then(|p| u16::try_from(p).ok())?,
        weight: weight.or(drained.then_some(crate::model::Member::DRAINING)),
        tags,
        operating_status: m.operating_status.unwrap_or_default(),
    })
}

/// Adds the items of `more` whose key `into` does not hold yet.
fn add_missing<T>(into: &mut Vec<T>, more: impl IntoIterator<Item = T>, key: impl Fn(&T) -> &str) {
    for item in more {
        if !into.iter().any(|o| key(o) == key(&item)) {
            into.push(item);
        }
    }
}

fn lb_key(lb: &wire::LoadBalancerRead) -> &str {
    lb.id.as_deref().unwrap_or_default()
}

fn parse_lb(v: &wire::LoadBalancerRead) -> ObservedLoadBalancer {
    ObservedLoadBalancer {
        id: v.id.clone().unwrap_or_default(),
        name: v.name.clone().unwrap_or_default(),
        vip_address: v.vip_address.as_deref().and_then(|a| a.parse().ok()),
        vip_subnet_id: wire::present(&v.vip_subnet_id),
        vip_network_id: wire::present(&v.vip_network_id),
        vip_port_id: wire::present(&v.vip_port_id),
        additional_vips: v
            .additional_vips
            .iter()
            .flatten()
            .filter_map(|a| a.ip_address.as_deref()?.parse().ok())
            .collect(),
        provisioning_status: v.provisioning_status.clone().unwrap_or_default(),
        operating_status: v.operating_status.clone().unwrap_or_default(),
        flavor_id: wire::present(&v.flavor_id),
        availability_zone: wire::present(&v.availability_zone),
        provider: wire::present(&v.provider),
        listeners: Vec::new(),
        pools: Vec::new(),
        tags: tags_or(&v.tags, &v.description),
        created_at: wire::present(&v.created_at),
        vip_sg_ids: v.vip_sg_ids.clone().unwrap_or_default(),
    }
}

/// A security group's ingress rules of one protocol and port (what
/// svc-lbaas makes); other rules (Neutron's default egress) are not its.
pub(super) fn parse_security_group(g: &wire::SecurityGroupRead) -> Option<ObservedSecurityGroup> {
    let rules = g
        .security_group_rules
        .iter()
        .filter(|r| r.direction.as_deref() == Some("ingress"))
        .filter_map(|r| {
            let protocol = match r.protocol.as_deref()? {
                "tcp" => "tcp",
                "udp" => "udp",
                "sctp" => "sctp",
                _ => return None,
            };
            let port = u16::try_from(r.port_range_min?).ok()?;
            if r.port_range_max != r.port_range_min {
                return None;
            }
            let remote = r.remote_ip_prefix.as_deref()?.parse().ok()?;
            Some((
                wire::present(&r.id)?,
                crate::model::SecurityGroupRule {
                    protocol,
                    port,
                    remote,
                },
            ))
        })
        .collect();
    Some(ObservedSecurityGroup {
        id: wire::present(&g.id)?,
        name: g.name.clone().unwrap_or_default(),
        description: g.description.clone(),
        rules,
    })
}

/// Octavia's and Neutron's `tags`, else the legacy text field's.
fn tags_or(tags: &Option<Vec<String>>, legacy: &Option<String>) -> Vec<String> {
    match tags {
        Some(t) if !t.is_empty() => t.clone(),
        _ => legacy_tags(legacy.as_deref()),
    }
}

pub(super) fn parse_fip(v: &wire::FloatingIpRead) -> Option<ObservedFloatingIp> {
    Some(ObservedFloatingIp {
        id: wire::present(&v.id)?,
        address: v.floating_ip_address.as_deref()?.parse().ok()?,
        port_id: wire::present(&v.port_id),
        network_id: wire::present(&v.floating_network_id),
        tags: tags_or(&v.tags, &v.description),
        description: wire::present(&v.description),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn cloud() -> super::Cloud {
        let creds = crate::openstack::auth::Credentials {
            auth_url: "http://127.0.0.1:9/v3".into(),
            method: crate::openstack::auth::Method::Token { token: "t".into() },
            project: Default::default(),
            region: None,
            interface: "public".into(),
            ca_bundle: None,
        };
        let session =
            crate::openstack::session::Session::new(creds, 1, std::time::Duration::from_secs(1))
                .unwrap();
        super::Cloud::new(std::sync::Arc::new(session), crate::config::Api::Octavia)
    }

    /// A fully populated create's answer, as Octavia 19 gives it (members
    /// whole; `monitor`: the pool's monitor inline).
    fn created(monitor: bool) -> super::wire::CreatedTree {
        let hm = json!({"id": "hm-1", "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3});
        serde_json::from_value(json!({
            "id": "lb", "vip_port_id": "port",
            "listeners": [{"id": "l-1", "name": "shop/web:TCP:80", "protocol": "TCP", "protocol_port": 80,
                           "default_pool_id": "p-1"}],
            "pools": [{"id": "p-1", "name": "shop/web:TCP:80", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
                       "healthmonitor": if monitor { hm } else { json!(null) },
                       "members": [{"id": "m-1", "name": "svc-lbaas-tags:svc-lbaas", "address": "10.1.0.5",
                                    "protocol_port": 8080, "weight": 1, "operating_status": "NO_MONITOR"}]}]
        }))
        .unwrap()
    }

    /// The members a create answered stand for its status tree once, right
    /// after its writes, and only while no write changed that load balancer;
    /// never where a monitor may have changed their status.
    #[test]
    fn a_creates_members_answer_once_until_a_write_changes_them() {
        let c = cloud();
        c.keep_created("lb", &created(false));
        let tree = c.created_tree("lb", true).expect("kept");
        let pools = &tree.statuses.loadbalancer.listeners[0].pools;
        assert_eq!(pools[0].id.as_deref(), Some("p-1"));
        assert_eq!(pools[0].members[0].id.as_deref(), Some("m-1"));
        assert_eq!(
            pools[0].members[0].weight, None,
            "as the status tree: no weight"
        );
        assert!(c.created_tree("lb", true).is_none(), "once");
        // Any other observation lets it go.
        c.keep_created("lb", &created(false));
        assert!(c.created_tree("lb", false).is_none());
        assert!(c.created_tree("lb", true).is_none());
        // A write on its pool's members, its listener, or itself voids it.
        for written in ["members", "l-1", "lb"] {
            c.keep_created("lb", &created(false));
            match written {
                "members" => c.members_written("p-1"),
                id => c.forget_details(id),
            }
            assert!(c.created_tree("lb", true).is_none(), "{written}");
        }
        // Another load balancer's write does not.
        c.keep_created("lb", &created(false));
        c.forget_details("another-lb");
        c.members_written("another-pool");
        assert!(c.created_tree("lb", true).is_some());
        // A monitor may change a member's status at any time: not kept.
        c.keep_created("lb", &created(true));
        assert!(c.created_tree("lb", true).is_none());
    }

    /// A full read that a write of this process overtook is not kept: the
    /// write may settle within the same second of `updated_at`, and the read
    /// would then pass for current (a listener seen without the pool made
    /// right after it).
    #[test]
    fn a_full_read_a_write_overtook_is_not_kept() {
        let c = cloud();
        let at = Some("2026-12-06T15:08:40".to_string());
        let epoch = c.details_epoch.load(std::sync::atomic::Ordering::Acquire);
        c.forget_details("a-listener-id");
        c.keep_details_if(epoch, "lb", at.clone(), &[], &[]);
        assert!(c.cached_details("lb", at.as_deref()).is_none());
        let epoch = c.details_epoch.load(std::sync::atomic::Ordering::Acquire);
        c.keep_details_if(epoch, "lb", at.clone(), &[], &[]);
        assert!(c.cached_details("lb", at.as_deref()).is_some());
        // A member write voids reads in flight too.
        let epoch = c.details_epoch.load(std::sync::atomic::Ordering::Acquire);
        c.members_written("a-pool-id");
        c.keep_details_if(epoch, "lb2", at.clone(), &[], &[]);
        assert!(c.cached_details("lb2", at.as_deref()).is_none());
    }

    #[test]
    fn legacy_tags_round_trip_through_text_fields() {
        let text = Some("svc-lbaas-tags:svc-lbaas,svc-lbaas-cluster:k".to_string());
        assert_eq!(
            super::tags_or(&None, &text),
            ["svc-lbaas", "svc-lbaas-cluster:k"]
        );
        assert_eq!(super::tags_or(&Some(Vec::new()), &text).len(), 2);
        let b = Some("svc-lbaas-tags:b".to_string());
        assert_eq!(super::tags_or(&Some(vec!["a".into()]), &b), ["a"]);
        assert!(super::tags_or(&None, &Some("a user's words".into())).is_empty());
    }

    #[test]
    fn reads_take_what_openstack_omits_or_nulls() {
        let lb: super::wire::LoadBalancerRead = serde_json::from_value(json!({
            "id": "4d3c", "name": "shop/web", "vip_address": "10.2.0.42", "vip_port_id": "",
            "additional_vips": null, "tags": ["svc-lbaas"], "provisioning_status": "ACTIVE",
            "created_at": "2026-12-01T12:00:00", "something_newer": {"x": 1}
        }))
        .unwrap();
        let o = super::parse_lb(&lb);
        assert_eq!(o.vip_address, Some("10.2.0.42".parse().unwrap()));
        assert_eq!(o.vip_port_id, None, "an empty string is absent");
        assert!(o.additional_vips.is_empty());
        assert_eq!(o.tags, ["svc-lbaas"]);
        let fip: super::wire::FloatingIpRead = serde_json::from_value(json!({
            "id": "f1", "floating_ip_address": "172.24.4.7", "port_id": null,
            "description": "svc-lbaas-tags:svc-lbaas", "tags": []
        }))
        .unwrap();
        let f = super::parse_fip(&fip).unwrap();
        assert_eq!(f.port_id, None);
        assert_eq!(f.tags, ["svc-lbaas"]);
    }
}
