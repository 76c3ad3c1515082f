//! A connection's authentication: who it is (its principal) and where it stands in a
//! SASL exchange (Kafka's `SaslServerAuthenticator` states), and which requests it may
//! send meanwhile.
//!
//! On a SASL listener a connection may send only ApiVersions, SaslHandshake and
//! SaslAuthenticate until it has authenticated; anything else closes it. After a
//! SaslHandshake v0 the client sends bare tokens (no request header) until the
//! exchange ends (the pre-KIP-152 form older clients still use). With
//! `connections.max.reauth.ms` set, a session expires: the client must authenticate
//! again (KIP-368) with the same principal, and any other request after expiry closes
//! the connection.

use std::sync::Arc;
use std::time::Instant;

use gregor_protocol::kp::messages::ApiKey;
use gregor_security::oauthbearer::OAuthValidator;
use gregor_security::scram::{ScramMechanism, ScramServer};
use gregor_security::Principal;

use crate::config::ListenerConfig;

/// The mechanism a handshake chose, with its exchange state.
pub enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
    OAuthBearer,
}

impl Exchange {
    pub fn start(mechanism: &str) -> Option<Self> {
        if mechanism == "PLAIN" {
            return Some(Exchange::Plain);
        }
        if mechanism == "OAUTHBEARER" {
            return Some(Exchange::OAuthBearer);
        }
        ScramMechanism::from_name(mechanism).map(|m| Exchange::Scram(Box::new(ScramServer::new(m))))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Exchange::Plain => "PLAIN",
            Exchange::Scram(s) => s.mechanism().name(),
            Exchange::OAuthBearer => "OAUTHBEARER",
        }
    }
}

pub enum SaslState {
    /// Requests flow: not a SASL listener, or authenticated.
    Open,
    /// A SASL listener waiting for SaslHandshake.
    AwaitHandshake,
    /// Handshake done: SaslAuthenticate (or, after a v0 handshake, bare tokens) next.
    Authenticating { exchange: Exchange, raw: bool },
    /// Authentication failed: the answer is on its way and the next request closes
    /// the connection.
    Failed,
}

/// What a connection knows about who it is.
pub struct ConnAuth {
    pub listener: Arc<ListenerConfig>,
    pub principal: Arc<Principal>,
    pub state: SaslState,
    /// When an authenticated session ends (`connections.max.reauth.ms`).
    pub expires: Option<Instant>,
    /// Whether a SASL exchange succeeded on this connection (re-authentication must keep
    /// its principal).
    pub authenticated: bool,
    /// The listener's OAUTHBEARER token validator (its keys loaded at start-up).
    pub oauth: Option<Arc<OAuthValidator>>,
}

/// Whether a request may be served now, and if not, why the connection closes.
pub enum Gate {
    Serve,
    Close(String),
}

impl ConnAuth {
    pub fn new(listener: Arc<ListenerConfig>, tls_principal: Option<Principal>) -> Self {
        let state = if listener.protocol.sasl() {
            SaslState::AwaitHandshake
        } else {
            SaslState::Open
        };
        Self {
            listener,
            principal: Arc::new(tls_principal.unwrap_or_else(Principal::anonymous)),
            state,
            expires: None,
            authenticated: false,
            oauth: None,
        }
    }

    /// Whether ordinary requests may flow (not in or before a SASL exchange).
    pub fn is_open(&self) -> bool {
        matches!(self.state, SaslState::Open)
    }

    /// Whether bare SASL tokens (after a v0 handshake) are expected next.
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, SaslState::Authenticating { raw: true, .. })
    }

    pub fn gate(&self, key: ApiKey) -> Gate {
        let sasl_api = matches!(
            key,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        );
        match &self.state {
            SaslState::Failed => Gate::Close("request after a failed authentication".into()),
            SaslState::AwaitHandshake | SaslState::Authenticating { .. } if !sasl_api => {
                Gate::Close(format!(
                    "unexpected {key:?} request before SASL authentication"
                ))
            }
            SaslState::Open
                if self.expires.is_some_and(|t| Instant::now() >= t)
                    && key != ApiKey::SaslHandshake =>
            {
                Gate::Close(format!(
                    "{key:?} after the SASL session expired (connections.max.reauth.ms)"
                ))
            }
            _ => Gate::Serve,
        }
    }
}

/// The result of one client token.
pub enum TokenOutcome {
    /// Send this challenge; more tokens follow.
    Continue(Vec<u8>),
    /// Authenticated: send this last token.
    Done(Vec<u8>),
    /// Refused: SASL_AUTHENTICATION_FAILED with this message, then the connection ends.
    Failed(String),
}

impl ConnAuth {
    /// Feeds one client token to the exchange a handshake started. `reauth_ms` is
    /// `connections.max.reauth.ms`; `peer` is for the log line of a failure (which
    /// names the user and the address, never the secret).
    pub fn step(
        &mut self,
        token: &[u8],
        image: &gregor_metadata::MetadataImage,
        reauth_ms: i64,
        peer: &str,
    ) -> TokenOutcome {
        let SaslState::Authenticating { exchange, raw } =
            std::mem::replace(&mut self.state, SaslState::Failed)
        else {
            return TokenOutcome::Failed("no SASL exchange in progress".into());
        };
        let mechanism = exchange.name();
        let mut token_expires_ms = None;
        let result = match exchange {
            Exchange::OAuthBearer => match self.oauth.as_ref().map(|v| v.authenticate(token)) {
                Some(Ok(valid)) => {
                    token_expires_ms = valid.expires_ms;
                    Ok((valid.principal, Vec::new()))
                }
                Some(Err(e)) => {
                    tracing::info!(peer, reason = %e, "OAUTHBEARER token refused");
                    Err((None, r#"{"status":"invalid_token"}"#.to_string()))
                }
                None => Err((None, "OAUTHBEARER is not enabled".into())),
            },
            Exchange::Plain => {
                let users = self.listener.sasl.as_ref().map(|s| &s.plain_users);
                match users.map(|u| u.authenticate(token)) {
                    Some(Ok(user)) => Ok((user, Vec::new())),
                    Some(Err(e)) => Err((plain_user(token), e.to_string())),
                    None => Err((None, "PLAIN is not enabled".into())),
                }
            }
            Exchange::Scram(mut server) => {
                let m = server.mechanism();
                let mut asked = None;
                let step = server.step(token, |user| {
                    asked = Some(user.to_string());
                    image.scram_credential(user, m).cloned()
                });
                match step {
                    Ok(gregor_security::scram::Step::Continue(challenge)) => {
                        self.state = SaslState::Authenticating {
                            exchange: Exchange::Scram(server),
                            raw,
                        };
                        return TokenOutcome::Continue(challenge);
                    }
                    Ok(gregor_security::scram::Step::Done { response, user }) => {
                        Ok((user, response))
                    }
                    Err(gregor_security::scram::ScramError::Malformed(why)) => {
                        Err((asked, format!("Authentication failed: {why}")))
                    }
                    Err(_) => Err((
                        asked,
                        format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"),
                    )),
                }
            }
        };
        match result {
            Ok((user, last)) => {
                let principal = Principal::user(user);
                if self.authenticated && *self.principal != principal {
                    tracing::warn!(peer, old = %self.principal, new = %principal, "re-authentication changed the principal: refused");
                    return TokenOutcome::Failed(
                        "Cannot change principals during re-authentication".into(),
                    );
                }
                tracing::debug!(peer, %principal, mechanism, "SASL authentication succeeded");
                self.principal = Arc::new(principal);
                self.authenticated = true;
                // KIP-368: the session ends at the re-authentication interval or when
                // the token expires, whichever is first.
                self.expires = (reauth_ms > 0).then(|| {
                    let mut ms = reauth_ms;
                    if let Some(exp) = token_expires_ms {
                        ms = ms.min(exp.saturating_sub(crate::util::now_ms()).max(0));
                    }
                    Instant::now() + std::time::Duration::from_millis(ms.unsigned_abs())
                });
                self.state = SaslState::Open;
                TokenOutcome::Done(last)
            }
            Err((user, message)) => {
                tracing::info!(peer, user = user.as_deref().unwrap_or("?"), mechanism, reason = %message, "SASL authentication failed");
                TokenOutcome::Failed(message)
            }
        }
    }
}

/// The user a PLAIN message names, for the log (the password is never read).
fn plain_user(token: &[u8]) -> Option<String> {
    let user = token.split(|&b| b == 0).nth(1)?;
    std::str::from_utf8(user).ok().map(str::to_string)
}
