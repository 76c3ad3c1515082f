//! The client listeners: `listeners`, `advertised.listeners`,
//! `listener.security.protocol.map`, `inter.broker.listener.name`, and each listener's
//! TLS and SASL settings with Kafka's names, a `listener.name.<name>.` prefix winning
//! over the unprefixed config (`listener.name.sasl_ssl.ssl.keystore.location`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use gregor_security::oauthbearer::OAuthSettings;
use gregor_security::plain::PlainUsers;
use gregor_security::scram::ScramMechanism;
use gregor_security::tls::{ClientAuth, TlsSettings};

use super::{invalid, ConfigError};

/// Kafka's security protocols, with their wire ids (BrokerEndpoint.security_protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The SASL mechanisms a listener offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`, in the configured order (PLAIN, SCRAM-SHA-256,
    /// SCRAM-SHA-512; others are refused at startup).
    pub mechanisms: Vec<String>,
    /// PLAIN's users, from `listener.name.<l>.plain.sasl.jaas.config`.
    pub plain_users: PlainUsers,
    /// OAUTHBEARER's JWKS and token rules (`sasl.oauthbearer.*`), when enabled.
    pub oauth: Option<OAuthSettings>,
}

impl SaslConfig {
    pub fn enabled(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }
}

/// One client listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Upper-case, as Kafka normalises listener names.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// What clients are told; a port of 0 follows the bound port.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub tls: Option<TlsSettings>,
    pub sasl: Option<SaslConfig>,
}

/// Kafka's default `listener.security.protocol.map`: each protocol's own name.
const DEFAULT_MAP: &str = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT";

/// The mechanisms offered when `sasl.enabled.mechanisms` is not set. Kafka's default is
/// GSSAPI, which Gregor does not have; these are the ones it does.
pub(super) const DEFAULT_MECHANISMS: &str = "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN";

/// Parses the client listeners (the controller listeners excluded), the inter-broker
/// listener first.
pub(super) fn parse(
    values: &BTreeMap<String, String>,
    controller_names: &[String],
) -> Result<Vec<ListenerConfig>, ConfigError> {
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let (map, map_value) = protocol_map(values)?;
    let listeners = get("listeners");
    let advertised: BTreeMap<String, (String, u16)> =
        super::parse_listeners(&get("advertised.listeners"))
            .into_iter()
            .map(|(n, h, p)| (n.to_ascii_uppercase(), (h, p)))
            .collect();
    let mut out = Vec::new();
    for (name, host, port) in super::parse_listeners(&listeners) {
        let name = name.to_ascii_uppercase();
        if controller_names
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&name))
        {
            continue;
        }
        if out.iter().any(|l: &ListenerConfig| l.name == name) {
            return Err(invalid(
                "listeners",
                &listeners,
                &format!("listener {name} appears twice"),
            ));
        }
        let protocol = *map.get(&name).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                &format!("no security protocol for listener {name}"),
            )
        })?;
        let bind: SocketAddr = format!(
            "{}:{port}",
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        )
        .parse()
        .map_err(|_| invalid("listeners", &listeners, "host must be an IP address"))?;
        let (advertised_host, advertised_port) =
            advertised.get(&name).cloned().unwrap_or((host, port));
        let prefixed = |key: &str| -> Option<String> {
            values
                .get(&format!(
                    "listener.name.{}.{key}",
                    name.to_ascii_lowercase()
                ))
                .or_else(|| values.get(key))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let tls = if protocol.tls() {
            Some(tls_settings(&prefixed)?)
        } else {
            None
        };
        let sasl = if protocol.sasl() {
            Some(sasl_settings(&name, values, &prefixed)?)
        } else {
            None
        };
        out.push(ListenerConfig {
            name,
            protocol,
            bind,
            advertised_host,
            advertised_port,
            tls,
            sasl,
        });
    }
    if out.is_empty() {
        // A controller-only node has no client listener: its first listener stands in
        // (never served: such a node serves only the quorum's RPC).
        let Some((name, host, port)) = super::parse_listeners(&listeners).into_iter().next() else {
            return Err(invalid(
                "listeners",
                &listeners,
                "no listener (expected NAME://host:port)",
            ));
        };
        let bind = format!(
            "{}:{port}",
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        )
        .parse()
        .map_err(|_| invalid("listeners", &listeners, "host must be an IP address"))?;
        out.push(ListenerConfig {
            name: name.to_ascii_uppercase(),
            protocol: SecurityProtocol::Plaintext,
            bind,
            advertised_host: host,
            advertised_port: port,
            tls: None,
            sasl: None,
        });
    }
    for name in advertised.keys() {
        if !out.iter().any(|l| &l.name == name) {
            return Err(invalid(
                "advertised.listeners",
                &get("advertised.listeners"),
                &format!("{name} is not one of the listeners"),
            ));
        }
    }
    // The inter-broker listener goes first: replicas, transaction markers and
    // forwarded requests use the first endpoint a broker registered.
    let inter = get("inter.broker.listener.name")
        .trim()
        .to_ascii_uppercase();
    let first = if inter.is_empty() {
        out.iter()
            .position(|l| l.protocol == SecurityProtocol::Plaintext)
            .unwrap_or(0)
    } else {
        out.iter().position(|l| l.name == inter).ok_or_else(|| {
            invalid(
                "inter.broker.listener.name",
                &inter,
                "is not one of the listeners",
            )
        })?
    };
    let inter_listener = out.remove(first);
    out.insert(0, inter_listener);
    Ok(out)
}

/// `listener.security.protocol.map` (Kafka's default when unset), and its text.
fn protocol_map(
    values: &BTreeMap<String, String>,
) -> Result<(BTreeMap<String, SecurityProtocol>, String), ConfigError> {
    let map_value = values
        .get("listener.security.protocol.map")
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_MAP.to_string());
    let mut map = BTreeMap::new();
    for entry in map_value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, proto) = entry.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                "expected NAME:PROTOCOL entries",
            )
        })?;
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                &map_value,
                &format!("{proto:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), proto);
    }
    Ok((map, map_value))
}

/// The controller listener's TLS settings (`listener.name.<controller>.ssl.*`, else the
/// unprefixed ones) when its protocol is SSL; `None` for PLAINTEXT. SASL is refused:
/// the quorum's RPC is not the Kafka protocol, so mutual TLS is how controllers and
/// brokers prove themselves to each other there.
pub(super) fn controller_tls(
    values: &BTreeMap<String, String>,
    controller_names: &[String],
) -> Result<Option<TlsSettings>, ConfigError> {
    let Some(name) = controller_names.first() else {
        return Ok(None);
    };
    let name = name.to_ascii_uppercase();
    let (map, map_value) = protocol_map(values)?;
    match map.get(&name) {
        None | Some(SecurityProtocol::Plaintext) => Ok(None),
        Some(SecurityProtocol::Ssl) => {
            let prefixed = |key: &str| -> Option<String> {
                values
                    .get(&format!(
                        "listener.name.{}.{key}",
                        name.to_ascii_lowercase()
                    ))
                    .or_else(|| values.get(key))
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            tls_settings(&prefixed).map(Some)
        }
        Some(other) => Err(invalid(
            "listener.security.protocol.map",
            &map_value,
            &format!(
                "the controller listener {name} can be PLAINTEXT or SSL, not {}",
                other.name()
            ),
        )),
    }
}

fn tls_settings(prefixed: &dyn Fn(&str) -> Option<String>) -> Result<TlsSettings, ConfigError> {
    for (key, want) in [("ssl.keystore.type", "PEM"), ("ssl.truststore.type", "PEM")] {
        if let Some(v) = prefixed(key) {
            if !v.eq_ignore_ascii_case(want) {
                return Err(invalid(
                    key,
                    &v,
                    "only PEM stores are supported (convert a JKS or PKCS12 store with openssl)",
                ));
            }
        }
    }
    let auth = prefixed("ssl.client.auth").unwrap_or_default();
    let client_auth = ClientAuth::parse(&auth).ok_or_else(|| {
        invalid(
            "ssl.client.auth",
            &auth,
            "expected none, requested or required",
        )
    })?;
    let settings = TlsSettings {
        keystore_location: prefixed("ssl.keystore.location").map(PathBuf::from),
        keystore_key: prefixed("ssl.keystore.key"),
        keystore_certificate_chain: prefixed("ssl.keystore.certificate.chain"),
        key_password: prefixed("ssl.key.password"),
        truststore_location: prefixed("ssl.truststore.location").map(PathBuf::from),
        truststore_certificates: prefixed("ssl.truststore.certificates"),
        client_auth,
    };
    Ok(settings)
}

fn sasl_settings(
    listener: &str,
    values: &BTreeMap<String, String>,
    prefixed: &dyn Fn(&str) -> Option<String>,
) -> Result<SaslConfig, ConfigError> {
    let value =
        prefixed("sasl.enabled.mechanisms").unwrap_or_else(|| DEFAULT_MECHANISMS.to_string());
    let mut mechanisms = Vec::new();
    for m in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let m = m.to_ascii_uppercase();
        if m != "PLAIN" && m != "OAUTHBEARER" && ScramMechanism::from_name(&m).is_none() {
            return Err(invalid(
                "sasl.enabled.mechanisms",
                &value,
                &format!("{m} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"),
            ));
        }
        mechanisms.push(m);
    }
    if mechanisms.is_empty() {
        return Err(invalid("sasl.enabled.mechanisms", &value, "no mechanism"));
    }
    let jaas_key = format!(
        "listener.name.{}.plain.sasl.jaas.config",
        listener.to_ascii_lowercase()
    );
    let plain_users = match values
        .get(&jaas_key)
        .or_else(|| values.get("sasl.jaas.config"))
    {
        Some(entry) if !entry.trim().is_empty() => PlainUsers::from_jaas(entry)
            .map_err(|e| invalid(&jaas_key, "(hidden)", &e.to_string()))?,
        _ => PlainUsers::default(),
    };
    let oauth = if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
        let key = "sasl.oauthbearer.jwks.endpoint.url";
        let url = prefixed(key).ok_or_else(|| {
            invalid(
                key,
                "",
                "OAUTHBEARER is enabled: name the JWKS file (file:///...)",
            )
        })?;
        let jwks_file =
            OAuthSettings::jwks_path(&url).map_err(|e| invalid(key, &url, &e.to_string()))?;
        let skew = prefixed("sasl.oauthbearer.clock.skew.seconds").unwrap_or_else(|| "30".into());
        Some(OAuthSettings {
            jwks_file,
            expected_audience: prefixed("sasl.oauthbearer.expected.audience")
                .map(|a| {
                    a.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            expected_issuer: prefixed("sasl.oauthbearer.expected.issuer"),
            clock_skew_seconds: super::num("sasl.oauthbearer.clock.skew.seconds", &skew)?,
            sub_claim: prefixed("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
        })
    } else {
        None
    };
    Ok(SaslConfig {
        mechanisms,
        plain_users,
        oauth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn several_listeners_with_their_protocols() {
        let v = values(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("advertised.listeners", "PLAINTEXT://example:19092"),
            ("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"pw\";"),
        ]);
        let l = parse(&v, &["CONTROLLER".into()]).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["INTERNAL", "PLAINTEXT", "SASL_PLAINTEXT"]);
        assert_eq!(l[1].advertised_host, "example");
        assert_eq!(l[1].advertised_port, 19092);
        let sasl = l[2].sasl.clone().unwrap_or_else(|| panic!("no sasl"));
        assert_eq!(sasl.mechanisms, ["PLAIN"]);
        assert_eq!(
            sasl.plain_users.authenticate(b"\0alice\0pw"),
            Ok("alice".into())
        );
    }

    #[test]
    fn bad_listener_settings_are_refused() {
        for pairs in [
            vec![("listeners", "FOO://127.0.0.1:1")],
            vec![(
                "listeners",
                "PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2",
            )],
            vec![
                ("listeners", "PLAINTEXT://127.0.0.1:1"),
                ("inter.broker.listener.name", "X"),
            ],
            vec![
                ("listeners", "PLAINTEXT://127.0.0.1:1"),
                ("advertised.listeners", "SSL://h:1"),
            ],
            vec![
                ("listeners", "SASL_PLAINTEXT://127.0.0.1:1"),
                ("sasl.enabled.mechanisms", "GSSAPI"),
            ],
            vec![
                ("listeners", "SSL://127.0.0.1:1"),
                ("ssl.keystore.type", "JKS"),
            ],
            vec![
                ("listeners", "SSL://127.0.0.1:1"),
                ("ssl.client.auth", "maybe"),
            ],
            vec![
                ("listeners", "X://127.0.0.1:1"),
                ("listener.security.protocol.map", "X:TLS"),
            ],
        ] {
            assert!(parse(&values(&pairs), &[]).is_err(), "{pairs:?}");
        }
    }
}
