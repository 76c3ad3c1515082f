//! An in-process broker on 127.0.0.1:0 and a raw protocol client for tests that need
//! exact control over the bytes on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_broker::{Broker, BrokerConfig};
use gregor_protocol::kp::messages::{ApiKey, RequestHeader, ResponseHeader};
use gregor_protocol::kp::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub struct TestBroker {
    pub addr: std::net::SocketAddr,
    pub broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), overrides).await
    }

    /// Starts a broker on an existing data directory (a restart: see [`Self::stop_keeping_data`]).
    pub async fn start_in(dir: tempfile::TempDir, overrides: &[(&str, &str)]) -> Self {
        let mut explicit: BTreeMap<String, String> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        explicit.insert("log.dirs".into(), dir.path().display().to_string());
        explicit.insert("listeners".into(), "PLAINTEXT://127.0.0.1:0".into());
        let config = BrokerConfig::from_explicit(explicit).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let broker = Broker::open(config).await.unwrap();
        broker.set_bound_port(addr.port());
        let (tx, rx) = oneshot::channel::<()>();
        let b = broker.clone();
        let task = tokio::spawn(async move {
            gregor_broker::server::run(b, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            broker,
            stop: Some(tx),
            task: Some(task),
            dir,
        }
    }

    pub async fn connect(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr).await.unwrap(),
            correlation: 0,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Stops the broker cleanly and hands back its data directory, for a restart.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        drop(self.broker);
        self.dir
    }
}

pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    /// A client of the broker at `addr`.
    pub async fn connect_to(addr: std::net::SocketAddr) -> Self {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            correlation: 0,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        if self.stream.read_exact(&mut len).await.is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    /// True once the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(10), self.stream.read(&mut b))
                .await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub fn encode<R: Request>(&mut self, req: &R, version: i16) -> Bytes {
        self.correlation += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gregor-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }

    /// Sends a request and decodes its response.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let frame = self.encode(req, version);
        self.send_raw(&frame).await;
        let mut resp = self.read_frame().await.expect("connection closed");
        let header =
            ResponseHeader::decode(&mut resp, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        let body = R::Response::decode(&mut resp, version).unwrap();
        assert_eq!(resp.remaining(), 0, "trailing bytes in response");
        body
    }

    /// Sends all `reqs` before reading any answer (pipelined, as clients do), then
    /// decodes the answers in order.
    pub async fn call_pipelined<R: Request>(
        &mut self,
        reqs: &[R],
        version: i16,
    ) -> Vec<R::Response> {
        let first = self.correlation + 1;
        let mut frames = BytesMut::new();
        for r in reqs {
            let frame = self.encode(r, version);
            frames.extend_from_slice(&frame);
        }
        self.send_raw(&frames).await;
        let mut out = Vec::with_capacity(reqs.len());
        for i in 0..reqs.len() {
            let mut resp = self.read_frame().await.expect("connection closed");
            let header =
                ResponseHeader::decode(&mut resp, R::Response::header_version(version)).unwrap();
            assert_eq!(header.correlation_id, first + i as i32);
            out.push(R::Response::decode(&mut resp, version).unwrap());
        }
        out
    }

    /// Creates a topic (CreateTopics v7) and asserts it worked.
    pub async fn create_topic(&mut self, name: &str, partitions: i32) {
        use gregor_protocol::kp::messages::create_topics_request::CreatableTopic;
        use gregor_protocol::kp::messages::{CreateTopicsRequest, TopicName};
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.into())))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
            .with_timeout_ms(10_000);
        assert_eq!(self.call(&req, 7).await.topics[0].error_code, 0);
    }
}

impl Client {
    /// A client over a stream the test connected itself (from a chosen source address).
    pub fn from_stream(stream: TcpStream) -> Self {
        Client {
            stream,
            correlation: 0,
        }
    }
}
