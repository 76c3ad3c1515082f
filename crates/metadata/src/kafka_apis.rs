//! Kafka-protocol requests the active controller serves (Kafka's controller-listener
//! APIs): AlterPartition (API 56) today.
//!
//! They travel over the quorum's RPC as the application payload: a Kafka request
//! (request header v2, then the body) without the length prefix, since the RPC frame
//! carries lengths; the answer is a Kafka response (header v1, then the body). An
//! application payload whose first byte is 0 is such a request: an API key below 256
//! encodes as a 0 first byte, and the JSON requests ([`crate::active::ControllerRpc`])
//! start with `{` or `"`.

use bytes::{Bytes, BytesMut};
use gregor_protocol::kp::messages::{
    AlterPartitionRequest, AlterPartitionResponse, ApiKey, RequestHeader, ResponseHeader,
};
use gregor_protocol::kp::protocol::{Decodable, Encodable, HeaderVersion, Request};
use gregor_protocol::kp::ResponseError;

use crate::active::{ControllerFailure, QuorumController};

/// Why a Kafka-protocol exchange with the controller failed to encode or decode.
#[derive(Debug, thiserror::Error)]
pub enum KafkaApiError {
    #[error("cannot encode the request: {0}")]
    Encode(String),
    #[error("malformed controller answer: {0}")]
    Decode(String),
    #[error("the controller does not serve API key {0}")]
    Unsupported(i16),
}

/// Whether an application payload is a Kafka request (see the module docs).
pub fn is_kafka_request(payload: &[u8]) -> bool {
    payload.first() == Some(&0)
}

/// Encodes `req` at `version` as the application payload.
pub fn encode_request<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Vec<u8>, KafkaApiError> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| KafkaApiError::Unsupported(R::KEY))?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.to_string().into()));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| KafkaApiError::Encode(e.to_string()))?;
    req.encode(&mut buf, version)
        .map_err(|e| KafkaApiError::Encode(e.to_string()))?;
    Ok(buf.to_vec())
}

/// Decodes the answer to a request of type `R` sent at `version`.
pub fn decode_response<R: Request>(
    payload: Vec<u8>,
    version: i16,
) -> Result<R::Response, KafkaApiError> {
    let mut frame = Bytes::from(payload);
    ResponseHeader::decode(&mut frame, R::Response::header_version(version))
        .map_err(|e| KafkaApiError::Decode(e.to_string()))?;
    R::Response::decode(&mut frame, version).map_err(|e| KafkaApiError::Decode(e.to_string()))
}

fn encode_response<T: Encodable + HeaderVersion>(
    correlation_id: i32,
    body: &T,
    version: i16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    match header
        .encode(&mut buf, T::header_version(version))
        .and_then(|()| body.encode(&mut buf, version))
    {
        Ok(()) => buf.to_vec(),
        // An answer that cannot be encoded reads as malformed on the other side.
        Err(_) => Vec::new(),
    }
}

/// The top-level error the controller answers when it cannot decide at all.
pub fn failure_code(f: &ControllerFailure) -> ResponseError {
    match f {
        ControllerFailure::NotController { .. } => ResponseError::NotController,
        ControllerFailure::Unavailable(_) => ResponseError::RequestTimedOut,
        _ => ResponseError::UnknownServerError,
    }
}

impl QuorumController {
    /// Serves one Kafka request frame (see the module docs); an undecodable frame or an
    /// API the controller does not serve gets an empty answer.
    pub async fn serve_kafka(&self, payload: Vec<u8>) -> Vec<u8> {
        let mut frame = Bytes::from(payload);
        let Some(key) = frame.get(..4).map(|b| {
            (
                i16::from_be_bytes([b[0], b[1]]),
                i16::from_be_bytes([b[2], b[3]]),
            )
        }) else {
            return Vec::new();
        };
        let (api_key, version) = key;
        if api_key != AlterPartitionRequest::KEY
            || !(2..=crate::alter_partition::VERSION).contains(&version)
        {
            return Vec::new();
        }
        let Ok(header) = RequestHeader::decode(
            &mut frame,
            ApiKey::AlterPartition.request_header_version(version),
        ) else {
            return Vec::new();
        };
        let Ok(req) = AlterPartitionRequest::decode(&mut frame, version) else {
            return Vec::new();
        };
        let resp = self.alter_partition(&req).await;
        encode_response(header.correlation_id, &resp, version)
    }

    /// Decides and commits an AlterPartition (see [`crate::alter_partition`]): the
    /// accepted changes as one metadata entry, and the answer of the decision that was
    /// committed.
    pub async fn alter_partition(&self, req: &AlterPartitionRequest) -> AlterPartitionResponse {
        let answer = std::sync::Mutex::new(AlterPartitionResponse::default());
        let decide = |img: &crate::image::MetadataImage| {
            let (records, resp) = crate::alter_partition::decide(img, req);
            if let Ok(mut a) = answer.lock() {
                *a = resp;
            }
            Ok(records)
        };
        let committed = if self.quorum().is_leader() {
            self.quorum()
                .commit(decide)
                .await
                .map_err(ControllerFailure::from)
        } else {
            Err(ControllerFailure::NotController {
                leader: self.quorum().leader(),
            })
        };
        match committed {
            Ok(_) => answer.into_inner().unwrap_or_default(),
            Err(f) => AlterPartitionResponse::default().with_error_code(failure_code(&f).code()),
        }
    }
}
