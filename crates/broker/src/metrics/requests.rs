//! Kafka's RequestMetrics: requests per API and version
//! (`kafka_network_requestmetrics_requests_total{request="Produce",version="9"}`) and the
//! time from the request's arrival to its answer per API
//! (`kafka_network_requestmetrics_totaltimems{request="Produce"}`, a histogram in ms).
//!
//! Every series is made at start from the handlers' registry, so recording is a table
//! look-up by API key and version and two atomic updates.

use std::time::Duration;

use gregor_protocol::kp::messages::ApiKey;
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use super::MetricsError;
use crate::handlers::ApiSpec;

/// Upper bounds of the request-time buckets, in ms: sub-millisecond answers up to
/// long-polled fetches and acks=all produces that wait for their timeout.
const TIME_BUCKETS_MS: &[f64] = &[
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0,
];

const REQUESTS: &str = "kafka_network_requestmetrics_requests_total";
const TOTAL_TIME: &str = "kafka_network_requestmetrics_totaltimems";

/// Leaves out the series of APIs and versions never requested: they are registered for
/// the hot path's sake, but Kafka shows a version's series only once it was used, and
/// some 300 zero series would bury the rest of a scrape.
pub(super) fn drop_unused(families: &mut Vec<MetricFamily>) {
    for family in families.iter_mut() {
        match family.name() {
            REQUESTS => family
                .mut_metric()
                .retain(|m| m.get_counter().get_value() > 0.0),
            TOTAL_TIME => family
                .mut_metric()
                .retain(|m| m.get_histogram().get_sample_count() > 0),
            _ => {}
        }
    }
    // The text format wants no family without samples.
    families.retain(|f| !f.get_metric().is_empty());
}

/// One API's series.
struct ApiSeries {
    min_version: i16,
    /// By `version - min_version`.
    requests: Vec<IntCounter>,
    total_time: Histogram,
}

pub struct RequestMetrics {
    /// By API key.
    apis: Vec<Option<ApiSeries>>,
}

impl RequestMetrics {
    pub(super) fn new(registry: &Registry, supported: &[ApiSpec]) -> Result<Self, MetricsError> {
        let requests = IntCounterVec::new(
            Opts::new(
                REQUESTS,
                "Requests received, by API and version (Kafka's RequestsPerSec).",
            ),
            &["request", "version"],
        )?;
        let total_time = HistogramVec::new(
            HistogramOpts::new(
                TOTAL_TIME,
                "Time from a request's arrival to its answer, in ms (Kafka's TotalTimeMs).",
            )
            .buckets(TIME_BUCKETS_MS.to_vec()),
            &["request"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(total_time.clone()))?;
        let mut apis: Vec<Option<ApiSeries>> = Vec::new();
        for spec in supported {
            let Ok(key) = usize::try_from(spec.key as i16) else {
                continue;
            };
            // Kafka's request names are its ApiKeys names, which the generated enum's
            // variants spell the same way.
            let name = format!("{:?}", spec.key);
            let mut per_version = Vec::new();
            for v in spec.min..=spec.max {
                per_version.push(requests.get_metric_with_label_values(&[&name, &v.to_string()])?);
            }
            if apis.len() <= key {
                apis.resize_with(key + 1, || None);
            }
            apis[key] = Some(ApiSeries {
                min_version: spec.min,
                requests: per_version,
                total_time: total_time.get_metric_with_label_values(&[&name])?,
            });
        }
        Ok(Self { apis })
    }

    /// Counts one request of `key` at `version` that took `elapsed` to answer. Keys and
    /// versions outside the registry (never dispatched) are ignored.
    pub fn record(&self, key: ApiKey, version: i16, elapsed: Duration) {
        let Some(Some(api)) = usize::try_from(key as i16)
            .ok()
            .and_then(|k| self.apis.get(k))
        else {
            return;
        };
        let index = usize::try_from(version.saturating_sub(api.min_version)).ok();
        let Some(counter) = index.and_then(|i| api.requests.get(i)) else {
            return;
        };
        counter.inc();
        api.total_time.observe(elapsed.as_secs_f64() * 1000.0);
    }
}
