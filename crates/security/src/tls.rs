//! TLS server configuration from Kafka's PEM settings (`ssl.keystore.type=PEM`), with
//! rustls on the `ring` provider, and the principal of a client certificate.
//!
//! Certificates are reloaded without a restart: [`ReloadingTls::config`] looks at the
//! files' modification times (at most once a second) and rebuilds the configuration
//! when one changed, so a rotated certificate serves the next handshake. A rebuild
//! that fails (a half-written file) keeps the previous configuration.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Principal;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Some(ClientAuth::None),
            "requested" => Some(ClientAuth::Requested),
            "required" => Some(ClientAuth::Required),
            _ => None,
        }
    }
}

/// A listener's TLS settings, Kafka's names: a PEM key store either as a file
/// (`ssl.keystore.location`, holding the private key and the certificate chain) or
/// inline (`ssl.keystore.key` + `ssl.keystore.certificate.chain`), and trusted CAs for
/// client certificates from `ssl.truststore.location` or `ssl.truststore.certificates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore_location: Option<PathBuf>,
    pub keystore_key: Option<String>,
    pub keystore_certificate_chain: Option<String>,
    pub key_password: Option<String>,
    pub truststore_location: Option<PathBuf>,
    pub truststore_certificates: Option<String>,
    pub client_auth: ClientAuth,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate in the key store")]
    NoCertificate,
    #[error("no private key in the key store (PKCS#8, PKCS#1 or SEC1 PEM)")]
    NoKey,
    #[error("the private key is encrypted: set ssl.key.password")]
    EncryptedKey,
    #[error("cannot decrypt the private key with ssl.key.password (a wrong password, or not PKCS#8 PBES2): {0}")]
    BadKeyPassword(String),
    #[error("ssl.client.auth={0:?} needs trusted certificates (ssl.truststore.location or ssl.truststore.certificates)")]
    NoTrustStore(ClientAuth),
    #[error("bad trusted certificate: {0}")]
    BadTrust(String),
    #[error("no key store: set ssl.keystore.location or ssl.keystore.key and ssl.keystore.certificate.chain")]
    NoKeyStore,
    #[error("rustls refused the configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("not a TLS server name: {0}")]
    BadServerName(String),
    #[error("bad client certificate: {0}")]
    BadCertificate(String),
}

impl TlsSettings {
    fn files(&self) -> Vec<PathBuf> {
        self.keystore_location
            .iter()
            .chain(self.truststore_location.iter())
            .cloned()
            .collect()
    }

    /// The key store's bytes (a file, or the inline key and chain), if one is set.
    fn keystore(&self) -> Result<Option<Vec<u8>>, TlsError> {
        Ok(
            match (
                &self.keystore_location,
                &self.keystore_key,
                &self.keystore_certificate_chain,
            ) {
                (Some(path), _, _) => Some(read(path)?),
                (None, Some(key), Some(chain)) => Some(format!("{key}\n{chain}").into_bytes()),
                _ => None,
            },
        )
    }

    /// The key store's certificate chain and private key.
    fn identity(
        &self,
        keystore: &[u8],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(keystore)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        Ok((chain, private_key(keystore, self.key_password.as_deref())?))
    }

    /// The trusted certificates; `mode` is who needs them, for the error.
    fn roots(&self, mode: ClientAuth) -> Result<RootCertStore, TlsError> {
        let trust = match (&self.truststore_location, &self.truststore_certificates) {
            (Some(path), _) => read(path)?,
            (None, Some(pem)) => pem.clone().into_bytes(),
            (None, None) => return Err(TlsError::NoTrustStore(mode)),
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&trust) {
            let cert = cert.map_err(|e| TlsError::BadTrust(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| TlsError::BadTrust(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoTrustStore(mode));
        }
        Ok(roots)
    }

    /// Builds the rustls configuration (TLS 1.2 and 1.3, safe defaults).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let keystore = self.keystore()?.ok_or(TlsError::NoKeyStore)?;
        let (chain, key) = self.identity(&keystore)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            mode => {
                let roots = self.roots(mode)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if mode == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::BadTrust(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        Ok(Arc::new(builder.with_single_cert(chain, key)?))
    }

    /// The configuration for this broker's own connections to another broker's TLS
    /// listener: the trust store verifies the server (required: there is no default
    /// trust store), and the key store, when set, is the client certificate for a
    /// listener with `ssl.client.auth`.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let roots = self.roots(ClientAuth::Required)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match self.keystore()? {
            Some(keystore) => {
                let (chain, key) = self.identity(&keystore)?;
                builder.with_client_auth_cert(chain, key)?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The name a TLS client checks the server's certificate against, from the `host:port`
/// it connects to (an IP address or a DNS name; `[v6]` brackets removed).
pub fn server_name(addr: &str) -> Result<rustls_pki_types::ServerName<'static>, TlsError> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::BadServerName(format!("{host}: {e}")))
}

/// The key store's private key: an `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2) is decrypted
/// with `ssl.key.password`, as Kafka's PEM key stores allow; otherwise the first
/// PKCS#8, PKCS#1 or SEC1 key.
fn private_key(
    keystore: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(keystore);
    let Some(start) = text.find(BEGIN) else {
        return PrivateKeyDer::from_pem_slice(keystore).map_err(|_| TlsError::NoKey);
    };
    let end = text[start..]
        .find(END)
        .map(|e| start + e + END.len())
        .ok_or(TlsError::NoKey)?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or(TlsError::EncryptedKey)?;
    let bad = |e: String| TlsError::BadKeyPassword(e);
    let (_, doc) =
        pkcs8::der::Document::from_pem(&text[start..end]).map_err(|e| bad(e.to_string()))?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let plain = info.decrypt(password).map_err(|e| bad(e.to_string()))?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

fn read(path: &PathBuf) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A TLS configuration that follows its files.
pub struct ReloadingTls {
    settings: TlsSettings,
    state: Mutex<Reload>,
}

struct Reload {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

/// How often the files' modification times are looked at, at most.
const RECHECK: Duration = Duration::from_secs(1);

impl ReloadingTls {
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let stamps = stamps(&settings);
        let config = settings.server_config()?;
        Ok(Self {
            settings,
            state: Mutex::new(Reload {
                config,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.checked.elapsed() >= RECHECK {
            st.checked = Instant::now();
            let now = stamps(&self.settings);
            if now != st.stamps {
                match self.settings.server_config() {
                    Ok(c) => {
                        tracing::info!("TLS key store or trust store changed: reloaded");
                        st.config = c;
                        st.stamps = now;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS files changed but do not load; keeping the previous ones")
                    }
                }
            }
        }
        st.config.clone()
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    settings
        .files()
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Kafka's default SSL principal: `User:` and the certificate's subject distinguished
/// name in RFC 2253 form, most specific part first (`CN=alice,OU=eng,O=acme,C=US`).
pub fn principal_of(cert: &[u8]) -> Result<Principal, TlsError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in parsed.subject().iter() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type();
                let name =
                    x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                        .map(str::to_string)
                        .unwrap_or_else(|_| oid.to_id_string());
                let name = match name.as_str() {
                    "stateOrProvinceName" => "ST".to_string(),
                    "streetAddress" => "STREET".to_string(),
                    "domainComponent" => "DC".to_string(),
                    "userId" => "UID".to_string(),
                    _ => name,
                };
                let value = atv.as_str().map(escape_rdn).unwrap_or_else(|_| {
                    let hex: String = atv
                        .attr_value()
                        .data
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    format!("#{hex}")
                });
                format!("{name}={value}")
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(Principal::user(rdns.join(",")))
}

/// RFC 2253 escaping of an attribute value.
fn escape_rdn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn cert(cn: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            CertificateParams::new(vec!["localhost".into()]).unwrap_or_else(|e| panic!("{e}"));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Acme, Inc");
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        let c = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        (c.pem(), key.serialize_pem(), c.der().to_vec())
    }

    #[test]
    fn principal_is_the_rfc2253_subject() {
        let (_, _, der) = cert("alice");
        let p = principal_of(&der).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.to_string(), "User:CN=alice,O=Acme\\, Inc,C=US");
    }

    #[test]
    fn builds_from_inline_pem_and_refuses_bad_settings() {
        let (chain, key, _) = cert("broker");
        let ok = TlsSettings {
            keystore_key: Some(key.clone()),
            keystore_certificate_chain: Some(chain.clone()),
            ..Default::default()
        };
        assert!(ok.server_config().is_ok());
        let mtls = TlsSettings {
            client_auth: ClientAuth::Required,
            truststore_certificates: Some(chain.clone()),
            ..ok.clone()
        };
        assert!(mtls.server_config().is_ok());
        let no_trust = TlsSettings {
            client_auth: ClientAuth::Required,
            ..ok.clone()
        };
        assert!(matches!(
            no_trust.server_config(),
            Err(TlsError::NoTrustStore(_))
        ));
        // A password with a plain key: the key is used as it is.
        let needless = TlsSettings {
            key_password: Some("x".into()),
            ..ok.clone()
        };
        assert!(needless.server_config().is_ok());
        let junk =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let encrypted = TlsSettings {
            keystore_key: Some(junk.into()),
            ..ok.clone()
        };
        assert!(matches!(
            encrypted.server_config(),
            Err(TlsError::EncryptedKey)
        ));
        let wrong = TlsSettings {
            key_password: Some("x".into()),
            ..encrypted.clone()
        };
        assert!(matches!(
            wrong.server_config(),
            Err(TlsError::BadKeyPassword(_))
        ));
        let no_key = TlsSettings {
            keystore_key: Some(chain.clone()),
            ..ok.clone()
        };
        assert!(matches!(no_key.server_config(), Err(TlsError::NoKey)));
        assert!(matches!(
            TlsSettings::default().server_config(),
            Err(TlsError::NoKeyStore)
        ));
        assert!(matches!(
            principal_of(b"junk"),
            Err(TlsError::BadCertificate(_))
        ));
    }

    #[test]
    fn client_auth_names() {
        assert_eq!(ClientAuth::parse("required"), Some(ClientAuth::Required));
        assert_eq!(ClientAuth::parse("REQUESTED"), Some(ClientAuth::Requested));
        assert_eq!(ClientAuth::parse("none"), Some(ClientAuth::None));
        assert_eq!(ClientAuth::parse("yes"), None);
    }
}
