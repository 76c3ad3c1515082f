//! AlterClientQuotas (key 49, KIP-546): sets or removes quotas of client-quota entities
//! (user, client-id, user+client-id, or ip; each a name or the default). Each entity is
//! checked as Kafka's controller checks it (types, combination, keys, integral byte
//! rates) and answered on its own; `validate_only` stops after the checks. The changes
//! are ClientQuotaRecords in the metadata log, so every broker enforces them at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use gregor_metadata::quotas::{QuotaAlteration, QuotaEntity};
use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::alter_client_quotas_request::EntryData as RequestEntry;
use gregor_protocol::kp::messages::alter_client_quotas_response::{EntityData, EntryData};
use gregor_protocol::kp::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AlterClientQuotas,
    min: 0,
    max: 1,
};

type Refusal = (ResponseError, String);

/// One request entry checked: the alteration, or why it is refused.
fn check(entry: &RequestEntry) -> Result<QuotaAlteration, Refusal> {
    let invalid = |m: String| (ResponseError::InvalidRequest, m);
    let entity = QuotaEntity::from_parts(
        entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
    )
    .map_err(invalid)?;
    let mut keys = BTreeSet::new();
    let mut ops = Vec::with_capacity(entry.ops.len());
    for op in &entry.ops {
        if !keys.insert(op.key.as_str()) {
            return Err(invalid(format!(
                "Duplicate quota key {} not updating quota for this entity",
                op.key.as_str()
            )));
        }
        if op.remove {
            ops.push((op.key.to_string(), None));
        } else {
            entity.check_value(&op.key, op.value).map_err(invalid)?;
            ops.push((op.key.to_string(), Some(op.value)));
        }
    }
    Ok((entity, ops))
}

fn entity_data(entry: &RequestEntry) -> Vec<EntityData> {
    entry
        .entity
        .iter()
        .map(|e| {
            EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect()
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    // Kafka: ALTER_CONFIGS on the cluster, else that error for every entry.
    let authorized = ctx.allowed_on_cluster(AclOperation::AlterConfigs);
    let mut results: Vec<Result<(), Refusal>> = Vec::with_capacity(req.entries.len());
    let mut accepted: Vec<QuotaAlteration> = Vec::new();
    let mut seen: BTreeSet<QuotaEntity> = BTreeSet::new();
    for entry in &req.entries {
        if !authorized {
            results.push(Err((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".into(),
            )));
            continue;
        }
        let checked = check(entry).and_then(|(entity, ops)| {
            if seen.insert(entity.clone()) {
                Ok((entity, ops))
            } else {
                Err((
                    ResponseError::InvalidRequest,
                    "Ignoring duplicate entity".into(),
                ))
            }
        });
        match checked {
            Ok(alteration) => {
                accepted.push(alteration);
                results.push(Ok(()));
            }
            Err(why) => results.push(Err(why)),
        }
    }
    if !req.validate_only && !accepted.is_empty() {
        let asked = ControllerRequest::AlterClientQuotas { entries: accepted };
        if let Err(e) = broker.commit_metadata(asked).await {
            let failure = crate::error::controller_failure(&e);
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(failure.clone());
            }
        }
    }
    let entries = req
        .entries
        .iter()
        .zip(results)
        .map(|(entry, result)| {
            let data = EntryData::default().with_entity(entity_data(entry));
            match result {
                Ok(()) => data.with_error_message(None),
                Err((code, message)) => data
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
