//! What every Octavia object carries (id, name, statuses, tags, times) and
//! the provisioning statuses, shared by the load balancer tree
//! (`octavia.rs`) and its L7 policies and rules (`l7.rs`).

use serde_json::{Value, json};

use super::common::{new_id, timestamp};
use super::json::{ApiError, Body};
use super::keystone::PROJECT_ID;

pub const ACTIVE: &str = "ACTIVE";
pub const ERROR: &str = "ERROR";
pub(crate) const PENDING_CREATE: &str = "PENDING_CREATE";
pub(crate) const PENDING_UPDATE: &str = "PENDING_UPDATE";
pub(crate) const PENDING_DELETE: &str = "PENDING_DELETE";

#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) provisioning: &'static str,
    pub(crate) operating: &'static str,
    pub(crate) admin_state_up: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: Option<String>,
}

impl Meta {
    pub(crate) fn new(b: &Body<'_>) -> Result<Meta, ApiError> {
        Ok(Meta {
            id: new_id(),
            name: b.string("name")?.unwrap_or_default(),
            description: b.string("description")?.unwrap_or_default(),
            provisioning: PENDING_CREATE,
            operating: "OFFLINE",
            admin_state_up: b.boolean("admin_state_up")?.unwrap_or(true),
            tags: b.strings("tags")?.unwrap_or_default(),
            created_at: timestamp(),
            updated_at: None,
        })
    }

    pub(crate) fn update(&mut self, b: &Body<'_>) -> Result<(), ApiError> {
        if let Some(n) = b.string("name")? {
            self.name = n;
        }
        if let Some(d) = b.string("description")? {
            self.description = d;
        }
        if let Some(a) = b.boolean("admin_state_up")? {
            self.admin_state_up = a;
        }
        if let Some(t) = b.strings("tags")? {
            self.tags = t;
        }
        self.provisioning = PENDING_UPDATE;
        self.updated_at = Some(timestamp());
        Ok(())
    }

    pub(crate) fn fields(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description,
            "provisioning_status": self.provisioning, "operating_status": self.operating,
            "admin_state_up": self.admin_state_up, "tags": self.tags,
            "project_id": PROJECT_ID, "tenant_id": PROJECT_ID,
            "created_at": self.created_at, "updated_at": self.updated_at,
        })
    }
}

pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}
