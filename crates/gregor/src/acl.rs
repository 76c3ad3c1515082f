//! `gregor acl create|list|delete`: ACLs (CreateAcls, DescribeAcls, DeleteAcls, APIs
//! 30/29/31) in the spirit of Kafka's `kafka-acls.sh`. Over [`crate::wire`].

use anyhow::{bail, Result};
use gregor_security::acl::{
    AclBinding, AclBindingFilter, AclOperation, PatternType, PermissionType, ResourceType,
    CLUSTER_NAME,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

#[derive(clap::Subcommand)]
pub(crate) enum AclCommand {
    /// Add ACLs: each principal × operation × resource.
    ///
    /// Example: gregor acl create --allow-principal User:alice --operation read --topic orders
    Create(CreateArgs),
    /// List ACLs (all of them, or those a filter selects).
    ///
    /// Example: gregor acl list --topic orders --resource-pattern-type match
    List(FilterArgs),
    /// Remove the ACLs a filter selects (a resource or a principal must be named).
    ///
    /// Example: gregor acl delete --topic orders --principal User:alice
    Delete(FilterArgs),
}

#[derive(clap::Args)]
pub(crate) struct Resources {
    /// A topic (repeatable); `*` is every topic.
    #[arg(long)]
    topic: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long)]
    group: Vec<String>,
    /// A transactional id (repeatable).
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// The cluster itself.
    #[arg(long)]
    cluster: bool,
    /// literal or prefixed (create; default literal); for list and delete also any (the
    /// name exactly, any pattern type) and match (every ACL that applies to the name).
    /// Default for list and delete: literal when a resource is named, else any.
    #[arg(long = "resource-pattern-type")]
    pattern: Option<String>,
}

impl Resources {
    fn named(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|n| (ResourceType::Topic, n.clone())));
        out.extend(self.group.iter().map(|n| (ResourceType::Group, n.clone())));
        out.extend(
            self.transactional_id
                .iter()
                .map(|n| (ResourceType::TransactionalId, n.clone())),
        );
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
        }
        out
    }

    fn pattern(&self, default: PatternType) -> Result<PatternType> {
        match &self.pattern {
            None => Ok(default),
            Some(p) => Ok(p.parse()?),
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    resources: Resources,
    /// A principal to allow, `Type:name` (`User:alice`, `User:*`). Repeatable.
    #[arg(long = "allow-principal")]
    allow: Vec<String>,
    /// A principal to deny. Repeatable.
    #[arg(long = "deny-principal")]
    deny: Vec<String>,
    /// An operation: read, write, create, delete, alter, describe, cluster-action,
    /// describe-configs, alter-configs, idempotent-write, all, ... Repeatable.
    #[arg(long, required = true)]
    operation: Vec<String>,
    /// The client host (an IP address) the ACLs apply to.
    #[arg(long, default_value = "*")]
    host: String,
}

#[derive(clap::Args)]
pub(crate) struct FilterArgs {
    #[command(flatten)]
    resources: Resources,
    /// Only ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
    /// Only ACLs of this operation.
    #[arg(long)]
    operation: Option<String>,
    /// Only ACLs with this permission: allow or deny.
    #[arg(long)]
    permission: Option<String>,
    /// Only ACLs of this host.
    #[arg(long)]
    host: Option<String>,
}

impl FilterArgs {
    fn filters(&self) -> Result<Vec<AclBindingFilter>> {
        let named = self.resources.named();
        let base = AclBindingFilter {
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: match &self.operation {
                Some(o) => o.parse()?,
                None => AclOperation::Any,
            },
            permission: match &self.permission {
                Some(p) => p.parse()?,
                None => PermissionType::Any,
            },
            ..AclBindingFilter::any()
        };
        if named.is_empty() {
            return Ok(vec![AclBindingFilter {
                pattern_type: self.resources.pattern(PatternType::Any)?,
                ..base
            }]);
        }
        let pattern = self.resources.pattern(PatternType::Literal)?;
        Ok(named
            .into_iter()
            .map(|(t, n)| AclBindingFilter {
                resource_type: t,
                resource_name: Some(n),
                pattern_type: pattern,
                ..base.clone()
            })
            .collect())
    }
}

pub(crate) fn run(conn: &Conn, cmd: AclCommand) -> Result<()> {
    let mut w = Wire::open(conn)?;
    match cmd {
        AclCommand::Create(args) => create(conn, &mut w, &args),
        AclCommand::List(args) => list(conn, &mut w, &args),
        AclCommand::Delete(args) => delete(conn, &mut w, &args),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create(conn: &Conn, w: &mut Wire, args: &CreateArgs) -> Result<()> {
    let named = args.resources.named();
    if named.is_empty() {
        bail!("name a resource: --topic, --group, --transactional-id or --cluster");
    }
    if args.allow.is_empty() && args.deny.is_empty() {
        bail!("name a principal: --allow-principal or --deny-principal");
    }
    let pattern = args.resources.pattern(PatternType::Literal)?;
    let ops = args
        .operation
        .iter()
        .map(|o| o.parse::<AclOperation>())
        .collect::<Result<Vec<_>, _>>()?;
    let principals = args
        .allow
        .iter()
        .map(|p| (p, PermissionType::Allow))
        .chain(args.deny.iter().map(|p| (p, PermissionType::Deny)));
    let mut bindings = Vec::new();
    for (principal, permission) in principals {
        for (t, name) in &named {
            for &operation in &ops {
                bindings.push(AclBinding {
                    resource_type: *t,
                    resource_name: name.clone(),
                    pattern_type: pattern,
                    principal: principal.clone(),
                    host: args.host.clone(),
                    operation,
                    permission,
                });
            }
        }
    }
    let req = CreateAclsRequest::default().with_creations(
        bindings
            .iter()
            .map(|b| {
                AclCreation::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(s(&b.resource_name))
                    .with_resource_pattern_type(b.pattern_type.code())
                    .with_principal(s(&b.principal))
                    .with_host(s(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code())
            })
            .collect(),
    );
    let resp = w.call(&req, 3)?;
    let mut failed = 0;
    let mut created = Vec::new();
    for (b, r) in bindings.iter().zip(&resp.results) {
        if r.error_code == 0 {
            created.push(b.clone());
        } else {
            failed += 1;
            let why = r.error_message.as_ref().map(|m| m.to_string());
            eprintln!(
                "{b}: {}{}",
                error_name(r.error_code),
                why.map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
    }
    print(conn, &created);
    if failed > 0 {
        bail!("{failed} of {} ACLs were not created", bindings.len());
    }
    Ok(())
}

fn list(conn: &Conn, w: &mut Wire, args: &FilterArgs) -> Result<()> {
    let mut found = Vec::new();
    for f in args.filters()? {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type.code())
            .with_resource_name_filter(f.resource_name.as_deref().map(s))
            .with_pattern_type_filter(f.pattern_type.code())
            .with_principal_filter(f.principal.as_deref().map(s))
            .with_host_filter(f.host.as_deref().map(s))
            .with_operation(f.operation.code())
            .with_permission_type(f.permission.code());
        let resp = w.call(&req, 3)?;
        if resp.error_code != 0 {
            let why = resp
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_default();
            bail!("{}: {why}", error_name(resp.error_code));
        }
        for res in &resp.resources {
            for a in &res.acls {
                found.push(AclBinding {
                    resource_type: ResourceType::try_from(res.resource_type)?,
                    resource_name: res.resource_name.to_string(),
                    pattern_type: PatternType::try_from(res.pattern_type)?,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: AclOperation::try_from(a.operation)?,
                    permission: PermissionType::try_from(a.permission_type)?,
                });
            }
        }
    }
    found.sort();
    found.dedup();
    print(conn, &found);
    Ok(())
}

fn delete(conn: &Conn, w: &mut Wire, args: &FilterArgs) -> Result<()> {
    if args.resources.named().is_empty() && args.principal.is_none() {
        bail!("refusing to delete every ACL: name a resource or a --principal");
    }
    let filters = args.filters()?;
    let req = DeleteAclsRequest::default().with_filters(
        filters
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.resource_type.code())
                    .with_resource_name_filter(f.resource_name.as_deref().map(s))
                    .with_pattern_type_filter(f.pattern_type.code())
                    .with_principal_filter(f.principal.as_deref().map(s))
                    .with_host_filter(f.host.as_deref().map(s))
                    .with_operation(f.operation.code())
                    .with_permission_type(f.permission.code())
            })
            .collect(),
    );
    let resp = w.call(&req, 3)?;
    let mut deleted = Vec::new();
    for r in &resp.filter_results {
        if r.error_code != 0 {
            let why = r.error_message.as_ref().map(|m| m.to_string());
            bail!("{}: {}", error_name(r.error_code), why.unwrap_or_default());
        }
        for a in &r.matching_acls {
            deleted.push(AclBinding {
                resource_type: ResourceType::try_from(a.resource_type)?,
                resource_name: a.resource_name.to_string(),
                pattern_type: PatternType::try_from(a.pattern_type)?,
                principal: a.principal.to_string(),
                host: a.host.to_string(),
                operation: AclOperation::try_from(a.operation)?,
                permission: PermissionType::try_from(a.permission_type)?,
            });
        }
    }
    deleted.sort();
    deleted.dedup();
    print(conn, &deleted);
    Ok(())
}

/// ACLs as a table, or as JSON objects with Kafka's names.
fn print(conn: &Conn, acls: &[AclBinding]) {
    if conn.json() {
        let list: Vec<_> = acls
            .iter()
            .map(|b| {
                json!({
                    "resource_type": b.resource_type.name(),
                    "resource_name": b.resource_name,
                    "pattern_type": b.pattern_type.name(),
                    "principal": b.principal,
                    "host": b.host,
                    "operation": b.operation.name(),
                    "permission": b.permission.name(),
                })
            })
            .collect();
        out!("{}", json!(list));
        return;
    }
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|b| {
            vec![
                b.resource_type.to_string(),
                b.resource_name.clone(),
                b.pattern_type.to_string(),
                b.principal.clone(),
                b.host.clone(),
                b.operation.to_string(),
                b.permission.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "RESOURCE_TYPE",
            "NAME",
            "PATTERN",
            "PRINCIPAL",
            "HOST",
            "OPERATION",
            "PERMISSION",
        ],
        &rows,
    );
}
