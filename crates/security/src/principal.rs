//! Who a connection is: Kafka's `KafkaPrincipal`, written `Type:name` (`User:alice`).

use std::fmt;

/// An authenticated (or anonymous) identity. Kafka's default principal builder gives
/// `User:<SASL authorization id>` for SASL, `User:<certificate subject DN>` for mutual
/// TLS and `User:ANONYMOUS` for PLAINTEXT and TLS without a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub const USER: &'static str = "User";

    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: Self::USER.to_string(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Parses `Type:name` (the name may itself contain colons, as a DN may not, but a
    /// SASL user name may). `None` when there is no type.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, name) = s.split_once(':')?;
        if kind.is_empty() {
            return None;
        }
        Some(Self {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_kafka_form() {
        let p = Principal::parse("User:alice").unwrap_or_else(Principal::anonymous);
        assert_eq!(p, Principal::user("alice"));
        assert_eq!(p.to_string(), "User:alice");
        assert_eq!(Principal::parse("alice"), None);
        assert_eq!(Principal::parse(":alice"), None);
        assert_eq!(
            Principal::parse("User:a:b").map(|p| p.name),
            Some("a:b".into())
        );
    }
}
