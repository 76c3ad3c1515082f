use super::*;

const V1: &str = r#"{"type":"record","name":"U","fields":[{"name":"a","type":"string"}]}"#;
// Adds a field with a default: backward and forward compatible.
const V2: &str = r#"{"type":"record","name":"U","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#;
// Adds a field without a default: forward only.
const V3: &str = r#"{"type":"record","name":"U","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0},{"name":"c","type":"int"}]}"#;
// Drops field a (no default in V1): backward compatible, not forward.
const V4: &str = r#"{"type":"record","name":"U","fields":[{"name":"b","type":"int","default":0}]}"#;

fn req(schema: &str) -> SchemaRequest {
    SchemaRequest {
        schema: schema.to_string(),
        ..Default::default()
    }
}

fn apply(state: &mut State, plan: &Plan) {
    for r in &plan.records {
        state.apply(&r.key.to_bytes(), r.value.as_deref()).unwrap();
    }
}

fn register(state: &mut State, subject: &str, schema: &str) -> Result<i32> {
    let plan = plan_register(state, subject, &req(schema), false)?;
    apply(state, &plan);
    Ok(plan.response["id"].as_i64().unwrap() as i32)
}

fn set_level(state: &mut State, subject: &str, level: &str) {
    let plan = plan_set_config(
        Some(subject),
        &ConfigRequest {
            compatibility: Some(level.into()),
            compatibility_level: None,
        },
    )
    .unwrap();
    apply(state, &plan);
}

#[test]
fn registering_is_idempotent_and_ids_are_shared_across_subjects() {
    let mut st = State::default();
    assert_eq!(register(&mut st, "s", V1).unwrap(), 1);
    assert_eq!(register(&mut st, "s", V1).unwrap(), 1);
    assert_eq!(register(&mut st, "s", &format!(" {V1} ")).unwrap(), 1);
    assert_eq!(st.versions("s", false).unwrap().len(), 1);
    assert_eq!(register(&mut st, "t", V1).unwrap(), 1);
    assert_eq!(register(&mut st, "s", V2).unwrap(), 2);
}

#[test]
fn backward_refuses_a_field_without_default() {
    let mut st = State::default();
    register(&mut st, "s", V1).unwrap();
    register(&mut st, "s", V2).unwrap();
    let err = register(&mut st, "s", V3).unwrap_err();
    assert_eq!(err.code(), 409);
    set_level(&mut st, "s", "FORWARD");
    assert_eq!(register(&mut st, "s", V3).unwrap(), 3);
}

#[test]
fn forward_and_full_levels() {
    let mut st = State::default();
    register(&mut st, "s", V1).unwrap();
    set_level(&mut st, "s", "FORWARD");
    assert_eq!(register(&mut st, "s", V4).unwrap_err().code(), 409);
    set_level(&mut st, "s", "BACKWARD");
    assert_eq!(register(&mut st, "s", V4).unwrap(), 2);
    set_level(&mut st, "s", "FULL");
    assert_eq!(register(&mut st, "s", V3).unwrap_err().code(), 409);
}

#[test]
fn transitive_levels_check_every_live_version() {
    let mut st = State::default();
    set_level(&mut st, "s", "NONE");
    register(&mut st, "s", V1).unwrap();
    register(&mut st, "s", V4).unwrap();
    // V2 reads V4's data (b has a default, a is... missing without default in V2): no.
    // Use a schema compatible with the latest (V4) but not with V1 under FORWARD.
    let only_b = r#"{"type":"record","name":"U","fields":[{"name":"b","type":"int"}]}"#;
    set_level(&mut st, "s", "FORWARD");
    assert!(plan_register(&st, "s", &req(only_b), false).is_ok());
    set_level(&mut st, "s", "FORWARD_TRANSITIVE");
    assert_eq!(
        plan_register(&st, "s", &req(only_b), false)
            .unwrap_err()
            .code(),
        409
    );
}

#[test]
fn invalid_schemas_and_readonly_mode() {
    let mut st = State::default();
    assert_eq!(register(&mut st, "s", "{").unwrap_err().code(), 42201);
    let plan = plan_set_mode(
        None,
        &ModeRequest {
            mode: "READONLY".into(),
        },
    )
    .unwrap();
    apply(&mut st, &plan);
    assert_eq!(register(&mut st, "s", V1).unwrap_err().code(), 42205);
    assert_eq!(
        plan_set_mode(None, &ModeRequest { mode: "x".into() })
            .unwrap_err()
            .code(),
        42204
    );
}

#[test]
fn delete_lifecycle_and_fresh_ids_after_permanent_delete() {
    let mut st = State::default();
    register(&mut st, "s", V1).unwrap();
    register(&mut st, "s", V2).unwrap();
    assert_eq!(
        plan_delete_subject(&st, "s", true).unwrap_err().code(),
        40405
    );
    let plan = plan_delete_subject(&st, "s", false).unwrap();
    assert_eq!(plan.response, json!([1, 2]));
    apply(&mut st, &plan);
    assert_eq!(
        plan_delete_subject(&st, "s", false).unwrap_err().code(),
        40404
    );
    let plan = plan_delete_subject(&st, "s", true).unwrap();
    apply(&mut st, &plan);
    assert_eq!(
        plan_delete_subject(&st, "x", false).unwrap_err().code(),
        40401
    );
    // A new schema after everything was deleted still gets a fresh id.
    assert_eq!(register(&mut st, "s", V4).unwrap(), 3);
    assert_eq!(st.versions("s", false).unwrap()[0].0, 1);
}

#[test]
fn delete_version_errors() {
    let mut st = State::default();
    register(&mut st, "s", V1).unwrap();
    let one = VersionSpec::Number(1);
    assert_eq!(
        plan_delete_version(&st, "s", one, true).unwrap_err().code(),
        40407
    );
    let plan = plan_delete_version(&st, "s", one, false).unwrap();
    apply(&mut st, &plan);
    assert_eq!(
        plan_delete_version(&st, "s", one, false)
            .unwrap_err()
            .code(),
        40406
    );
    assert_eq!(
        plan_delete_version(&st, "s", VersionSpec::Number(7), true)
            .unwrap_err()
            .code(),
        40402
    );
    assert!(plan_delete_version(&st, "s", one, true).is_ok());
}

#[test]
fn avro_references_resolve_across_subjects() {
    let mut st = State::default();
    let addr = r#"{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}"#;
    register(&mut st, "addr", addr).unwrap();
    let user = r#"{"type":"record","name":"User","fields":[{"name":"home","type":"Address"}]}"#;
    let mut r = req(user);
    assert_eq!(
        plan_register(&st, "user", &r, false).unwrap_err().code(),
        42201
    );
    r.references = Some(vec![Reference {
        name: "Address".into(),
        subject: "addr".into(),
        version: 1,
    }]);
    let plan = plan_register(&st, "user", &r, false).unwrap();
    apply(&mut st, &plan);
    assert_eq!(plan.response["id"], 2);
    // The referenced version cannot be deleted while used.
    assert_eq!(
        plan_delete_subject(&st, "addr", false).unwrap_err().code(),
        42206
    );
}

fn proto_req(schema: &str, refs: &[(&str, &str, i32)]) -> SchemaRequest {
    SchemaRequest {
        schema: schema.to_string(),
        schema_type: Some("PROTOBUF".into()),
        references: Some(
            refs.iter()
                .map(|(name, subject, version)| Reference {
                    name: name.to_string(),
                    subject: subject.to_string(),
                    version: *version,
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn register_proto(st: &mut State, subject: &str, req: &SchemaRequest) -> Result<i32> {
    let plan = plan_register(st, subject, req, false)?;
    apply(st, &plan);
    Ok(plan.response["id"].as_i64().unwrap() as i32)
}

const P1: &str = "syntax = \"proto3\"; message A { int32 x = 1; } message B { int32 y = 1; }";
// Field 1 removed: fine both ways.
const P2: &str = "syntax = \"proto3\"; message A { } message B { int32 y = 1; }";
// Field 1 back as a string: fine against P2, not against P1.
const P3: &str = "syntax = \"proto3\"; message A { string x = 1; } message B { int32 y = 1; }";
// Message B removed: incompatible for BACKWARD; added back, for FORWARD.
const P4: &str = "syntax = \"proto3\"; message A { string x = 1; }";
const P5: &str = "syntax = \"proto3\"; message A { string x = 1; int32 z = 2; } message B { }";

#[test]
fn protobuf_levels_and_transitive_checks() {
    let mut st = State::default();
    let r = |s: &str| proto_req(s, &[]);
    register_proto(&mut st, "p", &r(P1)).unwrap();
    register_proto(&mut st, "p", &r(P2)).unwrap();
    set_level(&mut st, "p", "BACKWARD_TRANSITIVE");
    let err = register_proto(&mut st, "p", &r(P3)).unwrap_err();
    assert_eq!(err.code(), 409);
    assert!(
        format!("{err:?}").contains("FIELD_SCALAR_KIND_CHANGED"),
        "{err:?}"
    );
    set_level(&mut st, "p", "FULL");
    register_proto(&mut st, "p", &r(P3)).unwrap();
    assert_eq!(
        register_proto(&mut st, "p", &r(P4)).unwrap_err().code(),
        409
    );
    set_level(&mut st, "p", "FORWARD");
    register_proto(&mut st, "p", &r(P4)).unwrap();
    // FORWARD: the old schema (P4) reads data of the new one, which lost nothing, but
    // adding a message back is a removal seen from the other side.
    assert_eq!(
        register_proto(&mut st, "p", &r(P5)).unwrap_err().code(),
        409
    );
    set_level(&mut st, "p", "BACKWARD");
    register_proto(&mut st, "p", &r(P5)).unwrap();
}

#[test]
fn protobuf_text_and_descriptor_share_an_id_and_references_resolve() {
    let mut st = State::default();
    let money = "syntax = \"proto3\"; package m; message Money { int64 cents = 1; }";
    let money_b64 = schema::serialized(SchemaType::Protobuf, money, &[]);
    assert_ne!(money_b64, money);
    let money_id = register_proto(&mut st, "money", &proto_req(&money_b64, &[])).unwrap();
    // The text form of the same file is the same schema.
    assert_eq!(
        register_proto(&mut st, "money", &proto_req(money, &[])).unwrap(),
        money_id
    );
    assert_eq!(st.versions("money", false).unwrap().len(), 1);

    let order = "syntax = \"proto3\"; import \"money.proto\"; message Order { m.Money total = 1; }";
    // Without the reference the import is unknown: 42201.
    let err = register_proto(&mut st, "order", &proto_req(order, &[])).unwrap_err();
    assert_eq!(err.code(), 42201);
    let refs = [("money.proto", "money", 1)];
    let id = register_proto(&mut st, "order", &proto_req(order, &refs)).unwrap();
    let (_, v) = st.version("order", VersionSpec::Latest, false).unwrap();
    let resolved = stored_refs(&st, v);
    let (identity, references) = (v.identity.clone(), v.references.clone());
    let order_b64 = schema::serialized(SchemaType::Protobuf, order, &resolved);
    assert_eq!(
        register_proto(&mut st, "order", &proto_req(&order_b64, &refs)).unwrap(),
        id
    );
    // A replay computes the same identities.
    let mut replayed = State::default();
    for (subject, req) in [
        ("money", proto_req(money, &[])),
        ("order", proto_req(order, &refs)),
    ] {
        register_proto(&mut replayed, subject, &req).unwrap();
    }
    assert_eq!(
        replayed.id_of(SchemaType::Protobuf, &identity, &references),
        Some(id)
    );
}
