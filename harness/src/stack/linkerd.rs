//! Linkerd's identity for a Helm install: a trust anchor and an issuer, both ECDSA P-256, the
//! issuer signed by the anchor (linkerd/website 2-edge tasks/generate-certificates.md: a root CA
//! and an intermediate CA; the Helm chart takes `identityTrustAnchorsPEM` and
//! `identity.issuer.tls.{crtPEM,keyPEM}`, tasks/install-helm.md).

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

/// How long the anchor and issuer live: a test cluster lives minutes, but a kept cluster
/// (`--keep`) must not break overnight. The issuer expires first, as in Linkerd's examples.
pub const ANCHOR_VALIDITY: Duration = Duration::days(3650);
pub const ISSUER_VALIDITY: Duration = Duration::days(365);

/// PEM material for the linkerd-control-plane chart.
#[derive(Clone)]
pub struct Identity {
    pub trust_anchor_pem: String,
    pub issuer_cert_pem: String,
    /// The issuer's private key. Never logged; written only into the run directory.
    pub issuer_key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("trust_anchor_pem", &"…")
            .field("issuer_cert_pem", &"…")
            .field("issuer_key_pem", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot generate Linkerd's identity certificates: {0}")]
pub struct CertError(#[from] rcgen::Error);

fn ca_params(
    common_name: &str,
    path_len: u8,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A little slack for clock skew between this machine and the cluster's nodes.
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + validity;
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Generate a fresh anchor and issuer, valid from `now`.
pub fn generate(now: OffsetDateTime) -> Result<Identity, CertError> {
    let anchor_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    // Linkerd's docs name them root.linkerd.cluster.local and identity.linkerd.cluster.local.
    let anchor_params = ca_params("root.linkerd.cluster.local", 1, now, ANCHOR_VALIDITY)?;
    let anchor = anchor_params.self_signed(&anchor_key)?;
    let issuer_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let issuer_params = ca_params("identity.linkerd.cluster.local", 0, now, ISSUER_VALIDITY)?;
    let issuer = issuer_params.signed_by(&issuer_key, &Issuer::from_params(&anchor_params, &anchor_key))?;
    Ok(Identity {
        trust_anchor_pem: anchor.pem(),
        issuer_cert_pem: issuer.pem(),
        issuer_key_pem: issuer_key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use x509_parser::pem::parse_x509_pem;
    use x509_parser::prelude::*;

    use super::*;

    fn parsed(pem: &str) -> Vec<u8> {
        parse_x509_pem(pem.as_bytes()).expect("PEM").1.contents
    }

    #[test]
    fn anchor_and_issuer_are_p256_cas_and_the_issuer_verifies_against_the_anchor() {
        let now = OffsetDateTime::now_utc();
        let id = generate(now).unwrap();
        let (anchor_der, issuer_der) = (parsed(&id.trust_anchor_pem), parsed(&id.issuer_cert_pem));
        let (_, anchor) = X509Certificate::from_der(&anchor_der).unwrap();
        let (_, issuer) = X509Certificate::from_der(&issuer_der).unwrap();
        for cert in [&anchor, &issuer] {
            // id-ecPublicKey with the prime256v1 curve.
            let spki = cert.public_key();
            assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
            assert_eq!(curve.as_deref(), Some("1.2.840.10045.3.1.7"));
            let bc = cert.basic_constraints().unwrap().expect("basic constraints").value;
            assert!(bc.ca, "{}", cert.subject());
            let ku = cert.key_usage().unwrap().expect("key usage").value;
            assert!(ku.key_cert_sign());
        }
        assert_eq!(issuer.issuer(), anchor.subject());
        issuer.verify_signature(Some(anchor.public_key())).expect("the issuer is signed by the anchor");
        anchor.verify_signature(None).expect("the anchor is self-signed");
        // Validity: started (with slack), the issuer ends before the anchor.
        let ts = |t: ASN1Time| t.timestamp();
        let now_ts = now.unix_timestamp();
        assert!(ts(issuer.validity().not_before) <= now_ts && ts(anchor.validity().not_before) <= now_ts);
        assert_eq!(ts(issuer.validity().not_after) - now_ts, ISSUER_VALIDITY.whole_seconds());
        assert!(ts(issuer.validity().not_after) < ts(anchor.validity().not_after));
        assert!(id.issuer_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{id:?}").contains("PRIVATE"));
    }

    #[test]
    fn every_run_gets_new_keys() {
        let now = OffsetDateTime::now_utc();
        assert_ne!(generate(now).unwrap().issuer_key_pem, generate(now).unwrap().issuer_key_pem);
    }
}
