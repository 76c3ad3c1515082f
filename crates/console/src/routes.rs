//! HTTP handlers: parse the request, ask `Cluster`, render a page. Errors become error
//! pages (`ConsoleError: IntoResponse`).

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::response::Redirect;
use axum::routing::get;
use axum::{Json, Router};
use maud::Markup;
use serde::Deserialize;

use crate::browse::{parse_time, Browse, Start};
use crate::cluster::Cluster;
use crate::error::{ConsoleError, Result};
use crate::lag::{LagHistory, Sample};
use crate::pages::{self, messages::BrowseForm};

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) history: Arc<LagHistory>,
    /// How often the group page refreshes its live part.
    pub(crate) refresh_ms: u64,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/topics", get(topics).post(create_topic))
        .route("/topics/{name}", get(topic))
        .route("/topics/{name}/messages", get(messages))
        .route("/groups", get(groups))
        .route("/groups/{name}", get(group))
        .route("/api/groups/{name}/lag", get(group_lag))
        .route("/transactions", get(transactions))
        .with_state(state)
}

async fn overview(State(s): State<AppState>) -> Result<Markup> {
    Ok(pages::overview::render(&s.cluster.overview().await?))
}

async fn topics(State(s): State<AppState>) -> Result<Markup> {
    Ok(pages::topics::list(&s.cluster.topics().await?))
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    partitions: String,
    replication_factor: String,
}

fn number<T: std::str::FromStr>(field: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| ConsoleError::BadRequest(format!("{field}: {v:?} is not a number")))
}

async fn create_topic(State(s): State<AppState>, Form(f): Form<CreateTopic>) -> Result<Redirect> {
    let name = f.name.trim();
    if name.is_empty() {
        return Err(ConsoleError::BadRequest("a topic needs a name".into()));
    }
    let partitions = number("partitions", &f.partitions)?;
    let replication = number("replication factor", &f.replication_factor)?;
    s.cluster
        .create_topic(name, partitions, replication)
        .await?;
    Ok(Redirect::to(&pages::topic_href(name)))
}

async fn topic(State(s): State<AppState>, Path(name): Path<String>) -> Result<Markup> {
    Ok(pages::topics::detail(&s.cluster.topic(name).await?))
}

/// A form field, unless empty.
fn field(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

async fn messages(
    State(s): State<AppState>,
    Path(topic): Path<String>,
    Query(form): Query<BrowseForm>,
) -> Result<Markup> {
    let start = match (field(&form.offset), field(&form.timestamp)) {
        (Some(o), _) => Start::Offset(number("offset", o)?),
        (None, Some(t)) => Start::Timestamp(parse_time(t)?),
        (None, None) => Start::Beginning,
    };
    let limit = match field(&form.limit) {
        Some(l) => number::<usize>("count", l)?.clamp(1, crate::browse::MAX_LIMIT),
        None => 20,
    };
    let q = Browse {
        topic,
        partition: field(&form.partition).map_or(Ok(0), |p| number("partition", p))?,
        start,
        limit,
        key: field(&form.key).map(str::to_string),
    };
    let page = s.cluster.blocking(move |c| c.browse(&q)).await?;
    Ok(pages::messages::render(&page, &form, limit))
}

async fn groups(State(s): State<AppState>) -> Result<Markup> {
    Ok(pages::groups::list(
        &s.cluster.blocking(|c| c.group_list()).await?,
    ))
}

async fn group(State(s): State<AppState>, Path(name): Path<String>) -> Result<Markup> {
    let history = s.history.samples(&name);
    let detail = s.cluster.blocking(move |c| c.group(&name)).await?;
    Ok(pages::groups::detail(&detail, &history, s.refresh_ms))
}

#[derive(serde::Serialize)]
struct LagHistoryJson {
    group: String,
    samples: Vec<Sample>,
}

async fn group_lag(State(s): State<AppState>, Path(name): Path<String>) -> Json<LagHistoryJson> {
    Json(LagHistoryJson {
        samples: s.history.samples(&name),
        group: name,
    })
}

async fn transactions(State(s): State<AppState>) -> Result<Markup> {
    Ok(pages::txns::render(&s.cluster.transactions().await?))
}
