//! A Kafka-protocol connection from this broker to another one (the inter-broker
//! listener is the client listener): followers fetch through it, and the transaction
//! coordinator sends markers through it. One request in flight at a time; the codecs
//! are `kafka-protocol`'s.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::kp::messages::{ApiKey, RequestHeader, ResponseHeader};
use gregor_protocol::kp::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

/// The largest response accepted (a fetch answer is bounded by
/// `replica.fetch.response.max.bytes`; this only guards against garbage).
const MAX_RESPONSE: usize = 256 << 20;

pub struct BrokerClient {
    broker: i32,
    stream: TcpStream,
    correlation: i32,
    client_id: StrBytes,
}

impl BrokerClient {
    pub async fn connect(
        broker: i32,
        addr: &str,
        client_id: String,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(broker))?
            .map_err(|source| ClientError::Io { broker, source })?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            broker,
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        })
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
