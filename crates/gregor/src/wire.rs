//! A minimal blocking Kafka protocol client for what librdkafka's safe API does not
//! offer: OffsetDelete (`gregor group delete-offsets`), the controller id (`gregor
//! cluster info`) and the transaction admin APIs (`gregor txn`). Messages are the generated `kafka-protocol` types; nothing
//! is hand-encoded here but the 4-byte length prefix.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::conn::TIMEOUT;

pub(crate) struct Wire {
    stream: TcpStream,
    correlation: i32,
}

impl Wire {
    pub(crate) fn connect(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("cannot reach {addr}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Self {
            stream,
            correlation: 0,
        })
    }

    /// A connection to the coordinator of `key` (`key_type` 0: a group, 1: a
    /// transactional id), found through `bootstrap` with FindCoordinator.
    pub(crate) fn coordinator(bootstrap: &str, key: &str, key_type: i8) -> Result<Self> {
        use kafka_protocol::messages::FindCoordinatorRequest;
        let mut w = Self::connect(bootstrap)?;
        let found = w.call(
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(key.to_string()))
                .with_key_type(key_type),
            3,
        )?;
        if found.error_code != 0 {
            bail!(
                "cannot find the coordinator of {key}: {}",
                error_name(found.error_code)
            );
        }
        Self::connect(&format!("{}:{}", found.host.as_str(), found.port))
    }

    /// Sends `req` at `version` and decodes the response.
    pub(crate) fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        self.correlation += 1;
        let key = ApiKey::try_from(R::KEY).map_err(|()| anyhow::anyhow!("unknown API key"))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gregor-cli")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, key.request_header_version(version))?;
        req.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).context("cannot send request")?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).context("no response")?;
        let len = i32::from_be_bytes(len);
        if !(0..=100 << 20).contains(&len) {
            bail!("bad response length {len}");
        }
        let mut body = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut body)
            .context("truncated response")?;
        let mut body = Bytes::from(body);
        let h = ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
        if h.correlation_id != self.correlation {
            bail!("response out of order");
        }
        let resp = R::Response::decode(&mut body, version)?;
        if body.has_remaining() {
            bail!("trailing bytes in response");
        }
        Ok(resp)
    }
}

/// A Kafka error code by name (`UnknownTopicOrPartition`), for messages.
pub(crate) fn error_name(code: i16) -> String {
    kafka_protocol::ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"))
}
