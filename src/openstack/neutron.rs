//! Neutron's floating IP calls: one function per write.

use reqwest::Method;

use super::cloud::Cloud;
use super::error::OpenStackError;
use super::path::ApiPath;
use super::session::Calls;
use super::wire::{self, envelope};

impl Cloud {
    /// The external network a floating IP comes from: the one named, else
    /// the named subnet's, else the only `router:external` network.
    pub async fn floating_network(
        &self,
        calls: &Calls,
        network_id: &Option<String>,
        subnet_id: &Option<String>,
    ) -> Result<String, OpenStackError> {
        match (network_id, subnet_id) {
            (Some(n), _) => Ok(n.clone()),
            (None, Some(s)) => Ok(self.subnet(calls, s).await?.network_id),
            (None, None) => self.external_network(calls).await,
        }
    }

    /// Allocates a floating IP on `port`. Neutron takes no tags in a create:
    /// the ownership goes into `description`, set in the same call, so no
    /// crash can leave an allocated floating IP that no later run recognises.
    pub async fn create_floating_ip(
        &self,
        calls: &Calls,
        network_id: &str,
        port_id: &str,
        subnet_id: &Option<String>,
        description: &str,
    ) -> Result<Option<String>, OpenStackError> {
        let create = wire::FloatingIpCreate {
            floating_network_id: network_id,
            port_id,
            description,
            subnet_id: subnet_id.as_deref(),
        };
        let body = envelope("floatingip", &create).map_err(OpenStackError::Precondition)?;
        let created: Option<wire::Created> = self
            .net_call(calls, Method::POST, ApiPath::of("floatingips"), Some(&body))
            .await?;
        Ok(created.and_then(|c| c.id("floatingip")))
    }

    /// Binds a floating IP to `port_id`, or (`None`) unbinds it.
    pub async fn set_floating_ip_port(
        &self,
        calls: &Calls,
        id: &str,
        port_id: Option<&str>,
    ) -> Result<(), OpenStackError> {
        let body = envelope("floatingip", &wire::FloatingIpPort { port_id })
            .map_err(OpenStackError::Precondition)?;
        self.net_send(
            calls,
            Method::PUT,
            ApiPath::of("floatingips").id("floating IP id", id)?,
            Some(&body),
        )
        .await
    }

    /// Releases a floating IP; one already gone is success.
    pub async fn delete_floating_ip(&self, calls: &Calls, id: &str) -> Result<(), OpenStackError> {
        match self
            .net_send(
                calls,
                Method::DELETE,
                ApiPath::of("floatingips").id("floating IP id", id)?,
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
