//! A minimal async Kafka protocol client for what librdkafka's safe API does not offer:
//! the controller id and broker racks (Metadata v9), and the transaction admin APIs
//! (ListTransactions, DescribeTransactions; KIP-664). Messages are the generated
//! `kafka-protocol` types; nothing is hand-encoded but the 4-byte length prefix.
//!
//! It speaks PLAINTEXT only: with `-X security.protocol=SSL|SASL_*` these parts of the
//! console say they are unavailable (`Wire::check_plaintext`), the rest works through
//! librdkafka.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ConsoleError, Result};

/// Responses larger than this are refused (a console asks for small things).
const MAX_RESPONSE: i32 = 64 << 20;

pub(crate) struct Wire {
    stream: TcpStream,
    correlation: i32,
    timeout: Duration,
}

fn wire_err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> ConsoleError + '_ {
    move |e| ConsoleError::Wire(format!("{what}: {e}"))
}

impl Wire {
    /// Errors unless `security.protocol` is PLAINTEXT (or unset).
    pub(crate) fn check_plaintext(security_protocol: Option<&str>) -> Result<()> {
        match security_protocol {
            None => Ok(()),
            Some(p) if p.eq_ignore_ascii_case("plaintext") => Ok(()),
            Some(p) => Err(ConsoleError::Wire(format!(
                "not shown: the console's raw protocol client speaks PLAINTEXT only (security.protocol={p})"
            ))),
        }
    }

    pub(crate) async fn connect(addr: &str, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConsoleError::Wire(format!("cannot reach {addr}: timed out")))?
            .map_err(|e| ConsoleError::Wire(format!("cannot reach {addr}: {e}")))?;
        Ok(Self {
            stream,
            correlation: 0,
            timeout,
        })
    }

    /// Sends `req` at `version` and decodes the response.
    pub(crate) async fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        tokio::time::timeout(self.timeout, self.exchange(req, version))
            .await
            .map_err(|_| ConsoleError::Wire("the broker did not answer in time".into()))?
    }

    async fn exchange<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        self.correlation = self.correlation.wrapping_add(1);
        let key = ApiKey::try_from(R::KEY)
            .map_err(|()| ConsoleError::Wire(format!("unknown API key {}", R::KEY)))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gregor-console")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .map_err(wire_err("cannot encode request header"))?;
        req.encode(&mut buf, version)
            .map_err(wire_err("cannot encode request"))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| ConsoleError::Wire("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).await?;
        let len = self.stream.read_i32().await?;
        if !(0..=MAX_RESPONSE).contains(&len) {
            return Err(ConsoleError::Wire(format!("bad response length {len}")));
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body).await?;
        let mut body = Bytes::from(body);
        let h = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| ConsoleError::Wire(format!("cannot decode response header: {e}")))?;
        if h.correlation_id != self.correlation {
            return Err(ConsoleError::Wire("response out of order".into()));
        }
        let resp = R::Response::decode(&mut body, version)
            .map_err(|e| ConsoleError::Wire(format!("cannot decode response: {e}")))?;
        if body.has_remaining() {
            return Err(ConsoleError::Wire("trailing bytes in response".into()));
        }
        Ok(resp)
    }
}

/// A Kafka error code by name (`CoordinatorNotAvailable`), for pages.
pub(crate) fn error_name(code: i16) -> String {
    kafka_protocol::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}
