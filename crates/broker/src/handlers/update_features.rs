//! UpdateFeatures (key 57, KIP-584): finalize feature levels cluster-wide. The
//! controller checks every update against the broker's supported ranges and the
//! current levels (`gregor_metadata::features`) and commits them together as
//! `FeatureLevelRecord`s, or refuses the whole request. v0 says "downgrade" with a
//! boolean (a safe downgrade), v1 with an upgrade type and adds `validate_only`, v2
//! answers with the top-level error only.

use std::sync::Arc;

use gregor_metadata::features::{FeatureUpdate, UpgradeType};
use gregor_protocol::kp::messages::update_features_response::UpdatableFeatureResult;
use gregor_protocol::kp::messages::{ApiKey, UpdateFeaturesRequest, UpdateFeaturesResponse};

use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{error_parts, AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::UpdateFeatures,
    min: 0,
    max: 2,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: UpdateFeaturesRequest,
) -> UpdateFeaturesResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return UpdateFeaturesResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let v = ctx.version();
    let updates: Vec<FeatureUpdate> = req
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            name: u.feature.to_string(),
            level: u.max_version_level,
            upgrade: if v == 0 {
                Some(if u.allow_downgrade {
                    UpgradeType::SafeDowngrade
                } else {
                    UpgradeType::Upgrade
                })
            } else {
                UpgradeType::from_code(u.upgrade_type)
            },
        })
        .collect();
    let validate_only = v >= 1 && req.validate_only;
    let outcome = broker
        .decide(
            validate_only,
            gregor_metadata::ControllerRequest::UpdateFeatures { updates },
        )
        .await;
    if let Ok(()) = &outcome {
        tracing::info!(updates = ?req.feature_updates.iter().map(|u| (u.feature.to_string(), u.max_version_level)).collect::<Vec<_>>(), validate_only, "feature levels updated");
    }
    let (code, message) = error_parts(outcome);
    let results = if v >= 2 {
        Vec::new()
    } else {
        req.feature_updates
            .iter()
            .map(|u| {
                UpdatableFeatureResult::default()
                    .with_feature(u.feature.clone())
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect()
    };
    UpdateFeaturesResponse::default()
        .with_error_code(code)
        .with_error_message(message)
        .with_results(results)
}
