//! The client side of a SCRAM exchange (RFC 5802, RFC 7677), for the broker's own
//! connections to other brokers on a SASL inter-broker listener: client-first, then the
//! client-final with its proof, then the server's signature checked, so a server that
//! does not know the password cannot pass for one that does.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::scram::{server_nonce, ScramError, ScramMechanism, MIN_ITERATIONS};

/// The largest iteration count a server may ask for (Kafka's maximum is 16,384); a
/// higher one could make the client spend seconds of CPU on one login.
const MAX_ITERATIONS: i32 = 16_384;

enum State {
    Initial,
    SentFirst {
        client_first_bare: String,
        nonce: String,
    },
    SentFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

pub struct ScramClient {
    mechanism: ScramMechanism,
    user: String,
    password: String,
    state: State,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a secret.
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// RFC 5802's saslname: commas and equals signs escaped.
fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        Self {
            mechanism,
            user: user.to_string(),
            password: password.to_string(),
            state: State::Initial,
        }
    }

    /// The client-first message: `n,,n=<user>,r=<nonce>`.
    pub fn client_first(&mut self) -> Vec<u8> {
        let nonce = server_nonce();
        let bare = format!("n={},r={nonce}", encode_saslname(&self.user));
        let out = format!("n,,{bare}").into_bytes();
        self.state = State::SentFirst {
            client_first_bare: bare,
            nonce,
        };
        out
    }

    /// Takes the server-first message and returns the client-final one.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::SentFirst {
            client_first_bare,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::Complete);
        };
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let mut fields = text.split(',');
        let server_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if !server_nonce.starts_with(&nonce) || server_nonce.len() <= nonce.len() {
            return Err(ScramError::Malformed(
                "the server's nonce does not extend ours",
            ));
        }
        let salt = fields
            .next()
            .and_then(|f| f.strip_prefix("s="))
            .and_then(|s| B64.decode(s).ok())
            .ok_or(ScramError::Malformed("no salt"))?;
        let iterations: i32 = fields
            .next()
            .and_then(|f| f.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or(ScramError::Malformed("no iteration count"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Malformed("iteration count out of range"));
        }
        let m = self.mechanism;
        let salted = m.salted_password(
            self.password.as_bytes(),
            &salt,
            u32::try_from(iterations).unwrap_or(0),
        );
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={server_nonce}", B64.encode("n,,"));
        let auth_message = format!("{client_first_bare},{text},{without_proof}");
        let signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.state = State::SentFinal {
            server_signature: m.hmac(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proved it knows the credential.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let State::SentFinal { server_signature } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::Complete);
        };
        let text =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if text.starts_with("e=") {
            return Err(ScramError::BadProof);
        }
        let v = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.trim_end()).ok())
            .ok_or(ScramError::Malformed("no server signature"))?;
        if bool::from(v.ct_eq(&server_signature)) {
            Ok(())
        } else {
            Err(ScramError::BadProof)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram::{ScramCredential, ScramServer, Step};

    fn exchange(
        mechanism: ScramMechanism,
        stored: &str,
        given: &str,
    ) -> Result<String, ScramError> {
        let credential =
            ScramCredential::from_password(mechanism, stored, b"salt-salt".to_vec(), 4096);
        let mut server = ScramServer::new(mechanism);
        let mut client = ScramClient::new(mechanism, "al,i=ce", given);
        let first = client.client_first();
        let Step::Continue(server_first) =
            server.step(&first, |u| (u == "al,i=ce").then(|| credential.clone()))?
        else {
            return Err(ScramError::Complete);
        };
        let fin = client.client_final(&server_first)?;
        let Step::Done { response, user } = server.step(&fin, |_| None)? else {
            return Err(ScramError::Complete);
        };
        client.verify_server_final(&response)?;
        Ok(user)
    }

    #[test]
    fn logs_in_against_the_server_side_with_both_mechanisms() {
        for m in ScramMechanism::ALL {
            assert_eq!(exchange(m, "pw", "pw"), Ok("al,i=ce".to_string()));
            assert_eq!(exchange(m, "pw", "wrong"), Err(ScramError::BadProof));
        }
    }

    #[test]
    fn a_server_that_does_not_know_the_password_is_caught() {
        let m = ScramMechanism::Sha256;
        let mut client = ScramClient::new(m, "u", "pw");
        let first = String::from_utf8(client.client_first()).unwrap_or_default();
        let nonce = first
            .rsplit_once("r=")
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        let server_first = format!("r={nonce}xyz,s={},i=4096", B64.encode(b"salt"));
        assert!(client.client_final(server_first.as_bytes()).is_ok());
        let forged = format!("v={}", B64.encode([0u8; 32]));
        assert_eq!(
            client.verify_server_final(forged.as_bytes()),
            Err(ScramError::BadProof)
        );
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let m = ScramMechanism::Sha512;
        for bad in [
            "r=unrelated,s=c2FsdA==,i=4096".to_string(),
            "s=c2FsdA==".to_string(),
            "\u{0}".to_string(),
        ] {
            let mut client = ScramClient::new(m, "u", "pw");
            client.client_first();
            assert!(client.client_final(bad.as_bytes()).is_err(), "{bad}");
        }
        let mut client = ScramClient::new(m, "u", "pw");
        let first = String::from_utf8(client.client_first()).unwrap_or_default();
        let nonce = first
            .rsplit_once("r=")
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        let huge = format!("r={nonce}x,s=c2FsdA==,i=100000000");
        assert!(client.client_final(huge.as_bytes()).is_err());
    }
}
