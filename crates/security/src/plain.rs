//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` does it, with users configured as
//! Kafka configures them: `user_<name>="<password>"` options of a JAAS entry
//! (`listener.name.<listener>.plain.sasl.jaas.config`).

use std::collections::BTreeMap;
use std::fmt;

use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlainError {
    #[error("invalid SASL/PLAIN message: {0}")]
    Malformed(&'static str),
    #[error("Authentication failed: Invalid username or password")]
    BadCredentials,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid JAAS configuration: {0}")]
pub struct JaasError(pub String);

/// The PLAIN users and their passwords. Debug shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlainUsers {
    users: BTreeMap<String, String>,
}

impl fmt::Debug for PlainUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.users.keys()).finish()
    }
}

impl PlainUsers {
    /// The `user_<name>` options of a JAAS entry such as
    /// `org.apache.kafka.common.security.plain.PlainLoginModule required
    /// username="admin" password="admin-secret" user_admin="admin-secret";`.
    pub fn from_jaas(entry: &str) -> Result<Self, JaasError> {
        let options = parse_jaas(entry)?;
        let users = options
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v)))
            .collect();
        Ok(Self { users })
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks one PLAIN message (`authzid NUL authcid NUL passwd`) and returns the user.
    pub fn authenticate(&self, message: &[u8]) -> Result<String, PlainError> {
        let mut parts = message.split(|&b| b == 0);
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PlainError::Malformed("expected authzid, user and password"));
        };
        let user = std::str::from_utf8(user).map_err(|_| PlainError::Malformed("not UTF-8"))?;
        if user.is_empty() || password.is_empty() {
            return Err(PlainError::Malformed("empty user name or password"));
        }
        if !authzid.is_empty() && authzid != user.as_bytes() {
            return Err(PlainError::Malformed(
                "authorization id differs from the user name",
            ));
        }
        match self.users.get(user) {
            Some(expected) if bool::from(expected.as_bytes().ct_eq(password)) => {
                Ok(user.to_string())
            }
            _ => Err(PlainError::BadCredentials),
        }
    }
}

/// Parses one JAAS login-module entry: `<class> <flag> key="value" key=value ... ;`.
/// Returns the options; the class and flag are checked only for presence.
pub fn parse_jaas(entry: &str) -> Result<BTreeMap<String, String>, JaasError> {
    let mut chars = entry.trim().chars().peekable();
    let mut word = || -> String {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let class = word();
    let flag = word();
    if class.is_empty() || class.contains('=') {
        return Err(JaasError("no login module class".into()));
    }
    if !matches!(
        flag.as_str(),
        "required" | "requisite" | "sufficient" | "optional"
    ) {
        return Err(JaasError(format!(
            "{flag:?} is not a JAAS control flag (required, requisite, sufficient, optional)"
        )));
    }
    let rest: String = chars.collect();
    let mut options = BTreeMap::new();
    let mut it = rest.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        match it.peek() {
            None => return Err(JaasError("missing ';' at the end".into())),
            Some(';') => {
                it.next();
                if it.any(|c| !c.is_whitespace()) {
                    return Err(JaasError("more than one login module entry".into()));
                }
                return Ok(options);
            }
            Some(_) => {}
        }
        let mut key = String::new();
        while let Some(&c) = it.peek() {
            if c == '=' || c.is_whitespace() || c == ';' {
                break;
            }
            key.push(c);
            it.next();
        }
        if it.next() != Some('=') || key.is_empty() {
            return Err(JaasError(format!("option {key:?} has no value")));
        }
        let mut value = String::new();
        if it.peek() == Some(&'"') {
            it.next();
            loop {
                match it.next() {
                    None => return Err(JaasError(format!("unterminated value of {key}"))),
                    Some('"') => break,
                    Some('\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => return Err(JaasError(format!("unterminated value of {key}"))),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() || c == ';' {
                    break;
                }
                value.push(c);
                it.next();
            }
        }
        options.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
        username="admin" password="admin-secret"
        user_admin="admin-secret" user_alice="al\"ice" user_bob=plain;"#;

    #[test]
    fn users_come_from_user_options() {
        let users = PlainUsers::from_jaas(JAAS).unwrap_or_default();
        assert_eq!(users.authenticate(b"\0alice\0al\"ice"), Ok("alice".into()));
        assert_eq!(users.authenticate(b"bob\0bob\0plain"), Ok("bob".into()));
        assert_eq!(
            users.authenticate(b"\0admin\0admin-secret"),
            Ok("admin".into())
        );
        assert_eq!(
            users.authenticate(b"\0alice\0wrong"),
            Err(PlainError::BadCredentials)
        );
        assert_eq!(
            users.authenticate(b"\0nobody\0x"),
            Err(PlainError::BadCredentials)
        );
        assert!(!format!("{users:?}").contains("secret"));
    }

    #[test]
    fn malformed_plain_messages() {
        let users = PlainUsers::from_jaas(JAAS).unwrap_or_default();
        for m in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0\0pw",
            b"\0alice\0",
            b"x\0alice\0pw",
            b"\0a\0b\0c",
            b"\0\xff\0pw",
        ] {
            assert!(users.authenticate(m).is_err(), "{m:?}");
        }
    }

    #[test]
    fn bad_jaas_is_an_error() {
        for bad in [
            "",
            "Module",
            "Module required user_a=\"x\"",
            "Module maybe user_a=x;",
            "Module required user_a;",
            "Module required user_a=\"x;",
            "Module required a=b; Other required c=d;",
        ] {
            assert!(parse_jaas(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_jaas("M required;").map(|o| o.len()),
            Ok(0),
            "an entry without options is fine"
        );
    }
}
