//! This broker as a client of the others' inter-broker listener (replica fetches,
//! transaction markers, AddPartitionsToTxn to a remote coordinator): plain TCP, TLS, or
//! either with a SASL login, as that listener's protocol says, with Kafka's settings:
//! the listener's trust store verifies the other broker (its key store, if any, is this
//! broker's client certificate for `ssl.client.auth`), and
//! `sasl.mechanism.inter.broker.protocol` (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) logs
//! in as the `username`/`password` of `listener.name.<l>.<mechanism>.sasl.jaas.config`.

use std::sync::Arc;

use gregor_security::plain::parse_jaas;
use gregor_security::scram::ScramMechanism;
use tokio_rustls::rustls::ClientConfig;

use crate::broker::StartError;
use crate::config::{invalid, BrokerConfig, SecurityProtocol};

/// A SASL login: the mechanism and the broker's own credentials.
#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct InterBrokerSecurity {
    pub protocol: SecurityProtocol,
    /// For a TLS listener: the client configuration, or why there is none (no trust
    /// store: fine for a single broker, which never connects to another; a cluster's
    /// connections then fail with this reason).
    pub tls: Result<Arc<ClientConfig>, String>,
    pub sasl: Option<SaslLogin>,
}

impl Default for InterBrokerSecurity {
    fn default() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            tls: Err("plaintext".into()),
            sasl: None,
        }
    }
}

impl InterBrokerSecurity {
    pub fn from_config(config: &BrokerConfig) -> Result<Self, StartError> {
        let Some(listener) = config.listeners.first() else {
            return Ok(Self::default());
        };
        let protocol = listener.protocol;
        let tls = match (&listener.tls, protocol.tls()) {
            (Some(settings), true) => match settings.client_config() {
                Ok(config) => Ok(config),
                Err(e @ gregor_security::tls::TlsError::NoTrustStore(_)) => {
                    let why = format!(
                        "the inter-broker listener {} is TLS but has no trust store to check \
                         other brokers with: {e}",
                        listener.name
                    );
                    tracing::info!("{why} (only a cluster of one works so)");
                    Err(why)
                }
                Err(source) => {
                    return Err(StartError::Tls {
                        listener: format!("{} (as a client of the other brokers)", listener.name),
                        source,
                    })
                }
            },
            _ => Err("plaintext".into()),
        };
        let sasl = if protocol.sasl() {
            let key = "sasl.mechanism.inter.broker.protocol";
            let mechanism = config
                .get(key)
                .map(|m| m.trim().to_ascii_uppercase())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "PLAIN".to_string());
            if mechanism != "PLAIN" && ScramMechanism::from_name(&mechanism).is_none() {
                return Err(invalid(
                    key,
                    &mechanism,
                    "the inter-broker login must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                )
                .into());
            }
            let jaas_key = format!(
                "listener.name.{}.{}.sasl.jaas.config",
                listener.name.to_ascii_lowercase(),
                mechanism.to_ascii_lowercase()
            );
            let entry = config
                .get(&jaas_key)
                .or_else(|| config.get("sasl.jaas.config"))
                .unwrap_or("");
            let options =
                parse_jaas(entry).map_err(|e| invalid(&jaas_key, "(hidden)", &e.to_string()))?;
            let (Some(user), Some(password)) = (options.get("username"), options.get("password"))
            else {
                return Err(invalid(
                    &jaas_key,
                    "(hidden)",
                    &format!(
                        "the inter-broker listener {} uses SASL: give this broker's own \
                         username and password in it",
                        listener.name
                    ),
                )
                .into());
            };
            Some(SaslLogin {
                mechanism,
                user: user.clone(),
                password: password.clone(),
            })
        } else {
            None
        };
        Ok(Self {
            protocol,
            tls,
            sasl,
        })
    }
}
