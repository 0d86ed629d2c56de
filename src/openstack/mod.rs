//! The OpenStack client: credentials (`auth`), a Keystone session with
//! catalog and call accounting (`session`), the reads that observe a
//! Service's objects (`cloud`), one function per write (`octavia`,
//! `neutron`), TLS certificates in Barbican (`barbican`), URLs (`path`), answer types (`wire`) and the errors of this
//! layer (`error`). It knows only what to read and write, never why.
//! Hand-written over reqwest rather than `openstack_sdk`: four Keystone
//! methods and a few dozen calls did not justify ~6 more minutes of cold build
//! on these machines (see README).

pub mod auth;
pub mod barbican;
pub mod cloud;
pub mod error;
pub mod gateway;
pub mod neutron;
pub mod observe;
pub mod octavia;
pub mod path;
pub mod session;
pub mod wire;

pub use auth::Credentials;
pub use cloud::Cloud;
pub use error::OpenStackError;
pub use session::{Calls, Service, Session};
