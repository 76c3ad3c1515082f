//! The security settings of the CLI's own protocol client (`wire`), read from the same
//! `-X` librdkafka properties the other commands pass to librdkafka, so one command line
//! works for both: `security.protocol`, `ssl.ca.location`, `ssl.certificate.location` +
//! `ssl.key.location` (a client certificate), `sasl.mechanism(s)` (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512), `sasl.username`, `sasl.password`.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gregor_security::tls::TlsSettings;
use rustls::ClientConfig;

pub(crate) struct Login {
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

#[derive(Default)]
pub(crate) struct Security {
    pub tls: Option<Arc<ClientConfig>>,
    pub sasl: Option<Login>,
}

impl Security {
    pub(crate) fn from_props(props: &[String]) -> Result<Self> {
        let get = |key: &str| {
            props.iter().rev().find_map(|p| {
                p.split_once('=')
                    .filter(|(k, _)| k.trim() == key)
                    .map(|(_, v)| v.trim().to_string())
            })
        };
        let protocol = get("security.protocol")
            .unwrap_or_else(|| "plaintext".into())
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => bail!(
                "-X security.protocol={other}: expected plaintext, ssl, sasl_plaintext or sasl_ssl"
            ),
        };
        let tls = if tls {
            let Some(ca) = get("ssl.ca.location") else {
                bail!("-X security.protocol={protocol} needs -X ssl.ca.location=<CA certificates, PEM>");
            };
            let mut settings = TlsSettings {
                truststore_location: Some(ca.into()),
                ..TlsSettings::default()
            };
            if let (Some(cert), Some(key)) =
                (get("ssl.certificate.location"), get("ssl.key.location"))
            {
                settings.keystore_certificate_chain = Some(
                    std::fs::read_to_string(&cert)
                        .with_context(|| format!("cannot read {cert}"))?,
                );
                settings.keystore_key = Some(
                    std::fs::read_to_string(&key).with_context(|| format!("cannot read {key}"))?,
                );
            }
            Some(settings.client_config()?)
        } else {
            None
        };
        let sasl = if sasl {
            let mechanism = get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or_else(|| "PLAIN".into())
                .to_ascii_uppercase();
            let (Some(user), Some(password)) = (get("sasl.username"), get("sasl.password")) else {
                bail!("SASL needs -X sasl.username=... and -X sasl.password=...");
            };
            Some(Login {
                mechanism,
                user,
                password,
            })
        } else {
            None
        };
        Ok(Self { tls, sasl })
    }
}
