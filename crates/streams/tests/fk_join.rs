//! Foreign-key table-table joins in the TopologyTestDriver: exact outputs for FK changes,
//! fan-out of right updates, deletes on both sides, and stale responses.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

use gregor_streams::*;

fn config() -> StreamsConfig {
    StreamsConfig::default().set("application.id", "t")
}

/// orders: order id → "customer id,item" (an empty customer id is no foreign key);
/// customers: customer id → name.
fn topology(left_join: bool) -> Topology {
    let b = StreamsBuilder::new();
    let customers = b.table(
        "customers",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::as_("customers"),
    );
    let orders = b.table(
        "orders",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::as_("orders"),
    );
    let fk = |order: &String| {
        order
            .split(',')
            .next()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    };
    let joined = if left_join {
        orders
            .left_join_on_foreign_key(&customers, fk, |o: &String, c: Option<&String>| {
                format!("{o}|{}", c.map_or("-", String::as_str))
            })
            .unwrap()
    } else {
        orders
            .join_on_foreign_key(&customers, fk, |o: &String, c: &String| format!("{o}|{c}"))
            .unwrap()
    };
    joined.to_stream().to(
        "enriched",
        Produced::with(Serdes::string(), Serdes::string()),
    );
    b.build().unwrap()
}

struct Io {
    d: TopologyTestDriver,
    orders: TestInputTopic<String, String>,
    customers: TestInputTopic<String, String>,
    out: TestOutputTopic<String, String>,
}

impl Io {
    fn new(left_join: bool) -> Self {
        let d = TopologyTestDriver::new(topology(left_join), config()).unwrap();
        Io {
            orders: d.create_input_topic("orders", Serdes::string(), Serdes::string()),
            customers: d.create_input_topic("customers", Serdes::string(), Serdes::string()),
            out: d.create_output_topic("enriched", Serdes::string(), Serdes::string()),
            d,
        }
    }

    fn order(&self, id: &str, v: &str, ts: i64) {
        self.orders.pipe_input(id.into(), v.into(), ts).unwrap();
    }

    fn customer(&self, id: &str, name: &str, ts: i64) {
        self.customers
            .pipe_input(id.into(), name.into(), ts)
            .unwrap();
    }

    fn read(&self) -> Vec<(String, Option<String>)> {
        self.out.read_key_values().unwrap()
    }
}

fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
    (k.to_string(), v.map(str::to_string))
}

#[test]
fn inner_join_follows_both_sides() {
    let io = Io::new(false);
    let describe = topology(false).describe();
    assert!(
        describe.contains("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION")
            && describe.contains("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE"),
        "{describe}"
    );
    // No customer yet: an inner join has nothing to say.
    io.order("o1", "c1,book", 1);
    assert_eq!(io.read(), vec![]);
    // The customer arrives: its subscriber is answered.
    io.customer("c1", "Ann", 2);
    assert_eq!(io.read(), vec![kv("o1", Some("c1,book|Ann"))]);
    io.order("o2", "c1,pen", 3);
    assert_eq!(io.read(), vec![kv("o2", Some("c1,pen|Ann"))]);
    // A customer update fans out to every order referencing it.
    io.customer("c1", "Anne", 4);
    assert_eq!(
        io.read(),
        vec![
            kv("o1", Some("c1,book|Anne")),
            kv("o2", Some("c1,pen|Anne"))
        ]
    );
    // o1 moves to a customer that does not exist: its result is deleted.
    io.order("o1", "c2,book", 5);
    assert_eq!(io.read(), vec![kv("o1", None)]);
    // c1 no longer has o1 as a subscriber; c2 does.
    io.customer("c1", "Annie", 6);
    assert_eq!(io.read(), vec![kv("o2", Some("c1,pen|Annie"))]);
    io.customer("c2", "Bob", 7);
    assert_eq!(io.read(), vec![kv("o1", Some("c2,book|Bob"))]);
    // Same foreign key, new left value: a new result.
    io.order("o1", "c2,big book", 8);
    assert_eq!(io.read(), vec![kv("o1", Some("c2,big book|Bob"))]);
    // A right delete is a tombstone for an inner join.
    io.customers.pipe_tombstone("c1".into(), 9).unwrap();
    assert_eq!(io.read(), vec![kv("o2", None)]);
    // The foreign key goes away: the result is deleted; the old customer no longer answers.
    io.order("o1", ",big book", 10);
    assert_eq!(io.read(), vec![kv("o1", None)]);
    io.customer("c2", "Bobby", 11);
    assert_eq!(io.read(), vec![]);
    // A left delete deletes the result.
    io.order("o3", "c2,cup", 12);
    assert_eq!(io.read(), vec![kv("o3", Some("c2,cup|Bobby"))]);
    io.orders.pipe_tombstone("o3".into(), 13).unwrap();
    assert_eq!(io.read(), vec![kv("o3", None)]);
    io.customer("c2", "Robert", 14);
    assert_eq!(io.read(), vec![]);
    // A new row without a foreign key has no result, and no tombstone either.
    io.order("o4", ",nothing", 15);
    assert_eq!(io.read(), vec![]);
}

#[test]
fn left_join_keeps_every_left_row() {
    let io = Io::new(true);
    io.order("o1", ",book", 1);
    assert_eq!(io.read(), vec![kv("o1", Some(",book|-"))]);
    io.order("o1", "c9,book", 2);
    assert_eq!(io.read(), vec![kv("o1", Some("c9,book|-"))]);
    io.customer("c9", "Zed", 3);
    assert_eq!(io.read(), vec![kv("o1", Some("c9,book|Zed"))]);
    // A right delete joins with None.
    io.customers.pipe_tombstone("c9".into(), 4).unwrap();
    assert_eq!(io.read(), vec![kv("o1", Some("c9,book|-"))]);
    io.customer("c9", "Zoe", 5);
    assert_eq!(io.read(), vec![kv("o1", Some("c9,book|Zoe"))]);
    // The foreign key becomes None: joined with None at once, and unsubscribed.
    io.order("o1", ",book", 6);
    assert_eq!(io.read(), vec![kv("o1", Some(",book|-"))]);
    io.customer("c9", "Zora", 7);
    assert_eq!(io.read(), vec![]);
    // Only a left delete deletes the result.
    io.orders.pipe_tombstone("o1".into(), 8).unwrap();
    assert_eq!(io.read(), vec![kv("o1", None)]);
    // Deleting a key that never existed says nothing.
    io.orders.pipe_tombstone("o404".into(), 9).unwrap();
    assert_eq!(io.read(), vec![]);
}

/// The hash of a left value as the join computes it (FNV-1a, 128 bits): pinned here
/// because it travels through topics and stores.
fn value_hash(bytes: &[u8]) -> [u8; 16] {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h.to_be_bytes()
}

fn response(left_value: &str, right: Option<&str>) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&value_hash(left_value.as_bytes()));
    match right {
        Some(r) => {
            out.push(1);
            out.extend_from_slice(r.as_bytes());
        }
        None => out.push(0),
    }
    out
}

#[test]
fn stale_responses_are_dropped_by_hash() {
    let io = Io::new(false);
    io.customer("c1", "Ann", 1);
    io.order("o1", "c1,book", 2);
    assert_eq!(io.read(), vec![kv("o1", Some("c1,book|Ann"))]);
    io.order("o1", "c1,two books", 3);
    assert_eq!(io.read(), vec![kv("o1", Some("c1,two books|Ann"))]);
    // A response to the subscription of the older left value arrives late: dropped.
    let topic = topology(false)
        .describe()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Source topic: <application.id>-"))
        .find(|t| t.contains("SUBSCRIPTION-RESPONSE"))
        .map(|t| format!("t-{t}"))
        .unwrap();
    let responses =
        io.d.create_input_topic(&topic, Serdes::string(), Serdes::bytes());
    responses
        .pipe_raw(Some(b"o1"), Some(&response("c1,book", Some("Old Ann"))), 4)
        .unwrap();
    assert_eq!(io.read(), vec![]);
    // One for the current left value is joined.
    responses
        .pipe_raw(
            Some(b"o1"),
            Some(&response("c1,two books", Some("Ann B"))),
            5,
        )
        .unwrap();
    assert_eq!(io.read(), vec![kv("o1", Some("c1,two books|Ann B"))]);
    // For a deleted left row: dropped.
    io.orders.pipe_tombstone("o1".into(), 6).unwrap();
    assert_eq!(io.read(), vec![kv("o1", None)]);
    responses
        .pipe_raw(Some(b"o1"), Some(&response("c1,two books", Some("Ann"))), 7)
        .unwrap();
    assert_eq!(io.read(), vec![]);
}

#[test]
fn subscriptions_are_logged_to_a_changelog() {
    let io = Io::new(false);
    io.customer("c1", "Ann", 1);
    io.order("o1", "c1,book", 2);
    io.order("o1", "c2,book", 3);
    let describe = topology(false).describe();
    let store = describe
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE"))
        .unwrap()
        .to_string();
    let changelog = io.d.create_output_topic(
        &format!("t-{store}-changelog"),
        Serdes::bytes(),
        Serdes::bytes(),
    );
    let records = changelog.read_records_to_list().unwrap();
    let mut c1 = vec![0, 0, 0, 2];
    c1.extend_from_slice(b"c1o1");
    let mut c2 = vec![0, 0, 0, 2];
    c2.extend_from_slice(b"c2o1");
    // Subscribe to c1, unsubscribe from c1, subscribe to c2.
    let keys: Vec<(Vec<u8>, bool)> = records
        .into_iter()
        .map(|r| (r.key, r.value.is_some()))
        .collect();
    assert_eq!(keys, vec![(c1.clone(), true), (c1, false), (c2, true)]);
}
