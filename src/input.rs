//! Pairing decoded Kubernetes objects into Service inputs: each Service with
//! its Endpoints (by namespace/name) and EndpointSlices (by label), for the
//! offline `plan` command and `/v1/sync`.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::error::{Kind, Problem};
use crate::k8s::{Located, Object};

/// The label an EndpointSlice carries naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service from the files with its backends, in input order.
pub struct ServiceInput {
    pub origin: String,
    pub service: Service,
    pub endpoints: Option<(String, Endpoints)>,
    pub endpoint_slices: Vec<(String, EndpointSlice)>,
}

/// An object's namespace, `default` when it has none.
pub fn namespace_of(ns: &Option<String>) -> String {
    ns.clone().unwrap_or_else(|| "default".into())
}

/// Pairs Services with their Endpoints (by namespace/name) and EndpointSlices
/// (by the `kubernetes.io/service-name` label). Notes what matched nothing.
pub fn pair(
    objects: Vec<Located>,
    notes: &mut Vec<String>,
) -> Result<Vec<ServiceInput>, Box<Problem>> {
    let mut services: Vec<ServiceInput> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut endpoints = Vec::new();
    let mut slices = Vec::new();
    for Located { origin, object } in objects {
        match object {
            Object::Service(s) => {
                let key = (
                    namespace_of(&s.metadata.namespace),
                    s.metadata.name.clone().unwrap_or_default(),
                );
                if let Some(&i) = index.get(&key) {
                    return Err(Box::new(
                        Problem::of(
                            Kind::DuplicateObject,
                            format!(
                                "Service {}/{} appears twice: in {} and in {origin}",
                                key.0, key.1, services[i].origin
                            ),
                        )
                        .with_file(origin),
                    ));
                }
                index.insert(key, services.len());
                services.push(ServiceInput {
                    origin,
                    service: *s,
                    endpoints: None,
                    endpoint_slices: Vec::new(),
                });
            }
            Object::Endpoints(e) => endpoints.push((origin, *e)),
            Object::EndpointSlice(s) => slices.push((origin, *s)),
            // Read by the Gateways' plan (cli.rs), not paired here.
            Object::ForGateways(_) => {}
        }
    }
    for (origin, e) in endpoints {
        let key = (
            namespace_of(&e.metadata.namespace),
            e.metadata.name.clone().unwrap_or_default(),
        );
        match index.get(&key) {
            Some(&i) if services[i].endpoints.is_some() => {
                return Err(Box::new(
                    Problem::of(
                        Kind::DuplicateObject,
                        format!("Endpoints {}/{} appear twice", key.0, key.1),
                    )
                    .with_file(origin),
                ));
            }
            Some(&i) => services[i].endpoints = Some((origin, e)),
            None => notes.push(format!(
                "{origin}: Endpoints {}/{} match no Service in the files",
                key.0, key.1
            )),
        }
    }
    for (origin, s) in slices {
        let service = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned();
        let ns = namespace_of(&s.metadata.namespace);
        match service.and_then(|name| index.get(&(ns.clone(), name))) {
            Some(&i) => services[i].endpoint_slices.push((origin, s)),
            None => notes.push(format!(
                "{origin}: EndpointSlice {ns}/{} matches no Service in the files (label {SERVICE_NAME_LABEL})",
                s.metadata.name.as_deref().unwrap_or("")
            )),
        }
    }
    Ok(services)
}
