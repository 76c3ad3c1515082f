//! TopologyTestDriver tests: exact outputs of the DSL operations, no broker.

use std::time::Duration;

use gregor_streams::*;

fn config() -> StreamsConfig {
    StreamsConfig::default().set("application.id", "t")
}

#[test]
fn wordcount_counts_every_update_and_queries_the_store() {
    let b = StreamsBuilder::new();
    b.stream("lines", Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_, w: &String| w.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let topology = b.build().unwrap();
    assert!(
        topology.describe().contains("counts-repartition"),
        "{}",
        topology.describe()
    );
    let d = TopologyTestDriver::new(topology, config()).unwrap();
    let input = d.create_input_topic("lines", Serdes::string(), Serdes::string());
    let out = d.create_output_topic("counts-out", Serdes::string(), Serdes::i64());
    input.pipe_value("a b A".into(), 1).unwrap();
    input.pipe_value("b".into(), 2).unwrap();
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![
            ("a".to_string(), Some(1)),
            ("b".to_string(), Some(1)),
            ("a".to_string(), Some(2)),
            ("b".to_string(), Some(2)),
        ]
    );
    let store = d.key_value_store("counts", Serdes::string(), Serdes::i64());
    assert_eq!(store.get(&"a".to_string()).unwrap(), Some(2));
    assert_eq!(store.get(&"zzz".to_string()).unwrap(), None);
    // The store's changelog carries every update, keyed as the store.
    let changelog = d.create_output_topic("t-counts-changelog", Serdes::string(), Serdes::i64());
    assert_eq!(changelog.read_key_values().unwrap().len(), 4);
}

#[test]
fn stateless_operations() {
    let b = StreamsBuilder::new();
    let s = b.stream("in", Consumed::with(Serdes::string(), Serdes::i64()));
    let big = s.filter(|_, v| *v >= 10).map_values(|v| v * 2);
    let small = s
        .filter_not(|_, v| *v >= 10)
        .map(|k: String, v| (format!("{k}!"), v));
    big.merge(&small)
        .select_key(|k: &String, _| k.to_uppercase())
        .peek(|_, _| {})
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    s.flat_map(|k: String, v: i64| (0..v.min(2)).map(move |i| (format!("{k}{i}"), i)))
        .to("fm", Produced::with(Serdes::string(), Serdes::i64()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::i64());
    let out = d.create_output_topic("out", Serdes::string(), Serdes::i64());
    let fm = d.create_output_topic("fm", Serdes::string(), Serdes::i64());
    input.pipe_input("a".into(), 20, 5).unwrap();
    input.pipe_input("b".into(), 3, 6).unwrap();
    let recs = out.read_records_to_list().unwrap();
    assert_eq!(
        recs,
        vec![
            TestRecord {
                key: "A".into(),
                value: Some(40),
                timestamp: 5
            },
            TestRecord {
                key: "B!".into(),
                value: Some(3),
                timestamp: 6
            },
        ]
    );
    assert_eq!(
        fm.read_key_values().unwrap(),
        vec![
            ("a0".into(), Some(0)),
            ("a1".into(), Some(1)),
            ("b0".into(), Some(0)),
            ("b1".into(), Some(1))
        ]
    );
}

#[test]
fn split_sends_each_record_to_the_first_matching_branch() {
    let b = StreamsBuilder::new();
    let branches = b
        .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
        .split("br-")
        .branch("neg", |_, v| *v < 0)
        .branch("small", |_, v| *v < 10)
        .default_branch("big");
    for (name, s) in &branches {
        s.to(name, Produced::with(Serdes::string(), Serdes::i64()));
    }
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::i64());
    for (i, v) in [-1i64, 5, 50, -7].into_iter().enumerate() {
        input.pipe_input(format!("k{i}"), v, 0).unwrap();
    }
    let read = |t: &str| {
        d.create_output_topic(t, Serdes::string(), Serdes::i64())
            .read_key_values()
            .unwrap()
            .into_iter()
            .map(|(_, v)| v.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(read("br-neg"), vec![-1, -7]);
    assert_eq!(read("br-small"), vec![5]);
    assert_eq!(read("br-big"), vec![50]);
}

#[test]
fn reduce_and_aggregate_per_key() {
    let b = StreamsBuilder::new();
    let g = b
        .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::i64()));
    g.reduce(|a, v| a.max(*v), Materialized::as_("max"))
        .to_stream()
        .to("max", Produced::with(Serdes::string(), Serdes::i64()));
    g.aggregate(
        Vec::new,
        |_, v, mut a: Vec<i64>| {
            a.push(*v);
            a
        },
        Serdes::json(),
        Materialized::as_("all"),
    )
    .to_stream()
    .to("all", Produced::with(Serdes::string(), Serdes::json()));
    let topology = b.build().unwrap();
    assert!(
        !topology.describe().contains("repartition"),
        "group_by_key without key change must not repartition"
    );
    let d = TopologyTestDriver::new(topology, config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::i64());
    input.pipe_input("k".into(), 3, 0).unwrap();
    input.pipe_input("k".into(), 1, 0).unwrap();
    input.pipe_input("k".into(), 7, 0).unwrap();
    let max = d.create_output_topic("max", Serdes::string(), Serdes::i64());
    let all = d.create_output_topic("all", Serdes::string(), Serdes::json::<Vec<i64>>());
    assert_eq!(
        max.read_key_values()
            .unwrap()
            .into_iter()
            .map(|(_, v)| v.unwrap())
            .collect::<Vec<_>>(),
        vec![3, 3, 7]
    );
    assert_eq!(
        all.read_key_values().unwrap().last().unwrap().1,
        Some(vec![3, 1, 7])
    );
}

#[test]
fn tumbling_windows_with_grace_drop_late_records_and_suppress_emits_final_results() {
    let b = StreamsBuilder::new();
    let windowed = b
        .stream("views", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::as_("views-per-minute"));
    windowed.to_stream().to(
        "updates",
        Produced::with(Serdes::windowed(Serdes::string(), 60_000), Serdes::i64()),
    );
    windowed
        .suppress(Suppressed::until_window_closes())
        .unwrap()
        .to_stream()
        .to(
            "final",
            Produced::with(Serdes::windowed(Serdes::string(), 60_000), Serdes::i64()),
        );
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("views", Serdes::string(), Serdes::string());
    let p = |ts: i64| input.pipe_input("home".into(), "u".into(), ts).unwrap();
    p(1_000);
    p(59_999);
    p(61_000); // window [60s, 120s); stream time 61s
    p(30_000); // out of order, within grace of [0, 60s): counted
    p(75_000); // stream time 75s: [0, 60s) closes at 70s
    p(5_000); // late past grace: dropped
    p(200_000); // closes [60s, 120s) too
    let fin = d.create_output_topic(
        "final",
        Serdes::windowed(Serdes::string(), 60_000),
        Serdes::i64(),
    );
    let got: Vec<(i64, i64, i64)> = fin
        .read_key_values()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.window.start, k.window.end, v.unwrap()))
        .collect();
    assert_eq!(got, vec![(0, 60_000, 3), (60_000, 120_000, 2)]);
    let updates = d.create_output_topic(
        "updates",
        Serdes::windowed(Serdes::string(), 60_000),
        Serdes::i64(),
    );
    assert_eq!(
        updates.read_key_values().unwrap().len(),
        6,
        "the late record produced no update"
    );
    let store = d.window_store("views-per-minute", Serdes::string(), Serdes::i64());
    assert_eq!(store.fetch(&"home".to_string(), 180_000).unwrap(), Some(1));
}

#[test]
fn hopping_windows_count_a_record_in_every_window_containing_it() {
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
                .advance_by(Duration::from_millis(5)),
        )
        .count(Materialized::as_("hop"))
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::windowed(Serdes::string(), 10), Serdes::i64()),
        );
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input("k".into(), "x".into(), 12).unwrap();
    input.pipe_input("k".into(), "x".into(), 14).unwrap();
    let out = d.create_output_topic("out", Serdes::windowed(Serdes::string(), 10), Serdes::i64());
    let got: Vec<(i64, i64)> = out
        .read_key_values()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.window.start, v.unwrap()))
        .collect();
    assert_eq!(got, vec![(5, 1), (10, 1), (5, 2), (10, 2)]);
}

#[test]
fn timestamp_extractor_sets_event_time() {
    let b = StreamsBuilder::new();
    b.stream(
        "in",
        Consumed::with(Serdes::string(), Serdes::string()).with_timestamp_extractor(
            |r: &RecordView<'_>| {
                std::str::from_utf8(r.value.unwrap_or_default())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(-1)
            },
        ),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input("k".into(), "12345".into(), 1).unwrap();
    input
        .pipe_input("k".into(), "not a time".into(), 1)
        .unwrap();
    let recs = d
        .create_output_topic("out", Serdes::string(), Serdes::string())
        .read_records_to_list()
        .unwrap();
    assert_eq!(
        recs.len(),
        1,
        "a negative extracted timestamp drops the record"
    );
    assert_eq!(recs[0].timestamp, 12345);
}

#[test]
fn tables_filter_map_values_and_stream_table_join() {
    let b = StreamsBuilder::new();
    let customers = b.table(
        "customers",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::as_("customers"),
    );
    customers
        .filter(|_, name| !name.starts_with('x'))
        .map_values(|name| name.len() as i64)
        .to_stream()
        .to(
            "name-lengths",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let orders = b.stream(
        "orders",
        Consumed::with(Serdes::string(), Serdes::json::<(String, i64)>()),
    );
    orders
        .select_key(|_, (customer, _)| customer.clone())
        .join(
            &customers,
            |(_, amount), name| format!("{name}:{amount}"),
            Grouped::with(Serdes::string(), Serdes::json()),
        )
        .unwrap()
        .to(
            "enriched",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let c = d.create_input_topic("customers", Serdes::string(), Serdes::string());
    let o = d.create_input_topic("orders", Serdes::string(), Serdes::json::<(String, i64)>());
    c.pipe_input("c1".into(), "alice".into(), 0).unwrap();
    c.pipe_input("c2".into(), "xavier".into(), 0).unwrap();
    o.pipe_input("o1".into(), ("c1".into(), 10), 1).unwrap();
    o.pipe_input("o2".into(), ("c9".into(), 5), 1).unwrap(); // no customer: dropped
    c.pipe_tombstone("c1".into(), 2).unwrap();
    o.pipe_input("o3".into(), ("c1".into(), 7), 3).unwrap(); // deleted: dropped
    let lengths = d.create_output_topic("name-lengths", Serdes::string(), Serdes::i64());
    assert_eq!(
        lengths.read_key_values().unwrap(),
        vec![
            ("c1".into(), Some(5)),
            ("c2".into(), None),
            ("c1".into(), None)
        ]
    );
    let enriched = d.create_output_topic("enriched", Serdes::string(), Serdes::string());
    assert_eq!(
        enriched.read_key_values().unwrap(),
        vec![("c1".into(), Some("alice:10".into()))]
    );
}

#[test]
fn deserialization_handler_continue_or_fail() {
    let build = || {
        let b = StreamsBuilder::new();
        b.stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
            .to("out", Produced::with(Serdes::string(), Serdes::i64()));
        b.build().unwrap()
    };
    let cont = TopologyTestDriver::new(
        build(),
        config().set(
            "default.deserialization.exception.handler",
            "log-and-continue",
        ),
    )
    .unwrap();
    let input = cont.create_input_topic("in", Serdes::string(), Serdes::i64());
    input.pipe_raw(Some(b"k"), Some(b"bad"), 0).unwrap();
    input.pipe_input("k".into(), 1, 0).unwrap();
    assert_eq!(cont.skipped_records(), 1);
    assert_eq!(
        cont.create_output_topic("out", Serdes::string(), Serdes::i64())
            .read_key_values()
            .unwrap()
            .len(),
        1
    );
    let fail = TopologyTestDriver::new(build(), config()).unwrap();
    let err = fail
        .create_input_topic("in", Serdes::string(), Serdes::i64())
        .pipe_raw(Some(b"k"), Some(b"bad"), 0)
        .unwrap_err();
    assert!(matches!(err, StreamsError::Deserialization { .. }), "{err}");
}

#[test]
fn session_windows_merge_and_suppress_emits_closed_sessions() {
    let b = StreamsBuilder::new();
    let sessions = b
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(20),
        ))
        .count(Materialized::as_("sessions"));
    let key_serde = Serdes::session_windowed(Serdes::string());
    sessions
        .to_stream()
        .to("updates", Produced::with(key_serde.clone(), Serdes::i64()));
    sessions
        .suppress(Suppressed::until_window_closes())
        .unwrap()
        .to_stream()
        .to("final", Produced::with(key_serde.clone(), Serdes::i64()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    for ts in [0, 5, 30, 20, 12, 100, 50] {
        input.pipe_input("k".into(), "x".into(), ts).unwrap();
    }
    let read = |t: &str| -> Vec<(i64, i64, Option<i64>)> {
        d.create_output_topic(t, key_serde.clone(), Serdes::i64())
            .read_key_values()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.window.start, k.window.end, v))
            .collect()
    };
    assert_eq!(
        read("updates"),
        vec![
            (0, 0, Some(1)),
            (0, 0, None),
            (0, 5, Some(2)),
            (30, 30, Some(1)),
            (30, 30, None),
            (20, 30, Some(2)),
            (0, 5, None),
            (20, 30, None),
            (0, 30, Some(5)),
            (100, 100, Some(1)),
            // ts 50: its session would end before stream time (100) minus grace (20): dropped
        ]
    );
    assert_eq!(read("final"), vec![(0, 30, Some(5))]);
}

#[test]
fn stream_stream_join_within_the_window_both_ways() {
    let b = StreamsBuilder::new();
    let orders = b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()));
    let payments = b.stream(
        "payments",
        Consumed::with(Serdes::string(), Serdes::string()),
    );
    orders
        .join_windowed(
            &payments,
            |o: &String, p: &String| format!("{o}+{p}"),
            JoinWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::ZERO),
            StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string()).named("op"),
        )
        .to("paid", Produced::with(Serdes::string(), Serdes::string()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let o = d.create_input_topic("orders", Serdes::string(), Serdes::string());
    let p = d.create_input_topic("payments", Serdes::string(), Serdes::string());
    o.pipe_input("k1".into(), "o1".into(), 0).unwrap();
    p.pipe_input("k1".into(), "p1".into(), 5).unwrap(); // joins o1 (right side arrives second)
    p.pipe_input("k2".into(), "px".into(), 5).unwrap(); // other key: nothing
    p.pipe_input("k1".into(), "p2".into(), 20).unwrap(); // 20 from o1: outside the window
    o.pipe_input("k1".into(), "o2".into(), 15).unwrap(); // joins p1 (10 apart) and p2 (5)
    p.pipe_input("k1".into(), "p3".into(), 1).unwrap(); // 1 + 10 + 0 grace < stream time 20: late
    let out = d.create_output_topic("paid", Serdes::string(), Serdes::string());
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![
            TestRecord {
                key: "k1".into(),
                value: Some("o1+p1".into()),
                timestamp: 5
            },
            TestRecord {
                key: "k1".into(),
                value: Some("o2+p1".into()),
                timestamp: 15
            },
            TestRecord {
                key: "k1".into(),
                value: Some("o2+p2".into()),
                timestamp: 15
            },
        ]
    );
    // Both buffers are logged stores.
    assert!(!d
        .create_output_topic(
            "t-op-this-join-store-changelog",
            Serdes::bytes(),
            Serdes::bytes()
        )
        .is_empty());
}

fn rec(key: &str, value: &str, timestamp: i64) -> TestRecord<String, String> {
    TestRecord {
        key: key.into(),
        value: Some(value.into()),
        timestamp,
    }
}

#[test]
fn stream_stream_left_join_emits_unmatched_records_when_their_window_closes() {
    let b = StreamsBuilder::new();
    let orders = b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()));
    let payments = b.stream(
        "payments",
        Consumed::with(Serdes::string(), Serdes::string()),
    );
    orders
        .left_join_windowed(
            &payments,
            |o: &String, p: Option<&String>| format!("{o}+{}", p.map_or("null", |p| p.as_str())),
            JoinWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::ZERO),
            StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string()).named("lj"),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let o = d.create_input_topic("orders", Serdes::string(), Serdes::string());
    let p = d.create_input_topic("payments", Serdes::string(), Serdes::string());
    let out = d.create_output_topic("out", Serdes::string(), Serdes::string());
    o.pipe_input("k1".into(), "o1".into(), 0).unwrap();
    p.pipe_input("k1".into(), "p1".into(), 5).unwrap(); // joins o1
    o.pipe_input("k2".into(), "o2".into(), 6).unwrap(); // no partner yet: parked
    o.pipe_input("k3".into(), "o3".into(), 8).unwrap(); // parked
    p.pipe_input("k3".into(), "p3".into(), 12).unwrap(); // joins o3, which is then never emitted alone
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("k1", "o1+p1", 5), rec("k3", "o3+p3", 12)],
        "nothing unmatched is emitted while its window is open"
    );
    o.pipe_input("k4".into(), "o4".into(), 17).unwrap(); // stream time 17 > 6 + 10: o2 closes
    p.pipe_input("k5".into(), "p5".into(), 40).unwrap(); // right side: never emitted alone; o4 closes
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("k2", "o2+null", 6), rec("k4", "o4+null", 17)]
    );
    // The parked records are a logged store too.
    assert!(!d
        .create_output_topic(
            "t-lj-outer-shared-join-store-changelog",
            Serdes::bytes(),
            Serdes::bytes()
        )
        .is_empty());
}

#[test]
fn stream_stream_outer_join_emits_both_sides_unmatched() {
    let b = StreamsBuilder::new();
    let left = b.stream("l", Consumed::with(Serdes::string(), Serdes::string()));
    let right = b.stream("r", Consumed::with(Serdes::string(), Serdes::string()));
    left.outer_join_windowed(
        &right,
        |l: Option<&String>, r: Option<&String>| {
            format!(
                "{}+{}",
                l.map_or("null", |l| l.as_str()),
                r.map_or("null", |r| r.as_str())
            )
        },
        JoinWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::ZERO),
        StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string()).named("oj"),
    )
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let l = d.create_input_topic("l", Serdes::string(), Serdes::string());
    let r = d.create_input_topic("r", Serdes::string(), Serdes::string());
    let out = d.create_output_topic("out", Serdes::string(), Serdes::string());
    l.pipe_input("k1".into(), "l1".into(), 0).unwrap(); // parked
    r.pipe_input("k2".into(), "r2".into(), 3).unwrap(); // parked
    assert!(out.read_records_to_list().unwrap().is_empty());
    // 17 apart from r2: no join; stream time 20 closes l1 (0 + 10) and r2 (3 + 10).
    l.pipe_input("k2".into(), "l2".into(), 20).unwrap();
    r.pipe_input("k2".into(), "r2b".into(), 25).unwrap(); // joins l2
    l.pipe_input("k9".into(), "l9".into(), 100).unwrap(); // closes nothing more: l2 was joined
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![
            rec("k1", "l1+null", 0),
            rec("k2", "null+r2", 3),
            rec("k2", "l2+r2b", 25),
        ]
    );
}
