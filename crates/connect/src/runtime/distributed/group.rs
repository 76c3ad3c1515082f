//! A classic-group member client for the `connect` protocol type, on the
//! `kafka-protocol` message types over one tokio TCP connection to the group
//! coordinator (librdkafka only joins groups as a `consumer`).
//!
//! FindCoordinator finds the coordinator through the bootstrap brokers; JoinGroup
//! (with KIP-394's MEMBER_ID_REQUIRED round trip) and SyncGroup form a generation;
//! Heartbeat keeps the session alive and tells when a rebalance starts; LeaveGroup on
//! shutdown lets the group rebalance at once instead of after the session timeout.
//! Plaintext connections only.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    RequestHeader, ResponseHeader, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::protocol::{PROTOCOL_NAME, PROTOCOL_TYPE};
use super::DistError;

const NONE: i16 = 0;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// Session settings (Kafka's worker properties of the same names).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub session_ms: i32,
    pub heartbeat_ms: i32,
    pub rebalance_ms: i32,
}

/// The outcome of a JoinGroup round.
#[derive(Debug)]
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader_id: String,
    /// (member id, protocol metadata); filled for the leader only.
    pub members: Vec<(String, Bytes)>,
}

struct Connection {
    stream: TcpStream,
    correlation: i32,
}

impl Connection {
    async fn open(addr: &str) -> Result<Self, DistError> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| DistError::Io(format!("cannot reach {addr}: timed out")))?
            .map_err(|e| DistError::Io(format!("cannot reach {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            correlation: 0,
        })
    }

    /// Sends `req` at `version` and decodes the answer; `wait` bounds the round trip
    /// (JoinGroup waits for the whole rebalance).
    async fn call<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        wait: Duration,
    ) -> Result<R::Response, DistError> {
        self.correlation = self.correlation.wrapping_add(1);
        let key = ApiKey::try_from(R::KEY)
            .map_err(|()| DistError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("gregor-connect")));
        let enc = |e: anyhow::Error| DistError::Protocol(format!("cannot encode {key:?}: {e}"));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .map_err(enc)?;
        req.encode(&mut buf, version).map_err(enc)?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| DistError::Protocol("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let io = |e: std::io::Error| DistError::Io(format!("{key:?}: {e}"));
        let round_trip = async {
            self.stream.write_all(&buf).await.map_err(io)?;
            let size = self.stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| *s <= 64 << 20)
                .ok_or_else(|| DistError::Protocol(format!("bad frame size {size}")))?;
            let mut body = vec![0u8; size];
            self.stream.read_exact(&mut body).await.map_err(io)?;
            Ok::<_, DistError>(body)
        };
        let body = tokio::time::timeout(wait, round_trip)
            .await
            .map_err(|_| DistError::Io(format!("{key:?}: no answer in {wait:?}")))??;
        let mut body = Bytes::from(body);
        let dec = |e: anyhow::Error| DistError::Protocol(format!("cannot decode {key:?}: {e}"));
        let rh =
            ResponseHeader::decode(&mut body, key.response_header_version(version)).map_err(dec)?;
        if rh.correlation_id != self.correlation {
            return Err(DistError::Protocol(format!(
                "{key:?}: correlation id {} instead of {}",
                rh.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut body, version).map_err(dec)
    }
}

/// One worker's membership in the Connect group.
pub struct GroupMember {
    bootstrap: Vec<String>,
    group: String,
    timeouts: Timeouts,
    coordinator: Option<Connection>,
    pub member_id: String,
    pub generation: i32,
}

fn group_error(api: &'static str, code: i16) -> DistError {
    match code {
        REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => {
            DistError::Rebalance(api, code)
        }
        COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR | COORDINATOR_LOAD_IN_PROGRESS => {
            DistError::Coordinator(api, code)
        }
        _ => DistError::Group(api, code),
    }
}

impl GroupMember {
    pub fn new(bootstrap: &str, group: &str, timeouts: Timeouts) -> Self {
        GroupMember {
            bootstrap: bootstrap
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            group: group.to_string(),
            timeouts,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
        }
    }

    fn group_id(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group.clone()))
    }

    /// Forgets the coordinator connection (after an I/O error or NOT_COORDINATOR).
    pub fn reset_coordinator(&mut self) {
        self.coordinator = None;
    }

    /// Forgets the member id (after UNKNOWN_MEMBER_ID): the next join starts afresh.
    pub fn reset_member(&mut self) {
        self.member_id.clear();
        self.generation = -1;
    }

    async fn coordinator(&mut self) -> Result<&mut Connection, DistError> {
        if self.coordinator.is_none() {
            let mut last = DistError::Io("no bootstrap.servers".into());
            for b in self.bootstrap.clone() {
                let found = async {
                    let mut c = Connection::open(&b).await?;
                    let r = c
                        .call(
                            &FindCoordinatorRequest::default()
                                .with_key(StrBytes::from_string(self.group.clone()))
                                .with_key_type(0),
                            2,
                            Duration::from_secs(10),
                        )
                        .await?;
                    if r.error_code != NONE {
                        return Err(group_error("FindCoordinator", r.error_code));
                    }
                    Connection::open(&format!("{}:{}", r.host.as_str(), r.port)).await
                };
                match found.await {
                    Ok(c) => {
                        self.coordinator = Some(c);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if self.coordinator.is_none() {
                return Err(last);
            }
        }
        self.coordinator
            .as_mut()
            .ok_or_else(|| DistError::Io("no coordinator".into()))
    }

    /// Runs `f` on the coordinator connection; an I/O or coordinator error drops it.
    async fn with_coordinator<T, F>(&mut self, f: F) -> Result<T, DistError>
    where
        F: for<'c> FnOnce(
            &'c mut Connection,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, DistError>> + Send + 'c>,
        >,
    {
        let conn = self.coordinator().await?;
        let r = f(conn).await;
        if matches!(r, Err(DistError::Io(_)) | Err(DistError::Coordinator(..))) {
            self.coordinator = None;
        }
        r
    }

    /// JoinGroup with this worker's metadata; returns when the rebalance completed.
    pub async fn join(&mut self, metadata: Vec<u8>) -> Result<Joined, DistError> {
        let wait = Duration::from_millis(u64::try_from(self.timeouts.rebalance_ms).unwrap_or(0))
            + Duration::from_secs(10);
        for _ in 0..3 {
            let req = JoinGroupRequest::default()
                .with_group_id(self.group_id())
                .with_session_timeout_ms(self.timeouts.session_ms)
                .with_rebalance_timeout_ms(self.timeouts.rebalance_ms)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(PROTOCOL_NAME))
                    .with_metadata(Bytes::from(metadata.clone()))]);
            let r = self
                .with_coordinator(|c| Box::pin(async move { c.call(&req, 5, wait).await }))
                .await?;
            match r.error_code {
                NONE => {
                    self.member_id = r.member_id.to_string();
                    self.generation = r.generation_id;
                    return Ok(Joined {
                        generation: r.generation_id,
                        member_id: self.member_id.clone(),
                        leader_id: r.leader.to_string(),
                        members: r
                            .members
                            .into_iter()
                            .map(|m| (m.member_id.to_string(), m.metadata))
                            .collect(),
                    });
                }
                MEMBER_ID_REQUIRED => self.member_id = r.member_id.to_string(),
                UNKNOWN_MEMBER_ID => self.reset_member(),
                code => {
                    let e = group_error("JoinGroup", code);
                    if matches!(e, DistError::Coordinator(..)) {
                        self.coordinator = None;
                    }
                    return Err(e);
                }
            }
        }
        Err(DistError::Group("JoinGroup", MEMBER_ID_REQUIRED))
    }

    /// SyncGroup: the leader passes every member's assignment, followers none; returns
    /// this member's assignment bytes.
    pub async fn sync(&mut self, assignments: Vec<(String, Vec<u8>)>) -> Result<Bytes, DistError> {
        let wait = Duration::from_millis(u64::try_from(self.timeouts.rebalance_ms).unwrap_or(0))
            + Duration::from_secs(10);
        let req = SyncGroupRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(m))
                            .with_assignment(Bytes::from(a))
                    })
                    .collect(),
            );
        let r = self
            .with_coordinator(|c| Box::pin(async move { c.call(&req, 3, wait).await }))
            .await?;
        match r.error_code {
            NONE => Ok(r.assignment),
            code => Err(group_error("SyncGroup", code)),
        }
    }

    /// One heartbeat; `Err(Rebalance)` means rejoin.
    pub async fn heartbeat(&mut self) -> Result<(), DistError> {
        let req = HeartbeatRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let wait = Duration::from_millis(u64::try_from(self.timeouts.session_ms).unwrap_or(0));
        let r = self
            .with_coordinator(|c| Box::pin(async move { c.call(&req, 3, wait).await }))
            .await?;
        match r.error_code {
            NONE => Ok(()),
            code => Err(group_error("Heartbeat", code)),
        }
    }

    /// LeaveGroup (clean shutdown); errors are ignored: the session times out anyway.
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        let req = LeaveGroupRequest::default()
            .with_group_id(self.group_id())
            .with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))]);
        let r = self
            .with_coordinator(|c| {
                Box::pin(async move { c.call(&req, 3, Duration::from_secs(5)).await })
            })
            .await;
        if let Err(e) = r {
            tracing::warn!("LeaveGroup failed: {e}");
        }
        self.reset_member();
    }
}
