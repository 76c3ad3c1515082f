//! `/connector-plugins` routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value as J};

use super::{parse_body, props_of};
use crate::connectors::{self, PLUGINS};
use crate::error::Error;
use crate::runtime::Worker;
use crate::{converters, transforms};

/// `GET /connector-plugins[?connectorsOnly=false]`.
pub(super) async fn list(Query(q): Query<HashMap<String, String>>) -> Json<J> {
    let mut out: Vec<J> = PLUGINS
        .iter()
        .map(|p| json!({"class": p.class, "type": p.kind.name(), "version": p.version}))
        .collect();
    if q.get("connectorsOnly")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        let version = env!("CARGO_PKG_VERSION");
        for c in converters::CLASSES {
            out.push(json!({"class": c, "type": "converter", "version": version}));
        }
        for t in transforms::CLASSES {
            out.push(json!({"class": t, "type": "transformation", "version": version}));
        }
        for p in transforms::PREDICATE_CLASSES {
            out.push(json!({"class": p, "type": "predicate", "version": version}));
        }
    }
    Json(J::Array(out))
}

fn find(plugin: &str) -> Result<&'static connectors::ConnectorPlugin, Error> {
    connectors::find(plugin).ok_or_else(|| {
        Error::PluginNotFound(format!(
            "Failed to find any class that implements Connector and which name matches {plugin}"
        ))
    })
}

/// `GET /connector-plugins/{plugin}/config`: the plugin's own settings (KIP-769).
pub(super) async fn config_def(Path(plugin): Path<String>) -> Result<Json<J>, Error> {
    let p = find(&plugin)?;
    let rendered = (p.new_connector)().config_def().render(&Default::default());
    Ok(Json(J::Array(
        rendered
            .into_iter()
            .map(|c| c["definition"].clone())
            .collect(),
    )))
}

/// `PUT /connector-plugins/{plugin}/config/validate`: always 200 with the per-setting
/// errors (400 only when the body's `connector.class` names another plugin).
pub(super) async fn validate(
    State(w): State<Arc<Worker>>,
    Path(plugin): Path<String>,
    body: Bytes,
) -> Result<Json<J>, Error> {
    let p = find(&plugin)?;
    let mut config = props_of(&parse_body(&body)?)?;
    match config.get("connector.class") {
        None => {
            config.insert("connector.class".into(), p.class.to_string());
        }
        Some(c) if connectors::find(c).map(|x| x.class) != Some(p.class) => {
            return Err(Error::BadRequest(format!(
                "Included connector type {c} does not match request type {plugin}"
            )));
        }
        Some(_) => {}
    }
    let v = w.validate(&config)?;
    Ok(Json(v.body))
}
