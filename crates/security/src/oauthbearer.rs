//! SASL/OAUTHBEARER (RFC 7628, KIP-255/KIP-768) on the broker: the client's bearer token
//! is a JWT, validated against a JSON Web Key Set read from a file
//! (`sasl.oauthbearer.jwks.endpoint.url=file:///...`), as Kafka's
//! `OAuthBearerValidatorCallbackHandler` does: signature by the key the token's `kid`
//! names (asymmetric algorithms only), `exp` (and `nbf`) with
//! `sasl.oauthbearer.clock.skew.seconds`, and the configured audience and issuer. The
//! principal is the `sasl.oauthbearer.sub.claim.name` claim (`sub`).

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("cannot read the JWKS {path}: {why}")]
    Jwks { path: String, why: String },
    #[error("sasl.oauthbearer.jwks.endpoint.url must be a file: URL here (got {0})")]
    NotAFile(String),
    #[error("invalid OAUTHBEARER message: {0}")]
    Malformed(&'static str),
    /// The token was refused; the reason is for the broker's log, the client is told
    /// only that the token is invalid.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

/// Where the keys are and what a token must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    pub jwks_file: PathBuf,
    pub expected_audience: Vec<String>,
    pub expected_issuer: Option<String>,
    pub clock_skew_seconds: u64,
    pub sub_claim: String,
}

impl OAuthSettings {
    /// The file of a `file:` JWKS URL (`file:///etc/keys.json` or `file:/etc/keys.json`).
    pub fn jwks_path(url: &str) -> Result<PathBuf, OAuthError> {
        let path = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))
            .ok_or_else(|| OAuthError::NotAFile(url.to_string()))?;
        Ok(PathBuf::from(path))
    }
}

/// The keys, loaded, and the rules.
pub struct OAuthValidator {
    settings: OAuthSettings,
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
}

/// What a valid token says: the principal's name and, if the token has one, its expiry
/// (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    pub principal: String,
    pub expires_ms: Option<i64>,
}

impl OAuthValidator {
    pub fn load(settings: OAuthSettings) -> Result<Self, OAuthError> {
        let keys = load_keys(&settings.jwks_file)?;
        Ok(Self { settings, keys })
    }

    /// Validates the client's first (and only) OAUTHBEARER message.
    pub fn authenticate(&self, message: &[u8]) -> Result<ValidToken, OAuthError> {
        let token = bearer_token(message)?;
        self.validate(token)
    }

    pub fn validate(&self, token: &str) -> Result<ValidToken, OAuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OAuthError::InvalidToken(format!("header: {e}")))?;
        let (_, alg, key) = self
            .keys
            .iter()
            .find(|(kid, alg, _)| {
                *alg == header.alg && (header.kid.is_none() || *kid == header.kid)
            })
            .ok_or_else(|| {
                OAuthError::InvalidToken(format!(
                    "no key for kid {:?} and algorithm {:?}",
                    header.kid, header.alg
                ))
            })?;
        let mut v = Validation::new(*alg);
        v.leeway = self.settings.clock_skew_seconds;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        if self.settings.expected_audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.settings.expected_audience);
        }
        if let Some(iss) = &self.settings.expected_issuer {
            v.set_issuer(&[iss]);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
            .map_err(|e| OAuthError::InvalidToken(e.to_string()))?;
        let principal = data
            .claims
            .get(&self.settings.sub_claim)
            .and_then(|c| c.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                OAuthError::InvalidToken(format!("no {} claim", self.settings.sub_claim))
            })?
            .to_string();
        let expires_ms = data
            .claims
            .get("exp")
            .and_then(serde_json::Value::as_f64)
            .map(|s| (s * 1000.0) as i64);
        Ok(ValidToken {
            principal,
            expires_ms,
        })
    }
}

/// The keys of a JWKS file usable for signatures: RSA, EC and OKP (Ed25519) keys with
/// their algorithm (from `alg`, else the key type's usual one); symmetric keys are
/// skipped, since a shared secret would let anyone who can verify also sign.
fn load_keys(path: &Path) -> Result<Vec<(Option<String>, Algorithm, DecodingKey)>, OAuthError> {
    let err = |why: String| OAuthError::Jwks {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for jwk in &set.keys {
        let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(a), _) => match a.to_string().parse::<Algorithm>() {
                Ok(a) => a,
                Err(_) => continue,
            },
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
            (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
            (None, AlgorithmParameters::OctetKey(_)) => continue,
        };
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| err(e.to_string()))?;
        out.push((jwk.common.key_id.clone(), alg, key));
    }
    if out.is_empty() {
        return Err(err("no RSA, EC or OKP signing key".into()));
    }
    Ok(out)
}

/// RFC 7628's client message: `gs2-header \x01 auth=Bearer <token> \x01 ... \x01`.
fn bearer_token(message: &[u8]) -> Result<&str, OAuthError> {
    let text = std::str::from_utf8(message).map_err(|_| OAuthError::Malformed("not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or(OAuthError::Malformed("no key/value pairs"))?;
    if !(gs2.starts_with("n,") || gs2.starts_with("y,")) {
        return Err(OAuthError::Malformed("bad GS2 header"));
    }
    if !rest.ends_with("\u{1}\u{1}") && rest != "\u{1}" {
        return Err(OAuthError::Malformed("not terminated by two 0x01 bytes"));
    }
    rest.split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::Malformed("no auth=Bearer value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_is_found_in_rfc7628_messages() {
        let msg = b"n,,\x01auth=Bearer abc.def.ghi\x01\x01";
        assert_eq!(bearer_token(msg).ok(), Some("abc.def.ghi"));
        let with_ext = b"n,a=user,\x01host=h\x01auth=Bearer t\x01port=1\x01\x01";
        assert_eq!(bearer_token(with_ext).ok(), Some("t"));
        for bad in [
            &b""[..],
            b"n,,",
            b"x,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Basic t\x01\x01",
            b"n,,\x01auth=Bearer t",
            b"n,,\x01auth=Bearer \x01\x01",
            b"\xff",
        ] {
            assert!(bearer_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jwks_urls_must_be_files() {
        assert_eq!(
            OAuthSettings::jwks_path("file:///etc/k.json").ok(),
            Some(PathBuf::from("/etc/k.json"))
        );
        assert!(OAuthSettings::jwks_path("https://idp/keys").is_err());
    }

    #[test]
    fn symmetric_keys_and_missing_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("gregor-jwks-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("k.json");
        let _ = std::fs::write(
            &file,
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#,
        );
        let settings = OAuthSettings {
            jwks_file: file,
            expected_audience: vec![],
            expected_issuer: None,
            clock_skew_seconds: 30,
            sub_claim: "sub".into(),
        };
        assert!(OAuthValidator::load(settings.clone()).is_err());
        let missing = OAuthSettings {
            jwks_file: dir.join("missing.json"),
            ..settings
        };
        assert!(OAuthValidator::load(missing).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
