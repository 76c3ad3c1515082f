//! Kafka's ACL model (KIP-11, KIP-290 prefixed patterns): what a binding says, how a
//! filter selects bindings (DescribeAcls, DeleteAcls), which bindings CreateAcls takes,
//! and the [`Authorizer`] that decides a request against a set of bindings.
//!
//! # Layout
//! - this file: the enums with Kafka's wire codes, [`AclBinding`], [`AclBindingFilter`]
//!   and the validation of a new binding.
//! - [`index`]: [`AclIndex`], the bindings indexed by resource type and name.
//! - [`authorizer`]: [`Authorizer`], Kafka's StandardAuthorizer rules over an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Principal;

pub mod authorizer;
pub mod index;

pub use authorizer::{Authorizer, AuthorizerConfig};
pub use index::AclIndex;

/// The only name a CLUSTER resource has (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL resource name (and ACL host) that matches every name (host).
pub const WILDCARD: &str = "*";
/// The principal of an ACL that applies to every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Why a binding or filter is refused. Every variant is Kafka's INVALID_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A wire code this model does not know (Kafka's UNKNOWN, 0, included).
    #[error("Unknown {what} code {code}")]
    UnknownCode { what: &'static str, code: i8 },
    /// A name (CLI, config) that is not one of the enum's.
    #[error("Unknown {what} {name:?}")]
    UnknownName { what: &'static str, name: String },
    /// A binding that CreateAcls refuses, with Kafka's message.
    #[error("{0}")]
    Invalid(String),
}

/// Declares a Kafka ACL enum: variants with their wire codes and Kafka's names.
macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($variant:ident = $code:literal, $kname:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            /// Kafka's name (`TOPIC`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $kname,)*
                }
            }
        }

        impl TryFrom<i8> for $name {
            type Error = AclError;
            fn try_from(code: i8) -> Result<Self, AclError> {
                match code {
                    $($code => Ok($name::$variant),)*
                    _ => Err(AclError::UnknownCode { what: $what, code }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        /// Kafka's name in any case, with or without `_`/`-` (`describe-configs`,
        /// `DescribeConfigs`, `DESCRIBE_CONFIGS`).
        impl FromStr for $name {
            type Err = AclError;
            fn from_str(s: &str) -> Result<Self, AclError> {
                let norm = |s: &str| -> String {
                    s.chars()
                        .filter(|c| *c != '_' && *c != '-')
                        .flat_map(char::to_lowercase)
                        .collect()
                };
                let want = norm(s);
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| norm(v.name()) == want)
                    .ok_or_else(|| AclError::UnknownName { what: $what, name: s.to_string() })
            }
        }
    };
}

kafka_enum!(
    /// The kind of resource an ACL protects (Kafka's `ResourceType`); ANY only in filters.
    ResourceType, "resource type", {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How a binding's resource name matches (KIP-290); ANY and MATCH only in filters.
    PatternType, "pattern type", {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// What an ACL allows or denies (Kafka's `AclOperation`); ANY only in filters.
    AclOperation, "operation", {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// ALLOW or DENY (Kafka's `AclPermissionType`); ANY only in filters.
    PermissionType, "permission type", {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// One ACL: `principal` may (ALLOW) or may not (DENY) do `operation` from `host` on the
/// resources `resource_type` + `resource_name` + `pattern_type` select. Ordered by
/// resource first, so a sorted set groups a resource's ACLs together (DescribeAcls).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name` (`User:alice`), or `User:*` for everyone.
    pub principal: String,
    /// An IP address, or `*` for every host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

impl AclBinding {
    /// Checks a binding for CreateAcls: Kafka's broker checks (the CLUSTER name, an empty
    /// name) and its controller's (no ANY/MATCH, a parseable principal), with Kafka's
    /// messages.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_type == ResourceType::Any {
            return Err(AclError::Invalid(format!(
                "Invalid resourceType {}",
                self.resource_type
            )));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(AclError::Invalid(format!(
                "Invalid patternType {}",
                self.pattern_type
            )));
        }
        if self.operation == AclOperation::Any {
            return Err(AclError::Invalid(format!(
                "Invalid operation {}",
                self.operation
            )));
        }
        if self.permission == PermissionType::Any {
            return Err(AclError::Invalid(format!(
                "Invalid permissionType {}",
                self.permission
            )));
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return Err(AclError::Invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            )));
        }
        if self.resource_name.is_empty() {
            return Err(AclError::Invalid("Invalid empty resource name".into()));
        }
        if Principal::parse(&self.principal).is_none() {
            return Err(AclError::Invalid(format!(
                "expected a string in format principalType:principalName but got {}",
                self.principal
            )));
        }
        Ok(())
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Selects bindings (Kafka's `AclBindingFilter`): `None` and ANY match anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    /// ANY: any pattern type, the name compared exactly; MATCH: the bindings that apply
    /// to the named resource (LITERAL equal, LITERAL `*`, PREFIXED prefixes of it);
    /// LITERAL/PREFIXED: that type, the name compared exactly.
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: PermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> Self {
        Self {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: PermissionType::Any,
        }
    }

    /// Kafka's `ResourcePatternFilter.matches` and `AccessControlEntryFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_resource(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission == PermissionType::Any || self.permission == b.permission)
    }

    fn matches_resource(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        // MATCH: the bindings that apply to a resource with this name.
        match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(b.resource_name.as_str()),
            PatternType::Any | PatternType::Match => false,
        }
    }
}

#[cfg(test)]
mod tests;
