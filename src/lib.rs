//! svc-lbaas turns Kubernetes Services and their Endpoints into OpenStack load
//! balancers (Octavia, or the legacy Neutron LBaaS v2 API), following the
//! translation of kuryr-kubernetes: one load balancer per Service named
//! `namespace/name`, one listener and one pool per port named
//! `namespace/name:PROTOCOL:PORT`, the clusterIP as VIP, ready endpoints as
//! members, and a floating IP for `type: LoadBalancer`.
//!
//! # Layout
//! - [`config`]: settings (TOML with kuryr.conf names, `SVC_LBAAS_*` env overrides).
//! - [`k8s`]: reading Service / Endpoints / EndpointSlice objects from JSON or YAML.
//! - [`model`]: domain types: the desired load balancer and what OpenStack reports.
//! - [`names`]: the seed's names and the ownership tags, within Octavia's limits.
//! - [`translate`]: pure: Kubernetes objects + settings -> desired load balancer.
//! - [`plan`]: pure: diff(desired, observed) -> ordered operations;
//!   [`plan::memory`] applies plans in memory, as OpenStack would.
//! - [`response`]: the JSON answers (PlanResponse) of the CLI and the APIs.
//! - [`problem`]: RFC 9457 problem details, the one error shape users see.
//! - [`openstack`]: credentials, Keystone session, the cloud the reconciler observes and changes.
//! - [`reconcile`]: observe, plan, execute, wait: the stateless reconciler.
//! - [`api`]: the REST API (axum) and the mapping of errors to problems.
//! - [`metrics`]: Prometheus counters served at `/metrics`.
//! - [`tls`]: the listener's TLS and the CA bundle trusted for the cloud.
//! - [`listener`]: the REST and gRPC accept loop, plain or TLS, with its timeouts and cap.
//! - [`cli`]: `svc-lbaas plan`, `sim` and `serve`.
//! - [`sim`]: the simulated OpenStack (Keystone, Octavia, Neutron) for tests, demos
//!   and benchmarks; `svc-lbaas sim` runs it alone.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod error;
pub mod input;
pub mod k8s;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod names;
pub mod openstack;
pub mod plan;
pub mod reconcile;
pub mod response;
pub mod sim;
pub mod startup;
pub mod tls;
pub mod translate;

#[cfg(test)]
mod fuzz_tests;
