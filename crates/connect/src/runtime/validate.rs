//! Connector config validation: the common settings every connector has (Kafka's
//! `ConnectorConfig`/`SinkConnectorConfig`), the plugin's own `ConfigDef`, converters,
//! transforms and predicates. One result serves both `PUT .../config/validate` (the
//! body) and `POST /connectors` (the 400 message).

use gregor_connect_api::config::get_str;
use gregor_connect_api::{ConfigDef, ConfigType, ConnectorType, Importance, Props, Validator};
use serde_json::{json, Value as J};

use super::{eos, errors};
use crate::connectors::{self, ConnectorPlugin};
use crate::converters;
use crate::error::Error;
use crate::transforms::Chain;

/// The outcome of validating one connector config.
pub struct Validation {
    pub plugin: &'static ConnectorPlugin,
    /// Every error message, in the order the response lists them.
    pub errors: Vec<String>,
    /// The validate endpoint's response body.
    pub body: J,
}

fn common_def(kind: ConnectorType) -> ConfigDef {
    let def = ConfigDef::new()
        .define("name", ConfigType::String, None, Importance::High, "Globally unique name to use for this connector.")
        .with_validator(Validator::NonEmpty)
        .define("connector.class", ConfigType::String, None, Importance::High, "Name or alias of the class for this connector.")
        .define("tasks.max", ConfigType::Int, Some("1"), Importance::High, "Maximum number of tasks to use for this connector.")
        .with_validator(Validator::Range { min: 1, max: i64::from(i32::MAX) })
        .define("key.converter", ConfigType::Class, Some(""), Importance::Low, "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka (keys); the worker's when empty.")
        .define("value.converter", ConfigType::Class, Some(""), Importance::Low, "Converter class for values; the worker's when empty.")
        .define("header.converter", ConfigType::Class, Some(""), Importance::Low, "Accepted for compatibility; headers are passed as bytes.")
        .in_group("Common")
        .define("transforms", ConfigType::List, Some(""), Importance::Low, "Aliases for the transformations to be applied to records.")
        .in_group("Transforms")
        .define("predicates", ConfigType::List, Some(""), Importance::Low, "Aliases for the predicates used by transformations.")
        .in_group("Predicates")
        .define("errors.tolerance", ConfigType::String, Some("none"), Importance::Medium, "Behavior for tolerating errors during connector operation. 'none' fails the task; 'all' skips problematic records.")
        .with_validator(Validator::OneOf(vec!["none", "all"]))
        .define("errors.log.enable", ConfigType::Boolean, Some("false"), Importance::Medium, "Log each error and the failed operation.")
        .define("errors.log.include.messages", ConfigType::Boolean, Some("false"), Importance::Medium, "Include the failed record's coordinates in the log.")
        .in_group("Error Handling");
    match kind {
        ConnectorType::Source => def
            .define(eos::SUPPORT, ConfigType::String, Some("requested"), Importance::Medium, "Permitted values are requested, required. If set to \"required\", forces a preflight check for the connector to ensure that it can provide exactly-once semantics with the given configuration, and refuses the connector otherwise (needs exactly.once.source.support=enabled on the worker).")
            .define(eos::BOUNDARY, ConfigType::String, Some("poll"), Importance::Medium, "Permitted values are poll, interval, connector. poll: one transaction for each batch of records the task's poll returns; interval: commit transactions every transaction.boundary.interval.ms; connector: boundaries defined by the connector (no shipped connector can).")
            .in_group("Exactly Once Support"),
        ConnectorType::Sink => def
            .define("topics", ConfigType::List, Some(""), Importance::High, "List of topics to consume, separated by commas")
            .define("topics.regex", ConfigType::String, Some(""), Importance::High, "Regular expression giving topics to consume.")
            .in_group("Common")
            .define("errors.deadletterqueue.topic.name", ConfigType::String, Some(""), Importance::Medium, "The name of the topic to be used as the dead letter queue (DLQ) for messages that result in an error.")
            .define("errors.deadletterqueue.topic.replication.factor", ConfigType::Int, Some("3"), Importance::Medium, "Accepted for compatibility; the topic is created by the broker's auto-creation.")
            .define("errors.deadletterqueue.context.headers.enable", ConfigType::Boolean, Some("false"), Importance::Medium, "If true, add headers containing error context to the messages written to the dead letter queue.")
            .in_group("Error Handling"),
    }
}

/// The settings for one side's converter: the worker's `key.converter.*` overridden by
/// the connector's. Returns the class and its settings.
pub fn converter_settings(worker: &Props, connector: &Props, side: &str) -> (String, Props) {
    let prefix = format!("{side}.converter.");
    let class = get_str(connector, &format!("{side}.converter"))
        .filter(|c| !c.is_empty())
        .or_else(|| get_str(worker, &format!("{side}.converter")))
        .unwrap_or(converters::JSON)
        .to_string();
    let mut props = crate::transforms::sub_props(worker, &prefix);
    props.extend(crate::transforms::sub_props(connector, &prefix));
    (class, props)
}

/// Validates a connector config. Unknown `connector.class` is an error of the request,
/// not of a setting, as in Kafka.
pub fn validate(worker: &Props, config: &Props) -> Result<Validation, Error> {
    let class = get_str(config, "connector.class").ok_or_else(|| {
        Error::BadRequest(format!(
            "Connector config {config:?} contains no connector type"
        ))
    })?;
    let plugin = connectors::find(class).ok_or_else(|| {
        Error::BadRequest(format!(
            "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
            connectors::PLUGINS.iter().map(|p| p.class).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let connector = (plugin.new_connector)();
    let common = common_def(plugin.kind);
    let own = connector.config_def();
    let mut configs = common.render(config);
    configs.extend(own.render(config));
    let mut extra: Vec<(String, String)> = connector.validate(config);
    for side in ["key", "value"] {
        let (c, props) = converter_settings(worker, config, side);
        if let Err(e) = converters::create(&c, &props, side == "key") {
            extra.push((format!("{side}.converter"), e.to_string()));
        }
    }
    if let Err(e) = Chain::from_config(config) {
        extra.push(("transforms".into(), e.to_string()));
    }
    let sink = plugin.kind == ConnectorType::Sink;
    if !sink {
        // transaction.boundary.interval.ms has no definition: unset, it is the worker's
        // offset.flush.interval.ms; a bad value is an error of its own.
        extra.extend(eos::validate(worker, config, connector.as_ref()));
    }
    for e in errors::validate(config, sink) {
        extra.push(("errors.tolerance".into(), e));
    }
    if sink {
        let topics = get_str(config, "topics").unwrap_or("").trim();
        let regex = get_str(config, "topics.regex").unwrap_or("").trim();
        match (topics.is_empty(), regex.is_empty()) {
            (true, true) => extra.push((
                "topics".into(),
                "Must configure one of topics or topics.regex".into(),
            )),
            (false, false) => extra.push((
                "topics".into(),
                "topics and topics.regex are mutually exclusive options, but both are set.".into(),
            )),
            _ => {}
        }
        if !regex.is_empty() {
            if let Err(e) = regex::Regex::new(regex) {
                extra.push((
                    "topics.regex".into(),
                    format!("Invalid value {regex} for configuration topics.regex: {e}"),
                ));
            }
        }
        let dlq = get_str(config, "errors.deadletterqueue.topic.name")
            .unwrap_or("")
            .trim();
        if !dlq.is_empty() && topics.split(',').any(|t| t.trim() == dlq) {
            extra.push((
                "errors.deadletterqueue.topic.name".into(),
                format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics={topics}') consumed by the connector"),
            ));
        }
    }
    for (setting, msg) in extra {
        let slot = configs
            .iter_mut()
            .find(|c| c["definition"]["name"] == J::String(setting.clone()));
        match slot.and_then(|c| c["value"]["errors"].as_array_mut()) {
            Some(errs) => errs.push(J::String(msg)),
            None => configs.push(json!({
                "definition": {"name": setting, "type": "STRING", "required": false, "default_value": null,
                    "importance": "LOW", "documentation": "", "group": null, "width": "NONE",
                    "display_name": setting, "dependents": [], "order": -1},
                "value": {"name": setting, "value": config.get(&setting), "recommended_values": [],
                    "errors": [msg], "visible": true}
            })),
        }
    }
    let errors: Vec<String> = configs
        .iter()
        .flat_map(|c| c["value"]["errors"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    let mut groups: Vec<String> = Vec::new();
    for c in &configs {
        if let Some(g) = c["definition"]["group"].as_str() {
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    let body = json!({
        "name": plugin.class,
        "error_count": errors.len(),
        "groups": groups,
        "configs": configs,
    });
    Ok(Validation {
        plugin,
        errors,
        body,
    })
}

/// The message of the 400 answer to creating a connector with an invalid config.
pub fn invalid_message(v: &Validation) -> String {
    format!(
        "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
        v.errors.len(),
        v.errors.join("\n")
    )
}
