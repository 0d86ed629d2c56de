//! Certificates: the TERMINATED_HTTPS listeners' certificate stored from a
//! Kubernetes TLS Secret (Barbican), and the containers no listener uses any
//! more deleted.

use super::*;
use crate::model::{Observed, Translation};
use crate::names;
use crate::translate;
use cloud::Calls;

impl Reconciler {
    /// The TERMINATED_HTTPS listeners' certificate from a Kubernetes TLS
    /// Secret: the Barbican container made from it earlier (found by name and
    /// digest), or, with `write`, one made now; the listeners' pending
    /// reference becomes it. Answers the container's reference (`None`:
    /// no Secret, or a plan that would make one).
    pub(super) async fn certificate(
        &self,
        calls: &Calls,
        input: &ApplyInput,
        translation: &mut Translation,
        write: bool,
    ) -> Result<Option<String>, ReconcileError> {
        let Translation::LoadBalancer(d) = translation else {
            return Ok(None);
        };
        let pending = d.listeners.iter().any(|l| {
            l.tls.as_ref().is_some_and(|t| {
                t.default_tls_container_ref
                    .starts_with(names::PENDING_CERTIFICATE)
            })
        });
        // No listener to serve it (UDP ports only, say): nothing to store.
        if (d.tls_secret.is_none() && d.tls_secret_kept.is_none()) || !pending {
            return Ok(None);
        }
        let name = names::certificate_name(&d.owner_tags);
        let mut stored = self.cloud.certificates(calls, &name).await?;
        let found = match (&d.tls_secret, &d.tls_secret_kept) {
            (Some(m), _) => stored
                .iter()
                .find(|c| c.digest.as_deref() == Some(m.digest.as_str()))
                .map(|c| c.container_ref.clone()),
            // The Secret was not sent: the newest whole container made from it.
            _ => {
                stored.retain(|c| c.digest.is_some());
                stored.sort_by(|a, b| a.created.cmp(&b.created));
                stored.last().map(|c| c.container_ref.clone())
            }
        };
        let reference = match (found, &d.tls_secret) {
            (Some(r), _) => r,
            (None, Some(m)) if write => {
                let r = self.cloud.store_certificate(calls, &name, m).await?;
                tracing::info!(service = %d.service, secret = %m.secret, container = %r, "stored the TLS Secret's certificate in Barbican");
                r
            }
            (None, Some(m)) => {
                d.notes.push(format!(
                    "the certificate of Secret {} would be stored in Barbican (a certificate container named {name:?})",
                    m.secret
                ));
                return Ok(None);
            }
            // The Secret sent earlier (unnamed) made none: no certificate,
            // the https ports stay TLS passthrough.
            (None, None) if d.tls_secret_kept.as_deref() == Some("") => {
                let tls = translate::TlsInput {
                    secrets: Some(&[]),
                    now: std::time::SystemTime::now(),
                };
                *translation = self.translate_members(calls, input, tls, true).await?;
                return Ok(None);
            }
            (None, None) => {
                return Err(crate::translate::TranslateError::annotation(
                    translate::annotation::DEFAULT_TLS_SECRET,
                    format!(
                        "Secret {} is not in the request (tlsSecrets) and no certificate was stored from it yet",
                        d.tls_secret_kept.as_deref().unwrap_or_default()
                    ),
                )
                .into());
            }
        };
        for l in &mut d.listeners {
            if let Some(t) = &mut l.tls
                && t.default_tls_container_ref
                    .starts_with(names::PENDING_CERTIFICATE)
            {
                t.default_tls_container_ref = reference.clone();
            }
        }
        Ok(Some(reference))
    }

    /// Deletes the Service's certificate containers that no listener in
    /// `observed` uses and that are not `keep`. A failure is logged: the
    /// next apply or delete of the Service tries again.
    pub(super) async fn collect_certificates(
        &self,
        calls: &Calls,
        owner: &[String],
        observed: &Observed,
        keep: Option<&str>,
    ) {
        let name = names::certificate_name(owner);
        let stored = match self.cloud.certificates(calls, &name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(certificates = %name, error = %e, "could not list the Service's certificate containers");
                return;
            }
        };
        for c in stored {
            let used = Some(c.container_ref.as_str()) == keep
                || observed_certificates(observed).any(|r| r == c.container_ref);
            if used {
                continue;
            }
            match self.cloud.delete_certificate(calls, &c.container_ref).await {
                Ok(()) => {
                    tracing::info!(container = %c.container_ref, "deleted a certificate container no listener uses")
                }
                Err(e) => {
                    tracing::warn!(container = %c.container_ref, error = %e, "could not delete a certificate container")
                }
            }
        }
    }
}

/// The certificate references the observed listeners use.
pub(super) fn observed_certificates(observed: &Observed) -> impl Iterator<Item = &str> {
    observed
        .load_balancers
        .iter()
        .flat_map(|lb| &lb.listeners)
        .flat_map(|l| {
            l.default_tls_container_ref
                .iter()
                .chain(&l.sni_container_refs)
        })
        .map(String::as_str)
}

/// The certificate references the translation's listeners want.
pub(super) fn desired_certificates(translation: &Translation) -> impl Iterator<Item = &str> {
    let listeners = match translation {
        Translation::LoadBalancer(d) => d.listeners.as_slice(),
        Translation::Skip { .. } => &[],
    };
    listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|t| std::iter::once(&t.default_tls_container_ref).chain(&t.sni_container_refs))
        .map(String::as_str)
}
