//! `gregor quota set|delete|list`: client quotas (AlterClientQuotas and
//! DescribeClientQuotas, APIs 49/48), what `kafka-configs.sh --entity-type
//! users|clients|ips --alter --add-config producer_byte_rate=...` and `--describe` do.
//! An entity is a user, a client id, a user with a client id, or an IP; each part a
//! name or, with the `--*-default` flags, the default for that part.

use anyhow::{bail, Result};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

/// Which entity: each part is a name, the default (`--user-default`), or absent.
#[derive(clap::Args, Clone)]
pub(crate) struct EntityArgs {
    /// A user principal name (the part after `User:`).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The default for users.
    #[arg(long)]
    user_default: bool,
    /// A client.id.
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default for client ids.
    #[arg(long)]
    client_id_default: bool,
    /// A client IP address (for connection_creation_rate).
    #[arg(long, conflicts_with = "ip_default")]
    ip: Option<String>,
    /// The default for IPs.
    #[arg(long)]
    ip_default: bool,
}

/// (entity type, Some(name) | None for the default), in Kafka's wire form.
type Part = (&'static str, Option<String>);

impl EntityArgs {
    fn parts(&self) -> Vec<Part> {
        let mut out = Vec::new();
        let mut part = |kind: &'static str, name: &Option<String>, default: bool| {
            if default {
                out.push((kind, None));
            } else if let Some(n) = name {
                out.push((kind, Some(n.clone())));
            }
        };
        part("user", &self.user, self.user_default);
        part("client-id", &self.client_id, self.client_id_default);
        part("ip", &self.ip, self.ip_default);
        out
    }
}

#[derive(clap::Subcommand)]
pub(crate) enum QuotaCommand {
    /// Set quota values for an entity (KEY=VALUE; keys: producer_byte_rate,
    /// consumer_byte_rate, request_percentage, connection_creation_rate).
    ///
    /// Example: gregor quota set --client-id loader producer_byte_rate=1048576
    Set {
        #[command(flatten)]
        entity: EntityArgs,
        #[arg(required = true)]
        values: Vec<String>,
        /// Only check; change nothing.
        #[arg(long)]
        validate_only: bool,
    },
    /// Remove quota keys from an entity.
    ///
    /// Example: gregor quota delete --user-default consumer_byte_rate
    Delete {
        #[command(flatten)]
        entity: EntityArgs,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Quotas set, for every entity or those matching the given parts.
    ///
    /// Example: gregor quota list --client-id loader
    #[command(alias = "describe")]
    List {
        #[command(flatten)]
        entity: EntityArgs,
    },
}

pub(crate) fn run(conn: &Conn, cmd: QuotaCommand) -> Result<()> {
    let mut w = Wire::open(conn)?;
    match cmd {
        QuotaCommand::Set {
            entity,
            values,
            validate_only,
        } => {
            let mut ops = Vec::with_capacity(values.len());
            for kv in &values {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("{kv}: expected KEY=VALUE");
                };
                let v: f64 = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{kv}: the value is not a number"))?;
                ops.push(OpData::default().with_key(s(k)).with_value(v));
            }
            alter(conn, &mut w, &entity, ops, validate_only)
        }
        QuotaCommand::Delete { entity, keys } => {
            let ops = keys
                .iter()
                .map(|k| OpData::default().with_key(s(k)).with_remove(true))
                .collect();
            alter(conn, &mut w, &entity, ops, false)
        }
        QuotaCommand::List { entity } => list(conn, &mut w, &entity),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn describe_entity(parts: &[(String, Option<String>)]) -> String {
    parts
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(",")
}

fn alter(
    conn: &Conn,
    w: &mut Wire,
    entity: &EntityArgs,
    ops: Vec<OpData>,
    validate_only: bool,
) -> Result<()> {
    let parts = entity.parts();
    if parts.is_empty() {
        bail!("name an entity: --user, --client-id, --ip or their --*-default");
    }
    let entry = EntryData::default()
        .with_entity(
            parts
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(t))
                        .with_entity_name(n.as_deref().map(s))
                })
                .collect(),
        )
        .with_ops(ops);
    let req = AlterClientQuotasRequest::default()
        .with_entries(vec![entry])
        .with_validate_only(validate_only);
    let resp = w.call(&req, 1)?;
    let mut failed = false;
    for r in &resp.entries {
        let who: Vec<(String, Option<String>)> = r
            .entity
            .iter()
            .map(|e| {
                (
                    e.entity_type.to_string(),
                    e.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let status = if r.error_code == 0 {
            "ok".to_string()
        } else {
            failed = true;
            format!(
                "{}: {}",
                error_name(r.error_code),
                r.error_message.as_deref().unwrap_or("")
            )
        };
        if conn.json() {
            println!(
                "{}",
                json!({"entity": describe_entity(&who), "result": status})
            );
        } else {
            println!("{}: {status}", describe_entity(&who));
        }
    }
    if failed {
        bail!("the change was refused");
    }
    Ok(())
}

fn list(conn: &Conn, w: &mut Wire, entity: &EntityArgs) -> Result<()> {
    // A named part matches exactly (type 0), a default part matches the default (1).
    let components = entity
        .parts()
        .into_iter()
        .map(|(t, n)| {
            let c = ComponentData::default().with_entity_type(StrBytes::from_static_str(t));
            match n {
                Some(n) => c.with_match_type(0).with_match(Some(s(&n))),
                None => c.with_match_type(1),
            }
        })
        .collect();
    let req = DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(false);
    let resp = w.call(&req, 1)?;
    if resp.error_code != 0 {
        bail!(
            "{}: {}",
            error_name(resp.error_code),
            resp.error_message.as_deref().unwrap_or("")
        );
    }
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for e in resp.entries.unwrap_or_default() {
        let who: Vec<(String, Option<String>)> = e
            .entity
            .iter()
            .map(|p| {
                (
                    p.entity_type.to_string(),
                    p.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let name = describe_entity(&who);
        for v in &e.values {
            rows.push(vec![name.clone(), v.key.to_string(), v.value.to_string()]);
            out.push(json!({"entity": name, "key": v.key.as_str(), "value": v.value}));
        }
    }
    if conn.json() {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        table(&["ENTITY", "KEY", "VALUE"], &rows);
    }
    Ok(())
}
