//! A minimal blocking Kafka protocol client for what librdkafka's safe API does not
//! offer: OffsetDelete (`gregor group delete-offsets`), the controller id (`gregor
//! cluster info`) and the transaction admin APIs (`gregor txn`). Messages are the generated `kafka-protocol` types; nothing
//! is hand-encoded here but the 4-byte length prefix. It honours the connection's `-X`
//! security properties (TLS, SASL PLAIN/SCRAM) as librdkafka does; see `wire_security`.

use std::io::{Read, Write};
use std::net::TcpStream;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::conn::{Conn, TIMEOUT};
use crate::wire_security::{Login, Security};

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

pub(crate) struct Wire {
    stream: Box<dyn ReadWrite>,
    correlation: i32,
}

impl Wire {
    /// A connection to the first bootstrap broker.
    pub(crate) fn open(conn: &Conn) -> Result<Self> {
        Self::connect(conn, conn.first_broker())
    }

    /// A connection to `addr` with `conn`'s security settings.
    pub(crate) fn connect(conn: &Conn, addr: &str) -> Result<Self> {
        let security = Security::from_props(&conn.props)?;
        let tcp = TcpStream::connect(addr).with_context(|| format!("cannot reach {addr}"))?;
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let stream: Box<dyn ReadWrite> = match security.tls {
            Some(config) => {
                let name = gregor_security::tls::server_name(addr)?;
                let tls = rustls::ClientConnection::new(config, name)?;
                Box::new(rustls::StreamOwned::new(tls, tcp))
            }
            None => Box::new(tcp),
        };
        let mut w = Self {
            stream,
            correlation: 0,
        };
        if let Some(login) = &security.sasl {
            w.login(login)?;
        }
        Ok(w)
    }

    fn login(&mut self, login: &Login) -> Result<()> {
        use gregor_security::scram::ScramMechanism;
        use gregor_security::scram_client::ScramClient;
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let hs = self.call(
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
            1,
        )?;
        if hs.error_code != 0 {
            bail!(
                "the broker does not offer SASL mechanism {} (it offers {:?})",
                login.mechanism,
                hs.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>()
            );
        }
        let mut auth = |bytes: Vec<u8>| -> Result<Bytes> {
            let r = self.call(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
                2,
            )?;
            if r.error_code != 0 {
                bail!(
                    "authentication failed: {}",
                    r.error_message
                        .as_deref()
                        .map_or_else(|| error_name(r.error_code), str::to_string)
                );
            }
            Ok(r.auth_bytes)
        };
        match ScramMechanism::from_name(&login.mechanism) {
            None if login.mechanism == "PLAIN" => {
                auth(format!("\0{}\0{}", login.user, login.password).into_bytes())?;
            }
            None => bail!(
                "SASL mechanism {}: this command speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512",
                login.mechanism
            ),
            Some(m) => {
                let mut scram = ScramClient::new(m, &login.user, &login.password);
                let server_first = auth(scram.client_first())?;
                let client_final = scram.client_final(&server_first)?;
                let server_final = auth(client_final)?;
                scram.verify_server_final(&server_final)?;
            }
        }
        Ok(())
    }

    /// A connection to the coordinator of `key` (`key_type` 0: a group, 1: a
    /// transactional id), found through the first bootstrap broker with FindCoordinator.
    pub(crate) fn coordinator(conn: &Conn, key: &str, key_type: i8) -> Result<Self> {
        use kafka_protocol::messages::FindCoordinatorRequest;
        let mut w = Self::open(conn)?;
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
        Self::connect(conn, &format!("{}:{}", found.host.as_str(), found.port))
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
