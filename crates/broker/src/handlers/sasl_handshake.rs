//! SaslHandshake (key 17): the client names its SASL mechanism. On a SASL listener
//! this starts the exchange (or, on an authenticated connection, a re-authentication,
//! KIP-368, v1 only); elsewhere it is ILLEGAL_SASL_STATE. An unknown or disabled
//! mechanism is UNSUPPORTED_SASL_MECHANISM with the enabled list. After v0 the client
//! sends bare tokens; after v1, SaslAuthenticate requests.

use gregor_protocol::kp::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, Connection};
use crate::auth::{Exchange, SaslState};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::SaslHandshake,
    min: 0,
    max: 1,
};

pub fn handle(
    conn: &mut Connection,
    version: i16,
    req: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let Some(sasl) = conn.auth.listener.sasl.as_ref() else {
        return SaslHandshakeResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code());
    };
    let enabled: Vec<StrBytes> = sasl
        .mechanisms
        .iter()
        .map(|m| StrBytes::from_string(m.clone()))
        .collect();
    let reply = SaslHandshakeResponse::default().with_mechanisms(enabled);
    let allowed = match conn.auth.state {
        SaslState::AwaitHandshake => true,
        SaslState::Open => version >= 1 && conn.auth.authenticated,
        _ => false,
    };
    if !allowed {
        return reply.with_error_code(ResponseError::IllegalSaslState.code());
    }
    let mechanism = req.mechanism.as_str();
    match Exchange::start(mechanism).filter(|_| sasl.enabled(mechanism)) {
        Some(exchange) => {
            conn.auth.state = SaslState::Authenticating {
                exchange,
                raw: version == 0,
            };
            reply
        }
        None => reply.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
    }
}
