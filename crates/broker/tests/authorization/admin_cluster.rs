//! Authorization cases: topics, configs, transactions, cluster operations, ACLs, SCRAM.

use gregor_protocol::kp::messages::ApiKey;

use crate::Case;

pub(crate) fn case(key: ApiKey) -> Option<Case> {
    match key {
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
            Some(Case::Exempt("authentication itself"))
        }
        _ => None,
    }
}
