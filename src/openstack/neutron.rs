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

    /// Allocates a floating IP on `port`, answered as Neutron made it. Neutron takes no tags in a create:
    /// the ownership goes into `description`, set in the same call, so no
    /// crash can leave an allocated floating IP that no later run recognises.
    pub async fn create_floating_ip(
        &self,
        calls: &Calls,
        network_id: &str,
        port_id: &str,
        subnet_id: &Option<String>,
        description: &str,
    ) -> Result<Option<crate::model::ObservedFloatingIp>, OpenStackError> {
        let create = wire::FloatingIpCreate {
            floating_network_id: network_id,
            port_id,
            description,
            subnet_id: subnet_id.as_deref(),
        };
        let body = envelope("floatingip", &create).map_err(OpenStackError::Precondition)?;
        let created: Option<wire::OneFloatingIp> = self
            .net_call(calls, Method::POST, ApiPath::of("floatingips"), Some(&body))
            .await?;
        Ok(created.and_then(|c| super::observe::parse_fip(&c.floatingip)))
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

/// The VIP security group (source ranges where `allowed_cidrs` is not the
/// way): Neutron's security groups and their rules.
impl Cloud {
    /// The security groups named `name`, with their ingress rules.
    pub async fn security_groups(
        &self,
        calls: &Calls,
        name: &str,
    ) -> Result<Vec<crate::model::ObservedSecurityGroup>, OpenStackError> {
        let path = ApiPath::of("security-groups").query(&[("name", name)]);
        let list: Option<wire::SecurityGroups> =
            self.net_call(calls, Method::GET, path, None).await?;
        Ok(list
            .unwrap_or_default()
            .security_groups
            .iter()
            .filter_map(super::observe::parse_security_group)
            .collect())
    }

    /// Creates the group (its ownership in `description`, as a floating
    /// IP's) and its rules in one bulk call; answers its id.
    pub async fn create_security_group(
        &self,
        calls: &Calls,
        group: &crate::model::VipSecurityGroup,
        description: &str,
    ) -> Result<String, OpenStackError> {
        let body = envelope(
            "security_group",
            &serde_json::json!({"name": group.name, "description": description}),
        )
        .map_err(OpenStackError::Precondition)?;
        let created: Option<wire::Created> = self
            .net_call(
                calls,
                Method::POST,
                ApiPath::of("security-groups"),
                Some(&body),
            )
            .await?;
        let id = created
            .and_then(|c| c.id("security_group"))
            .ok_or_else(|| OpenStackError::Precondition("a security group without an id".into()))?;
        let rules: Vec<_> = group.rules.iter().cloned().collect();
        self.add_security_group_rules(calls, &id, &rules).await?;
        Ok(id)
    }

    pub async fn add_security_group_rules(
        &self,
        calls: &Calls,
        id: &str,
        rules: &[crate::model::SecurityGroupRule],
    ) -> Result<(), OpenStackError> {
        if rules.is_empty() {
            return Ok(());
        }
        let rules: Vec<wire::SecurityGroupRuleCreate> = rules
            .iter()
            .map(|r| wire::SecurityGroupRuleCreate {
                security_group_id: id,
                direction: "ingress",
                ethertype: r.ethertype(),
                protocol: r.protocol,
                port_range_min: r.port,
                port_range_max: r.port,
                remote_ip_prefix: r.remote.to_string(),
            })
            .collect();
        let body = serde_json::json!({ "security_group_rules": rules });
        self.net_send(
            calls,
            Method::POST,
            ApiPath::of("security-group-rules"),
            Some(&body),
        )
        .await
    }

    pub async fn delete_security_group_rule(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<(), OpenStackError> {
        let path = ApiPath::of("security-group-rules").id("security group rule id", id)?;
        match self.net_send(calls, Method::DELETE, path, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Deletes the group; one already gone is success.
    pub async fn delete_security_group(
        &self,
        calls: &Calls,
        id: &str,
    ) -> Result<(), OpenStackError> {
        let path = ApiPath::of("security-groups").id("security group id", id)?;
        match self.net_send(calls, Method::DELETE, path, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}
