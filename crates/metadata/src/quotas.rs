//! Client quotas (KIP-13, KIP-55, KIP-124, KIP-546, KIP-612): byte-rate, request-time
//! and connection-rate limits set per user, client id or address, stored as
//! `ClientQuotaRecord`s in the metadata log so every broker enforces the same ones.
//!
//! An entity names up to two of `user` and `client-id`, or only `ip`; each part is a
//! name or the type's default (`<default>`). A client's quota for a key is found in
//! Kafka's order of precedence (most specific first):
//!
//! 1. `user=U, client-id=C`      5. `user=<default>, client-id=<default>`
//! 2. `user=U, client-id=<default>` 6. `user=<default>`
//! 3. `user=U`                   7. `client-id=C`
//! 4. `user=<default>, client-id=C` 8. `client-id=<default>`
//!
//! The entity that supplied the quota also says who shares it: a quota set on `user=U`
//! is shared by every client of U, one set on `user=<default>` is each user's own
//! (the [`QuotaTags`] of the match, as Kafka's metric tags).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// One part of an entity: a name, or the type's default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// The wire form: `None` for the default.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
    fn from_wire(name: Option<&str>) -> Self {
        match name {
            None => EntityName::Default,
            Some(n) => EntityName::Named(n.to_string()),
        }
    }
}

/// A quota entity: which of user, client id and address it names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuotaEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    /// The entity as (type, name) pairs in Kafka's order, `None` names for defaults.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push((USER, u.as_wire()));
        }
        if let Some(c) = &self.client_id {
            out.push((CLIENT_ID, c.as_wire()));
        }
        if let Some(i) = &self.ip {
            out.push((IP, i.as_wire()));
        }
        out
    }

    fn get(&self, entity_type: &str) -> Option<&EntityName> {
        match entity_type {
            USER => self.user.as_ref(),
            CLIENT_ID => self.client_id.as_ref(),
            IP => self.ip.as_ref(),
            _ => None,
        }
    }

    /// Builds and checks an entity from the wire's (type, name) pairs, as Kafka's
    /// controller does: known types, none twice, no empty name, and only the
    /// combinations user, client-id, user+client-id or ip.
    pub fn from_parts<'a>(
        parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, String> {
        let mut e = QuotaEntity::default();
        let mut any = false;
        for (t, name) in parts {
            any = true;
            let slot = match t {
                USER => &mut e.user,
                CLIENT_ID => &mut e.client_id,
                IP => &mut e.ip,
                other => return Err(format!("Unhandled client quota entity type: {other}")),
            };
            if slot.is_some() {
                return Err(format!(
                    "Invalid empty client quota entity, duplicate entity entry {t}"
                ));
            }
            if name == Some("") {
                return Err(format!("Empty {t} not supported"));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if !any {
            return Err("Invalid empty client quota entity".into());
        }
        if e.ip.is_some() && (e.user.is_some() || e.client_id.is_some()) {
            return Err("Invalid quota entity combination: ip with user or client-id".into());
        }
        if let Some(EntityName::Named(ip)) = &e.ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{ip} is not a valid IP or resolvable host."));
            }
        }
        Ok(e)
    }

    /// The quota keys this kind of entity takes, with whether each must be integral.
    fn keys(&self) -> &'static [(&'static str, bool)] {
        if self.ip.is_some() {
            &[(CONNECTION_CREATION_RATE, true)]
        } else {
            &[
                (PRODUCER_BYTE_RATE, true),
                (CONSUMER_BYTE_RATE, true),
                (REQUEST_PERCENTAGE, false),
                (CONTROLLER_MUTATION_RATE, false),
            ]
        }
    }

    /// Checks a quota key and value for this entity (Kafka's INVALID_REQUEST cases):
    /// the key must be one the entity type takes, a byte or connection rate integral,
    /// and every value positive.
    pub fn check_value(&self, key: &str, value: f64) -> Result<(), String> {
        let Some((_, integral)) = self.keys().iter().find(|(k, _)| *k == key) else {
            return Err(format!("Invalid configuration key {key}"));
        };
        if !value.is_finite() {
            return Err(format!("Configuration {key} must be a finite number"));
        }
        if *integral && (value.round() - value).abs() > 1e-6 {
            return Err(format!("Configuration {key} must be a Long value"));
        }
        if value <= 0.0 {
            return Err(format!("Configuration {key} must be positive"));
        }
        Ok(())
    }
}

/// A quota value (f64 on the wire). Compared by bits so records stay `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for QuotaValue {}

/// One entity's changes: each key set (`Some`) or removed (`None`).
pub type QuotaAlteration = (QuotaEntity, Vec<(String, Option<f64>)>);

/// The records an AlterClientQuotas makes against `image`: only changes (a value set
/// to what it is, or a removal of an absent key, makes none).
pub fn alter_records(image: &MetadataImage, entries: &[QuotaAlteration]) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (entity, ops) in entries {
        let current = image.client_quotas.get(entity);
        for (key, value) in ops {
            let now = current.and_then(|q| q.get(key)).copied();
            let changed = match value {
                None => now.is_some(),
                Some(v) => now != Some(QuotaValue(*v)),
            };
            if changed {
                out.push(MetadataRecord::ClientQuotaRecord {
                    entity: entity.clone(),
                    key: key.clone(),
                    value: value.map(QuotaValue),
                });
            }
        }
    }
    out
}

/// Applies one ClientQuotaRecord to the image's quotas.
pub(crate) fn apply(
    quotas: &mut BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
    entity: &QuotaEntity,
    key: &str,
    value: Option<QuotaValue>,
) {
    match value {
        Some(v) => {
            quotas
                .entry(entity.clone())
                .or_default()
                .insert(key.to_string(), v);
        }
        None => {
            if let Some(q) = quotas.get_mut(entity) {
                q.remove(key);
                if q.is_empty() {
                    quotas.remove(entity);
                }
            }
        }
    }
}

/// The records that rebuild the image's quotas (for snapshots).
pub(crate) fn image_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    image
        .client_quotas
        .iter()
        .flat_map(|(entity, values)| {
            values
                .iter()
                .map(|(key, v)| MetadataRecord::ClientQuotaRecord {
                    entity: entity.clone(),
                    key: key.clone(),
                    value: Some(*v),
                })
        })
        .collect()
}

/// How a DescribeClientQuotas filter component matches an entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentMatch {
    /// This name exactly (match type 0).
    Exact(String),
    /// The type's default (match type 1).
    Default,
    /// Any name, but not the default (match type 2).
    Specified,
}

/// Why a DescribeClientQuotas filter is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// INVALID_REQUEST.
    #[error("{0}")]
    Invalid(String),
    /// UNSUPPORTED_VERSION (an entity or match type this version does not know).
    #[error("{0}")]
    Unsupported(String),
}

/// Builds a filter component from the wire's match type and match string.
pub fn component(
    entity_type: &str,
    match_type: i8,
    name: Option<&str>,
) -> Result<(String, ComponentMatch), FilterError> {
    if entity_type.is_empty() {
        return Err(FilterError::Invalid("Invalid empty entity type.".into()));
    }
    if ![USER, CLIENT_ID, IP].contains(&entity_type) {
        return Err(FilterError::Unsupported(format!(
            "Unsupported entity type {entity_type}"
        )));
    }
    let m =
        match (match_type, name) {
            (0, Some(n)) => ComponentMatch::Exact(n.to_string()),
            (0, None) => {
                return Err(FilterError::Invalid(
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                ))
            }
            (1, None) => ComponentMatch::Default,
            (2, None) => ComponentMatch::Specified,
            (1 | 2, Some(_)) => return Err(FilterError::Invalid(
                "Request specified a match type without a match string, but also specified one."
                    .into(),
            )),
            (other, _) => {
                return Err(FilterError::Unsupported(format!(
                    "Unknown match type {other}"
                )))
            }
        };
    Ok((entity_type.to_string(), m))
}

/// An entity and its quota values by key.
pub type EntityQuotas = (QuotaEntity, BTreeMap<String, f64>);

/// The entities (and their quotas) a DescribeClientQuotas filter selects: each must
/// match every component; with `strict`, it names no other type.
pub fn describe(
    image: &MetadataImage,
    components: &[(String, ComponentMatch)],
    strict: bool,
) -> Result<Vec<EntityQuotas>, FilterError> {
    let mut seen: Vec<&str> = Vec::new();
    for (t, _) in components {
        if seen.contains(&t.as_str()) {
            return Err(FilterError::Invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        seen.push(t);
    }
    if seen.contains(&IP) && (seen.contains(&USER) || seen.contains(&CLIENT_ID)) {
        return Err(FilterError::Invalid(
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component."
                .into(),
        ));
    }
    let matches = |e: &QuotaEntity| {
        let fits = components.iter().all(|(t, m)| match (e.get(t), m) {
            (Some(EntityName::Named(n)), ComponentMatch::Exact(want)) => n == want,
            (Some(EntityName::Default), ComponentMatch::Default) => true,
            (Some(EntityName::Named(_)), ComponentMatch::Specified) => true,
            _ => false,
        });
        fits && (!strict || e.parts().len() == components.len())
    };
    Ok(image
        .client_quotas
        .iter()
        .filter(|(e, _)| matches(e))
        .map(|(e, q)| (e.clone(), q.iter().map(|(k, v)| (k.clone(), v.0)).collect()))
        .collect())
}

/// Who shares a quota: the user and client id of the entity that supplied it, empty
/// where that entity did not name the type (Kafka's quota metric tags).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaTags {
    pub user: String,
    pub client_id: String,
}

/// The quota for `key` that applies to a client, by Kafka's precedence, and who shares
/// it; `None` when no entity sets it.
pub fn resolve(
    image: &MetadataImage,
    user: &str,
    client_id: &str,
    key: &str,
) -> Option<(f64, QuotaTags)> {
    if image.client_quotas.is_empty() {
        return None;
    }
    let named = |s: &str| Some(EntityName::Named(s.to_string()));
    let default = || Some(EntityName::Default);
    let candidates = [
        (named(user), named(client_id), true, true),
        (named(user), default(), true, true),
        (named(user), None, true, false),
        (default(), named(client_id), true, true),
        (default(), default(), true, true),
        (default(), None, true, false),
        (None, named(client_id), false, true),
        (None, default(), false, true),
    ];
    for (u, c, has_user, has_client) in candidates {
        let entity = QuotaEntity {
            user: u,
            client_id: c,
            ip: None,
        };
        if let Some(v) = image.client_quotas.get(&entity).and_then(|q| q.get(key)) {
            let tags = QuotaTags {
                user: if has_user {
                    user.to_string()
                } else {
                    String::new()
                },
                client_id: if has_client {
                    client_id.to_string()
                } else {
                    String::new()
                },
            };
            return Some((v.0, tags));
        }
    }
    None
}

/// The `connection_creation_rate` for connections from `ip`: its own, else the
/// default address's.
pub fn resolve_ip(image: &MetadataImage, ip: std::net::IpAddr) -> Option<f64> {
    if image.client_quotas.is_empty() {
        return None;
    }
    [
        Some(EntityName::Named(ip.to_string())),
        Some(EntityName::Default),
    ]
    .into_iter()
    .find_map(|name| {
        let entity = QuotaEntity {
            ip: name,
            ..QuotaEntity::default()
        };
        image
            .client_quotas
            .get(&entity)
            .and_then(|q| q.get(CONNECTION_CREATION_RATE))
            .map(|v| v.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(entries: &[(QuotaEntity, &str, f64)]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for (e, k, v) in entries {
            apply(&mut image.client_quotas, e, k, Some(QuotaValue(*v)));
        }
        image
    }

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        let mut parts = Vec::new();
        if let Some(u) = user {
            parts.push((USER, u));
        }
        if let Some(c) = client {
            parts.push((CLIENT_ID, c));
        }
        QuotaEntity::from_parts(parts).unwrap()
    }

    #[test]
    fn precedence_follows_kafka_and_tags_say_who_shares() {
        let image = image_with(&[
            (entity(None, Some(None)), PRODUCER_BYTE_RATE, 8.0),
            (entity(None, Some(Some("c"))), PRODUCER_BYTE_RATE, 7.0),
            (entity(Some(None), None), PRODUCER_BYTE_RATE, 6.0),
            (entity(Some(Some("u")), None), PRODUCER_BYTE_RATE, 3.0),
            (
                entity(Some(Some("u")), Some(Some("c"))),
                PRODUCER_BYTE_RATE,
                1.0,
            ),
        ]);
        let (v, tags) = resolve(&image, "u", "c", PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(v, 1.0);
        assert_eq!((tags.user.as_str(), tags.client_id.as_str()), ("u", "c"));
        let (v, tags) = resolve(&image, "u", "other", PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(v, 3.0);
        assert_eq!((tags.user.as_str(), tags.client_id.as_str()), ("u", ""));
        // Another user falls to user=<default>, a quota of its own.
        let (v, tags) = resolve(&image, "v", "c", PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(v, 6.0);
        assert_eq!(tags.user, "v");
        assert!(resolve(&image, "u", "c", CONSUMER_BYTE_RATE).is_none());
        let only_clients = image_with(&[
            (entity(None, Some(None)), CONSUMER_BYTE_RATE, 8.0),
            (entity(None, Some(Some("c"))), CONSUMER_BYTE_RATE, 7.0),
        ]);
        assert_eq!(
            resolve(&only_clients, "u", "c", CONSUMER_BYTE_RATE)
                .unwrap()
                .0,
            7.0
        );
        let (v, tags) = resolve(&only_clients, "u", "d", CONSUMER_BYTE_RATE).unwrap();
        assert_eq!(
            (v, tags.user.as_str(), tags.client_id.as_str()),
            (8.0, "", "d")
        );
    }

    #[test]
    fn entities_and_values_are_checked_as_kafka_does() {
        assert!(QuotaEntity::from_parts([]).is_err());
        assert!(QuotaEntity::from_parts([(USER, Some(""))]).is_err());
        assert!(QuotaEntity::from_parts([(USER, Some("a")), (USER, Some("b"))]).is_err());
        assert!(QuotaEntity::from_parts([("group", Some("a"))]).is_err());
        assert!(QuotaEntity::from_parts([(IP, Some("1.2.3.4")), (USER, None)]).is_err());
        assert!(QuotaEntity::from_parts([(IP, Some("not an address"))]).is_err());
        let ip = QuotaEntity::from_parts([(IP, Some("1.2.3.4"))]).unwrap();
        assert!(ip.check_value(CONNECTION_CREATION_RATE, 10.0).is_ok());
        assert!(ip.check_value(PRODUCER_BYTE_RATE, 10.0).is_err());
        let user = QuotaEntity::from_parts([(USER, None)]).unwrap();
        assert!(user.check_value(PRODUCER_BYTE_RATE, 10.5).is_err());
        assert!(user.check_value(REQUEST_PERCENTAGE, 10.5).is_ok());
        assert!(user.check_value("bogus", 1.0).is_err());
        assert!(user.check_value(CONSUMER_BYTE_RATE, 0.0).is_err());
    }

    #[test]
    fn describe_filters_by_exact_default_and_specified() {
        let image = image_with(&[
            (entity(Some(Some("u")), None), PRODUCER_BYTE_RATE, 1.0),
            (entity(Some(None), None), PRODUCER_BYTE_RATE, 2.0),
            (
                entity(Some(Some("u")), Some(Some("c"))),
                PRODUCER_BYTE_RATE,
                3.0,
            ),
        ]);
        let c = |t: &str, m: i8, n: Option<&str>| component(t, m, n).unwrap();
        let found = describe(&image, &[c(USER, 0, Some("u"))], false).unwrap();
        assert_eq!(found.len(), 2);
        let found = describe(&image, &[c(USER, 0, Some("u"))], true).unwrap();
        assert_eq!(found.len(), 1);
        let found = describe(&image, &[c(USER, 1, None)], false).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1[PRODUCER_BYTE_RATE], 2.0);
        let found = describe(&image, &[c(USER, 2, None)], true).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(describe(&image, &[], false).unwrap().len(), 3);
        assert!(describe(&image, &[c(USER, 2, None), c(USER, 1, None)], false).is_err());
        assert!(describe(&image, &[c(IP, 2, None), c(USER, 1, None)], false).is_err());
        assert!(matches!(
            component(USER, 0, None),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            component(USER, 9, None),
            Err(FilterError::Unsupported(_))
        ));
    }

    #[test]
    fn alterations_record_only_changes() {
        let e = entity(Some(Some("u")), None);
        let image = image_with(&[(e.clone(), PRODUCER_BYTE_RATE, 1.0)]);
        let none = alter_records(
            &image,
            &[(
                e.clone(),
                vec![
                    (PRODUCER_BYTE_RATE.into(), Some(1.0)),
                    (CONSUMER_BYTE_RATE.into(), None),
                ],
            )],
        );
        assert!(none.is_empty());
        let some = alter_records(
            &image,
            &[(
                e,
                vec![
                    (PRODUCER_BYTE_RATE.into(), None),
                    (CONSUMER_BYTE_RATE.into(), Some(5.0)),
                ],
            )],
        );
        assert_eq!(some.len(), 2);
    }
}
