//! CreateAcls and DeleteAcls as metadata records (Kafka's AclControlManager): a new ACL
//! is an `AccessControlEntryRecord` with a fresh id, a deleted one a
//! `RemoveAccessControlEntryRecord` naming that id. Decided by the active controller
//! against its image, so two brokers creating the same binding at once make one ACL.

use std::collections::BTreeSet;

use gregor_security::acl::{AclBinding, AclBindingFilter};
use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// The records that create `bindings`: one per valid binding that is neither in the
/// image nor earlier in the request (an existing binding is success, as in Kafka).
pub fn create_records(image: &MetadataImage, bindings: &[AclBinding]) -> Vec<MetadataRecord> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for b in bindings {
        if b.validate().is_err() || image.acl_index.contains(b) || !seen.insert(b) {
            continue;
        }
        let mut id = Uuid::new_v4();
        while image.acls.contains_key(&id) {
            id = Uuid::new_v4();
        }
        out.push(MetadataRecord::AccessControlEntryRecord {
            id,
            binding: b.clone(),
        });
    }
    out
}

/// The records that remove every ACL at least one of `filters` matches, each once.
pub fn delete_records(image: &MetadataImage, filters: &[AclBindingFilter]) -> Vec<MetadataRecord> {
    image
        .acls
        .iter()
        .filter(|(_, b)| filters.iter().any(|f| f.matches(b)))
        .map(|(&id, _)| MetadataRecord::RemoveAccessControlEntryRecord { id })
        .collect()
}

/// The bindings `records` remove from `image` (the image they were decided on): what
/// a DeleteAcls answer lists.
pub fn removed_bindings(image: &MetadataImage, records: &[MetadataRecord]) -> Vec<AclBinding> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::RemoveAccessControlEntryRecord { id } => image.acls.get(id).cloned(),
            _ => None,
        })
        .collect()
}

/// The records that rebuild the image's ACLs (for a snapshot), by id.
pub fn image_records(image: &MetadataImage) -> impl Iterator<Item = MetadataRecord> + '_ {
    image
        .acls
        .iter()
        .map(|(&id, b)| MetadataRecord::AccessControlEntryRecord {
            id,
            binding: b.clone(),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gregor_security::acl::{AclOperation, PatternType, PermissionType, ResourceType};

    pub(crate) fn binding(name: &str, pattern: PatternType, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: PermissionType::Allow,
        }
    }

    /// Two ACLs, for the snapshot round trip.
    pub(crate) fn sample_records() -> Vec<MetadataRecord> {
        let image = MetadataImage::empty();
        create_records(
            &image,
            &[
                binding("t", PatternType::Literal, "User:alice"),
                binding("t-", PatternType::Prefixed, "User:*"),
            ],
        )
    }

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        let offset = image.offset + 1;
        image.apply_entry(offset, records);
    }

    #[test]
    fn create_is_idempotent_and_skips_invalid() {
        let mut image = MetadataImage::empty();
        let a = binding("t", PatternType::Literal, "User:alice");
        let bad = binding("t", PatternType::Match, "User:alice");
        let records = create_records(&image, &[a.clone(), a.clone(), bad]);
        assert_eq!(records.len(), 1);
        apply(&mut image, &records);
        assert_eq!(image.acls.values().collect::<Vec<_>>(), vec![&a]);
        assert!(image.acl_index.contains(&a));
        assert!(create_records(&image, &[a]).is_empty());
        // The record survives its JSON form.
        let bytes = records[0].encode().unwrap();
        assert_eq!(MetadataRecord::decode(&bytes).unwrap(), records[0]);
    }

    #[test]
    fn delete_removes_what_the_filters_match() {
        let mut image = MetadataImage::empty();
        let a = binding("t", PatternType::Literal, "User:alice");
        let p = binding("t", PatternType::Prefixed, "User:bob");
        let other = binding("u", PatternType::Literal, "User:alice");
        let created = create_records(&image, &[a.clone(), p.clone(), other.clone()]);
        apply(&mut image, &created);
        let by_name = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("t".into()),
            pattern_type: PatternType::Any,
            ..AclBindingFilter::any()
        };
        let literal_only = AclBindingFilter {
            pattern_type: PatternType::Literal,
            ..by_name.clone()
        };
        // Two filters matching one ACL remove it once.
        let records = delete_records(&image, &[by_name, literal_only]);
        assert_eq!(records.len(), 2);
        let mut removed = removed_bindings(&image, &records);
        removed.sort();
        assert_eq!(removed, vec![a.clone(), p.clone()]);
        apply(&mut image, &records);
        assert_eq!(image.acls.values().collect::<Vec<_>>(), vec![&other]);
        assert!(!image.acl_index.contains(&a));
        let auth = image.authorizer(&std::sync::Arc::new(Default::default()));
        assert_eq!(auth.acls().len(), 1);
    }
}
