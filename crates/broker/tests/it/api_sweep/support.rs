//! Shared helpers: the sweep's context, `check` at both ends of a range, record helpers, codes.

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::ApiKey;
use gregor_protocol::kp::protocol::{Request, StrBytes};

use super::common::{Client, TestBroker};

/// What the checks share besides the client: the broker, and the topic and listener
/// the sweep's answers name.
pub(crate) struct Sweep<'a> {
    pub(crate) b: &'a TestBroker,
    /// The id of topic "sweep" (one partition).
    pub(crate) topic_id: uuid::Uuid,
    pub(crate) port: i32,
    /// The broker's log directory.
    pub(crate) dir: String,
}

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn one_record_batch(value: &[u8]) -> Vec<u8> {
    let recs = [NewRecord {
        key: Some(b"k"),
        value: Some(value),
        timestamp: gregor_broker::util::now_ms(),
        headers: &[],
    }];
    batch::build(0, Codec::None, &recs).unwrap()
}

/// (offset, value) of every record in a fetch's record bytes.
pub(crate) fn fetched_values(records: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let h = batch::BatchHeader::parse(&records[at..]).unwrap();
        let whole = &records[at..at + h.total_size()];
        let mut scratch = Vec::new();
        let data = batch::records_section(&h, whole, &mut scratch, 1 << 20).unwrap();
        for r in gregor_protocol::records::RecordWalker::new(data, h.record_count) {
            let r = r.unwrap();
            out.push((
                h.base_offset + i64::from(r.offset_delta),
                r.value.unwrap().to_vec(),
            ));
        }
        at += h.total_size();
    }
    out
}

/// Calls `make(v)` at each advertised end of the range (once if they are equal) and
/// checks the answer with `expect(v, &answer)`.
pub(crate) async fn check<R: Request>(
    c: &mut Client,
    (min, max): (i16, i16),
    make: impl Fn(i16) -> R,
    expect: impl Fn(i16, &R::Response),
) {
    let versions: &[i16] = if min == max { &[min] } else { &[min, max] };
    for &v in versions {
        eprintln!("sweep: {:?} v{v}", ApiKey::try_from(R::KEY));
        let answer = c.call(&make(v), v).await;
        expect(v, &answer);
    }
}

pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
pub(crate) const INVALID_GROUP_ID: i16 = 24;
pub(crate) const INVALID_PARTITIONS: i16 = 37;
pub(crate) const INVALID_REQUEST: i16 = 42;
pub(crate) const INVALID_CONFIG: i16 = 40;
pub(crate) const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;
pub(crate) const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
