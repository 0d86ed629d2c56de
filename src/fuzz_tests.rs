//! Properties over hostile input: whatever a request body holds, decoding
//! it, translating it and planning it end in a value or an error naming a
//! field, never a panic; and every error that names a field names one of
//! the request. Inputs are JSON trees shaped like Services and their
//! Endpoints / EndpointSlices, with values chosen to hurt (empty, huge,
//! negative, `../..`, wrong types, nested).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::model::Observed;
use crate::plan::{self, Capabilities};
use crate::reconcile::ApplyInput;
use crate::translate;

const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "annotations",
    "labels",
    "spec",
    "type",
    "ports",
    "port",
    "targetPort",
    "nodePort",
    "protocol",
    "clusterIP",
    "clusterIPs",
    "ipFamilies",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "sessionAffinity",
    "subsets",
    "addresses",
    "notReadyAddresses",
    "ip",
    "endpoints",
    "conditions",
    "ready",
    "addressType",
    "items",
    "loadbalancer.openstack.org/subnet-id",
    "loadbalancer.openstack.org/load-balancer-id",
    "loadbalancer.openstack.org/availability-zone",
    "loadbalancer.openstack.org/health-monitor-delay",
    "loadbalancer.openstack.org/proxy-protocol",
    "loadbalancer.openstack.org/floating-subnet",
    "loadbalancer.openstack.org/floating-subnet-tags",
    "svc-lbaas.io/listener-protocol",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("../../../v3/auth/tokens".to_string()),
        Just("x?fields=id#".to_string()),
        Just("LoadBalancer".to_string()),
        Just("ClusterIP".to_string()),
        Just("None".to_string()),
        Just("SCTP".to_string()),
        Just("UDP".to_string()),
        Just("IPv6".to_string()),
        Just("10.2.0.42".to_string()),
        Just("fd00::1".to_string()),
        Just("10.0.0.0/33".to_string()),
        Just("8c8e0a3c-4c0f-4b3c-9d7e-0d3b5e6f7a81".to_string()),
        Just("web".to_string()),
        Just("\u{0}\u{7f}é漢".to_string()),
        "[a-z0-9./:-]{0,20}",
        (0usize..300).prop_map(|n| "x".repeat(n * 7)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(65_536),
            Just(i64::MAX),
            Just(i64::MIN),
            1i64..70_000
        ]
        .prop_map(Value::from),
        Just(json!(1.5e300)),
        hostile_string().prop_map(Value::from),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(
                |entries| {
                    let map: Map<String, Value> = entries
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                    Value::Object(map)
                }
            ),
        ]
    })
}

/// Where a mutation lands: fields of a Service and of its backends.
const PLACES: &[&str] = &[
    "/service/metadata/name",
    "/service/metadata/namespace",
    "/service/metadata/annotations/loadbalancer.openstack.org~1subnet-id",
    "/service/metadata/annotations/loadbalancer.openstack.org~1load-balancer-id",
    "/service/metadata/annotations/loadbalancer.openstack.org~1availability-zone",
    "/service/metadata/annotations/loadbalancer.openstack.org~1health-monitor-delay",
    "/service/metadata/annotations/loadbalancer.openstack.org~1enable-health-monitor",
    "/service/metadata/annotations/loadbalancer.openstack.org~1proxy-protocol",
    "/service/metadata/annotations/loadbalancer.openstack.org~1floating-subnet",
    "/service/metadata/annotations/loadbalancer.openstack.org~1floating-subnet-tags",
    "/service/metadata/annotations/svc-lbaas.io~1listener-protocol",
    "/service/spec/type",
    "/service/spec/clusterIP",
    "/service/spec/clusterIPs",
    "/service/spec/ipFamilies",
    "/service/spec/loadBalancerIP",
    "/service/spec/loadBalancerSourceRanges",
    "/service/spec/loadBalancerClass",
    "/service/spec/sessionAffinity",
    "/service/spec/ports/0/name",
    "/service/spec/ports/0/port",
    "/service/spec/ports/0/protocol",
    "/service/spec/ports/0/targetPort",
    "/service/spec/ports/0/nodePort",
    "/service/spec/ports/1/name",
    "/service/spec/ports/1/port",
    "/service/spec/ports/1/protocol",
    "/service/spec/ports/1/targetPort",
    "/endpoints/subsets/0/addresses/0/ip",
    "/endpoints/subsets/0/addresses/1/ip",
    "/endpoints/subsets/0/ports/0/name",
    "/endpoints/subsets/0/ports/0/port",
    "/endpoints/subsets/0/ports/0/protocol",
    "/endpointSlices/0/addressType",
    "/endpointSlices/0/endpoints/0/addresses/0",
    "/endpointSlices/0/endpoints/0/conditions/ready",
    "/endpointSlices/0/ports/0/name",
    "/endpointSlices/0/ports/0/port",
];

/// Sets the value at a JSON pointer, making the objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    for raw in pointer.trim_start_matches('/').split('/') {
        let key = raw.replace("~1", "/").replace("~0", "~");
        if let Ok(i) = key.parse::<usize>()
            && let Value::Array(items) = at
        {
            while items.len() <= i {
                items.push(json!({}));
            }
            at = &mut items[i];
            continue;
        }
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .map(|m| m.entry(key).or_insert(Value::Null))
            .unwrap_or_else(|| unreachable!("made an object just above"));
    }
    *at = value;
}

/// A Service-shaped body: a valid skeleton with a few fields replaced by
/// hostile values (mostly leaves, sometimes whole trees).
fn request() -> impl Strategy<Value = Value> {
    let mutation = (
        proptest::sample::select(PLACES),
        prop_oneof![4 => leaf(), 1 => tree()],
    );
    (proptest::collection::vec(mutation, 0..5), any::<bool>()).prop_map(|(mutations, slices)| {
        let mut body = json!({"service": {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                          {"name": "dns", "port": 53, "protocol": "UDP"}]}}});
        if slices {
            body["endpointSlices"] = json!([{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.1.0.5"]}]}]);
        } else {
            body["endpoints"] = json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "web", "namespace": "shop"},
                "subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
                    "ports": [{"name": "http", "port": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}]});
        }
        for (place, value) in mutations {
            if place.starts_with("/endpointSlices") == slices || place.starts_with("/service") {
                set(&mut body, place, value);
            }
        }
        body
    })
}

/// The paths a problem may name: fields of the request.
fn names_the_request(field: &str) -> bool {
    ["service", "endpoints", "endpointSlices"]
        .iter()
        .any(|root| {
            field == *root
                || field.starts_with(&format!("{root}."))
                || field.starts_with(&format!("{root}["))
        })
}

fn settings() -> Settings {
    let mut s = Settings::default();
    s.neutron_defaults.service_subnet = Some("d6438a81-22fa-4a88-9b05-c4723662ef36".into());
    s.neutron_defaults.pod_subnet = Some("e0a888ab-9915-4685-a600-bffe240dc58b".into());
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn whole_trees_anywhere_decode_or_name_a_field(body in (tree(), tree(), tree())
        .prop_map(|(a, b, c)| json!({"service": a, "endpoints": b, "endpointSlices": c}))) {
        if let Err(e) = ApplyInput::from_json(body)
            && let Some(f) = &e.field
        {
            prop_assert!(names_the_request(f), "{f}");
        }
    }

    #[test]
    fn any_request_decodes_translates_and_plans_or_names_a_field(body in request()) {
        match ApplyInput::from_json(body) {
            Err(e) => {
                if let Some(f) = &e.field {
                    prop_assert!(names_the_request(f), "{f}");
                }
            }
            Ok(input) => {
                let backends = (input.endpoints.is_some() || input.endpoint_slices.is_some())
                    .then(|| translate::Backends {
                        endpoints: input.endpoints.as_ref(),
                        endpoint_slices: input.endpoint_slices.as_deref().unwrap_or(&[]),
                    });
                match translate::translate(&settings(), &input.service, backends) {
                    Err(e) => prop_assert!(names_the_request(&e.field_path()), "{}", e.field_path()),
                    Ok(t) => {
                        for caps in [Capabilities::OCTAVIA, Capabilities::NEUTRON_LBAAS] {
                            let _ = plan::plan(&t, &Observed::default(), caps);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn any_text_is_read_as_objects_or_refused(text in prop_oneof![
        tree().prop_map(|v| v.to_string()),
        tree().prop_map(|v| format!("{{\"kind\": \"ServiceList\", \"apiVersion\": \"v1\", \"items\": [{v}]}}")),
        "[ -~\n]{0,200}",
    ]) {
        let _ = crate::k8s::read("fuzz", &text);
    }
}
