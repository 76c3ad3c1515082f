//! A Kafka-protocol connection from this broker to another one's inter-broker listener:
//! followers fetch through it, and the transaction coordinator sends markers through
//! it. Over TLS and with a SASL login when that listener asks for them (see
//! `inter_broker`). One request in flight at a time; the codecs are `kafka-protocol`'s.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::kp::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use gregor_protocol::kp::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use gregor_security::scram::ScramMechanism;
use gregor_security::scram_client::ScramClient;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::inter_broker::{InterBrokerSecurity, SaslLogin};

/// A plain or TLS stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a call to another broker failed. Any of them ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to broker {broker} failed: {source}")]
    Io { broker: i32, source: std::io::Error },
    #[error("broker {0} did not answer in time")]
    Timeout(i32),
    #[error("broker {broker} sent an undecodable response: {reason}")]
    Protocol { broker: i32, reason: String },
    #[error("broker {0} is not registered or has no endpoint")]
    NoEndpoint(i32),
    #[error("broker {broker} refused this broker's login: {reason}")]
    Auth { broker: i32, reason: String },
}

/// The largest response accepted (a fetch answer is bounded by
/// `replica.fetch.response.max.bytes`; this only guards against garbage).
const MAX_RESPONSE: usize = 256 << 20;

pub struct BrokerClient {
    broker: i32,
    stream: Box<dyn Io>,
    correlation: i32,
    client_id: StrBytes,
}

impl BrokerClient {
    pub async fn connect(
        broker: i32,
        addr: &str,
        client_id: String,
        timeout: Duration,
        security: &InterBrokerSecurity,
    ) -> Result<Self, ClientError> {
        let io = |source| ClientError::Io { broker, source };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(broker))?
            .map_err(io)?;
        let _ = tcp.set_nodelay(true);
        let tls = if security.protocol.tls() {
            match &security.tls {
                Ok(config) => Some(config),
                Err(why) => {
                    return Err(ClientError::Auth {
                        broker,
                        reason: why.clone(),
                    })
                }
            }
        } else {
            None
        };
        let stream: Box<dyn Io> = match tls {
            Some(config) => {
                let name = gregor_security::tls::server_name(addr).map_err(|e| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        e.to_string(),
                    ))
                })?;
                let tls = tokio::time::timeout(
                    timeout,
                    TlsConnector::from(config.clone()).connect(name, tcp),
                )
                .await
                .map_err(|_| ClientError::Timeout(broker))?
                .map_err(io)?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let mut client = Self {
            broker,
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        };
        if let Some(login) = &security.sasl {
            client.login(login, timeout).await?;
        }
        Ok(client)
    }

    /// SaslHandshake, then SaslAuthenticate until the mechanism is done.
    async fn login(&mut self, login: &SaslLogin, timeout: Duration) -> Result<(), ClientError> {
        let broker = self.broker;
        let refused = |reason: String| ClientError::Auth { broker, reason };
        let hs = self
            .call(
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
                1,
                timeout,
            )
            .await?;
        if hs.error_code != 0 {
            return Err(refused(format!(
                "SaslHandshake error {} (it offers {:?})",
                hs.error_code,
                hs.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>()
            )));
        }
        let scram = ScramMechanism::from_name(&login.mechanism)
            .map(|m| ScramClient::new(m, &login.user, &login.password));
        let Some(mut scram) = scram else {
            // PLAIN: authzid (empty), user, password.
            let message = format!("\0{}\0{}", login.user, login.password);
            self.authenticate(Bytes::from(message), timeout).await?;
            return Ok(());
        };
        let server_first = self
            .authenticate(Bytes::from(scram.client_first()), timeout)
            .await?;
        let client_final = scram
            .client_final(&server_first)
            .map_err(|e| refused(e.to_string()))?;
        let server_final = self
            .authenticate(Bytes::from(client_final), timeout)
            .await?;
        scram
            .verify_server_final(&server_final)
            .map_err(|e| refused(format!("the server's SCRAM signature: {e}")))
    }

    async fn authenticate(
        &mut self,
        bytes: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        let resp = self
            .call(
                &SaslAuthenticateRequest::default().with_auth_bytes(bytes),
                2,
                timeout,
            )
            .await?;
        if resp.error_code != 0 {
            return Err(ClientError::Auth {
                broker: self.broker,
                reason: resp
                    .error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error {}", resp.error_code)),
            });
        }
        Ok(resp.auth_bytes)
    }

    /// Sends `req` at `version` and waits up to `timeout` for its response.
    pub async fn call<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let broker = self.broker;
        let protocol = |reason: String| ClientError::Protocol { broker, reason };
        self.correlation = self.correlation.wrapping_add(1);
        let key = ApiKey::try_from(R::KEY).map_err(|_| protocol("unknown api key".into()))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .map_err(|e| protocol(e.to_string()))?;
        req.encode(&mut buf, version)
            .map_err(|e| protocol(e.to_string()))?;
        let len = i32::try_from(buf.len() - 4).map_err(|_| protocol("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let exchange = async {
            self.stream.write_all(&buf).await?;
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await?;
            let n = usize::try_from(i32::from_be_bytes(len)).unwrap_or(usize::MAX);
            if n > MAX_RESPONSE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response of {n} bytes"),
                ));
            }
            let mut body = vec![0u8; n];
            self.stream.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        };
        let mut frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(broker))?
            .map_err(|source| ClientError::Io { broker, source })?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| protocol(e.to_string()))?;
        if header.correlation_id != self.correlation {
            return Err(protocol(format!(
                "correlation id {} for request {}",
                header.correlation_id, self.correlation
            )));
        }
        let body = R::Response::decode(&mut frame, version).map_err(|e| protocol(e.to_string()))?;
        if frame.has_remaining() {
            return Err(protocol("trailing bytes".into()));
        }
        Ok(body)
    }
}
