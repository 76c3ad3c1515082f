//! PostgreSQL connectors: a sink (insert/upsert/delete by primary key, auto-create) and
//! a change-data-capture source (initial snapshot, then the changes of a logical
//! replication slot decoded from `pgoutput`, in a Debezium-like envelope).
//!
//! Both use the blocking `postgres` client (tokio-postgres underneath): task threads
//! block by design. Connection settings: `connection.url` as
//! `jdbc:postgresql://host:port/db`, `postgresql://...` or libpq `key=value` form, with
//! `connection.user` / `connection.password`.

pub mod cdc;
mod pgoutput;
pub mod sink;

use gregor_connect_api::config::get_str;
use gregor_connect_api::{ConfigDef, ConfigType, ConnectError, Importance, Props, Value};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The connection settings every PostgreSQL connector has.
pub(crate) fn connection_def() -> ConfigDef {
    ConfigDef::new()
        .define("connection.url", ConfigType::String, None, Importance::High,
            "JDBC-style URL (jdbc:postgresql://host:port/db), postgresql:// URL or libpq key=value string.")
        .define("connection.user", ConfigType::String, Some(""), Importance::High, "Database user.")
        .define("connection.password", ConfigType::Password, Some(""), Importance::High, "Database password.")
        .in_group("Connection")
}

/// Opens a connection from the connector's settings.
pub(crate) fn connect(props: &Props) -> Result<postgres::Client, ConnectError> {
    let url = get_str(props, "connection.url").unwrap_or_default();
    let url = url.strip_prefix("jdbc:").unwrap_or(url);
    let mut config: postgres::Config = url.parse().map_err(|e| {
        ConnectError::Config(format!(
            "Invalid value for configuration connection.url: {e}"
        ))
    })?;
    if let Some(u) = get_str(props, "connection.user").filter(|u| !u.is_empty()) {
        config.user(u);
    }
    if let Some(p) = get_str(props, "connection.password").filter(|p| !p.is_empty()) {
        config.password(p);
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    config
        .connect(postgres::NoTls)
        .map_err(|e| ConnectError::Other(format!("cannot connect to PostgreSQL: {e}")))
}

/// A database error as a connector error.
pub(crate) fn db_err(context: &str, e: postgres::Error) -> ConnectError {
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string());
    ConnectError::Other(format!("{context}: {detail}"))
}

/// A quoted identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL literal for a value. Strings are single-quoted with quotes doubled (the server
/// runs with standard_conforming_strings, the default since 9.1, which the sink checks);
/// untyped literals take the column's type on insert.
pub(crate) fn literal(v: &Value) -> Result<String, ConnectError> {
    fn quote(s: &str) -> Result<String, ConnectError> {
        if s.contains('\0') {
            return Err(ConnectError::Data(
                "PostgreSQL text cannot contain NUL characters".into(),
            ));
        }
        Ok(format!("'{}'", s.replace('\'', "''")))
    }
    Ok(match v {
        Value::Null => "NULL".into(),
        Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_finite() => format!("{f:?}"),
        Value::Float(f) => quote(&f.to_string().replace("inf", "Infinity"))?,
        Value::String(s) => quote(s)?,
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("'\\x{hex}'")
        }
        other => quote(&other.to_json().to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers_are_quoted() {
        assert_eq!(
            literal(&Value::String("O'Brien".into())).unwrap(),
            "'O''Brien'"
        );
        assert_eq!(literal(&Value::Int(-3)).unwrap(), "-3");
        assert_eq!(literal(&Value::Float(1.5)).unwrap(), "1.5");
        assert_eq!(literal(&Value::Bytes(vec![0, 255])).unwrap(), "'\\x00ff'");
        assert_eq!(literal(&Value::Null).unwrap(), "NULL");
        assert!(literal(&Value::String("a\0b".into())).is_err());
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
