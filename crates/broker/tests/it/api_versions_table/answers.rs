//! Reading answers: the error codes a minimal request may get, and scanners over a
//! response's Debug rendering for error codes and for messages on success.

use gregor_protocol::kp::messages::ApiKey;

use super::{GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, INVALID_REQUEST, UNKNOWN_MEMBER_ID};

/// The error codes a minimal request may get, besides 0.
pub(crate) fn expected_errors(key: ApiKey, v: i16) -> &'static [i16] {
    match key {
        // The default request names the group "".
        ApiKey::JoinGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::OffsetDelete
        | ApiKey::OffsetFetch
        | ApiKey::OffsetCommit
        | ApiKey::TxnOffsetCommit => &[INVALID_GROUP_ID],
        // An empty transactional id or a KIP-848 heartbeat without member id.
        ApiKey::EndTxn | ApiKey::AddOffsetsToTxn | ApiKey::ConsumerGroupHeartbeat => {
            &[INVALID_REQUEST, UNKNOWN_MEMBER_ID]
        }
        // KIP-932: the default heartbeat names the group ""; a share fetch or
        // acknowledgement without group and member ids is INVALID_REQUEST.
        ApiKey::ShareGroupHeartbeat
        | ApiKey::AlterShareGroupOffsets
        | ApiKey::DeleteShareGroupOffsets => &[INVALID_GROUP_ID],
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => &[INVALID_REQUEST],
        ApiKey::AddPartitionsToTxn if v < 4 => &[INVALID_REQUEST],
        ApiKey::DescribeGroups if v >= 6 => &[GROUP_ID_NOT_FOUND],
        // The default push names the zero client instance id (KIP-714: INVALID_REQUEST).
        ApiKey::PushTelemetry => &[INVALID_REQUEST],
        // Broker 0 is not registered; voter changes without a listener, or of voter 0.
        ApiKey::UnregisterBroker => &[102],
        ApiKey::AddRaftVoter | ApiKey::UpdateRaftVoter => &[INVALID_REQUEST],
        ApiKey::RemoveRaftVoter => &[127],
        // The test broker's listener is PLAINTEXT: SASL is ILLEGAL_SASL_STATE there.
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => &[34],
        _ => &[],
    }
}

/// Every `error_code` value in a Debug rendering of a response.
pub(crate) fn error_codes(debug: &str) -> Vec<i16> {
    debug
        .match_indices("error_code: ")
        .filter_map(|(at, m)| {
            let rest = &debug[at + m.len()..];
            let end = rest
                .find(|c: char| c != '-' && !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

/// The struct renderings (within a Debug rendering) whose `error_code` is 0 and whose
/// `error_message` is not `None`. Fields are attributed to the innermost open struct;
/// text inside string literals is skipped.
pub(crate) fn messages_on_success(debug: &str) -> Vec<String> {
    struct Frame {
        start: usize,
        code: Option<i64>,
        message: Option<bool>, // Some(true): a message is set
    }
    let bytes = debug.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_str {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => stack.push(Frame {
                start: i,
                code: None,
                message: None,
            }),
            b'}' => {
                if let Some(f) = stack.pop() {
                    if f.code == Some(0) && f.message == Some(true) {
                        out.push(debug[f.start..=i].to_string());
                    }
                }
            }
            _ => {
                let rest = &debug[i..];
                if let Some(f) = stack.last_mut() {
                    let at_field_start = i == 0 || matches!(bytes[i - 1], b' ' | b'{' | b',');
                    if at_field_start {
                        if let Some(v) = rest.strip_prefix("error_code: ") {
                            let end = v
                                .find(|c: char| c != '-' && !c.is_ascii_digit())
                                .unwrap_or(v.len());
                            f.code = v[..end].parse().ok();
                        } else if let Some(v) = rest.strip_prefix("error_message: ") {
                            f.message = Some(!v.starts_with("None"));
                        }
                    }
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_scanner_attributes_fields_to_their_own_struct() {
        let ok = r#"R { error_code: 0, error_message: None, topics: [T { error_code: 3, error_message: Some("x{") }] }"#;
        assert!(messages_on_success(ok).is_empty());
        let bad = r#"R { error_code: 1, topics: [T { name: "a}", error_code: 0, error_message: Some("") }] }"#;
        assert_eq!(messages_on_success(bad).len(), 1);
        assert_eq!(error_codes(bad), vec![1, 0]);
    }
}
