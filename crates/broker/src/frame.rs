//! Response frames whose record data stays in segment files until the socket takes it.
//!
//! A fetch answer is mostly record bytes that already sit in segment files. Rather than
//! read them into memory and copy them into an encoded response, the handler puts a
//! short marker in each partition's `records` field, the generated encoder writes the
//! response around those markers, and [`FileFrame::build`] cuts the encoded bytes at each
//! marker: the metadata between markers stays in memory (a few hundred bytes), each
//! marker becomes the file range it stands for, with the length prefix the real data
//! needs. The connection then writes the memory parts with `write` and the file ranges
//! with `sendfile`, so record data goes from the page cache to the socket without
//! entering user space (TCP_CORK keeps the small parts from leaving as packets of their
//! own).
//!
//! Two kinds of range are copied into memory instead: small ones (below
//! [`COPY_BELOW`], where one `write` beats a `sendfile` each, as for a fetch over
//! thousands of quiet partitions), and any beyond [`MAX_PINNED_FILES`] in one frame. A
//! range holds its segment file open until the socket takes it, outside the
//! `log.max.open.files` budget (the cache may already have evicted it), so a fetch over
//! many partitions must not hold a descriptor for each.
//!
//! The marker is 16 random bytes chosen at start-up: nothing a client sends can predict
//! it, and it is searched for only in the encoded metadata (the record bytes are never
//! in memory), so it cannot be confused with data.

use std::io;
use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::kp::messages::ResponseHeader;
use gregor_protocol::kp::protocol::{Encodable, HeaderVersion};
use gregor_storage::FileRange;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

const MARKER_LEN: usize = 16;

/// Ranges shorter than this are copied into the frame rather than sent from the file.
pub const COPY_BELOW: usize = 16 * 1024;

/// At most this many file ranges (each an open descriptor) per frame; the rest are
/// copied.
pub const MAX_PINNED_FILES: usize = 64;

/// The per-process marker that stands for a file range in an encoded response.
pub fn marker() -> Bytes {
    static MARKER: OnceLock<Bytes> = OnceLock::new();
    MARKER
        .get_or_init(|| Bytes::copy_from_slice(uuid::Uuid::new_v4().as_bytes()))
        .clone()
}

/// One piece of a response frame.
#[derive(Debug)]
pub enum Part {
    Mem(Bytes),
    File(FileRange),
}

/// A response frame made of memory parts and file ranges, in order.
#[derive(Debug)]
pub struct FileFrame {
    pub parts: Vec<Part>,
}

/// Why a frame could not be built (a bug, never input: the connection is closed).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("cannot encode response: {0}")]
    Encode(String),
    #[error("file range marker {0} not found in the encoded response")]
    MarkerMissing(usize),
    #[error("response too large for a frame")]
    TooLarge,
    #[error("cannot read a segment range: {0}")]
    Read(#[from] io::Error),
}

/// Length prefix of a `bytes` field: INT32 before flexible versions, UNSIGNED_VARINT of
/// length + 1 in flexible ones.
fn put_len_prefix(out: &mut BytesMut, len: usize, flexible: bool) -> Result<(), FrameError> {
    if flexible {
        let mut v = u32::try_from(len + 1).map_err(|_| FrameError::TooLarge)?;
        while v >= 0x80 {
            out.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.put_u8(v as u8);
    } else {
        out.put_i32(i32::try_from(len).map_err(|_| FrameError::TooLarge)?);
    }
    Ok(())
}

impl FileFrame {
    /// Encodes `body` (whose `bytes` fields hold [`marker`] where `ranges` go, in
    /// encoding order) and splices the ranges in. `flexible` says how `bytes` fields are
    /// length-prefixed at this version.
    pub fn build<R: Encodable + HeaderVersion>(
        correlation_id: i32,
        version: i16,
        body: &R,
        flexible: bool,
        ranges: Vec<FileRange>,
    ) -> Result<Self, FrameError> {
        let header_version = R::header_version(version);
        let header = ResponseHeader::default().with_correlation_id(correlation_id);
        let size = header
            .compute_size(header_version)
            .and_then(|h| Ok(h + body.compute_size(version)?))
            .map_err(|e| FrameError::Encode(e.to_string()))?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(0);
        header
            .encode(&mut buf, header_version)
            .map_err(|e| FrameError::Encode(e.to_string()))?;
        body.encode(&mut buf, version)
            .map_err(|e| FrameError::Encode(e.to_string()))?;

        let marker = marker();
        let old_prefix = if flexible { 1 } else { 4 };
        let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
        let mut out = BytesMut::with_capacity(buf.len());
        let mut cursor = 4;
        let mut total: usize = 0;
        let mut pinned = 0;
        for (i, range) in ranges.into_iter().enumerate() {
            let found = memchr::memmem::find(&buf[cursor..], &marker)
                .map(|at| cursor + at)
                .filter(|&at| at >= cursor + old_prefix)
                .ok_or(FrameError::MarkerMissing(i))?;
            out.extend_from_slice(&buf[cursor..found - old_prefix]);
            put_len_prefix(&mut out, range.len, flexible)?;
            cursor = found + MARKER_LEN;
            if range.len < COPY_BELOW || pinned >= MAX_PINNED_FILES {
                range.read_into(&mut out)?;
                continue;
            }
            pinned += 1;
            total += out.len() + range.len;
            parts.push(Part::Mem(out.split().freeze()));
            parts.push(Part::File(range));
        }
        out.extend_from_slice(&buf[cursor..]);
        total += out.len();
        let len = i32::try_from(total).map_err(|_| FrameError::TooLarge)?;
        let mut first = BytesMut::with_capacity(4);
        first.put_i32(len);
        parts.insert(0, Part::Mem(first.freeze()));
        if !out.is_empty() {
            parts.push(Part::Mem(out.freeze()));
        }
        Ok(Self { parts })
    }

    /// Bytes held in memory (what the connection's response budget counts).
    pub fn mem_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Mem(b) => b.len(),
                Part::File(_) => 0,
            })
            .sum()
    }

    /// The whole frame in memory (tests, and transports that cannot send from a file).
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        for p in &self.parts {
            match p {
                Part::Mem(b) => v.extend_from_slice(b),
                Part::File(r) => v.extend_from_slice(&r.read_to_vec()?),
            }
        }
        Ok(v)
    }
}

/// Writes a frame to a plain TCP socket: memory parts with `write`, file ranges with
/// `sendfile`, corked so the pieces leave as full packets.
pub async fn write_frame(wr: &mut OwnedWriteHalf, frame: &FileFrame) -> io::Result<()> {
    let _ = rustix::net::sockopt::set_tcp_cork(wr.as_ref(), true);
    let result = async {
        for part in &frame.parts {
            match part {
                Part::Mem(b) => wr.write_all(b).await?,
                Part::File(r) => send_file(wr.as_ref(), r).await?,
            }
        }
        Ok(())
    }
    .await;
    let _ = rustix::net::sockopt::set_tcp_cork(wr.as_ref(), false);
    result
}

/// Writes a frame to a stream that cannot take `sendfile` (TLS encrypts in user
/// space): file ranges are read in chunks on the blocking pool, one reused buffer.
pub async fn write_frame_copying<W>(wr: &mut W, frame: &FileFrame) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    const CHUNK: usize = 256 * 1024;
    let mut buf = Vec::new();
    for part in &frame.parts {
        match part {
            Part::Mem(b) => wr.write_all(b).await?,
            Part::File(r) => {
                let mut offset = r.position;
                let end = r.position + r.len as u64;
                while offset < end {
                    let want = usize::try_from(end - offset).unwrap_or(CHUNK).min(CHUNK);
                    let file = r.file.clone();
                    let mut chunk = std::mem::take(&mut buf);
                    chunk.resize(want, 0);
                    let (chunk, read) = tokio::task::spawn_blocking(move || {
                        let read =
                            std::os::unix::fs::FileExt::read_exact_at(&*file, &mut chunk, offset);
                        (chunk, read)
                    })
                    .await
                    .map_err(io::Error::other)?;
                    read?;
                    wr.write_all(&chunk).await?;
                    offset += want as u64;
                    buf = chunk;
                }
            }
        }
    }
    Ok(())
}

/// Sends a file range to the socket with `sendfile`, waiting for writability as tokio
/// does for its own writes.
async fn send_file(stream: &TcpStream, range: &FileRange) -> io::Result<()> {
    let mut offset = range.position;
    let end = range.position + range.len as u64;
    while offset < end {
        stream.writable().await?;
        let want = usize::try_from(end - offset).unwrap_or(usize::MAX);
        let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
            let mut at = offset;
            rustix::fs::sendfile(stream, &*range.file, Some(&mut at), want).map_err(io::Error::from)
        });
        match sent {
            // The file is shorter than the range: it was truncated after the read. The
            // frame's length is already promised, so the connection must end.
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file shorter than the range being sent",
                ))
            }
            Ok(n) => offset += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::kp::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use gregor_protocol::kp::messages::FetchResponse;
    use gregor_protocol::kp::protocol::Decodable;
    use std::io::Write;
    use std::sync::Arc;

    fn range(data: &[u8]) -> FileRange {
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("tempfile: {e}"));
        f.write_all(b"xx")
            .and_then(|()| f.write_all(data))
            .unwrap_or_else(|e| panic!("{e}"));
        FileRange {
            file: Arc::new(f),
            position: 2,
            len: data.len(),
            end_offset: 0,
        }
    }

    fn file_parts(frame: &FileFrame) -> usize {
        frame
            .parts
            .iter()
            .filter(|p| matches!(p, Part::File(_)))
            .count()
    }

    /// The spliced frame decodes to the same response as one encoded with the data in it,
    /// at a non-flexible and a flexible version, with a length that needs a multi-byte
    /// varint; the large range is sent from its file, the small one copied.
    #[test]
    fn spliced_frame_equals_in_memory_encoding() {
        let a = vec![7u8; COPY_BELOW + 300];
        let b = vec![9u8; 5];
        for (version, flexible) in [(11i16, false), (12, true), (16, true)] {
            let resp = |ra: Bytes, rb: Bytes| {
                FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                    .with_partitions(vec![
                        PartitionData::default()
                            .with_partition_index(0)
                            .with_records(Some(ra)),
                        PartitionData::default().with_partition_index(1),
                        PartitionData::default()
                            .with_partition_index(2)
                            .with_records(Some(rb)),
                    ])])
            };
            let frame = FileFrame::build(
                42,
                version,
                &resp(marker(), marker()),
                flexible,
                vec![range(&a), range(&b)],
            )
            .unwrap_or_else(|e| panic!("build: {e}"));
            let bytes = frame.to_vec().unwrap_or_else(|e| panic!("{e}"));
            let len = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            assert_eq!(len, bytes.len() - 4);
            let mut body = Bytes::from(bytes[4..].to_vec());
            let header = ResponseHeader::decode(&mut body, FetchResponse::header_version(version))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(header.correlation_id, 42);
            let got = FetchResponse::decode(&mut body, version).unwrap_or_else(|e| panic!("{e}"));
            let want = resp(Bytes::from(a.clone()), Bytes::from(b.clone()));
            assert_eq!(got, want, "version {version}");
            assert!(body.is_empty());
            assert_eq!(file_parts(&frame), 1);
            assert_eq!(frame.mem_len() + a.len(), bytes.len());
        }
    }

    /// A frame over many partitions holds at most MAX_PINNED_FILES files open; the other
    /// ranges are copied, and the answer is the same.
    #[test]
    fn a_frame_pins_a_bounded_number_of_files() {
        let n = MAX_PINNED_FILES + 6;
        let data: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; COPY_BELOW]).collect();
        let resp = |records: Vec<Bytes>| {
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_partitions(
                    records
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| {
                            PartitionData::default()
                                .with_partition_index(i as i32)
                                .with_records(Some(r))
                        })
                        .collect(),
                )])
        };
        let frame = FileFrame::build(
            7,
            16,
            &resp(vec![marker(); n]),
            true,
            data.iter().map(|d| range(d)).collect(),
        )
        .unwrap_or_else(|e| panic!("build: {e}"));
        assert_eq!(file_parts(&frame), MAX_PINNED_FILES);
        let bytes = frame.to_vec().unwrap_or_else(|e| panic!("{e}"));
        let mut body = Bytes::from(bytes[4..].to_vec());
        ResponseHeader::decode(&mut body, FetchResponse::header_version(16))
            .unwrap_or_else(|e| panic!("{e}"));
        let got = FetchResponse::decode(&mut body, 16).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, resp(data.into_iter().map(Bytes::from).collect()));
    }
}
