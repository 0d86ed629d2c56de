//! The simulated services' HTTP APIs over the state (`state.rs`): each
//! module one service's routes and handlers; the data and its rules live in
//! the service's own module one floor down.

pub mod barbican;
pub mod faults;
pub mod keystone;
pub mod l7;
pub mod neutron;
pub mod octavia;
pub mod security_groups;
