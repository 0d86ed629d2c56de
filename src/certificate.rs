//! Kubernetes TLS Secrets (`kubernetes.io/tls`) as the certificates of
//! TERMINATED_HTTPS listeners: read, checked (a certificate valid now, a
//! private key that is its key) and reduced to what Barbican stores. Pure:
//! the time is given. The material never reaches a log or an answer: its
//! `Debug` names the Secret and the digest only.

use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Secret;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;

/// A Secret's certificate chain and key, as PEM, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The Secret's name (the Service's namespace).
    pub secret: String,
    /// The leaf certificate, PEM.
    pub certificate: String,
    /// The rest of the chain, PEM (`None`: the leaf alone).
    pub intermediates: Option<String>,
    /// The private key, PEM, as the Secret holds it.
    pub private_key: String,
    /// The first 16 hex digits of the SHA-256 of chain and key: names the
    /// Barbican objects, so a changed Secret makes new ones.
    pub digest: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("secret", &self.secret)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// The Secrets an apply carries (`tlsSecrets`); `Debug` names them only.
#[derive(Clone, Default)]
pub struct TlsSecrets(pub Vec<Secret>);

impl std::fmt::Debug for TlsSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .0
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap_or(""))
            .collect();
        f.debug_tuple("TlsSecrets").field(&names).finish()
    }
}

/// Why a Secret cannot be a listener's certificate (says nothing of its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The Secret's `key` (from `data`, or `stringData` as a client may send it).
fn field(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.0.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.as_bytes().to_vec())
}

/// Reads and checks a `kubernetes.io/tls` Secret at `now`.
pub fn read(secret: &Secret, now: SystemTime) -> Result<TlsMaterial, Refused> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    if secret.type_.as_deref() != Some("kubernetes.io/tls") {
        // A Secret's fields are never quoted back, its type included.
        return Err(Refused("its type is not kubernetes.io/tls".into()));
    }
    let (Some(chain), Some(key)) = (field(secret, "tls.crt"), field(secret, "tls.key")) else {
        return Err(Refused("needs data tls.crt and tls.key".into()));
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<_, _>>()
        .map_err(|_| Refused("tls.crt is not PEM certificates".into()))?;
    let Some(leaf) = certs.first() else {
        return Err(Refused("tls.crt holds no certificate".into()));
    };
    let private_key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|_| Refused("tls.key is not a PEM private key".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|_| Refused("tls.crt's first certificate cannot be parsed".into()))?;
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let validity = parsed.validity();
    if now_s < validity.not_before.timestamp() {
        return Err(Refused(format!(
            "the certificate is not valid before {}",
            validity.not_before
        )));
    }
    if now_s > validity.not_after.timestamp() {
        return Err(Refused(format!(
            "the certificate expired at {}",
            validity.not_after
        )));
    }
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&private_key)
        .map_err(|_| Refused("tls.key is a key of an unsupported type".into()))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing)
        .keys_match()
        .map_err(|_| Refused("tls.key is not the certificate's key".into()))?;
    let text =
        String::from_utf8(chain.clone()).map_err(|_| Refused("tls.crt is not PEM text".into()))?;
    let blocks = certificate_blocks(&text);
    let (Some(first), rest) = (blocks.first(), blocks.get(1..).unwrap_or_default()) else {
        return Err(Refused("tls.crt holds no certificate".into()));
    };
    let intermediates: String = rest.concat();
    let mut hash = sha2::Sha256::new();
    hash.update(&chain);
    hash.update(&key);
    let digest: String = hash
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(TlsMaterial {
        secret: name,
        certificate: first.clone(),
        intermediates: (!intermediates.is_empty()).then_some(intermediates),
        private_key: String::from_utf8(key)
            .map_err(|_| Refused("tls.key is not PEM text".into()))?,
        digest,
    })
}

/// The PEM certificate blocks of `text`, each with its lines, in order.
fn certificate_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        blocks.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/tls/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("test TLS material")
    }

    fn secret(kind: &str, crt: &str, key: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-tls", "namespace": "shop"},
            "type": kind,
            "stringData": {"tls.crt": crt, "tls.key": key},
        }))
        .expect("a Secret")
    }

    fn at(year: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs((year - 1970) * 31_557_600)
    }

    #[test]
    fn a_valid_secret_becomes_pem_material_named_by_its_digest() {
        let s = secret(
            "kubernetes.io/tls",
            &fixture("cert.pem"),
            &fixture("key.pem"),
        );
        let m = read(&s, at(2030)).expect("valid");
        assert_eq!(m.secret, "web-tls");
        assert!(m.certificate.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(m.intermediates, None);
        assert_eq!(m.digest.len(), 16);
        // Debug shows no key and no certificate.
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("BEGIN") && shown.contains("web-tls"),
            "{shown}"
        );
        // Another key: another digest.
        let chained = format!("{}{}", fixture("cert.pem"), fixture("ca.pem"));
        let m2 = read(
            &secret("kubernetes.io/tls", &chained, &fixture("key.pem")),
            at(2030),
        )
        .expect("a chain");
        assert_ne!(m2.digest, m.digest);
        assert!(
            m2.intermediates
                .is_some_and(|i| i.contains("BEGIN CERTIFICATE"))
        );
    }

    #[test]
    fn what_cannot_be_a_listeners_certificate_is_refused_saying_why() {
        let (crt, key) = (fixture("cert.pem"), fixture("key.pem"));
        let cases = [
            (secret("Opaque", &crt, &key), "not kubernetes.io/tls"),
            (
                secret("kubernetes.io/tls", "junk", &key),
                "holds no certificate",
            ),
            (
                secret("kubernetes.io/tls", &crt, "junk"),
                "not a PEM private key",
            ),
            // The CA's certificate with the leaf's key.
            (
                secret("kubernetes.io/tls", &fixture("ca.pem"), &key),
                "not the certificate's key",
            ),
        ];
        for (s, why) in cases {
            let e = read(&s, at(2030)).expect_err(why);
            assert!(e.0.contains(why), "{e} / {why}");
            assert!(!e.0.contains("BEGIN"));
        }
        // Before and after its validity.
        let s = secret("kubernetes.io/tls", &crt, &key);
        assert!(
            read(&s, at(1990))
                .unwrap_err()
                .0
                .contains("not valid before")
        );
        assert!(read(&s, at(2200)).unwrap_err().0.contains("expired"));
    }
}
