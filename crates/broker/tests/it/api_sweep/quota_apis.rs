//! Client quotas: AlterClientQuotas sets a user quota, a client-id default and an
//! address's connection rate, refuses bad entities and keys per entry, and
//! DescribeClientQuotas finds them with exact, default and specified filters.

use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{s, Sweep, INVALID_REQUEST};

fn entity(parts: &[(&str, Option<&str>)]) -> Vec<alter_client_quotas_request::EntityData> {
    parts
        .iter()
        .map(|(t, n)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(s(t))
                .with_entity_name(n.map(s))
        })
        .collect()
}

fn set(key: &str, value: f64) -> alter_client_quotas_request::OpData {
    alter_client_quotas_request::OpData::default()
        .with_key(s(key))
        .with_value(value)
}

fn entry(
    parts: &[(&str, Option<&str>)],
    ops: Vec<alter_client_quotas_request::OpData>,
) -> alter_client_quotas_request::EntryData {
    alter_client_quotas_request::EntryData::default()
        .with_entity(entity(parts))
        .with_ops(ops)
}

pub(crate) async fn alter_client_quotas(c: &mut Client, cx: &Sweep<'_>, (min, max): (i16, i16)) {
    for v in [min, max] {
        let user = format!("sweep-user-{v}");
        let req = AlterClientQuotasRequest::default().with_entries(vec![
            entry(
                &[("user", Some(&user))],
                vec![
                    set("producer_byte_rate", 1048576.0),
                    set("request_percentage", 12.5),
                ],
            ),
            entry(&[("client-id", None)], vec![set("consumer_byte_rate", 2e6)]),
            entry(
                &[("ip", Some("10.0.0.1"))],
                vec![set("connection_creation_rate", 5.0)],
            ),
            // A byte rate must be integral.
            entry(&[("user", Some("x"))], vec![set("producer_byte_rate", 1.5)]),
            // An address takes no byte rate, and ip cannot go with user.
            entry(
                &[("ip", Some("10.0.0.2"))],
                vec![set("producer_byte_rate", 1.0)],
            ),
            entry(
                &[("ip", Some("10.0.0.3")), ("user", Some("u"))],
                vec![set("connection_creation_rate", 1.0)],
            ),
            entry(
                &[("group", Some("g"))],
                vec![set("producer_byte_rate", 1.0)],
            ),
            entry(&[], vec![set("producer_byte_rate", 1.0)]),
        ]);
        let r = c.call(&req, v).await;
        let codes: Vec<i16> = r.entries.iter().map(|e| e.error_code).collect();
        let bad = INVALID_REQUEST;
        assert_eq!(codes, vec![0, 0, 0, bad, bad, bad, bad, bad], "v{v}: {r:?}");
        assert_eq!(r.entries[0].entity[0].entity_name, Some(s(&user)));
        assert_eq!(r.entries[1].entity[0].entity_name, None);
    }
    // validate_only changes nothing.
    let before = cx.b.broker.metadata.image().client_quotas.len();
    let req = AlterClientQuotasRequest::default()
        .with_validate_only(true)
        .with_entries(vec![entry(
            &[("user", Some("only-validated"))],
            vec![set("consumer_byte_rate", 10.0)],
        )]);
    let r = c.call(&req, max).await;
    assert_eq!(r.entries[0].error_code, 0);
    assert_eq!(cx.b.broker.metadata.image().client_quotas.len(), before);
}

fn component(
    t: &str,
    match_type: i8,
    name: Option<&str>,
) -> describe_client_quotas_request::ComponentData {
    describe_client_quotas_request::ComponentData::default()
        .with_entity_type(s(t))
        .with_match_type(match_type)
        .with_match(name.map(s))
}

/// An answered entity: its (type, name) parts and its (key, value) quotas.
type Described = (Vec<(String, Option<String>)>, Vec<(String, f64)>);

fn keys(r: &DescribeClientQuotasResponse) -> Vec<Described> {
    let mut out: Vec<_> = r
        .entries
        .iter()
        .flatten()
        .map(|e| {
            (
                e.entity
                    .iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.as_ref().map(|n| n.to_string()),
                        )
                    })
                    .collect(),
                e.values
                    .iter()
                    .map(|x| (x.key.to_string(), x.value))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    out
}

pub(crate) async fn describe_client_quotas(
    c: &mut Client,
    _cx: &Sweep<'_>,
    (min, max): (i16, i16),
) {
    for v in [min, max] {
        let exact = DescribeClientQuotasRequest::default()
            .with_components(vec![component("user", 0, Some("sweep-user-0"))])
            .with_strict(true);
        let r = c.call(&exact, v).await;
        assert_eq!(r.error_code, 0, "v{v}: {r:?}");
        assert_eq!(
            keys(&r),
            vec![(
                vec![("user".into(), Some("sweep-user-0".into()))],
                vec![
                    ("producer_byte_rate".into(), 1048576.0),
                    ("request_percentage".into(), 12.5)
                ]
            )],
            "v{v}"
        );
        let default = DescribeClientQuotasRequest::default().with_components(vec![component(
            "client-id",
            1,
            None,
        )]);
        let r = c.call(&default, v).await;
        assert_eq!(
            keys(&r),
            vec![(
                vec![("client-id".into(), None)],
                vec![("consumer_byte_rate".into(), 2e6)]
            )]
        );
        // Any named user: the sweep's users, not the default client id.
        let specified = DescribeClientQuotasRequest::default()
            .with_components(vec![component("user", 2, None)]);
        let r = c.call(&specified, v).await;
        assert!(!keys(&r).is_empty());
        assert!(keys(&r)
            .iter()
            .all(|(e, _)| e[0].0 == "user" && e[0].1.is_some()));
        // No components: everything (the address too).
        let r = c.call(&DescribeClientQuotasRequest::default(), v).await;
        assert!(keys(&r).iter().any(|(e, _)| e[0].0 == "ip"));
        // A type named twice, or ip with user: INVALID_REQUEST with no entries.
        let twice = DescribeClientQuotasRequest::default()
            .with_components(vec![component("user", 1, None), component("user", 2, None)]);
        let r = c.call(&twice, v).await;
        assert_eq!(r.error_code, INVALID_REQUEST, "v{v}");
        assert_eq!(r.entries, None);
        let mixed = DescribeClientQuotasRequest::default()
            .with_components(vec![component("ip", 2, None), component("user", 2, None)]);
        assert_eq!(c.call(&mixed, v).await.error_code, INVALID_REQUEST);
        // EXACT without a name.
        let r = c
            .call(
                &DescribeClientQuotasRequest::default()
                    .with_components(vec![component("user", 0, None)]),
                v,
            )
            .await;
        assert_eq!(r.error_code, INVALID_REQUEST);
    }
}
