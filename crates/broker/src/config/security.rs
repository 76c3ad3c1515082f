//! The authorizer's settings: `super.users` and `allow.everyone.if.no.acl.found`.

use gregor_security::acl::AuthorizerConfig;

use super::{boolean, invalid, ConfigError};

pub(super) fn authorizer_config(
    get: &impl Fn(&str) -> String,
) -> Result<AuthorizerConfig, ConfigError> {
    let supers = get("super.users");
    Ok(AuthorizerConfig {
        super_users: AuthorizerConfig::parse_super_users(&supers)
            .map_err(|e| invalid("super.users", &supers, &e.to_string()))?,
        allow_everyone_if_no_acl_found: boolean(
            "allow.everyone.if.no.acl.found",
            &get("allow.everyone.if.no.acl.found"),
        )?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use gregor_security::Principal;

    use crate::config::BrokerConfig;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, crate::config::ConfigError> {
        let explicit: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_explicit(explicit)
    }

    #[test]
    fn super_users_and_default_are_parsed_and_validated() {
        let c = config(&[]).unwrap();
        assert!(c.authorizer.super_users.is_empty());
        assert!(c.authorizer.allow_everyone_if_no_acl_found);
        let c = config(&[
            ("super.users", "User:admin;User:CN=ops,O=x"),
            ("allow.everyone.if.no.acl.found", "false"),
        ])
        .unwrap();
        assert!(c.authorizer.super_users.contains(&Principal::user("admin")));
        assert!(c
            .authorizer
            .super_users
            .contains(&Principal::user("CN=ops,O=x")));
        assert!(!c.authorizer.allow_everyone_if_no_acl_found);
        assert!(config(&[("super.users", "admin")]).is_err());
        assert!(config(&[("allow.everyone.if.no.acl.found", "maybe")]).is_err());
    }
}
