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

/// Reads all of `reader` into `out`, failing if more than `limit` bytes come out.
fn read_bounded<R: Read>(reader: R, out: &mut Vec<u8>, limit: usize) -> Result<(), BatchError> {
    let start = out.len();
    let mut limited = reader.take(limit as u64 + 1);
    limited.read_to_end(out).map_err(corrupt)?;
    if out.len() - start > limit {
        return Err(BatchError::Corrupt(format!(
            "decompressed size exceeds {limit} bytes"
        )));
    }
    Ok(())
}

/// Appends the decompressed form of `input` to `out`.
pub fn decompress(
    codec: Codec,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), BatchError> {
    match codec {
        Codec::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        Codec::Gzip => read_bounded(flate2::read::GzDecoder::new(input), out, limit),
        Codec::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), out, limit),
        Codec::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
            read_bounded(decoder, out, limit)
        }
        Codec::Snappy => snappy_decompress(input, out, limit),
    }
}

/// Kafka's Java client writes snappy in the xerial block framing; librdkafka writes raw
/// snappy. Both are accepted, as Kafka accepts both.
fn snappy_decompress(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), BatchError> {
    let mut decoder = snap::raw::Decoder::new();
    if input.len() >= 16 && input[..8] == XERIAL_MAGIC {
        let mut rest = &input[16..];
        let start = out.len();
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(BatchError::Corrupt("truncated xerial block length".into()));
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let block = rest
                .get(4..4 + len)
                .ok_or_else(|| BatchError::Corrupt("truncated xerial block".into()))?;
            let n = snap::raw::decompress_len(block).map_err(corrupt)?;
            if out.len() - start + n > limit {
                return Err(BatchError::Corrupt(format!(
                    "decompressed size exceeds {limit} bytes"
                )));
            }
            let at = out.len();
            out.resize(at + n, 0);
            decoder.decompress(block, &mut out[at..]).map_err(corrupt)?;
            rest = &rest[4 + len..];
        }
        Ok(())
    } else {
        let n = snap::raw::decompress_len(input).map_err(corrupt)?;
        if n > limit {
            return Err(BatchError::Corrupt(format!(
                "decompressed size exceeds {limit} bytes"
            )));
        }
        let at = out.len();
        out.resize(at + n, 0);
        decoder.decompress(input, &mut out[at..]).map_err(corrupt)?;
        Ok(())
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
}
