//! Request framing: every Kafka request and response is a 4-byte big-endian length
//! followed by that many bytes.

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Why a frame length was refused. Either way the connection is closed: after a bad
/// length the stream cannot be resynchronised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("negative frame length {0}")]
    Negative(i32),
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("empty frame")]
    Empty,
}

/// Validates a length prefix against `max` (Kafka's `socket.request.max.bytes`).
pub fn check_frame_len(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    let size = len as usize;
    if size == 0 {
        return Err(FrameError::Empty);
    }
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_oversized_and_empty() {
        assert_eq!(
            check_frame_len((-1i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            check_frame_len(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(
            check_frame_len(0i32.to_be_bytes(), 100),
            Err(FrameError::Empty)
        );
        assert_eq!(check_frame_len(100i32.to_be_bytes(), 100), Ok(100));
    }
}
