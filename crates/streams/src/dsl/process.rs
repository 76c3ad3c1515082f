//! `KStream::process`: a user [`Processor`] in the DSL (Kafka's `KStream#process`).

use std::sync::Arc;

use super::{Data, KStream};
use crate::processor::api::{ProcessNode, Processor};
use crate::processor::ProcessorFactory;
use crate::state::StoreKind;

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs a processor made per task by `supplier` on every record (null values are
    /// skipped); it forwards `(KR, VR)` records downstream and may schedule punctuations.
    /// `stores` are key-value stores created for it (logged to
    /// `<application.id>-<store>-changelog`), reached with
    /// [`ProcessorContext::key_value_store`](crate::ProcessorContext::key_value_store).
    /// The output is marked for repartitioning, since the processor may change keys.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gregor_streams::*;
    ///
    /// /// Emits the number of records seen so far, every 10 s of stream time.
    /// struct Counter;
    /// impl Processor<String, String, String, i64> for Counter {
    ///     fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
    ///         ctx.schedule(Duration::from_secs(10), PunctuationType::StreamTime, |_, ctx| {
    ///             let n = ctx.key_value_store("n", Serdes::string(), Serdes::i64())?.get(&"n".into())?;
    ///             ctx.forward("count".into(), n.unwrap_or(0));
    ///             Ok(())
    ///         })
    ///     }
    ///     fn process(&mut self, _: String, _: String, _: i64, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
    ///         let mut store = ctx.key_value_store("n", Serdes::string(), Serdes::i64())?;
    ///         let n = store.get(&"n".into())?.unwrap_or(0);
    ///         store.put(&"n".into(), &(n + 1))
    ///     }
    /// }
    ///
    /// let b = StreamsBuilder::new();
    /// b.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
    ///     .process(|| Counter, &["n"])
    ///     .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    /// let d = TopologyTestDriver::new(b.build().unwrap(), StreamsConfig::default()).unwrap();
    /// let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    /// let out = d.create_output_topic("out", Serdes::string(), Serdes::i64());
    /// input.pipe_input("a".into(), "x".into(), 0).unwrap(); // stream time 0: punctuates
    /// input.pipe_input("a".into(), "y".into(), 5_000).unwrap();
    /// input.pipe_input("a".into(), "z".into(), 10_000).unwrap(); // 10 s: punctuates
    /// assert_eq!(out.read_key_values().unwrap(), vec![("count".to_string(), Some(1)), ("count".to_string(), Some(3))]);
    /// ```
    pub fn process<KR: Data, VR: Data, P>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KR, VR>
    where
        P: Processor<K, V, KR, VR> + 'static,
    {
        let stores: Vec<String> = stores.iter().map(|s| s.to_string()).collect();
        let mut b = self.b.borrow_mut();
        for s in &stores {
            b.add_store(s, StoreKind::KeyValue);
        }
        let name = b.name("KSTREAM-PROCESSOR");
        let (pn, ps) = (name.clone(), stores.clone());
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(ProcessNode::new(
                pn.clone(),
                ps.clone(),
                Box::new(supplier()),
            ))
        });
        let node = b.add_node(name, &[self.node], factory, stores);
        b.nodes[node].punctuates = true;
        KStream::new(self.b.clone(), node, true)
    }
}
