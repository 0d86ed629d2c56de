//! Observation's selection rules, one copy: which load balancers, floating
//! IPs and security groups an observation for a [`Lookup`] holds, and how
//! much of each load balancer's tree it reads. The OpenStack client
//! (`openstack/observe.rs`) asks its queries by them (when the shared ones
//! are read, how much of a tree, what is going, the left security group, the
//! user's floating IP) and holds what they return; a test double applies
//! them all to everything it holds. Pure: no I/O.

use crate::model::{
    FloatingIpLookup, Lookup, ObservedFloatingIp, ObservedLoadBalancer, ObservedSecurityGroup,
};
use crate::names::{is_owned, owner_description, sharer_tag};

/// How much of a load balancer's tree an observation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeRead {
    /// Nothing: found by the Service's name, but another's.
    Nothing,
    /// The Service's listeners and pools (its own load balancer, or its part
    /// of one it shares or is to share).
    Own,
    /// Every object, one by one: another tool's, to take over (its monitors
    /// and members carry no tags of ours).
    Whole,
}

/// What the first reads found of the Service's load balancers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found {
    /// One of its own.
    pub own: bool,
    /// The one its `load-balancer-id` names, not its own: it is to share it.
    pub to_share: bool,
}

/// The rules for one lookup.
pub struct Selection<'a> {
    lookup: Lookup<'a>,
    sharer: Option<String>,
}

impl<'a> Selection<'a> {
    pub fn new(lookup: Lookup<'a>) -> Selection<'a> {
        Selection {
            sharer: sharer_tag(lookup.owner_tags),
            lookup,
        }
    }

    /// The Service's sharer tag (none for a tag too long to be one).
    pub fn sharer(&self) -> Option<&str> {
        self.sharer.as_deref()
    }

    /// Whether `tags` are the Service's own (its ownership tags).
    pub fn owns(&self, tags: &[String]) -> bool {
        is_owned(tags, self.lookup.owner_tags)
    }

    /// What the load balancers found so far (id and tags) say.
    pub fn found<'t>(&self, found: impl IntoIterator<Item = (&'t str, &'t [String])>) -> Found {
        let mut seen = Found::default();
        for (id, tags) in found {
            let own = self.owns(tags);
            seen.own |= own;
            seen.to_share |= !own && self.lookup.id_hint == Some(id);
        }
        seen
    }

    /// Whether the load balancers carrying its sharer tag are read: when
    /// asked (`shared`: a removal, an Endpoints change); when it is to share
    /// the one named by id (it may still be on others); when it names none
    /// and has none of its own (its annotation gone: about to create one).
    pub fn reads_shared(&self, found: Found) -> bool {
        self.lookup.shared || found.to_share || (self.lookup.id_hint.is_none() && !found.own)
    }

    /// Whether a load balancer belongs in the observation: its own, one of
    /// its name, another tool's name for it, the one named by id, or (when
    /// `shared_read`) one carrying its sharer tag.
    pub fn holds(&self, lb: &ObservedLoadBalancer, shared_read: bool) -> bool {
        self.owns(&lb.tags)
            || lb.name == self.lookup.name
            || self.lookup.adoptable.contains(&lb.name)
            || self.lookup.id_hint == Some(lb.id.as_str())
            || (shared_read && self.carries_sharer_tag(&lb.tags))
    }

    fn carries_sharer_tag(&self, tags: &[String]) -> bool {
        self.sharer.as_ref().is_some_and(|s| tags.contains(s))
    }

    /// How much of a load balancer it holds is read.
    pub fn tree(&self, lb: &ObservedLoadBalancer) -> TreeRead {
        let own = self.owns(&lb.tags);
        if !own && self.lookup.adoptable.contains(&lb.name) {
            TreeRead::Whole
        } else if own
            || self.lookup.id_hint == Some(lb.id.as_str())
            || self.carries_sharer_tag(&lb.tags)
        {
            TreeRead::Own
        } else {
            TreeRead::Nothing
        }
    }

    /// Whether a load balancer it found is one of its own going away
    /// (`PENDING_DELETE`: answered as deleting), or gone from sight (another's
    /// being deleted, or deleted).
    pub fn going(&self, lb: &ObservedLoadBalancer) -> Going {
        match lb.provisioning_status.as_str() {
            "PENDING_DELETE" if self.owns(&lb.tags) => Going::Deleting,
            "PENDING_DELETE" | "DELETED" => Going::Gone,
            _ => Going::No,
        }
    }

    /// The ports whose floating IPs are read: the VIP ports of the load
    /// balancers held, and the user's VIP port (`port-id`).
    pub fn vip_ports<'l>(&'l self, load_balancers: &'l [ObservedLoadBalancer]) -> Vec<&'l str> {
        load_balancers
            .iter()
            .filter_map(|lb| lb.vip_port_id.as_deref())
            .chain(self.lookup.vip_port)
            .collect()
    }

    /// Whether a floating IP belongs in the observation: its own (its
    /// ownership tags, or a description that carries them), or one bound to
    /// one of `vip_ports` (a user's, another tool's, a sharer's: shown, and
    /// disassociated rather than deleted).
    pub fn holds_floating_ip(&self, fip: &ObservedFloatingIp, vip_ports: &[&str]) -> bool {
        self.owns(&fip.tags)
            || fip.description.as_deref()
                == Some(owner_description(self.lookup.owner_tags).as_str())
            || fip
                .port_id
                .as_deref()
                .is_some_and(|p| vip_ports.contains(&p))
    }

    /// `spec.loadBalancerIP`'s floating IP among `candidates`.
    pub fn user_floating_ip<'f>(
        &self,
        candidates: impl IntoIterator<Item = &'f ObservedFloatingIp>,
    ) -> FloatingIpLookup {
        match self.lookup.user_address {
            None => FloatingIpLookup::NotLookedUp,
            Some(a) => candidates
                .into_iter()
                .find(|f| f.address == std::net::IpAddr::V4(a))
                .cloned()
                .map_or(FloatingIpLookup::NotFound, FloatingIpLookup::Found),
        }
    }

    /// Whether the VIP security group of the Service's name is read though
    /// none is wanted: one of its own load balancers still has one (source
    /// ranges removed), to be let go.
    pub fn reads_left_security_group(&self, load_balancers: &[ObservedLoadBalancer]) -> bool {
        self.lookup.security_group.is_none()
            && load_balancers
                .iter()
                .any(|lb| self.owns(&lb.tags) && !lb.vip_sg_ids.is_empty())
    }

    /// Whether a security group belongs in the observation: the one of the
    /// name asked for, or (when `left`) the one of the Service's name.
    pub fn holds_security_group(&self, group: &ObservedSecurityGroup, left: bool) -> bool {
        Some(group.name.as_str()) == self.lookup.security_group
            || (left && group.name == self.lookup.name)
    }
}

/// Whether a load balancer found is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Going {
    No,
    /// The Service's own, `PENDING_DELETE`: the observation says so.
    Deleting,
    /// Another's being deleted, or deleted: not seen.
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceRef;
    use crate::names::owner_tags;

    fn owner() -> Vec<String> {
        owner_tags(
            "kubernetes",
            &ServiceRef {
                namespace: "shop".into(),
                name: "web".into(),
            },
        )
    }

    fn lb(id: &str, name: &str, tags: Vec<String>) -> ObservedLoadBalancer {
        ObservedLoadBalancer {
            id: id.into(),
            name: name.into(),
            vip_port_id: Some(format!("port-{id}")),
            provisioning_status: "ACTIVE".into(),
            tags,
            ..Default::default()
        }
    }

    fn fip(
        id: &str,
        port: Option<&str>,
        tags: Vec<String>,
        description: Option<String>,
    ) -> ObservedFloatingIp {
        ObservedFloatingIp {
            id: id.into(),
            address: "172.24.4.10".parse().expect("an address"),
            port_id: port.map(str::to_string),
            network_id: None,
            tags,
            description,
        }
    }

    #[test]
    fn the_shared_ones_are_read_when_asked_when_to_share_or_when_about_to_create() {
        let owner = owner();
        let by_name = Lookup::by_name("shop/web", &owner);
        let rules = Selection::new(by_name);
        let own = [("a", owner.as_slice())];
        let other: [(&str, &[String]); 1] = [("b", &[])];
        // Its own found: not read; none of its own and no id: about to create one.
        assert!(!rules.reads_shared(rules.found(own)));
        assert!(rules.reads_shared(rules.found([])));
        // Asked (an Endpoints change, a removal): always.
        let service = Selection::new(Lookup::service("shop/web", &owner));
        assert!(service.reads_shared(service.found(own)));
        // Named by id: read when the one named is not its own.
        let hinted = Selection::new(Lookup {
            id_hint: Some("b"),
            ..by_name
        });
        assert_eq!(
            hinted.found(other),
            Found {
                own: false,
                to_share: true
            }
        );
        assert!(hinted.reads_shared(hinted.found(other)));
        let own_b = [("b", owner.as_slice())];
        assert!(!hinted.reads_shared(hinted.found(own_b)));
    }

    #[test]
    fn load_balancers_are_held_and_read_by_whose_they_are() {
        let owner = owner();
        let sharer = sharer_tag(&owner).expect("a sharer tag");
        let adoptable = ["kube_service_kubernetes_shop_web".to_string()];
        let rules = Selection::new(Lookup {
            adoptable: &adoptable,
            id_hint: Some("hinted"),
            ..Lookup::by_name("shop/web", &owner)
        });
        let mine = lb("1", "shop/web", owner.clone());
        let foreign_same_name = lb("2", "shop/web", vec!["someone".into()]);
        let occm = lb("3", &adoptable[0], Vec::new());
        let hinted = lb("hinted", "theirs", Vec::new());
        let shared = lb("5", "other/lb", vec![sharer.clone()]);
        let stranger = lb("6", "other/lb", Vec::new());
        for (lb, held, tree) in [
            (&mine, true, TreeRead::Own),
            (&foreign_same_name, true, TreeRead::Nothing),
            (&occm, true, TreeRead::Whole),
            (&hinted, true, TreeRead::Own),
            (&stranger, false, TreeRead::Nothing),
        ] {
            assert_eq!(rules.holds(lb, true), held, "{}", lb.id);
            assert_eq!(rules.tree(lb), tree, "{}", lb.id);
        }
        // One carrying its sharer tag: held only when the shared ones are read.
        assert!(rules.holds(&shared, true));
        assert!(!rules.holds(&shared, false));
        assert_eq!(rules.tree(&shared), TreeRead::Own);
        // Going: its own PENDING_DELETE is deleting, another's is gone.
        let mut going = mine.clone();
        going.provisioning_status = "PENDING_DELETE".into();
        assert_eq!(rules.going(&going), Going::Deleting);
        let mut theirs = foreign_same_name.clone();
        theirs.provisioning_status = "PENDING_DELETE".into();
        assert_eq!(rules.going(&theirs), Going::Gone);
        assert_eq!(rules.going(&mine), Going::No);
    }

    #[test]
    fn floating_ips_are_its_own_or_on_a_vip_port_held() {
        let owner = owner();
        let rules = Selection::new(Lookup {
            vip_port: Some("users-port"),
            user_address: Some("172.24.4.10".parse().expect("an address")),
            ..Lookup::by_name("shop/web", &owner)
        });
        let lbs = [lb("1", "shop/web", owner.clone())];
        let ports = rules.vip_ports(&lbs);
        assert_eq!(ports, ["port-1", "users-port"]);
        let tagged = fip("a", None, owner.clone(), None);
        let described = fip(
            "b",
            None,
            vec!["a user's".into()],
            Some(owner_description(&owner)),
        );
        let bound = fip("c", Some("port-1"), Vec::new(), None);
        let on_users_port = fip("d", Some("users-port"), Vec::new(), None);
        let elsewhere = fip("e", Some("port-9"), Vec::new(), None);
        let held: Vec<&str> = [&tagged, &described, &bound, &on_users_port, &elsewhere]
            .into_iter()
            .filter(|f| rules.holds_floating_ip(f, &ports))
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(held, ["a", "b", "c", "d"]);
        assert_eq!(
            rules.user_floating_ip([&elsewhere]),
            FloatingIpLookup::Found(elsewhere.clone())
        );
        assert_eq!(rules.user_floating_ip([]), FloatingIpLookup::NotFound);
        let no_address = Selection::new(Lookup::by_name("shop/web", &owner));
        assert_eq!(
            no_address.user_floating_ip([&elsewhere]),
            FloatingIpLookup::NotLookedUp
        );
    }

    #[test]
    fn a_left_security_group_is_read_while_its_load_balancer_has_one() {
        let owner = owner();
        let rules = Selection::new(Lookup::by_name("shop/web", &owner));
        let mut with_group = lb("1", "shop/web", owner.clone());
        assert!(!rules.reads_left_security_group(std::slice::from_ref(&with_group)));
        with_group.vip_sg_ids = vec!["sg-1".into()];
        assert!(rules.reads_left_security_group(std::slice::from_ref(&with_group)));
        let group = ObservedSecurityGroup {
            name: "shop/web".into(),
            ..Default::default()
        };
        assert!(rules.holds_security_group(&group, true));
        assert!(!rules.holds_security_group(&group, false));
        let wanted = Selection::new(Lookup {
            security_group: Some("shop/web"),
            ..Lookup::by_name("shop/web", &owner)
        });
        assert!(!wanted.reads_left_security_group(std::slice::from_ref(&with_group)));
        assert!(wanted.holds_security_group(&group, false));
    }
}
