//! The message browser: reads a range of one partition with a short-lived consumer
//! that is assigned the partition (no group, no commits), from an offset or from the
//! first offset at or after a timestamp, optionally keeping only records whose key
//! contains a substring.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster::{find_topic, Cluster};
use crate::error::{ConsoleError, Result};
use crate::model::{Message, MessagePage};

/// Records shown at most per page.
pub(crate) const MAX_LIMIT: usize = 500;
/// Records read at most when filtering by key.
pub(crate) const MAX_SCAN: usize = 10_000;

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Beginning,
    Offset(i64),
    /// Milliseconds since the epoch.
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Browse {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start: Start,
    pub(crate) limit: usize,
    /// Keep only records whose key contains this.
    pub(crate) key: Option<String>,
}

impl Cluster {
    pub(crate) fn browse(&self, q: &Browse) -> Result<MessagePage> {
        let md = self.metadata(Some(&q.topic))?;
        let partitions = find_topic(&md, &q.topic)?.partitions().len();
        if q.partition < 0 || usize::try_from(q.partition).map_or(true, |p| p >= partitions) {
            return Err(ConsoleError::NotFound(format!(
                "partition {} of {} ({partitions} partitions)",
                q.partition, q.topic
            )));
        }
        let (low, high) = self.watermarks(&q.topic, q.partition)?;
        let mut cfg = self.config.clone();
        // librdkafka's assign() wants a group id; this consumer never subscribes or
        // commits, so the group stays empty and unseen.
        cfg.set("group.id", "gregor-console")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = cfg
            .create()
            .map_err(ConsoleError::kafka("cannot create consumer"))?;
        let start = match q.start {
            Start::Beginning => low,
            Start::Offset(o) => o.clamp(low, high),
            Start::Timestamp(ms) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&q.topic, q.partition, Offset::Offset(ms))
                    .map_err(ConsoleError::kafka("bad timestamp"))?;
                let found = consumer
                    .offsets_for_times(tpl, self.timeout)
                    .map_err(ConsoleError::kafka("cannot look up offsets by time"))?;
                match found
                    .find_partition(&q.topic, q.partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => high,
                }
            }
        };
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let scan = if q.key.is_some() { MAX_SCAN } else { limit };
        // The records that exist in [start, high): no waiting for new ones.
        let want = usize::try_from(high.saturating_sub(start).max(0))
            .unwrap_or(usize::MAX)
            .min(scan);
        let mut page = MessagePage {
            topic: q.topic.clone(),
            partition: q.partition,
            partitions,
            low,
            high,
            start,
            scanned: 0,
            messages: Vec::new(),
        };
        if want == 0 {
            return Ok(page);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&q.topic, q.partition, Offset::Offset(start))
            .map_err(ConsoleError::kafka("bad offset"))?;
        consumer
            .assign(&tpl)
            .map_err(ConsoleError::kafka("cannot assign partition"))?;
        let deadline = Instant::now() + self.timeout;
        while page.scanned < want && page.messages.len() < limit {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            let Some(polled) = consumer.poll(left.min(Duration::from_millis(500))) else {
                continue;
            };
            let m = polled.map_err(ConsoleError::kafka("cannot read records"))?;
            if m.offset() >= high {
                break;
            }
            page.scanned += 1;
            let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
            if let Some(filter) = &q.key {
                if !key.as_deref().is_some_and(|k| k.contains(filter.as_str())) {
                    continue;
                }
            }
            let (value, value_is_json) = match m.payload() {
                Some(v) => {
                    let (text, json) = render_value(v);
                    (Some(text), json)
                }
                None => (None, false),
            };
            page.messages.push(Message {
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                key,
                value,
                value_is_json,
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        Ok(page)
    }
}

/// A value as text: a JSON object or array pretty-printed (and flagged), anything else
/// as lossy UTF-8. Transcoded token by token, so keys keep the producer's order.
pub(crate) fn render_value(v: &[u8]) -> (String, bool) {
    let looks_like_json = v
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    if looks_like_json {
        let mut de = serde_json::Deserializer::from_slice(v);
        let mut out = Vec::with_capacity(v.len() * 2);
        let mut ser = serde_json::Serializer::pretty(&mut out);
        if serde_transcode::transcode(&mut de, &mut ser).is_ok() && de.end().is_ok() {
            if let Ok(pretty) = String::from_utf8(out) {
                return (pretty, true);
            }
        }
    }
    (String::from_utf8_lossy(v).into_owned(), false)
}

/// A start time: milliseconds since the epoch, or RFC 3339 (`2026-12-03T06:30:00Z`,
/// also without the `Z`, read as UTC).
pub(crate) fn parse_time(s: &str) -> Result<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        ConsoleError::BadRequest(format!(
            "time {s:?}: {e} (use 2026-12-03T06:30:00Z or epoch milliseconds)"
        ))
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ConsoleError::BadRequest(format!("time {s:?} is before 1970")))?;
    i64::try_from(d.as_millis()).map_err(|_| ConsoleError::BadRequest(format!("time {s:?}")))
}

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn format_time(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) => {
            humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        }
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_objects_are_pretty_printed_and_other_values_are_text() {
        let (s, json) = render_value(br#" {"b":1,"a":[true]}"#);
        assert!(json);
        assert_eq!(s, "{\n  \"b\": 1,\n  \"a\": [\n    true\n  ]\n}");
        assert!(!render_value(br#"{"a":1} trailing"#).1);
        assert_eq!(render_value(b"42"), ("42".to_string(), false));
        assert_eq!(render_value(b"hello"), ("hello".to_string(), false));
        assert!(!render_value(&[0xff, 0xfe]).1);
    }

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01").unwrap(), 1000);
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_time(1500), "1970-01-01T00:00:01.500Z");
    }
}
