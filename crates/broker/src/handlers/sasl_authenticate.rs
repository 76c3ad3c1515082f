//! SaslAuthenticate (key 36, KIP-152): carries one SASL token each way. A failure is
//! SASL_AUTHENTICATION_FAILED with Kafka's message and ends the connection at the next
//! request; success sets the connection's principal and, with
//! `connections.max.reauth.ms`, the session lifetime (v1+, KIP-368).

use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::kp::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, Connection};
use crate::auth::{SaslState, TokenOutcome};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::SaslAuthenticate,
    min: 0,
    max: 2,
};

pub fn handle(
    broker: &Arc<Broker>,
    conn: &mut Connection,
    req: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    if !matches!(
        conn.auth.state,
        SaslState::Authenticating { raw: false, .. }
    ) {
        return SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SaslAuthenticate without a SaslHandshake v1 before it",
            )));
    }
    let reauth = broker.config.connections_max_reauth_ms;
    let image = broker.metadata.image();
    match conn
        .auth
        .step(&req.auth_bytes, &image, reauth, &conn.client_host)
    {
        TokenOutcome::Continue(challenge) => SaslAuthenticateResponse::default()
            .with_error_message(None)
            .with_auth_bytes(Bytes::from(challenge)),
        TokenOutcome::Done(last) => SaslAuthenticateResponse::default()
            .with_error_message(None)
            .with_auth_bytes(Bytes::from(last))
            .with_session_lifetime_ms(reauth.max(0)),
        TokenOutcome::Failed(message) => SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}
