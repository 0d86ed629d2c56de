//! Names and ownership tags: the seed's `namespace/name` and
//! `namespace/name:PROTOCOL:PORT`, shortened deterministically past Octavia's
//! 255-character limit, and the tags by which a stateless replica finds what
//! this tool created.

use sha2::{Digest, Sha256};

pub use crate::model::{is_dns_label, is_plain_name, is_uuid};

use crate::model::{ListenerProtocol, ServiceRef};

/// Octavia's and Neutron's limit for names and for each tag.
pub const MAX_NAME_LEN: usize = 255;

/// The tag on a load balancer whose VIP port is the user's (`port-id`):
/// the floating IP the user bound to it is theirs, left bound on removal.
pub const USER_PORT_TAG: &str = "svc-lbaas-user-port";

/// The tag every resource this tool creates carries.
pub const TOOL_TAG: &str = "svc-lbaas";
const CLUSTER_TAG_PREFIX: &str = "svc-lbaas-cluster:";

/// The tag naming the cluster that owns an object.
pub fn cluster_tag(cluster: &str) -> String {
    fit(format!("{CLUSTER_TAG_PREFIX}{cluster}"))
}

/// The tag naming the Service an object was made for, if `tags` has one.
pub fn service_tag(tags: &[String]) -> Option<&str> {
    tags.iter()
        .map(String::as_str)
        .find(|t| t.starts_with(SERVICE_TAG_PREFIX))
}

/// The namespace in a Service tag (`svc-lbaas-service:<namespace>_<name>`;
/// a namespace has no `_`, and a shortened tag keeps its start).
pub fn namespace_of_service_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix(SERVICE_TAG_PREFIX)?
        .split_once('_')
        .map(|(ns, _)| ns)
}
const SERVICE_TAG_PREFIX: &str = "svc-lbaas-service:";
const SHARER_TAG_PREFIX: &str = "svc-lbaas-sharer:";

/// The tag a Service puts on a load balancer it shares without owning it
/// (`loadbalancer.openstack.org/load-balancer-id`):
/// `svc-lbaas-sharer:<namespace>_<name>`, from its owner tags.
pub fn sharer_tag(owner: &[String]) -> Option<String> {
    let service = service_tag(owner)?.strip_prefix(SERVICE_TAG_PREFIX)?;
    Some(format!("{SHARER_TAG_PREFIX}{service}"))
}

/// The Service tag of the Service a sharer tag names.
pub fn service_tag_of_sharer(tag: &str) -> Option<String> {
    let service = tag.strip_prefix(SHARER_TAG_PREFIX)?;
    Some(format!("{SERVICE_TAG_PREFIX}{service}"))
}

/// Whether `tag` is a sharer's tag.
pub fn is_sharer_tag(tag: &str) -> bool {
    tag.starts_with(SHARER_TAG_PREFIX)
}

/// How many Services a load balancer serves: its owner and its sharers.
pub fn users_of(tags: &[String]) -> usize {
    tags.iter()
        .filter(|t| t.starts_with(SERVICE_TAG_PREFIX) || is_sharer_tag(t))
        .count()
}

/// A sharer's Service, to hand a shared load balancer over to: its owner
/// tags in `cluster_tag`'s cluster and its load balancer's name.
pub fn sharer_as_owner(sharer: &str, cluster_tag: &str) -> Option<(Vec<String>, String)> {
    let service = sharer.strip_prefix(SHARER_TAG_PREFIX)?;
    let (namespace, name) = service.split_once('_')?;
    Some((
        vec![
            TOOL_TAG.to_string(),
            cluster_tag.to_string(),
            service_tag_of_sharer(sharer)?,
        ],
        fit(format!("{namespace}/{name}")),
    ))
}

/// Whether `tag` is a Service's uid tag (on the load balancer only).
pub fn is_uid_tag(tag: &str) -> bool {
    tag.starts_with(UID_TAG_PREFIX)
}
const UID_TAG_PREFIX: &str = "svc-lbaas-uid:";
const PORT_TAG_PREFIX: &str = "svc-lbaas-port:";
const TARGET_TAG_PREFIX: &str = "svc-lbaas-target:";

/// `value` itself when it fits in 255 characters; otherwise a prefix and 16 hex
/// digits of its SHA-256, so two long names never shorten to the same string.
pub fn fit(value: String) -> String {
    if value.len() <= MAX_NAME_LEN {
        return value;
    }
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut keep = MAX_NAME_LEN - hex.len() - 1;
    while !value.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}-{}", &value[..keep], hex)
}

/// The load balancer's name: `namespace/name`.
pub fn load_balancer_name(service: &ServiceRef) -> String {
    fit(format!("{}/{}", service.namespace, service.name))
}

/// The name OCCM gives a Service's load balancer:
/// `kube_service_<cluster>_<namespace>_<name>`, cut to 255 characters as
/// OCCM cuts it (`cutString`).
pub fn occm_load_balancer_name(cluster: &str, service: &ServiceRef) -> String {
    let name = format!(
        "kube_service_{cluster}_{}_{}",
        service.namespace, service.name
    );
    let mut end = name.len().min(MAX_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

const SHARE_WITH_TAG_PREFIX: &str = "svc-lbaas-share-with:";
const JOINED_TAG_PREFIX: &str = "svc-lbaas-joined:";

/// The tag by which an owner opens its load balancer to `namespace` (or
/// `*`); one tag a namespace (Octavia's tag filter splits on commas).
pub fn share_with_tag(namespace: &str) -> String {
    format!("{SHARE_WITH_TAG_PREFIX}{namespace}")
}

pub fn is_share_with_tag(tag: &str) -> bool {
    tag.starts_with(SHARE_WITH_TAG_PREFIX)
}

/// Whether a load balancer's tags open it to `namespace`.
pub fn shares_with(tags: &[String], namespace: &str) -> bool {
    tags.iter()
        .filter_map(|t| t.strip_prefix(SHARE_WITH_TAG_PREFIX))
        .any(|n| n == "*" || n == namespace)
}

/// The tag recording when a sharer joined (`seq`, one more than any before),
/// so that the owner hands its load balancer to the oldest sharer.
pub fn joined_tag(seq: u32, sharer: &str) -> Option<String> {
    let service = sharer.strip_prefix(SHARER_TAG_PREFIX)?;
    Some(fit(format!("{JOINED_TAG_PREFIX}{seq:06}:{service}")))
}

/// The sequence number and sharer tag of a joined tag.
pub fn parse_joined_tag(tag: &str) -> Option<(u32, String)> {
    let (seq, service) = tag.strip_prefix(JOINED_TAG_PREFIX)?.split_once(':')?;
    Some((seq.parse().ok()?, format!("{SHARER_TAG_PREFIX}{service}")))
}

/// The namespace of a sharer tag (`svc-lbaas-sharer:<namespace>_<name>`).
pub fn namespace_of_sharer_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix(SHARER_TAG_PREFIX)?
        .split_once('_')
        .map(|(ns, _)| ns)
}

/// `namespace/name` of a sharer tag, for messages.
pub fn sharer_shown(tag: &str) -> String {
    tag.strip_prefix(SHARER_TAG_PREFIX)
        .map_or_else(|| tag.to_string(), |s| s.replacen('_', "/", 1))
}

/// Which namespace holds a load balancer or a floating IP, as the tools
/// that make them record it: the principal a reference is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A Service of this namespace (svc-lbaas's, OCCM's or kuryr's).
    Namespace(String),
    /// svc-lbaas's for another cluster, or one whose holder cannot be read.
    Foreign,
    /// No tool manages it: a user's.
    Nobody,
}

/// The holder of a load balancer: svc-lbaas's Service tag (of this
/// `cluster`, its tag), OCCM's name `kube_service_<occm_cluster>_<namespace>_<name>`
/// (another OCCM cluster's, or one cut short, is `Foreign`), kuryr's
/// `<namespace>/<name>`.
pub fn holder_of_load_balancer(
    name: &str,
    tags: &[String],
    cluster: &str,
    occm_cluster: &str,
) -> Holder {
    if tags.iter().any(|t| t == TOOL_TAG) {
        return ours(tags, cluster);
    }
    if name.starts_with("kube_service_") {
        // Namespaces and names hold no `_`.
        let ours = name
            .strip_prefix(&format!("kube_service_{occm_cluster}_"))
            .and_then(|rest| rest.split_once('_'));
        return match ours {
            Some((ns, n)) if is_dns_label(ns) && is_dns_label(n) => {
                Holder::Namespace(ns.to_string())
            }
            _ => Holder::Foreign,
        };
    }
    match name.split_once('/') {
        Some((ns, n)) if is_dns_label(ns) && is_dns_label(n) => Holder::Namespace(ns.to_string()),
        _ => Holder::Nobody,
    }
}

/// The holder of a floating IP: svc-lbaas's tags (in its description, kept
/// when the address is), OCCM's description. `cluster` is this cluster's tag.
pub fn holder_of_floating_ip(tags: &[String], description: Option<&str>, cluster: &str) -> Holder {
    if tags.iter().any(|t| t == TOOL_TAG) {
        return ours(tags, cluster);
    }
    // Tags of Neutron's own (set by others) hide the description's.
    let described = legacy_tags(description);
    if described.iter().any(|t| t == TOOL_TAG) {
        return ours(&described, cluster);
    }
    let occm = description
        .and_then(|d| d.strip_prefix(OCCM_FLOATING_IP_PREFIX))
        .and_then(|rest| rest.split_once('/'));
    match occm {
        Some((ns, _)) if is_dns_label(ns) => Holder::Namespace(ns.to_string()),
        Some(_) => Holder::Foreign,
        None => Holder::Nobody,
    }
}

fn ours(tags: &[String], cluster: &str) -> Holder {
    let this_cluster = cluster_of(tags) == Some(cluster);
    match service_tag(tags).and_then(namespace_of_service_tag) {
        Some(ns) if this_cluster => Holder::Namespace(ns.to_string()),
        _ => Holder::Foreign,
    }
}

/// The description OCCM gives a Service's floating IP.
pub fn occm_floating_ip_description(cluster: &str, service: &ServiceRef) -> String {
    format!(
        "{OCCM_FLOATING_IP_PREFIX}{}/{} from cluster {cluster}",
        service.namespace, service.name
    )
}
const OCCM_FLOATING_IP_PREFIX: &str = "Floating IP for Kubernetes external service ";

const ADOPTED_TAG_PREFIX: &str = "svc-lbaas-adopted:";

/// The tag on a load balancer svc-lbaas took over from another tool
/// (`svc-lbaas-adopted:occm`): its VIP is the one that tool chose, kept.
pub fn adopted_tag(from: crate::model::AdoptFrom) -> String {
    format!("{ADOPTED_TAG_PREFIX}{}", from.as_str())
}

/// The tool a load balancer was taken over from, as its tags say.
pub fn adopted_from(tags: &[String]) -> Option<crate::model::AdoptFrom> {
    tags.iter()
        .find_map(|t| t.strip_prefix(ADOPTED_TAG_PREFIX))
        .and_then(crate::model::AdoptFrom::parse)
}

/// Whether a load balancer's tags say it was taken over from another tool.
pub fn is_adopted(tags: &[String]) -> bool {
    tags.iter().any(|t| t.starts_with(ADOPTED_TAG_PREFIX))
}

/// The description kuryr-kubernetes gives the floating IPs it allocates.
pub const KURYR_FLOATING_IP_DESCRIPTION: &str = "kuryr_lb";

/// A listener's and its pool's name: `namespace/name:PROTOCOL:PORT`.
pub fn listener_name(service: &ServiceRef, protocol: ListenerProtocol, port: u16) -> String {
    fit(format!(
        "{}/{}:{}:{}",
        service.namespace,
        service.name,
        protocol.as_str(),
        port
    ))
}

/// Tags on every sub-resource and floating IP created for `service` in `cluster`.
/// The Service is written `namespace_name`: `_` is in neither Kubernetes name,
/// and `/` would not survive Neutron's per-tag URL.
pub fn owner_tags(cluster: &str, service: &ServiceRef) -> Vec<String> {
    vec![
        TOOL_TAG.to_string(),
        cluster_tag(cluster),
        fit(format!(
            "{SERVICE_TAG_PREFIX}{}_{}",
            service.namespace, service.name
        )),
    ]
}

/// The load balancer's tags: the owner tags plus the Service's uid when known.
pub fn load_balancer_tags(cluster: &str, service: &ServiceRef, uid: Option<&str>) -> Vec<String> {
    let mut tags = owner_tags(cluster, service);
    if let Some(uid) = uid.filter(|u| !u.is_empty()) {
        tags.push(fit(format!("{UID_TAG_PREFIX}{uid}")));
    }
    tags
}

/// A pool's record of its Service port: the port's name (empty when unnamed)
/// and its target port (a number, or a name the Endpoints resolve).
pub fn port_tags(port_name: &str, target: &str) -> Vec<String> {
    vec![
        fit(format!("{PORT_TAG_PREFIX}{port_name}")),
        fit(format!("{TARGET_TAG_PREFIX}{target}")),
    ]
}

/// The port name and target port that `port_tags` recorded, if both are there.
pub fn parse_port_tags(tags: &[String]) -> Option<(String, String)> {
    let find = |prefix: &str| {
        tags.iter()
            .find_map(|t| t.strip_prefix(prefix).map(str::to_string))
    };
    Some((find(PORT_TAG_PREFIX)?, find(TARGET_TAG_PREFIX)?))
}

/// Whether a tag is one `port_tags` writes (replaced, not kept, on update).
pub fn is_port_tag(tag: &str) -> bool {
    tag.starts_with(PORT_TAG_PREFIX) || tag.starts_with(TARGET_TAG_PREFIX)
}

/// Tags kept in a text field where an API takes none (the legacy LBaaS
/// objects, Neutron's floating IP description): `svc-lbaas-tags:a,b,c`.
pub const LEGACY_TAGS: &str = "svc-lbaas-tags:";

/// Ownership written where an API takes no tags: `svc-lbaas-tags:a,b,c`.
pub fn owner_description(owner: &[String]) -> String {
    format!("{LEGACY_TAGS}{}", owner.join(","))
}

/// The name of a Service's Barbican certificate containers (a Kubernetes
/// TLS Secret's copies; Barbican has no tags): its ownership, as the legacy
/// objects carry it. Its secrets add `:<digest>:<part>`.
pub fn certificate_name(owner: &[String]) -> String {
    let name = format!("{CERTIFICATE_PREFIX}{}", owner_description(owner));
    // Barbican names hold 255 characters, and the secrets' add 31: a long
    // one becomes its digest.
    if name.len() <= 220 {
        return name;
    }
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{CERTIFICATE_PREFIX}sha256:{digest}")
}

/// The holder of a Barbican container or secret, by its name: svc-lbaas
/// names the ones it stores after their Service ([`certificate_name`]);
/// any other is a user's. `owner` is the Service asking.
pub fn holder_of_certificate(name: &str, owner: &[String]) -> Holder {
    let Some(rest) = name.strip_prefix(CERTIFICATE_PREFIX) else {
        return Holder::Nobody;
    };
    let own_namespace = || {
        service_tag(owner)
            .and_then(namespace_of_service_tag)
            .map_or(Holder::Foreign, |ns| Holder::Namespace(ns.to_string()))
    };
    // The Service's own, or its secrets (`<container>:<digest>:<part>`).
    if name.starts_with(&certificate_name(owner)) {
        return own_namespace();
    }
    // Another's long name is a digest: whose cannot be read back.
    if rest.starts_with("sha256:") {
        return Holder::Foreign;
    }
    let tags = legacy_tags(Some(rest));
    ours(&tags, cluster_of(owner).unwrap_or_default())
}

const CERTIFICATE_PREFIX: &str = "svc-lbaas-certificate ";

/// In a draining member's name beside its ownership: Octavia's status tree
/// shows names, not weights, so a member left at weight 0 (its endpoint
/// back, a drop missed) is seen and served again by the next apply.
pub const DRAINING_TAG: &str = "svc-lbaas-draining";

/// A listener's certificate reference until the Secret's container is
/// found or made (the plan shows it; an apply replaces it).
pub const PENDING_CERTIFICATE: &str = "svc-lbaas:certificate-from-secret:";

/// The tags a text field holds (none unless it is `svc-lbaas-tags:...`).
pub fn legacy_tags(field: Option<&str>) -> Vec<String> {
    match field.and_then(|d| d.strip_prefix(LEGACY_TAGS)) {
        Some(tags) => tags.split(',').map(str::to_string).collect(),
        None => Vec::new(),
    }
}

/// Made by this tool for the cluster `cluster_tag` (any Service).
pub fn is_cluster_owned(tags: &[String], cluster_tag: &str) -> bool {
    tags.iter().any(|t| t == TOOL_TAG) && tags.iter().any(|t| t == cluster_tag)
}

/// Whether the load balancer with `tags` serves the Service of `owner`: it
/// owns it, or shares it (its sharer tag).
pub fn serves(tags: &[String], owner: &[String]) -> bool {
    is_owned(tags, owner) || sharer_tag(owner).is_some_and(|s| tags.contains(&s))
}

/// The cluster tag among `tags`.
pub fn cluster_of(tags: &[String]) -> Option<&str> {
    tags.iter()
        .map(String::as_str)
        .find(|t| t.starts_with(CLUSTER_TAG_PREFIX))
}

/// Whether `tags` carry every one of `owner` (the tags of `owner_tags`).
pub fn is_owned(tags: &[String], owner: &[String]) -> bool {
    // Fast path: what this tool created carries the owner tags first.
    tags.starts_with(owner) || owner.iter().all(|o| tags.iter().any(|t| t == o))
}

/// A DNS name as Kubernetes takes it in a status hostname (a DNS-1123
/// subdomain): 1-253 characters, dot-separated labels of 1-63 lowercase
/// letters, digits and '-', neither starting nor ending with '-'.
pub fn is_dns_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_holder_of_a_load_balancer_or_floating_ip_is_read_from_what_each_tool_writes() {
        let prod = ServiceRef {
            namespace: "prod".into(),
            name: "web".into(),
        };
        let ours = owner_tags("kubernetes", &prod);
        let prod_ns = Holder::Namespace("prod".into());
        let k = cluster_tag("kubernetes");
        let k = k.as_str();
        let holder = |name: &str, tags: &[String]| holder_of_load_balancer(name, tags, k, "my_c");
        assert_eq!(holder("prod/web", &ours), prod_ns);
        assert_eq!(
            holder_of_load_balancer("prod/web", &ours, &cluster_tag("east"), "my_c"),
            Holder::Foreign
        );
        let occm = occm_load_balancer_name("my_c", &prod);
        assert_eq!(holder(&occm, &[]), prod_ns);
        let elsewhere = occm_load_balancer_name("other", &prod);
        assert_eq!(holder(&elsewhere, &[]), Holder::Foreign);
        assert_eq!(holder("kube_service_x", &[]), Holder::Foreign);
        assert_eq!(holder("prod/web", &[]), prod_ns);
        assert_eq!(holder("my lb", &[]), Holder::Nobody);
        let kept = legacy_tags(Some(&owner_description(&ours)));
        assert_eq!(holder_of_floating_ip(&kept, None, k), prod_ns);
        // Someone's Neutron tag on a kept address: its description still tells.
        let described = owner_description(&ours);
        assert_eq!(
            holder_of_floating_ip(&["team".into()], Some(&described), k),
            prod_ns
        );
        let occm_fip = occm_floating_ip_description("c", &prod);
        assert_eq!(holder_of_floating_ip(&[], Some(&occm_fip), k), prod_ns);
        assert_eq!(holder_of_floating_ip(&[], Some("mine"), k), Holder::Nobody);
        let evil = owner_tags("kubernetes", &svc("evil", "web"));
        let prods = certificate_name(&ours);
        assert_eq!(holder_of_certificate(&prods, &ours), prod_ns);
        assert_eq!(holder_of_certificate(&prods, &evil), prod_ns);
        let secret = format!("{prods}:0123456789abcdef:certificate");
        assert_eq!(holder_of_certificate(&secret, &evil), prod_ns);
        assert_eq!(holder_of_certificate("my-cert", &evil), Holder::Nobody);
        let long = svc(&"p".repeat(63), &"w".repeat(63));
        let long_name = certificate_name(&owner_tags("kubernetes", &long));
        assert!(long_name.contains("sha256:"), "{long_name}");
        assert_eq!(holder_of_certificate(&long_name, &evil), Holder::Foreign);
        assert_eq!(
            holder_of_certificate(&long_name, &owner_tags("kubernetes", &long)),
            Holder::Namespace("p".repeat(63))
        );
    }

    use super::*;

    fn svc(ns: &str, name: &str) -> ServiceRef {
        ServiceRef {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn names_follow_the_seed() {
        let s = svc("default", "kubernetes");
        assert_eq!(load_balancer_name(&s), "default/kubernetes");
        assert_eq!(
            listener_name(&s, ListenerProtocol::Https, 443),
            "default/kubernetes:HTTPS:443"
        );
    }

    #[test]
    fn short_names_are_left_alone() {
        let name = "a".repeat(MAX_NAME_LEN);
        assert_eq!(fit(name.clone()), name);
    }

    #[test]
    fn certificate_names_fit_barbican_with_room_for_the_secrets_suffix() {
        let service = |ns: &str, name: &str| ServiceRef {
            namespace: ns.into(),
            name: name.into(),
        };
        let short = certificate_name(&owner_tags("k", &service("shop", "web")));
        assert_eq!(
            short,
            "svc-lbaas-certificate svc-lbaas-tags:svc-lbaas,svc-lbaas-cluster:k,svc-lbaas-service:shop_web"
        );
        let long =
            |n: &str| certificate_name(&owner_tags(&"c".repeat(63), &service(&"n".repeat(63), n)));
        let (a, b) = (long(&"a".repeat(63)), long(&"b".repeat(63)));
        assert!(
            a.len() + ":0123456789abcdef:intermediates".len() <= 255,
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(a, long(&"a".repeat(63)));
    }

    #[test]
    fn long_names_are_shortened_deterministically_and_without_collisions() {
        let ns = "n".repeat(63);
        let a = svc(&ns, &format!("{}a", "x".repeat(252)));
        let b = svc(&ns, &format!("{}b", "x".repeat(252)));
        let name_a = listener_name(&a, ListenerProtocol::Tcp, 80);
        let name_b = listener_name(&b, ListenerProtocol::Tcp, 80);
        assert_eq!(name_a.len(), MAX_NAME_LEN);
        assert_eq!(name_b.len(), MAX_NAME_LEN);
        assert_ne!(name_a, name_b);
        assert_eq!(name_a, listener_name(&a, ListenerProtocol::Tcp, 80));
        // Same Service, other port: still distinct after shortening.
        assert_ne!(name_a, listener_name(&a, ListenerProtocol::Tcp, 81));
    }

    #[test]
    fn shortening_respects_character_boundaries() {
        let long = "é".repeat(200);
        let short = fit(long);
        assert!(short.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn ownership_needs_every_owner_tag() {
        let owner = owner_tags("prod", &svc("default", "web"));
        let mut tags = owner.clone();
        tags.push("something-else".into());
        assert!(is_owned(&tags, &owner));
        assert!(!is_owned(&owner[..2], &owner));
        let other_cluster = owner_tags("staging", &svc("default", "web"));
        assert!(!is_owned(&other_cluster, &owner));
        let other_service = owner_tags("prod", &svc("default", "api"));
        assert!(!is_owned(&other_service, &owner));
    }

    #[test]
    fn port_tags_round_trip() {
        let tags = port_tags("http", "web");
        assert_eq!(parse_port_tags(&tags), Some(("http".into(), "web".into())));
        assert_eq!(
            parse_port_tags(&port_tags("", "8080")),
            Some((String::new(), "8080".into()))
        );
        assert!(tags.iter().all(|t| is_port_tag(t)));
        assert_eq!(parse_port_tags(&tags[..1]), None);
    }

    #[test]
    fn the_uid_tag_is_only_on_the_load_balancer() {
        let s = svc("default", "web");
        let tags = load_balancer_tags("prod", &s, Some("1234"));
        assert!(tags.contains(&"svc-lbaas-uid:1234".to_string()));
        assert!(is_owned(&tags, &owner_tags("prod", &s)));
        assert_eq!(load_balancer_tags("prod", &s, None), owner_tags("prod", &s));
    }
}
