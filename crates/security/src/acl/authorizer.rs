//! Kafka's StandardAuthorizer decisions over an [`AclIndex`]: super users first, then
//! the ACLs that apply to the resource (LITERAL name, LITERAL `*`, PREFIXED prefixes),
//! where any matching DENY wins over any matching ALLOW, and a resource with no ACL at
//! all gets `allow.everyone.if.no.acl.found`.
//!
//! An [`Authorizer`] is two `Arc`s (the image's index and the broker's config), so a
//! handler takes one per request for the price of two reference-count increments.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::index::{AclIndex, Entry};
use super::{AclError, AclOperation, PatternType, PermissionType, ResourceType, WILDCARD};
use crate::Principal;

/// The broker's authorizer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principals allowed everything, whatever the ACLs say.
    pub super_users: HashSet<Principal>,
    /// `allow.everyone.if.no.acl.found`: the answer for a resource no ACL applies to.
    pub allow_everyone_if_no_acl_found: bool,
}

impl Default for AuthorizerConfig {
    /// No super users; everyone allowed where no ACL applies (Gregor's default until the
    /// handlers enforce ACLs).
    fn default() -> Self {
        Self {
            super_users: HashSet::new(),
            allow_everyone_if_no_acl_found: true,
        }
    }
}

impl AuthorizerConfig {
    /// Parses `super.users`: principals separated by `;` (`User:admin;User:ops`), blanks
    /// around each ignored.
    pub fn parse_super_users(value: &str) -> Result<HashSet<Principal>, AclError> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Principal::parse(s).ok_or_else(|| {
                    AclError::Invalid(format!(
                        "expected a string in format principalType:principalName but got {s}"
                    ))
                })
            })
            .collect()
    }
}

/// Decides requests against one set of bindings (an image's) and the config.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    acls: Arc<AclIndex>,
    config: Arc<AuthorizerConfig>,
}

/// What one ACL says about a request: nothing (it does not match), allow or deny.
fn verdict(
    e: &Entry,
    principal: &Principal,
    host: &str,
    op: AclOperation,
) -> Option<PermissionType> {
    let wildcard_principal = e.principal.kind == Principal::USER && e.principal.name == WILDCARD;
    if e.principal != *principal && !wildcard_principal {
        return None;
    }
    if e.host != WILDCARD && e.host != host {
        return None;
    }
    let applies = e.operation == AclOperation::All
        || e.operation == op
        // READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
        // DESCRIBE_CONFIGS; only when they allow (a DENY READ does not deny DESCRIBE).
        || (e.permission == PermissionType::Allow
            && match op {
                AclOperation::Describe => matches!(
                    e.operation,
                    AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ),
                AclOperation::DescribeConfigs => e.operation == AclOperation::AlterConfigs,
                _ => false,
            });
    applies.then_some(e.permission)
}

impl Authorizer {
    pub fn new(acls: Arc<AclIndex>, config: Arc<AuthorizerConfig>) -> Self {
        Self { acls, config }
    }

    pub fn acls(&self) -> &AclIndex {
        &self.acls
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    pub fn is_super_user(&self, principal: &Principal) -> bool {
        self.config.super_users.contains(principal)
    }

    /// May `principal`, connected from `host` (an IP address as text), do `op` on the
    /// resource `resource_type`/`name`?
    pub fn authorize(
        &self,
        principal: &Principal,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        if op == AclOperation::Any || resource_type == ResourceType::Any {
            return false;
        }
        let Some(index) = self.acls.of_type(resource_type) else {
            return self.config.allow_everyone_if_no_acl_found;
        };
        let mut resource_has_acls = false;
        let mut allowed = false;
        for e in index.applicable(name) {
            resource_has_acls = true;
            match verdict(e, principal, host, op) {
                Some(PermissionType::Deny) => return false,
                Some(PermissionType::Allow) => allowed = true,
                _ => {}
            }
        }
        allowed || (!resource_has_acls && self.config.allow_everyone_if_no_acl_found)
    }

    /// KIP-679's `authorizeByResourceType`: may `principal` do `op` on at least one
    /// resource of this type? (InitProducerId lets an idempotent producer in when it may
    /// WRITE some topic.) As Kafka: a literal resource no ACL names decides first (super
    /// users, the no-ACL default), then an ALLOW for `op` or ALL counts unless a DENY of
    /// the same name or a DENY prefix of it dominates it; a DENY of `*` denies all.
    /// Implied operations do not count here.
    pub fn authorize_by_resource_type(
        &self,
        principal: &Principal,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.authorize(principal, host, op, resource_type, "hardcode") {
            return true;
        }
        let Some(index) = self.acls.of_type(resource_type) else {
            return false;
        };
        let relevant = |e: &Entry| {
            let wildcard = e.principal.kind == Principal::USER && e.principal.name == WILDCARD;
            (e.principal == *principal || wildcard)
                && (e.host == WILDCARD || e.host == host)
                && (e.operation == op || e.operation == AclOperation::All)
        };
        let mut deny_literal = BTreeSet::new();
        let mut deny_prefixed = BTreeSet::new();
        let mut allow: Vec<(PatternType, &str)> = Vec::new();
        let sections = [
            (PatternType::Literal, &index.literal),
            (PatternType::Prefixed, &index.prefixed),
        ];
        for (pattern, map) in sections {
            for (name, entries) in map {
                for e in entries.iter().filter(|e| relevant(e)) {
                    match (e.permission, pattern) {
                        (PermissionType::Deny, PatternType::Literal) if name == WILDCARD => {
                            return false
                        }
                        (PermissionType::Deny, PatternType::Literal) => {
                            deny_literal.insert(name.as_str());
                        }
                        (PermissionType::Deny, _) => {
                            deny_prefixed.insert(name.as_str());
                        }
                        (PermissionType::Allow, PatternType::Literal) if name == WILDCARD => {
                            return true
                        }
                        (PermissionType::Allow, _) => allow.push((pattern, name.as_str())),
                        _ => {}
                    }
                }
            }
        }
        allow.iter().any(|&(pattern, name)| {
            if pattern == PatternType::Literal && deny_literal.contains(name) {
                return false;
            }
            let dominated = name
                .char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|prefix| deny_prefixed.contains(prefix));
            !dominated
        })
    }
}
