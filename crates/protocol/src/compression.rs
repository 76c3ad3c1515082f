//! The four codecs Kafka's record batch v2 allows, by the attribute bits 0..=2.
//!
//! Decompression writes into a caller-owned buffer so that the produce path can reuse one
//! allocation per connection rather than one per batch. Every decoder is bounded by a
//! caller-given limit so a small "zip bomb" batch cannot exhaust memory.

use std::io::{Read, Write};

use crate::BatchError;

/// Codec named by the low three bits of the batch attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// Decodes the codec from batch attributes.
    pub fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & 0x07 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// The attribute bits for this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

fn corrupt<E: std::fmt::Display>(e: E) -> BatchError {
    BatchError::Corrupt(e.to_string())
}

fn too_large(limit: usize) -> BatchError {
    BatchError::DecompressedTooLarge { limit }
}

/// Bytes asked of a streaming decoder at a time. Small enough that the buffer grows in
/// steps close to what the stream really holds, large enough to keep calls few.
const READ_CHUNK: usize = 64 * 1024;

/// Reads all of `reader` into `out`, failing as soon as more than `limit` bytes come
/// out. The stream is decoded a chunk at a time into `out` itself, and `out` never grows
/// past `limit` bytes beyond its starting length (plus one chunk's probe for the end):
/// no size the stream announces is trusted, only bytes actually produced count.
fn read_bounded<R: Read>(mut reader: R, out: &mut Vec<u8>, limit: usize) -> Result<(), BatchError> {
    let start = out.len();
    loop {
        let produced = out.len() - start;
        // One byte past the limit is enough to learn that the stream is too large.
        let want = READ_CHUNK.min(limit.saturating_sub(produced).saturating_add(1));
        let at = out.len();
        let need = at.saturating_add(want);
        if need > out.capacity() {
            // Double as Vec would, but never past the bound.
            let cap = out
                .capacity()
                .saturating_mul(2)
                .max(need)
                .min(start.saturating_add(limit).saturating_add(1).max(need));
            out.reserve_exact(cap - at);
        }
        out.resize(need, 0);
        let n = loop {
            match reader.read(&mut out[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(at);
                    return Err(corrupt(e));
                }
            }
        };
        out.truncate(at + n);
        if n == 0 {
            return Ok(());
        }
        if out.len() - start > limit {
            return Err(too_large(limit));
        }
    }
}

/// The zstd window (log2 bytes) a stream may ask for: enough for any frame whose
/// content fits `limit`, and at least 8 MiB (23), the window zstd's levels up to 19 use
/// when the content size is unknown (Java's streaming producer), so those are never
/// refused; never more than zstd's default maximum (27, 128 MiB). A frame header
/// claiming a larger window is refused before the decoder allocates it.
fn zstd_window_log_max(limit: usize) -> u32 {
    // ceil(log2(limit))
    let bits = usize::BITS - limit.saturating_sub(1).leading_zeros();
    bits.clamp(23, 27)
}

/// Appends the decompressed form of `input` to `out`; at most `limit` bytes are
/// appended, and `out` is not grown past that bound while decoding.
pub fn decompress(
    codec: Codec,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), BatchError> {
    match codec {
        Codec::None => {
            if input.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Codec::Gzip => read_bounded(flate2::read::GzDecoder::new(input), out, limit),
        Codec::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), out, limit),
        Codec::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
            decoder
                .window_log_max(zstd_window_log_max(limit))
                .map_err(corrupt)?;
            read_bounded(decoder, out, limit)
        }
        Codec::Snappy => snappy_decompress(input, out, limit),
    }
}

/// Snappy's best ratio: a 3-byte copy element yields at most 64 bytes, so no block can
/// decompress to more than 64/3 of its size (plus the length header). A block claiming
/// more is lying, whatever the budget.
fn snappy_plausible_len(block: &[u8]) -> usize {
    block.len().saturating_mul(22)
}

/// Decompresses one raw snappy block into `out`, refusing it before any allocation if
/// its claimed length exceeds `budget` or what its size could possibly hold.
fn snappy_block(
    decoder: &mut snap::raw::Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    budget: usize,
    limit: usize,
) -> Result<(), BatchError> {
    let n = snap::raw::decompress_len(block).map_err(corrupt)?;
    if n > budget {
        return Err(too_large(limit));
    }
    if n > snappy_plausible_len(block) {
        return Err(BatchError::Corrupt(format!(
            "snappy block of {} bytes claims {n} bytes",
            block.len()
        )));
    }
    let at = out.len();
    out.resize(at + n, 0);
    if let Err(e) = decoder.decompress(block, &mut out[at..]) {
        out.truncate(at);
        return Err(corrupt(e));
    }
    Ok(())
}

/// Kafka's Java client writes snappy in the xerial block framing; librdkafka writes raw
/// snappy. Both are accepted, as Kafka accepts both.
fn snappy_decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), BatchError> {
    let mut decoder = snap::raw::Decoder::new();
    if input.len() >= 16 && input[..8] == XERIAL_MAGIC {
        let mut rest = &input[16..];
        let start = out.len();
        while !rest.is_empty() {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(BatchError::Corrupt("truncated xerial block length".into()));
            };
            let len = u32::from_be_bytes(*len) as usize;
            let block = tail
                .get(..len)
                .ok_or_else(|| BatchError::Corrupt("truncated xerial block".into()))?;
            let budget = limit.saturating_sub(out.len() - start);
            snappy_block(&mut decoder, block, out, budget, limit)?;
            rest = &tail[len..];
        }
        Ok(())
    } else {
        snappy_block(&mut decoder, input, out, limit, limit)
    }
}

/// Compresses `input` with `codec`, appending to `out`. Used where the broker must
/// re-encode (tests, and later topic-level `compression.type`).
pub fn compress(codec: Codec, input: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    match codec {
        Codec::None => out.extend_from_slice(input),
        Codec::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            enc.write_all(input).map_err(corrupt)?;
            enc.finish().map_err(corrupt)?;
        }
        Codec::Snappy => {
            let bytes = snap::raw::Encoder::new()
                .compress_vec(input)
                .map_err(corrupt)?;
            out.extend_from_slice(&bytes);
        }
        Codec::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(out);
            enc.write_all(input).map_err(corrupt)?;
            enc.finish().map_err(corrupt)?;
        }
        Codec::Zstd => {
            let bytes = zstd::stream::encode_all(input, 3).map_err(corrupt)?;
            out.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let input: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let mut packed = Vec::new();
            compress(codec, &input, &mut packed).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            let mut out = Vec::new();
            decompress(codec, &packed, &mut out, usize::MAX / 2)
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(out, input, "{codec:?}");
        }
    }

    #[test]
    fn xerial_snappy_is_accepted() {
        let input = b"hello hello hello hello xerial".repeat(10);
        let block = snap::raw::Encoder::new()
            .compress_vec(&input)
            .unwrap_or_default();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
        framed.extend_from_slice(&block);
        let mut out = Vec::new();
        assert!(decompress(Codec::Snappy, &framed, &mut out, 1 << 20).is_ok());
        assert_eq!(out, input);
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let input = vec![0u8; 1 << 20];
        let mut packed = Vec::new();
        assert!(compress(Codec::Zstd, &input, &mut packed).is_ok());
        let mut out = Vec::new();
        assert!(decompress(Codec::Zstd, &packed, &mut out, 1000).is_err());
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut out = Vec::new();
            assert!(
                decompress(codec, b"definitely not compressed", &mut out, 1 << 20).is_err(),
                "{codec:?}"
            );
        }
    }

    /// A raw snappy block: the varint length header, then `body`.
    fn snappy_claiming(claimed: u64, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let mut n = claimed;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(byte);
                break;
            }
            v.push(byte | 0x80);
        }
        v.extend_from_slice(body);
        v
    }

    fn xerial(blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for b in blocks {
            framed.extend_from_slice(&(b.len() as u32).to_be_bytes());
            framed.extend_from_slice(b);
        }
        framed
    }

    #[test]
    fn snappy_claims_are_checked_before_allocating() {
        let garbage = [0u8; 16];
        // A 2 GiB claim over the budget, and a 100 MiB claim within it that 19 bytes
        // cannot possibly hold: both refused with the buffer untouched.
        let mut out = Vec::new();
        assert_eq!(
            decompress(
                Codec::Snappy,
                &snappy_claiming(2 << 30, &garbage),
                &mut out,
                256 << 20
            ),
            Err(BatchError::DecompressedTooLarge { limit: 256 << 20 })
        );
        assert_eq!(out.capacity(), 0);
        let r = decompress(
            Codec::Snappy,
            &snappy_claiming(100 << 20, &garbage),
            &mut out,
            256 << 20,
        );
        assert!(matches!(r, Err(BatchError::Corrupt(_))), "{r:?}");
        assert_eq!(
            out.capacity(),
            0,
            "nothing allocated for an implausible claim"
        );

        // Xerial: the budget is what the earlier blocks left.
        let real = snap::raw::Encoder::new()
            .compress_vec(&[7u8; 3000])
            .unwrap_or_default();
        let framed = xerial(&[real.clone(), snappy_claiming(2000, &garbage)]);
        let mut out = Vec::new();
        assert_eq!(
            decompress(Codec::Snappy, &framed, &mut out, 4000),
            Err(BatchError::DecompressedTooLarge { limit: 4000 })
        );
        assert!(out.capacity() <= 4000, "capacity {}", out.capacity());
        let framed = xerial(&[real, snappy_claiming(100 << 20, &garbage)]);
        let mut out = Vec::new();
        let r = decompress(Codec::Snappy, &framed, &mut out, 256 << 20);
        assert!(matches!(r, Err(BatchError::Corrupt(_))), "{r:?}");
        assert!(out.capacity() < 1 << 20, "capacity {}", out.capacity());
    }

    #[test]
    fn streams_never_grow_the_buffer_past_the_limit() {
        let bomb = vec![0u8; 8 << 20];
        let limit = 1 << 20;
        for codec in [Codec::None, Codec::Gzip, Codec::Lz4, Codec::Zstd] {
            let mut packed = Vec::new();
            assert!(compress(codec, &bomb, &mut packed).is_ok());
            let mut out = Vec::new();
            assert_eq!(
                decompress(codec, &packed, &mut out, limit),
                Err(BatchError::DecompressedTooLarge { limit }),
                "{codec:?}"
            );
            assert!(
                out.capacity() <= limit + 1,
                "{codec:?}: capacity {} past the limit {limit}",
                out.capacity()
            );
            // Exactly at the limit is fine, and the result is whole.
            let mut out = Vec::new();
            assert_eq!(decompress(codec, &packed, &mut out, bomb.len()), Ok(()));
            assert_eq!(out, bomb, "{codec:?}");
        }
    }

    #[test]
    fn zstd_windows_larger_than_the_bound_are_refused() {
        // A streaming frame (no content size) asking for a 128 MiB window: the decoder
        // would allocate it for 5 bytes of output.
        let mut enc = match zstd::stream::write::Encoder::new(Vec::new(), 3) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert!(enc.window_log(27).is_ok());
        assert!(enc.include_contentsize(false).is_ok());
        assert!(enc.write_all(b"hello").is_ok());
        let frame = enc.finish().unwrap_or_default();
        let mut out = Vec::new();
        let r = decompress(Codec::Zstd, &frame, &mut out, 1 << 20);
        assert!(matches!(r, Err(BatchError::Corrupt(_))), "{r:?}");
        // The window a producer's streaming encoder uses at level 19 (8 MiB) still is
        // accepted under a small bound.
        let mut enc = match zstd::stream::write::Encoder::new(Vec::new(), 19) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert!(enc.window_log(23).is_ok());
        assert!(enc.include_contentsize(false).is_ok());
        assert!(enc.write_all(b"hello").is_ok());
        let frame = enc.finish().unwrap_or_default();
        let mut out = Vec::new();
        assert_eq!(decompress(Codec::Zstd, &frame, &mut out, 1000), Ok(()));
        assert_eq!(out, b"hello");
    }
}
