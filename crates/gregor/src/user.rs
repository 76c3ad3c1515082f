//! `gregor user scram set|delete|list`: SCRAM credentials (AlterUserScramCredentials and
//! DescribeUserScramCredentials, APIs 51/50), as `kafka-configs.sh --alter
//! --add-config 'SCRAM-SHA-256=[password=...]' --entity-type users` does. The password
//! is salted and hashed here (PBKDF2); only the salted password crosses the wire.

use anyhow::{bail, Result};
use gregor_security::scram::{random_salt, ScramMechanism, MIN_ITERATIONS};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

#[derive(clap::Subcommand)]
pub(crate) enum UserCommand {
    /// SCRAM credentials.
    #[command(subcommand)]
    Scram(ScramCommand),
}

#[derive(clap::Subcommand)]
pub(crate) enum ScramCommand {
    /// Set (or replace) a user's credential for a mechanism.
    ///
    /// Example: gregor user scram set alice --password alice-secret --mechanism SCRAM-SHA-512
    Set {
        user: String,
        /// The password (or set GREGOR_SCRAM_PASSWORD, which keeps it out of `ps`).
        #[arg(long, env = "GREGOR_SCRAM_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default both).
        #[arg(long)]
        mechanism: Vec<String>,
        /// PBKDF2 iterations (4096..=16384).
        #[arg(long, default_value_t = MIN_ITERATIONS)]
        iterations: i32,
    },
    /// Delete a user's credential (all mechanisms unless --mechanism).
    ///
    /// Example: gregor user scram delete alice --mechanism SCRAM-SHA-256
    Delete {
        user: String,
        #[arg(long)]
        mechanism: Vec<String>,
    },
    /// Users with SCRAM credentials, their mechanisms and iteration counts.
    ///
    /// Example: gregor user scram list
    List {
        /// Only these users.
        users: Vec<String>,
    },
}

pub(crate) fn run(conn: &Conn, cmd: UserCommand) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let UserCommand::Scram(cmd) = cmd;
    match cmd {
        ScramCommand::Set {
            user,
            password,
            mechanism,
            iterations,
        } => {
            let upsertions = mechanisms(&mechanism)?
                .into_iter()
                .map(|m| {
                    let salt = random_salt();
                    let salted = m.salted_password(
                        password.as_bytes(),
                        &salt,
                        u32::try_from(iterations).unwrap_or(0),
                    );
                    ScramCredentialUpsertion::default()
                        .with_name(s(&user))
                        .with_mechanism(m.wire())
                        .with_iterations(iterations)
                        .with_salt(salt.into())
                        .with_salted_password(salted.into())
                })
                .collect();
            alter(
                conn,
                &mut w,
                AlterUserScramCredentialsRequest::default().with_upsertions(upsertions),
            )
        }
        ScramCommand::Delete { user, mechanism } => {
            let deletions = if mechanism.is_empty() {
                // Only the mechanisms the user has: deleting a missing one is an error.
                let has = describe(&mut w, std::slice::from_ref(&user))?;
                has.into_iter()
                    .flat_map(|(_, creds)| creds)
                    .filter_map(|(m, _)| ScramMechanism::from_name(&m))
                    .collect()
            } else {
                mechanisms(&mechanism)?
            };
            if deletions.is_empty() {
                bail!("{user} has no SCRAM credential");
            }
            let deletions = deletions
                .into_iter()
                .map(|m| {
                    ScramCredentialDeletion::default()
                        .with_name(s(&user))
                        .with_mechanism(m.wire())
                })
                .collect();
            alter(
                conn,
                &mut w,
                AlterUserScramCredentialsRequest::default().with_deletions(deletions),
            )
        }
        ScramCommand::List { users } => {
            let found = describe(&mut w, &users)?;
            if conn.json() {
                let out: Vec<_> = found
                    .iter()
                    .map(|(u, creds)| {
                        json!({"user": u, "credentials": creds.iter().map(|(m, i)| json!({"mechanism": m, "iterations": i})).collect::<Vec<_>>()})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                let rows: Vec<Vec<String>> = found
                    .iter()
                    .flat_map(|(u, creds)| {
                        creds
                            .iter()
                            .map(|(m, i)| vec![u.clone(), m.clone(), i.to_string()])
                            .collect::<Vec<_>>()
                    })
                    .collect();
                table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
            }
            Ok(())
        }
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn mechanisms(names: &[String]) -> Result<Vec<ScramMechanism>> {
    if names.is_empty() {
        return Ok(ScramMechanism::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            ScramMechanism::from_name(&n.to_ascii_uppercase())
                .ok_or_else(|| anyhow::anyhow!("{n}: expected SCRAM-SHA-256 or SCRAM-SHA-512"))
        })
        .collect()
}

fn alter(conn: &Conn, w: &mut Wire, req: AlterUserScramCredentialsRequest) -> Result<()> {
    let resp = w.call(&req, 0)?;
    let mut failed = false;
    for r in &resp.results {
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
            println!("{}", json!({"user": r.user.as_str(), "result": status}));
        } else {
            println!("{}: {status}", r.user.as_str());
        }
    }
    if failed {
        bail!("some changes were refused");
    }
    Ok(())
}

type Credentials = Vec<(String, Vec<(String, i32)>)>;

fn describe(w: &mut Wire, users: &[String]) -> Result<Credentials> {
    let req = DescribeUserScramCredentialsRequest::default().with_users(if users.is_empty() {
        None
    } else {
        Some(
            users
                .iter()
                .map(|u| UserName::default().with_name(s(u)))
                .collect(),
        )
    });
    let resp = w.call(&req, 0)?;
    if resp.error_code != 0 {
        bail!("{}", error_name(resp.error_code));
    }
    let mut out = Vec::new();
    for r in resp.results {
        if r.error_code != 0 {
            bail!(
                "{}: {}",
                r.user.as_str(),
                r.error_message
                    .as_deref()
                    .unwrap_or(&error_name(r.error_code))
            );
        }
        let creds = r
            .credential_infos
            .iter()
            .map(|c| {
                let name = ScramMechanism::from_wire(c.mechanism).map_or_else(
                    || format!("UNKNOWN({})", c.mechanism),
                    |m| m.name().to_string(),
                );
                (name, c.iterations)
            })
            .collect();
        out.push((r.user.to_string(), creds));
    }
    Ok(out)
}
