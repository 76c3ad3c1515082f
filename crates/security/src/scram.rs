//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as Kafka's
//! `ScramSaslServer` runs it: client-first → server-first → client-final → server-final.
//!
//! The broker keeps, per user and mechanism, only what RFC 5802 calls the stored key
//! and the server key (plus salt and iteration count): never the password. A client
//! that sets a credential (AlterUserScramCredentials) sends the salted password, from
//! which [`ScramCredential::from_salted_password`] derives both keys.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on a SCRAM credential's iteration count.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// The two SCRAM mechanisms Kafka has (wire values of its `ScramMechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's wire value (0 is UNKNOWN).
    pub fn wire(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_wire(v: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.wire() == v)
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// PBKDF2 with this mechanism's HMAC: RFC 5802's `Hi(password, salt, i)`.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// The digest length: a salted password of another length is not one of ours.
    pub fn key_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker stores for one user and mechanism (Kafka's ScramCredential).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys are secrets: a log line or a panic message must not carry them.
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        salted_password: &[u8],
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Self {
            mechanism,
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: i32,
    ) -> Self {
        let salted = mechanism.salted_password(
            password.as_bytes(),
            &salt,
            u32::try_from(iterations).unwrap_or(0),
        );
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

/// Why an exchange failed. The broker answers every variant with
/// SASL_AUTHENTICATION_FAILED; only [`ScramError::Malformed`] says more than "invalid
/// credentials", so a client cannot tell an unknown user from a wrong password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("invalid SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("invalid credentials")]
    UnknownUser,
    #[error("invalid credentials")]
    BadProof,
    #[error("SCRAM exchange already complete")]
    Complete,
}

/// One step of the exchange: a challenge to send and continue, or the final message
/// with the authenticated user name.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue(Vec<u8>),
    Done { response: Vec<u8>, user: String },
}

enum State {
    Initial,
    SentFirst {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        gs2_header: String,
    },
    Done,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self {
            mechanism,
            state: State::Initial,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message. `lookup` finds the credential of a user for
    /// this mechanism (called once, on the client-first message).
    pub fn step(
        &mut self,
        input: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Step, ScramError> {
        let text = std::str::from_utf8(input).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => self.client_first(text, lookup),
            State::SentFirst {
                user,
                credential,
                client_first_bare,
                server_first,
                nonce,
                gs2_header,
            } => {
                let first = First {
                    credential: &credential,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                    nonce: &nonce,
                    gs2_header: &gs2_header,
                };
                let response = self.client_final(text, &first)?;
                Ok(Step::Done { response, user })
            }
            State::Done => Err(ScramError::Complete),
        }
    }

    fn client_first(
        &mut self,
        text: &str,
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Step, ScramError> {
        // gs2-header: "n,," or "y,," (no channel binding) with an optional "a=authzid".
        let (flag, rest) = text
            .split_once(',')
            .ok_or(ScramError::Malformed("no GS2 header"))?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => {
                return Err(ScramError::Malformed("channel binding is not supported"))
            }
            _ => return Err(ScramError::Malformed("bad GS2 channel-binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("no GS2 header"))?;
        let gs2_header = format!("{flag},{authzid},");
        let mut fields = bare.split(',');
        let user = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .ok_or(ScramError::Malformed("no user name"))
            .and_then(decode_saslname)?;
        let client_nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no client nonce"))?;
        for ext in fields {
            // Kafka's extensions: delegation tokens (`tokenauth`) are not served here.
            if ext.starts_with("tokenauth=") && ext != "tokenauth=false" {
                return Err(ScramError::BadProof);
            }
            if ext.starts_with("m=") {
                return Err(ScramError::Malformed("mandatory extension not supported"));
            }
        }
        if !authzid.is_empty() {
            let authz = authzid
                .strip_prefix("a=")
                .ok_or(ScramError::Malformed("bad authorization id"))
                .and_then(decode_saslname)?;
            if authz != user {
                return Err(ScramError::Malformed(
                    "authorization id differs from the user name",
                ));
            }
        }
        let credential = lookup(&user)
            .filter(|c| c.mechanism == self.mechanism)
            .ok_or(ScramError::UnknownUser)?;
        let nonce = format!("{client_nonce}{}", server_nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let out = server_first.clone().into_bytes();
        self.state = State::SentFirst {
            user,
            credential,
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
            gs2_header,
        };
        Ok(Step::Continue(out))
    }

    fn client_final(&self, text: &str, first: &First<'_>) -> Result<Vec<u8>, ScramError> {
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        if B64.decode(binding).ok().as_deref() != Some(first.gs2_header.as_bytes()) {
            return Err(ScramError::Malformed("channel binding does not match"));
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        // librdkafka before 2.6.1 (librdkafka#4895; Debian's kcat, many distributions)
        // sends the client nonce twice: client nonce + the server's whole nonce. Kafka
        // 3.8.1 accepted that, Kafka 4 refuses it; accepting exactly that form keeps the
        // replay protection (the server's fresh part must be there) and those clients.
        let client_nonce = first
            .nonce
            .get(..first.nonce.len().saturating_sub(SERVER_NONCE_CHARS))
            .unwrap_or_default();
        let doubled = nonce.len() == client_nonce.len() + first.nonce.len()
            && nonce.starts_with(client_nonce)
            && nonce.ends_with(first.nonce);
        if nonce != first.nonce && !doubled {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            first.client_first_bare, first.server_first, without_proof
        );
        let m = self.mechanism;
        let c = first.credential;
        let signature = m.hmac(&c.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::BadProof);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !bool::from(m.hash(&client_key).ct_eq(&c.stored_key)) {
            return Err(ScramError::BadProof);
        }
        let verifier = m.hmac(&c.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(verifier)).into_bytes())
    }
}

struct First<'a> {
    credential: &'a ScramCredential,
    client_first_bare: &'a str,
    server_first: &'a str,
    nonce: &'a str,
    gs2_header: &'a str,
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, any other `=` is bad.
pub(crate) fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(ScramError::Malformed("bad escape in a name"));
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

/// The length of [`server_nonce`]'s output: 24 bytes in base64.
const SERVER_NONCE_CHARS: usize = 32;

/// 24 random bytes, base64 (no commas, printable, as RFC 5802 asks).
pub(crate) fn server_nonce() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a per-process counter mixed with time, still
        // unique per exchange (the nonce must be unique, not secret).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..16].copy_from_slice(&now.to_le_bytes());
    }
    B64.encode(bytes)
}

/// A fresh random salt for a credential set from a password.
pub fn random_salt() -> Vec<u8> {
    let mut bytes = vec![0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn rfc7677_example_authenticates() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap_or_default();
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pencil", salt, 4096);
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let first = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", |u| {
            (u == "user").then(|| cred.clone())
        });
        let Ok(Step::Continue(server_first)) = first else {
            panic!("unexpected {first:?}")
        };
        let server_first = String::from_utf8(server_first).unwrap_or_default();
        // The RFC's exchange used a fixed server nonce; recompute the proof for ours.
        let nonce = server_first
            .split(',')
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .unwrap_or_default()
            .to_string();
        let proof_msg = client_final(
            ScramMechanism::Sha256,
            "pencil",
            "n=user,r=rOprNGfwEbeRWgbNEkqO",
            &server_first,
            &nonce,
        );
        let done = server.step(proof_msg.0.as_bytes(), |_| None);
        assert_eq!(
            done,
            Ok(Step::Done {
                response: proof_msg.1.into_bytes(),
                user: "user".into()
            })
        );
        assert_eq!(server.step(b"again", |_| None), Err(ScramError::Complete));
    }

    /// The RFC's stored values, checked against the derivation.
    #[test]
    fn rfc7677_keys_match_the_fixed_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap_or_default();
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "pencil", salt, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let verifier = ScramMechanism::Sha256.hmac(&cred.server_key, auth.as_bytes());
        assert_eq!(
            B64.encode(verifier),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let cred =
            ScramCredential::from_password(ScramMechanism::Sha512, "right", random_salt(), 4096);
        let mut s = ScramServer::new(ScramMechanism::Sha512);
        let Ok(Step::Continue(sf)) = s.step(b"n,,n=alice,r=abc", |_| Some(cred.clone())) else {
            panic!("no server-first")
        };
        let sf = String::from_utf8(sf).unwrap_or_default();
        let nonce = sf
            .split(',')
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .unwrap_or_default();
        let (msg, _) = client_final(ScramMechanism::Sha512, "wrong", "n=alice,r=abc", &sf, nonce);
        let bad = s.step(msg.as_bytes(), |_| None);
        assert_eq!(bad, Err(ScramError::BadProof));
        let mut s = ScramServer::new(ScramMechanism::Sha512);
        let unknown = s.step(b"n,,n=bob,r=abc", |_| None);
        assert_eq!(unknown, Err(ScramError::UnknownUser));
        assert_eq!(
            ScramError::BadProof.to_string(),
            ScramError::UnknownUser.to_string()
        );
    }

    #[test]
    fn a_credential_of_the_other_mechanism_is_unknown() {
        let cred =
            ScramCredential::from_password(ScramMechanism::Sha512, "pw", random_salt(), 4096);
        let mut s = ScramServer::new(ScramMechanism::Sha256);
        assert_eq!(
            s.step(b"n,,n=alice,r=abc", |_| Some(cred)),
            Err(ScramError::UnknownUser)
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for input in [
            &b""[..],
            b"n",
            b"x,,n=a,r=b",
            b"p=tls-unique,,n=a,r=b",
            b"n,,r=b",
            b"n,,n=a",
            b"n,,n=a,r=",
            b"n,,n==ZZ,r=b",
            b"n,a=other,n=a,r=b",
            b"n,,n=a,r=b,m=x",
            b"\xff\xfe",
        ] {
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let cred = ScramCredential::from_password(ScramMechanism::Sha256, "p", vec![1], 4096);
            assert!(s.step(input, |_| Some(cred)).is_err(), "{input:?}");
        }
        // A second message that is not a client-final.
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "p", vec![1], 4096);
        for input in [
            &b"c=biws"[..],
            b"c=biws,r=zzz,p=AAAA",
            b"c=eHl6,r=x,p=!!",
            b"junk,p=",
        ] {
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let first = s.step(b"n,,n=a,r=b", |_| Some(cred.clone()));
            assert!(matches!(first, Ok(Step::Continue(_))));
            assert!(s.step(input, |_| None).is_err(), "{input:?}");
        }
    }

    #[test]
    fn old_librdkafka_doubled_client_nonce_is_accepted_and_nothing_else() {
        let cred =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", random_salt(), 4096);
        for (sent, ok) in [("doubled", true), ("short", false), ("other", false)] {
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let Ok(Step::Continue(sf)) = s.step(b"n,,n=u,r=cnonce", |_| Some(cred.clone())) else {
                panic!("no server-first")
            };
            let sf = String::from_utf8(sf).unwrap_or_default();
            let nonce = sf
                .split(',')
                .next()
                .and_then(|f| f.strip_prefix("r="))
                .unwrap_or_default();
            let claimed = match sent {
                "doubled" => format!("cnonce{nonce}"),
                "short" => "cnonce".to_string(),
                _ => format!("xxxxxx{nonce}"),
            };
            let (msg, _) =
                client_final(ScramMechanism::Sha256, "pw", "n=u,r=cnonce", &sf, &claimed);
            assert_eq!(
                matches!(s.step(msg.as_bytes(), |_| None), Ok(Step::Done { .. })),
                ok,
                "{sent}"
            );
        }
    }

    #[test]
    fn saslname_escapes() {
        assert_eq!(decode_saslname("a=2Cb=3Dc"), Ok("a,b=c".into()));
        assert!(decode_saslname("a=").is_err());
        assert!(decode_saslname("").is_err());
    }

    #[test]
    fn debug_output_has_no_keys() {
        let cred = ScramCredential::from_password(ScramMechanism::Sha256, "p", vec![7; 8], 4096);
        let shown = format!("{cred:?}");
        assert!(
            !shown.contains("stored_key") && !shown.contains("salt"),
            "{shown}"
        );
    }

    /// A client's final message and the server-final it should get back.
    fn client_final(
        m: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> (String, String) {
        let mut salt = Vec::new();
        let mut iterations = 0;
        for f in server_first.split(',') {
            if let Some(s) = f.strip_prefix("s=") {
                salt = B64.decode(s).unwrap_or_default();
            }
            if let Some(i) = f.strip_prefix("i=") {
                iterations = i.parse().unwrap_or(0);
            }
        }
        let salted = m.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = m.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            format!("v={}", B64.encode(m.hmac(&server_key, auth.as_bytes()))),
        )
    }
}
