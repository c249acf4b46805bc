//! Tokens for Kong's `jwt` plugin: HS256, the credential's key in `iss` (the plugin's default
//! `key_claim_name`), `exp` in the future (valid) or the past (expired). Signed with the run's
//! own secret, which the scenario's KongConsumer credential carries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::JwtToken;

/// How far `exp` lies from `now` (seconds since the epoch) either way.
pub const EXP_OFFSET: u64 = 3600;

/// A compact JWS for `key`, signed with `secret`, valid or expired relative to `now`.
pub fn token(kind: JwtToken, key: &str, secret: &str, now: u64) -> String {
    let exp = match kind {
        JwtToken::Valid => now + EXP_OFFSET,
        JwtToken::Expired => now.saturating_sub(EXP_OFFSET),
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::json!({"iss": key, "exp": exp}).to_string());
    let signing_input = format!("{header}.{claims}");
    let mac =
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_the_secret_and_carry_key_and_expiry() {
        let t = token(JwtToken::Valid, "e2e-r1", "s3cret", 1_000_000);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::hmac::verify(&key, format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims, serde_json::json!({"iss": "e2e-r1", "exp": 1_003_600}));
        let expired = token(JwtToken::Expired, "e2e-r1", "s3cret", 1_000_000);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(expired.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(claims["exp"], 996_400);
        let wrong = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other");
        assert!(ring::hmac::verify(&wrong, format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).is_err());
    }
}
