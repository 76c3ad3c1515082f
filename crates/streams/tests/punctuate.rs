//! The processor API's punctuation in the TopologyTestDriver: exact outputs for
//! stream-time punctuation (advanced by piped records only) and wall-clock punctuation
//! (advanced by `advance_wall_clock_time` only), with catch-up and store access.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gregor_streams::*;

fn config() -> StreamsConfig {
    StreamsConfig::default().set("application.id", "t")
}

/// Counts records per key in the `counts` store; every `interval` of `kind` time, emits
/// every key's count (as `key@punctuation time`) and, for wall-clock, clears the store.
struct CountAndReport {
    interval: Duration,
    kind: PunctuationType,
}

fn counts<'c>(
    ctx: &'c mut ProcessorContext<'_, String, i64>,
) -> Result<KeyValueStore<'c, String, i64>> {
    ctx.key_value_store("counts", Serdes::string(), Serdes::i64())
}

impl Processor<String, String, String, i64> for CountAndReport {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        let kind = self.kind;
        ctx.schedule(self.interval, kind, move |now, ctx| {
            assert_eq!(ctx.timestamp(), now);
            let all = counts(ctx)?.all()?;
            for (k, n) in all {
                ctx.forward(format!("{k}@{now}"), n);
                if kind == PunctuationType::WallClockTime {
                    counts(ctx)?.delete(&k)?;
                }
            }
            Ok(())
        })
    }

    fn process(
        &mut self,
        key: String,
        _value: String,
        _ts: i64,
        ctx: &mut ProcessorContext<'_, String, i64>,
    ) -> Result<()> {
        let mut store = counts(ctx)?;
        let n = store.get(&key)?.unwrap_or(0) + 1;
        store.put(&key, &n)
    }
}

fn driver(interval: Duration, kind: PunctuationType) -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .process(move || CountAndReport { interval, kind }, &["counts"])
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    TopologyTestDriver::new(b.build().unwrap(), config()).unwrap()
}

fn rec(key: &str, value: i64, timestamp: i64) -> TestRecord<String, i64> {
    TestRecord {
        key: key.to_string(),
        value: Some(value),
        timestamp,
    }
}

#[test]
fn stream_time_punctuation_fires_as_records_advance_stream_time() {
    let d = driver(Duration::from_secs(10), PunctuationType::StreamTime);
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = d.create_output_topic("out", Serdes::string(), Serdes::i64());
    let pipe = |k: &str, ts: i64| input.pipe_input(k.into(), "v".into(), ts).unwrap();

    // Aligned to 0: the first record punctuates at once (after it was processed).
    pipe("a", 0);
    assert_eq!(out.read_records_to_list().unwrap(), vec![rec("a@0", 1, 0)]);
    pipe("a", 5_000);
    pipe("b", 9_999);
    assert!(out.is_empty());
    // Wall-clock time does not move stream time.
    d.advance_wall_clock_time(Duration::from_secs(60)).unwrap();
    assert!(out.is_empty());
    pipe("b", 10_000);
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("a@10000", 2, 10_000), rec("b@10000", 2, 10_000)]
    );
    // An older record does not advance stream time: no punctuation.
    pipe("c", 3_000);
    assert!(out.is_empty());
    // A jump over two intervals punctuates once, with the current stream time; the next
    // punctuation is at the next multiple of the interval (40 s).
    pipe("c", 35_000);
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![
            rec("a@35000", 2, 35_000),
            rec("b@35000", 2, 35_000),
            rec("c@35000", 2, 35_000)
        ]
    );
    pipe("a", 39_999);
    assert!(out.is_empty());
    pipe("a", 40_000);
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![
            rec("a@40000", 4, 40_000),
            rec("b@40000", 2, 40_000),
            rec("c@40000", 2, 40_000)
        ]
    );
    // The store is logged like every store.
    let changelog = d.create_output_topic("t-counts-changelog", Serdes::string(), Serdes::i64());
    assert_eq!(changelog.read_key_values().unwrap().len(), 8);
}

#[test]
fn wall_clock_punctuation_fires_as_the_driver_clock_advances() {
    let d = driver(Duration::from_secs(1), PunctuationType::WallClockTime);
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = d.create_output_topic("out", Serdes::string(), Serdes::i64());
    let pipe = |k: &str, ts: i64| input.pipe_input(k.into(), "v".into(), ts).unwrap();

    // Records (however late in event time) do not punctuate wall-clock schedules.
    pipe("a", 0);
    pipe("a", 100_000);
    pipe("b", 200_000);
    assert!(out.is_empty());
    // Scheduled at wall-clock 0: first due at 1000.
    d.advance_wall_clock_time(Duration::from_millis(999))
        .unwrap();
    assert!(out.is_empty());
    d.advance_wall_clock_time(Duration::from_millis(1)).unwrap();
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("a@1000", 2, 1000), rec("b@1000", 1, 1000)]
    );
    assert_eq!(d.wall_clock_ms(), 1000);
    // Nothing counted since the last punctuation cleared the store: nothing to say.
    d.advance_wall_clock_time(Duration::from_millis(1000))
        .unwrap();
    assert!(out.is_empty());
    pipe("c", 1);
    // 2000 → 4500 skips 3000 and 4000: one punctuation, at 4500; the next is due at 5000.
    d.advance_wall_clock_time(Duration::from_millis(2500))
        .unwrap();
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("c@4500", 1, 4500)]
    );
    pipe("c", 2);
    d.advance_wall_clock_time(Duration::from_millis(499))
        .unwrap();
    assert!(out.is_empty());
    d.advance_wall_clock_time(Duration::from_millis(1)).unwrap();
    assert_eq!(
        out.read_records_to_list().unwrap(),
        vec![rec("c@5000", 1, 5000)]
    );
}

#[test]
fn a_processor_reaches_only_its_own_stores() {
    struct Sneaky;
    impl Processor<String, String, String, String> for Sneaky {
        fn process(
            &mut self,
            _: String,
            _: String,
            _: i64,
            ctx: &mut ProcessorContext<'_, String, String>,
        ) -> Result<()> {
            ctx.key_value_store("other", Serdes::string(), Serdes::string())?;
            Ok(())
        }
    }
    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .process(|| Sneaky, &["mine"])
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let d = TopologyTestDriver::new(b.build().unwrap(), config()).unwrap();
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    assert!(matches!(
        input.pipe_input("k".into(), "v".into(), 0),
        Err(StreamsError::Topology(_))
    ));
}
