//! svc-lbaas turns Kubernetes Services and their Endpoints into OpenStack load
//! balancers (Octavia, or the legacy Neutron LBaaS v2 API), following the
//! translation of kuryr-kubernetes: one load balancer per Service named
//! `namespace/name`, one listener and one pool per port named
//! `namespace/name:PROTOCOL:PORT`, the clusterIP as VIP, ready endpoints as
//! members, and a floating IP for `type: LoadBalancer`.
//!
//! # Layout
//! From the bottom of the import graph up (no module imports one above it,
//! and no two import each other):
//! - [`model`], [`k8s`], [`listener`], [`metrics`], [`tls`], [`sim`]: domain
//!   types, reading Kubernetes objects, the accept loop, counters, TLS, the
//!   simulated OpenStack (Keystone, Octavia, Neutron) for tests, demos and
//!   benchmarks.
//! - [`names`], [`config`]: the seed's names and ownership tags; settings (TOML
//!   with kuryr.conf names, `SVC_LBAAS_*` env overrides).
//! - [`translate`] and [`plan`]: the pure core. Kubernetes objects + settings ->
//!   desired load balancer; diff(desired, observed) -> ordered operations.
//! - [`openstack`]: the OpenStack client only (credentials, Keystone session,
//!   URLs, reads in `cloud`, one function per write in `octavia` and
//!   `neutron`, typed bodies and answers in `wire`); it knows nothing of plans.
//! - [`response`]: the PlanResponse answer.
//! - [`reconcile`]: the flow. The port to the cloud ([`reconcile::cloud`]:
//!   `LoadBalancing` writes, `Observing` reads, implemented by the client and
//!   by the in-memory cloud of `testing`), the one interpreter of
//!   operations ([`reconcile::execute`]), the pure wait ([`reconcile::wait`]),
//!   watch events decoded into work ([`reconcile::events`]), and the Reconciler: translate, observe, plan, execute, wait, answer.
//! - [`gateway`]: Gateway API on Octavia, the pure part (so far the matching
//!   rules: hostnames, path prefixes, precedence).
//! - [`selection`]: observation's selection rules (which load balancers,
//!   floating IPs and security groups a lookup holds), one copy for the
//!   client and every test double.
//! - `testing` (tests and benches only, the `test-util` feature): the
//!   in-memory cloud, held to the simulator by a contract test.
//! - [`error`]: the one error classification (problem type, title, HTTP
//!   status, gRPC code, retryable, metric label) and the RFC 9457 problem.
//! - [`input`]: pairing Services with their Endpoints / EndpointSlices.
//! - [`api`]: REST (axum) and gRPC (tonic) over the same decisions.
//! - [`startup`]: the composition root (settings, cloud, servers, shutdown).
//! - [`watch`]: `svc-lbaas watch`, the cluster watcher (kube-rs) that calls
//!   the REST API as any client would; nothing below imports it.
//! - [`cli`]: the command line (`plan`, `sim`, `serve`, `watch`, `openapi`).
#![forbid(unsafe_code)]

pub mod api;
pub mod certificate;
pub mod cli;
pub mod config;
pub mod echo;
pub mod error;
pub mod gateway;
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
pub mod selection;
pub mod sim;
pub mod startup;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tls;
pub mod translate;
pub mod watch;

#[cfg(test)]
mod fuzz_tests;
