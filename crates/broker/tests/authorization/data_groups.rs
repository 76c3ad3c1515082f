//! Authorization cases: produce, fetch, offsets, metadata, consumer groups.

use gregor_protocol::kp::messages::ApiKey;

use crate::Case;

pub(crate) fn case(key: ApiKey) -> Option<Case> {
    match key {
        ApiKey::ApiVersions => Some(Case::Exempt("no resource: answered before authentication")),
        _ => None,
    }
}
