//! Reading a share-partition's records from its log: the stored batch bytes, never
//! re-encoded, and the offsets each batch spans (from the batch headers).

use bytes::BytesMut;

use super::partition::{AcquiredRange, BatchSpan, Limits, SharePartition};
use crate::error::ReplicaError;
use crate::partition::Partition;

/// Where in a v2 batch header: base offset (0), length (8), attributes (21),
/// last offset delta (23); 61 bytes of header in all.
const HEADER: usize = 61;
const CONTROL_BIT: u16 = 0x20;
const TRANSACTIONAL_BIT: u16 = 0x10;

/// The batches in `bytes` (whole batches, as the log returns them).
pub fn spans(bytes: &[u8]) -> Vec<BatchSpan> {
    headers(bytes).into_iter().map(|h| h.span).collect()
}

/// What the share path needs of a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    span: BatchSpan,
    producer_id: i64,
    transactional: bool,
    /// Where the batch ends in the bytes read.
    end: usize,
}

/// Each batch's end position in `bytes` (as [`spans`] lists them).
fn ends(bytes: &[u8]) -> Vec<usize> {
    headers(bytes).into_iter().map(|h| h.end).collect()
}

/// The part of `chunk` (whole batches: `spans`, ending at `ends`) that holds the
/// `acquired` offsets: from the first batch with an acquired offset to the last one.
/// A fetch sends only that, not every batch read to find them.
fn trim<'a>(
    chunk: &'a [u8],
    spans: &[BatchSpan],
    ends: &[usize],
    acquired: &[AcquiredRange],
) -> &'a [u8] {
    let (Some(lo), Some(hi)) = (
        acquired.iter().map(|r| r.first).min(),
        acquired.iter().map(|r| r.last).max(),
    ) else {
        return &chunk[..0];
    };
    let first = spans.iter().position(|s| s.last >= lo).unwrap_or(0);
    let last = spans
        .iter()
        .position(|s| s.last >= hi)
        .unwrap_or(spans.len().saturating_sub(1));
    let start = first
        .checked_sub(1)
        .and_then(|i| ends.get(i))
        .copied()
        .unwrap_or(0);
    let end = ends.get(last).copied().unwrap_or(chunk.len());
    chunk.get(start..end).unwrap_or(chunk)
}

/// How much one round of a fetch reads at most (beyond the first batch): a share fetch
/// wants `max_records` records, not `max_bytes` of log, and reads again if it needs
/// more.
const ROUND_BYTES: usize = 1 << 20;

fn headers(bytes: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len().saturating_sub(at) >= HEADER {
        let b = &bytes[at..];
        let base = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        let attrs = u16::from_be_bytes([b[21], b[22]]);
        let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
        let pid = i64::from_be_bytes([b[43], b[44], b[45], b[46], b[47], b[48], b[49], b[50]]);
        let Ok(len) = usize::try_from(len) else { break };
        let total = 12 + len;
        if total < HEADER || total > b.len() {
            break;
        }
        out.push(Header {
            span: BatchSpan {
                base,
                last: base.saturating_add(i64::from(delta.max(0))),
                control: attrs & CONTROL_BIT != 0,
            },
            producer_id: pid,
            transactional: attrs & TRANSACTIONAL_BIT != 0,
            end: at + total,
        });
        at += total;
    }
    out
}

/// The batches for a read_committed share group: those of aborted transactions
/// (`aborted`: producer id and first offset, from the log's transaction index) are
/// skipped like markers, as a read_committed consumer skips them.
fn committed_spans(bytes: &[u8], aborted: &[(i64, i64)]) -> Vec<BatchSpan> {
    let mut aborted = aborted.to_vec();
    aborted.sort_by_key(|a| a.1);
    let mut next = 0;
    let mut open: std::collections::HashSet<i64> = std::collections::HashSet::new();
    headers(bytes)
        .into_iter()
        .map(|h| {
            while let Some(&(pid, first)) = aborted.get(next) {
                if first > h.span.base {
                    break;
                }
                open.insert(pid);
                next += 1;
            }
            let mut span = h.span;
            if h.transactional && open.contains(&h.producer_id) {
                if span.control {
                    // The abort marker ends that transaction.
                    open.remove(&h.producer_id);
                }
                span.control = true;
            }
            span
        })
        .collect()
}

/// What one share-partition gave one fetch.
#[derive(Debug, Default)]
pub struct Acquired {
    pub records: BytesMut,
    pub ranges: Vec<AcquiredRange>,
    pub count: usize,
}

/// Acquires up to `max_records` records of `p` for `member`, reading at most
/// `max_bytes` of batches (at least one batch when `min_one`), below `upper` (the high
/// watermark, or the last stable offset for read_committed, which also skips aborted
/// transactions).
#[allow(clippy::too_many_arguments)]
pub fn acquire(
    sp: &mut SharePartition,
    p: &Partition,
    member: &str,
    max_records: usize,
    max_bytes: usize,
    min_one: bool,
    upper: i64,
    read_committed: bool,
    now: std::time::Instant,
    limits: &Limits,
) -> Result<Acquired, ReplicaError> {
    let mut out = Acquired::default();
    let log = p.log()?;
    sp.log_start_moved(log.log_start_offset());
    let mut cursor = sp.start_offset();
    // Each round reads from the next acquirable offset; a round that finds only
    // records others hold moves past them. Bounded so one fetch stays short.
    for _ in 0..16 {
        if out.count >= max_records {
            break;
        }
        let Some(from) = sp.next_candidate(cursor, limits) else {
            break;
        };
        if from >= upper {
            break;
        }
        let budget = max_bytes.saturating_sub(out.records.len());
        let first = min_one && out.records.is_empty();
        if budget == 0 && !first {
            break;
        }
        let Some(range) = log.read_range(from, budget.min(ROUND_BYTES), first, upper)? else {
            break;
        };
        let mut chunk = BytesMut::new();
        range
            .read_into(&mut chunk)
            .map_err(|e| ReplicaError::Storage(gregor_storage::LogError::Io(e)))?;
        let batches = if read_committed {
            committed_spans(&chunk, &log.aborted_between(from, range.end_offset))
        } else {
            spans(&chunk)
        };
        let got = sp.acquire(member, &batches, from, max_records - out.count, now, limits);
        let n: usize = got
            .iter()
            .map(|r| usize::try_from(r.last.saturating_sub(r.first) + 1).unwrap_or(0))
            .sum();
        if n > 0 {
            out.records
                .extend_from_slice(trim(&chunk, &batches, &ends(&chunk), &got));
            out.ranges.extend(got);
            out.count += n;
        }
        if range.end_offset <= from {
            break;
        }
        cursor = range.end_offset;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: i64, last_delta: i32, control: bool, body: usize) -> Vec<u8> {
        let mut b = vec![0u8; HEADER + body];
        b[..8].copy_from_slice(&base.to_be_bytes());
        let len = (HEADER + body - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        if control {
            b[22] = CONTROL_BIT as u8;
        }
        b[23..27].copy_from_slice(&last_delta.to_be_bytes());
        b
    }

    fn txn_header(base: i64, pid: i64, control: bool) -> Vec<u8> {
        let mut b = header(base, 0, control, 0);
        let attrs = TRANSACTIONAL_BIT | if control { CONTROL_BIT } else { 0 };
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b
    }

    #[test]
    fn aborted_transactions_are_skipped_for_read_committed() {
        // pid 7 aborts (batch 0, marker 2); pid 8 commits (batch 1, marker 3); pid 7
        // then starts again at 4 and that one is committed.
        let mut bytes = txn_header(0, 7, false);
        bytes.extend(txn_header(1, 8, false));
        bytes.extend(txn_header(2, 7, true));
        bytes.extend(txn_header(3, 8, true));
        bytes.extend(txn_header(4, 7, false));
        let skipped: Vec<bool> = committed_spans(&bytes, &[(7, 0)])
            .iter()
            .map(|s| s.control)
            .collect();
        assert_eq!(skipped, vec![true, false, true, true, false]);
    }

    #[test]
    fn a_fetch_sends_only_the_batches_with_acquired_records() {
        let mut bytes = header(0, 1, false, 5); // 0-1
        bytes.extend(header(2, 2, false, 5)); // 2-4
        bytes.extend(header(5, 0, true, 5)); // 5, a marker
        bytes.extend(header(6, 3, false, 5)); // 6-9
        let (sp, ends) = (spans(&bytes), ends(&bytes));
        let size = HEADER + 5;
        let range = |first, last| AcquiredRange {
            first,
            last,
            delivery_count: 1,
        };
        let cut = trim(&bytes, &sp, &ends, &[range(3, 4)]);
        assert_eq!(cut, &bytes[size..2 * size]);
        let cut = trim(&bytes, &sp, &ends, &[range(1, 2), range(7, 7)]);
        assert_eq!(cut, &bytes[..]);
        assert!(trim(&bytes, &sp, &ends, &[]).is_empty());
    }

    #[test]
    fn spans_follow_batch_lengths() {
        let mut bytes = header(5, 2, false, 10);
        bytes.extend(header(8, 0, true, 3));
        bytes.extend_from_slice(&[1, 2, 3]); // a partial batch is ignored
        assert_eq!(
            spans(&bytes),
            vec![
                BatchSpan {
                    base: 5,
                    last: 7,
                    control: false
                },
                BatchSpan {
                    base: 8,
                    last: 8,
                    control: true
                },
            ]
        );
    }
}
