//! `KTable` foreign-key joins (KIP-213): Kafka's `table.join(other, foreignKeyExtractor,
//! joiner)` and `leftJoin(...)`. The processors and their wire formats are in
//! `processor/fk_join.rs`.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{Consumed, Data, KTable};
use crate::processor::fk_join::{
    FkExtractor, FkJoiner, ResponseResolve, RightUpdate, SubscriptionReceive, SubscriptionSend,
};
use crate::processor::stateless::PassThrough;
use crate::processor::{ProcessorFactory, TopicName};
use crate::serde::Serdes;
use crate::state::StoreKind;
use crate::{Result, StreamsError};

impl<K: Data, V: Data> KTable<K, V> {
    /// Foreign-key inner join (Kafka's `join(other, foreignKeyExtractor, joiner)`): each
    /// row of this table whose `foreign_key` names a row of `other` is joined with it. The
    /// result is keyed by this table's key and follows both sides: a change on either
    /// updates it, and it is deleted (a tombstone) when this row is deleted, its foreign
    /// key becomes `None`, or it names a row that does not exist (any more).
    ///
    /// The two tables need not be co-partitioned: this table's subscriptions go to
    /// `other`'s partitions through `<application.id>-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`
    /// (keyed by foreign key, as many partitions as `other`'s topic), and answers come back
    /// through `...-SUBSCRIPTION-RESPONSE-<n>-topic`. Both tables must be materialized
    /// (read from a topic, or aggregations).
    ///
    /// ```
    /// use gregor_streams::*;
    /// let b = StreamsBuilder::new();
    /// let customers = b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
    /// // orders: order id -> "customer id,item"
    /// let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
    /// orders
    ///     .join_on_foreign_key(
    ///         &customers,
    ///         |order: &String| order.split(',').next().map(str::to_string),
    ///         |order: &String, customer: &String| format!("{order} for {customer}"),
    ///     )
    ///     .unwrap()
    ///     .to_stream()
    ///     .to("enriched", Produced::with(Serdes::string(), Serdes::string()));
    /// let d = TopologyTestDriver::new(b.build().unwrap(), StreamsConfig::default()).unwrap();
    /// d.create_input_topic("customers", Serdes::string(), Serdes::string()).pipe_input("c1".into(), "Ann".into(), 1).unwrap();
    /// d.create_input_topic("orders", Serdes::string(), Serdes::string()).pipe_input("o1".into(), "c1,book".into(), 2).unwrap();
    /// let out = d.create_output_topic("enriched", Serdes::string(), Serdes::string());
    /// assert_eq!(out.read_key_values().unwrap(), vec![("o1".to_string(), Some("c1,book for Ann".to_string()))]);
    /// ```
    pub fn join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> Result<KTable<K, VR>> {
        self.fk_join(
            other,
            Arc::new(foreign_key),
            Arc::new(move |v, vo| vo.map(|vo| joiner(v, vo))),
            false,
        )
    }

    /// Foreign-key left join (Kafka's `leftJoin(other, foreignKeyExtractor, joiner)`):
    /// like [`join_on_foreign_key`](Self::join_on_foreign_key), but every row of this table
    /// has a result, joined with `None` while its foreign key is `None` or names no row of
    /// `other`. Only deleting this row deletes the result.
    pub fn left_join_on_foreign_key<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: impl Fn(&V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> Result<KTable<K, VR>> {
        self.fk_join(
            other,
            Arc::new(foreign_key),
            Arc::new(move |v, vo| Some(joiner(v, vo))),
            true,
        )
    }

    fn fk_join<KO: Data, VO: Data, VR: Data>(
        &self,
        other: &KTable<KO, VO>,
        extractor: FkExtractor<V, KO>,
        joiner: FkJoiner<V, VO, VR>,
        left_join: bool,
    ) -> Result<KTable<K, VR>> {
        let (Some(left_store), Some(key_serde), Some(value_serde)) = (
            self.store.clone(),
            self.key_serde.clone(),
            self.value_serde.clone(),
        ) else {
            return Err(StreamsError::Topology(
                "a foreign-key join needs a materialized left table".into(),
            ));
        };
        let (Some(right_store), Some(fk_serde), Some(right_value_serde)) = (
            other.store.clone(),
            other.key_serde.clone(),
            other.value_serde.clone(),
        ) else {
            return Err(StreamsError::Topology(
                "a foreign-key join needs a materialized right table".into(),
            ));
        };
        let mut b = self.b.borrow_mut();
        let registration = format!(
            "{}-topic",
            b.name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION")
        );
        let response = format!("{}-topic", b.name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE"));
        let subscriptions = b.name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE");
        let previous_fk = b.name("KTABLE-FK-JOIN-PREVIOUS-FK-STATE-STORE");
        b.add_store(&subscriptions, StoreKind::KeyValue);
        b.add_store(&previous_fk, StoreKind::KeyValue);
        let (registration_topic, response_topic) = (
            TopicName::Internal(registration.clone()),
            TopicName::Internal(response.clone()),
        );

        // Left sub-topology: subscribe.
        let name = b.name("KTABLE-FK-JOIN-SUBSCRIPTION-SEND");
        let factory: ProcessorFactory = {
            let (name, left_store, previous_fk, topic) = (
                name.clone(),
                left_store.clone(),
                previous_fk.clone(),
                registration_topic.clone(),
            );
            let (ks, vs, fks) = (key_serde.clone(), value_serde.clone(), fk_serde.clone());
            let (extractor, joiner) = (extractor, joiner.clone());
            Arc::new(move || {
                Box::new(SubscriptionSend {
                    name: name.clone(),
                    left_store: left_store.clone(),
                    previous_fk_store: previous_fk.clone(),
                    registration: topic.clone(),
                    key_serde: ks.clone(),
                    value_serde: vs.clone(),
                    fk_serde: fks.clone(),
                    extractor: extractor.clone(),
                    joiner: joiner.clone(),
                    left_join,
                })
            })
        };
        let send = b.add_node(name, &[self.node], factory, vec![previous_fk]);

        // Right sub-topology: receive subscriptions, answer them, fan right updates out.
        let bytes = || Consumed::with(Serdes::bytes(), Serdes::bytes());
        let source = b.add_source(registration_topic, bytes(), true);
        b.fk_topics.push((registration, source));
        let name = b.name("KTABLE-FK-JOIN-SUBSCRIPTION-RECEIVE");
        let factory: ProcessorFactory = {
            let (name, subs, right, topic) = (
                name.clone(),
                subscriptions.clone(),
                right_store.clone(),
                response_topic.clone(),
            );
            Arc::new(move || {
                Box::new(SubscriptionReceive {
                    name: name.clone(),
                    subscription_store: subs.clone(),
                    right_store: right.clone(),
                    response: topic.clone(),
                })
            })
        };
        b.add_node(
            name,
            &[source],
            factory,
            vec![subscriptions.clone(), right_store.clone()],
        );
        let resolve_value_serde = right_value_serde.clone();
        let name = b.name("KTABLE-FK-JOIN-RIGHT-UPDATE");
        let factory: ProcessorFactory = {
            let (name, subs, right, topic) = (
                name.clone(),
                subscriptions.clone(),
                right_store.clone(),
                response_topic.clone(),
            );
            Arc::new(move || {
                Box::new(RightUpdate {
                    name: name.clone(),
                    right_store: right.clone(),
                    subscription_store: subs.clone(),
                    response: topic.clone(),
                    key_serde: fk_serde.clone(),
                    value_serde: right_value_serde.clone(),
                })
            })
        };
        b.add_node(name, &[other.node], factory, vec![subscriptions]);

        // Left sub-topology: resolve responses against the current left value.
        let source = b.add_source(response_topic, bytes(), true);
        b.fk_topics.push((response, source));
        let name = b.name("KTABLE-FK-JOIN-RESPONSE-RESOLVE");
        let factory: ProcessorFactory = {
            let (name, left) = (name.clone(), left_store.clone());
            let (ks, vs, rvs) = (key_serde.clone(), value_serde, resolve_value_serde);
            Arc::new(move || {
                Box::new(ResponseResolve {
                    name: name.clone(),
                    left_store: left.clone(),
                    key_serde: ks.clone(),
                    value_serde: vs.clone(),
                    right_value_serde: rvs.clone(),
                    joiner: joiner.clone(),
                })
            })
        };
        let resolve = b.add_node(name, &[source], factory, vec![left_store]);
        let name = b.name("KTABLE-FK-JOIN-OUTPUT");
        let node = b.add_node(
            name,
            &[send, resolve],
            Arc::new(|| Box::new(PassThrough)),
            Vec::new(),
        );
        Ok(KTable {
            b: self.b.clone(),
            node,
            store: None,
            key_serde: Some(key_serde),
            value_serde: None,
            grace_ms: None,
            _types: PhantomData,
        })
    }
}
