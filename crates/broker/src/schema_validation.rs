//! Broker-side schema validation, as Confluent Server offers it: a topic with
//! `confluent.value.schema.validation=true` (or the key variant) only accepts records
//! whose value (key) is in the schema registry's wire format (magic byte 0, then a
//! 4-byte schema id) with an id the registry has under the topic's subject
//! (`<topic>-value` / `<topic>-key`, the TopicNameStrategy). The registry is
//! `confluent.schema.registry.url`; it is asked `GET /schemas/ids/{id}/versions` once per
//! (subject, id) and the answer kept for [`KNOWN_FOR`] (ids are immutable; only a
//! subject's deletion can withdraw one). Unknown ids are not cached, so a schema
//! registered after a refusal is accepted on the next try.
//!
//! The check runs before the produce handler, off the append path, and only for topics
//! that ask for it; it walks the records without allocating per record (the ids of a
//! batch are collected in a small set).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::batch::{peek_offset_and_size, records_section, BatchHeader};
use gregor_protocol::kp::messages::ProduceRequest;
use gregor_protocol::records::RecordWalker;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::broker::Broker;
use crate::handlers::{AclOperation, RequestContext, ResourceType};

/// How long a confirmed (subject, id) is trusted without asking again.
pub const KNOWN_FOR: Duration = Duration::from_secs(300);
/// One registry lookup's deadline.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Confirmed pairs kept at most (the cache is cleared when full).
const MAX_KNOWN: usize = 100_000;
/// Inflated batches are walked up to this size (the append path enforces its own).
const DECOMPRESS_LIMIT: usize = 256 << 20;

/// Why a partition's records were refused before they reached the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A record does not carry a registered schema: INVALID_RECORD.
    Invalid(String),
    /// The registry could not be asked: a retriable error, nothing was appended.
    Unavailable(String),
}

/// Refusals by (topic index, partition index) in the request.
pub type Refusals = HashMap<(usize, i32), Refusal>;

pub struct SchemaValidation {
    /// `confluent.schema.registry.url` (the first of a comma-separated list), no
    /// trailing slash; `None` when not configured.
    url: Option<String>,
    client: Client<HttpConnector, Empty<Bytes>>,
    known: Mutex<HashMap<(String, i32), Instant>>,
}

/// Which parts of a record a topic validates.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    key: bool,
    value: bool,
}

impl SchemaValidation {
    pub fn new(url: &str) -> Self {
        let url = url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .find(|u| !u.is_empty())
            .map(str::to_string);
        Self {
            url,
            client: Client::builder(TokioExecutor::new()).build_http(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The refusals for a produce request: empty unless some topic asks for validation.
    /// Topics the principal may not write to are left to the handler to refuse.
    pub async fn check(
        &self,
        broker: &Broker,
        ctx: &RequestContext,
        req: &ProduceRequest,
    ) -> Refusals {
        let version = ctx.header.request_api_version;
        let mut refusals = Refusals::new();
        let image = (version >= 13).then(|| broker.metadata.image());
        let mut scratch = Vec::new();
        for (ti, topic) in req.topic_data.iter().enumerate() {
            let name = match &image {
                Some(image) => match image.topic_by_id(&topic.topic_id) {
                    Some(t) => t.name.clone(),
                    None => continue,
                },
                None => topic.name.0.to_string(),
            };
            if !ctx.allowed(AclOperation::Write, ResourceType::Topic, &name) {
                continue;
            }
            let Some(hosted) = broker.replicas.topic(&name) else {
                continue;
            };
            for pd in &topic.partition_data {
                let Ok(partition) = hosted.get(pd.index) else {
                    continue;
                };
                let settings = partition.settings();
                let wanted = Wanted {
                    key: settings.key_schema_validation,
                    value: settings.value_schema_validation,
                };
                if !wanted.key && !wanted.value {
                    continue;
                }
                let Some(records) = pd.records.as_ref() else {
                    continue;
                };
                if let Err(r) = self
                    .check_records(&name, records, wanted, &mut scratch)
                    .await
                {
                    refusals.insert((ti, pd.index), r);
                }
            }
        }
        refusals
    }

    async fn check_records(
        &self,
        topic: &str,
        records: &[u8],
        wanted: Wanted,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        let mut ids: BTreeSet<(bool, i32)> = BTreeSet::new();
        let mut at = 0;
        while at < records.len() {
            // Framing errors are the append path's to report, with its own codes.
            let Some((_, size)) = peek_offset_and_size(&records[at..]) else {
                return Ok(());
            };
            let Some(batch) = records.get(at..at + size) else {
                return Ok(());
            };
            at += size;
            let Ok(header) = BatchHeader::parse(batch) else {
                return Ok(());
            };
            if header.is_control() {
                continue;
            }
            let Ok(section) = records_section(&header, batch, scratch, DECOMPRESS_LIMIT) else {
                return Ok(());
            };
            for record in RecordWalker::new(section, header.record_count) {
                let Ok(record) = record else {
                    return Ok(());
                };
                for (is_key, on, bytes) in [
                    (true, wanted.key, record.key),
                    (false, wanted.value, record.value),
                ] {
                    if !on {
                        continue;
                    }
                    // A null key or value (a tombstone) carries no schema.
                    let Some(bytes) = bytes else { continue };
                    let part = if is_key { "key" } else { "value" };
                    let id = schema_id(bytes).ok_or_else(|| {
                        Refusal::Invalid(format!(
                            "the record's {part} at offset delta {} is not in the schema \
                             registry's wire format (magic byte 0 and a schema id), which \
                             topic {topic} requires (confluent.{part}.schema.validation)",
                            record.offset_delta
                        ))
                    })?;
                    ids.insert((is_key, id));
                }
            }
        }
        for (is_key, id) in ids {
            let subject = format!("{topic}-{}", if is_key { "key" } else { "value" });
            if !self.registered(&subject, id).await? {
                return Err(Refusal::Invalid(format!(
                    "schema id {id} is not registered under subject {subject} \
                     (topic {topic} validates {} schemas)",
                    if is_key { "key" } else { "value" }
                )));
            }
        }
        Ok(())
    }

    /// Whether the registry has `id` under `subject` (cached when it has).
    async fn registered(&self, subject: &str, id: i32) -> Result<bool, Refusal> {
        let key = (subject.to_string(), id);
        if let Ok(known) = self.known.lock() {
            if known.get(&key).is_some_and(|t| t.elapsed() < KNOWN_FOR) {
                return Ok(true);
            }
        }
        let Some(url) = &self.url else {
            return Err(Refusal::Invalid(
                "the topic requires schema validation but the broker has no \
                 confluent.schema.registry.url"
                    .into(),
            ));
        };
        let uri = format!("{url}/schemas/ids/{id}/versions");
        let unavailable = |e: String| Refusal::Unavailable(format!("schema registry {url}: {e}"));
        let uri: hyper::Uri = uri.parse().map_err(|e| unavailable(format!("{e}")))?;
        let lookup = async {
            let resp = self
                .client
                .get(uri)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes();
            Ok::<_, Refusal>((status, body))
        };
        let (status, body) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
            .await
            .map_err(|_| unavailable("no answer in time".into()))??;
        if status == hyper::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        let found = subject_listed(&body, subject)
            .ok_or_else(|| unavailable("unreadable answer to /schemas/ids/{id}/versions".into()))?;
        if found {
            if let Ok(mut known) = self.known.lock() {
                if known.len() >= MAX_KNOWN {
                    known.clear();
                }
                known.insert(key, Instant::now());
            }
        }
        Ok(found)
    }
}

/// The schema id of a value in the registry's wire format: magic byte 0, then the id
/// as a big-endian i32.
pub fn schema_id(bytes: &[u8]) -> Option<i32> {
    match bytes {
        [0, a, b, c, d, ..] => Some(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Whether a `/schemas/ids/{id}/versions` answer (`[{"subject":..,"version":..}]`)
/// lists `subject`; `None` if it is not that shape.
fn subject_listed(body: &[u8], subject: &str) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(
        v.as_array()?
            .iter()
            .any(|e| e.get("subject").and_then(|s| s.as_str()) == Some(subject)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_ids_are_read_and_anything_else_is_not() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 7, 42]), Some(263));
        assert_eq!(schema_id(&[0, 0, 0, 0, 5]), Some(5));
        assert_eq!(schema_id(&[0, 0, 0, 5]), None);
        assert_eq!(schema_id(&[1, 0, 0, 0, 5, 9]), None);
        assert_eq!(schema_id(b"plain text"), None);
        assert_eq!(schema_id(&[]), None);
    }

    #[test]
    fn the_registry_answer_must_list_the_subject() {
        let body = br#"[{"subject":"orders-value","version":2},{"subject":"other","version":1}]"#;
        assert_eq!(subject_listed(body, "orders-value"), Some(true));
        assert_eq!(subject_listed(body, "orders-key"), Some(false));
        assert_eq!(subject_listed(b"{}", "orders-value"), None);
        assert_eq!(subject_listed(b"not json", "orders-value"), None);
    }

    #[test]
    fn the_first_configured_url_is_used() {
        let v = SchemaValidation::new(" http://a:8081/ , http://b:8081");
        assert_eq!(v.url.as_deref(), Some("http://a:8081"));
        assert!(SchemaValidation::new("").url.is_none());
    }
}
