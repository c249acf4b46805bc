//! `X-Forwarded-Client-Cert` as Envoy writes it: elements separated by commas, key=value pairs
//! within an element separated by semicolons, values optionally double-quoted (with `\"`
//! escapes) when they contain those separators, as a certificate Subject does.
//!
//! Istio's sidecars forward the header with `APPEND_FORWARD` and `Subject`, `URI` and `DNS`
//! details (istio/istio pilot/pkg/networking/util/proxy_headers.go), so the last element is
//! the hop the backend's own sidecar authenticated.

use std::fmt;

/// One element: what one proxy saw of its client's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub by: Vec<String>,
    pub hash: Option<String>,
    pub cert: Option<String>,
    pub chain: Option<String>,
    pub subject: Option<String>,
    pub uri: Vec<String>,
    pub dns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XfccError {
    #[error("unterminated quoted value at byte {0}")]
    UnterminatedQuote(usize),
    #[error("`{0}` is not a key=value pair")]
    NotAPair(String),
    #[error("unknown XFCC key `{0}`: expected By, Hash, Cert, Chain, Subject, URI or DNS")]
    UnknownKey(String),
    #[error("the header is empty")]
    Empty,
}

/// Parse a whole header value.
pub fn parse(header: &str) -> Result<Vec<Element>, XfccError> {
    let elements: Vec<Element> =
        split_unquoted(header, ',')?.into_iter().map(|e| parse_element(e.trim())).collect::<Result<_, _>>()?;
    if elements.is_empty() {
        return Err(XfccError::Empty);
    }
    Ok(elements)
}

fn parse_element(text: &str) -> Result<Element, XfccError> {
    let mut element = Element::default();
    for pair in split_unquoted(text, ';')? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, raw) = pair.split_once('=').ok_or_else(|| XfccError::NotAPair(pair.to_owned()))?;
        let value = unquote(raw.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "by" => element.by.push(value),
            "hash" => element.hash = Some(value),
            "cert" => element.cert = Some(value),
            "chain" => element.chain = Some(value),
            "subject" => element.subject = Some(value),
            "uri" => element.uri.push(value),
            "dns" => element.dns.push(value),
            _ => return Err(XfccError::UnknownKey(key.trim().to_owned())),
        }
    }
    Ok(element)
}

/// Split at `sep` outside double quotes; a backslash escapes the next character inside quotes.
fn split_unquoted(text: &str, sep: char) -> Result<Vec<&str>, XfccError> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped, mut quote_at) = (0, false, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                quote_at = i;
            }
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(XfccError::UnterminatedQuote(quote_at));
    }
    parts.push(&text[start..]);
    parts.retain(|p| !p.trim().is_empty());
    Ok(parts)
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else { return value.to_owned() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A workload identity, mesh-neutral: namespace and service account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service_account)
    }
}

impl Identity {
    /// `namespace/serviceaccount`, as scenarios write it.
    pub fn parse(text: &str) -> Option<Self> {
        let (namespace, service_account) = text.split_once('/')?;
        (!namespace.is_empty() && !service_account.is_empty() && !service_account.contains('/'))
            .then(|| Identity { namespace: namespace.to_owned(), service_account: service_account.to_owned() })
    }

    /// `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`, Istio's workload identity.
    pub fn from_spiffe(uri: &str) -> Option<Self> {
        let path = uri.strip_prefix("spiffe://")?.split_once('/')?.1;
        match path.split('/').collect::<Vec<_>>()[..] {
            ["ns", ns, "sa", sa] if !ns.is_empty() && !sa.is_empty() => {
                Some(Identity { namespace: ns.to_owned(), service_account: sa.to_owned() })
            }
            _ => None,
        }
    }

    /// `<sa>.<ns>.serviceaccount.identity.linkerd.<cluster-domain>`, Linkerd's `l5d-client-id`
    /// (linkerd/website features/access-logging.md).
    pub fn from_linkerd_client_id(id: &str) -> Option<Self> {
        let (names, rest) = id.split_once(".serviceaccount.identity.linkerd.")?;
        let (sa, ns) = names.split_once('.')?;
        (!sa.is_empty() && !ns.is_empty() && !ns.contains('.') && !rest.is_empty())
            .then(|| Identity { namespace: ns.to_owned(), service_account: sa.to_owned() })
    }
}

/// The identity of the last hop in an XFCC header: the client the backend's own proxy authenticated.
pub fn caller_identity(header: &str) -> Result<Option<Identity>, XfccError> {
    let elements = parse(header)?;
    Ok(elements.last().and_then(|e| e.uri.iter().find_map(|u| Identity::from_spiffe(u))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape Istio's sidecar produces for an inbound mTLS request (format of istio/istio
    // tests/integration/security/file_mounted_certs/p2p_mtls_test.go); values made up.
    const ISTIO: &str = "By=spiffe://cluster.local/ns/shop/sa/echo;Hash=4d1e1fbc5c1bd0a5e7b0c6a8c77c3f0a9e27c4d3a1f5b7e2c9d8a6b4f2e1c0d9;Subject=\"\";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway";

    #[test]
    fn parses_the_istio_form() {
        let elements = parse(ISTIO).unwrap();
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0].by, ["spiffe://cluster.local/ns/shop/sa/echo"]);
        assert_eq!(elements[0].subject.as_deref(), Some(""));
        assert_eq!(caller_identity(ISTIO).unwrap(), Identity::parse("kong/kong-gateway"));
    }

    #[test]
    fn quoted_subjects_keep_their_commas_semicolons_and_escapes() {
        let header = r#"By=spiffe://cluster.local/ns/a/sa/b;Subject="CN=kong,O=Kong\, Inc.;OU=\"gw\"";URI=spiffe://cluster.local/ns/kong/sa/kong-gateway;DNS=kong.kong.svc;DNS=kong"#;
        let e = &parse(header).unwrap()[0];
        assert_eq!(e.subject.as_deref(), Some(r#"CN=kong,O=Kong, Inc.;OU="gw""#));
        assert_eq!(e.dns, ["kong.kong.svc", "kong"]);
        assert_eq!(e.uri, ["spiffe://cluster.local/ns/kong/sa/kong-gateway"]);
    }

    #[test]
    fn the_last_element_is_the_nearest_hop() {
        let header = format!(
            "By=spiffe://cluster.local/ns/kong/sa/kong-gateway;URI=spiffe://cluster.local/ns/edge/sa/client, {ISTIO}"
        );
        let elements = parse(&header).unwrap();
        assert_eq!(elements.len(), 2);
        assert_eq!(caller_identity(&header).unwrap().unwrap().to_string(), "kong/kong-gateway");
    }

    #[test]
    fn cert_and_chain_are_kept_whole() {
        let e = &parse("Hash=ab;Cert=\"-----BEGIN%20CERTIFICATE-----%0A\";Chain=\"x,y\"").unwrap()[0];
        assert_eq!(e.cert.as_deref(), Some("-----BEGIN%20CERTIFICATE-----%0A"));
        assert_eq!(e.chain.as_deref(), Some("x,y"));
    }

    #[test]
    fn malformed_headers_are_errors_not_guesses() {
        assert_eq!(parse("URI=\"spiffe://x"), Err(XfccError::UnterminatedQuote(4)));
        assert_eq!(parse("URI"), Err(XfccError::NotAPair("URI".into())));
        assert_eq!(parse("Foo=bar"), Err(XfccError::UnknownKey("Foo".into())));
        assert_eq!(parse(" , "), Err(XfccError::Empty));
        // No URI: no identity, but not an error.
        assert_eq!(caller_identity("Hash=ab").unwrap(), None);
    }

    #[test]
    fn identities_map_from_each_mesh() {
        let kong = Identity::parse("kong/kong-gateway");
        assert_eq!(Identity::from_spiffe("spiffe://cluster.local/ns/kong/sa/kong-gateway"), kong);
        assert_eq!(Identity::from_spiffe("spiffe://example.org/ns/kong/sa/kong-gateway"), kong);
        assert_eq!(Identity::from_spiffe("spiffe://cluster.local/ns/kong"), None);
        assert_eq!(
            Identity::from_linkerd_client_id("kong-gateway.kong.serviceaccount.identity.linkerd.cluster.local"),
            kong
        );
        assert_eq!(Identity::from_linkerd_client_id("kong-gateway.kong.cluster.local"), None);
        assert_eq!(Identity::parse("kong"), None);
    }
}
