//! OpenStack access: credentials (`auth`), a Keystone session with catalog and
//! call accounting (`session`), the load-balancing cloud the reconciler
//! observes and changes (`cloud`), and the errors of this layer (`error`).
//! Hand-written over reqwest rather than `openstack_sdk`: four Keystone
//! methods and a few dozen calls did not justify ~6 more minutes of cold build
//! on these machines (see README).

pub mod auth;
pub mod cloud;
pub mod error;
pub mod path;
pub mod session;
pub mod wire;

pub use auth::Credentials;
pub use cloud::Cloud;
pub use error::OpenStackError;
pub use session::{Calls, ProgressEvent, Service, Session};
