//! `ConfigDef`: a plugin's settings declared once, then used both to parse properties
//! and to answer `PUT /connector-plugins/{plugin}/config/validate` in Kafka's shape.

use serde_json::{json, Value as J};

use crate::Props;

/// A setting's type, named as Kafka's `ConfigDef.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    String,
    Int,
    Long,
    Double,
    Boolean,
    List,
    Class,
    Password,
}

impl ConfigType {
    fn name(self) -> &'static str {
        match self {
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }
}

/// How much a setting matters (Kafka's `ConfigDef.Importance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Importance {
    High,
    Medium,
    Low,
}

impl Importance {
    fn name(self) -> &'static str {
        match self {
            Importance::High => "HIGH",
            Importance::Medium => "MEDIUM",
            Importance::Low => "LOW",
        }
    }
}

/// A constraint beyond the type.
#[derive(Clone, Debug, PartialEq)]
pub enum Validator {
    /// Integers in `min..=max`.
    Range { min: i64, max: i64 },
    /// One of these strings (case-insensitive, as Kafka's `CaseInsensitiveValidString`).
    OneOf(Vec<&'static str>),
    /// A string that is not empty.
    NonEmpty,
}

/// One declared setting.
#[derive(Clone, Debug)]
pub struct ConfigKey {
    pub name: String,
    pub config_type: ConfigType,
    /// `None`: required.
    pub default: Option<String>,
    pub validator: Option<Validator>,
    pub importance: Importance,
    pub documentation: String,
    pub group: Option<String>,
}

/// A plugin's declared settings.
#[derive(Clone, Debug, Default)]
pub struct ConfigDef {
    pub keys: Vec<ConfigKey>,
}

impl ConfigDef {
    /// An empty definition.
    pub fn new() -> Self {
        ConfigDef::default()
    }

    /// Declares a setting. `default` `None` makes it required.
    pub fn define(
        mut self,
        name: &str,
        config_type: ConfigType,
        default: Option<&str>,
        importance: Importance,
        documentation: &str,
    ) -> Self {
        self.keys.push(ConfigKey {
            name: name.to_string(),
            config_type,
            default: default.map(str::to_string),
            validator: None,
            importance,
            documentation: documentation.to_string(),
            group: None,
        });
        self
    }

    /// Attaches a validator to the most recently defined setting.
    pub fn with_validator(mut self, validator: Validator) -> Self {
        if let Some(last) = self.keys.last_mut() {
            last.validator = Some(validator);
        }
        self
    }

    /// Sets the group of every setting defined so far that has none.
    pub fn in_group(mut self, group: &str) -> Self {
        for k in &mut self.keys {
            if k.group.is_none() {
                k.group = Some(group.to_string());
            }
        }
        self
    }

    /// Appends another definition's settings.
    pub fn merge(mut self, other: ConfigDef) -> Self {
        self.keys.extend(other.keys);
        self
    }

    /// The errors, per setting, of these properties: Kafka's messages for missing
    /// required settings and for values of the wrong type or out of range.
    pub fn validate(&self, props: &Props) -> Vec<(String, Vec<String>)> {
        self.keys
            .iter()
            .map(|k| (k.name.clone(), check(k, props.get(&k.name))))
            .collect()
    }

    /// All error messages, in declaration order.
    pub fn errors(&self, props: &Props) -> Vec<String> {
        self.validate(props)
            .into_iter()
            .flat_map(|(_, errs)| errs)
            .collect()
    }

    /// The `configs` entries of a validate response: definition and value per setting.
    pub fn render(&self, props: &Props) -> Vec<J> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let value = props.get(&k.name).or(k.default.as_ref());
                let shown = match (k.config_type, value) {
                    (ConfigType::Password, Some(_)) => J::String("[hidden]".into()),
                    (_, Some(v)) => J::String(v.clone()),
                    (_, None) => J::Null,
                };
                let recommended: Vec<&str> = match &k.validator {
                    Some(Validator::OneOf(values)) => values.clone(),
                    _ => Vec::new(),
                };
                json!({
                    "definition": {
                        "name": k.name,
                        "type": k.config_type.name(),
                        "required": k.default.is_none(),
                        "default_value": k.default,
                        "importance": k.importance.name(),
                        "documentation": k.documentation,
                        "group": k.group,
                        "width": "NONE",
                        "display_name": k.name,
                        "dependents": [],
                        "order": i as i64 + 1,
                    },
                    "value": {
                        "name": k.name,
                        "value": shown,
                        "recommended_values": recommended,
                        "errors": check(k, props.get(&k.name)),
                        "visible": true,
                    }
                })
            })
            .collect()
    }
}

fn check(key: &ConfigKey, value: Option<&String>) -> Vec<String> {
    let Some(raw) = value.or(key.default.as_ref()) else {
        return vec![format!(
            "Missing required configuration \"{}\" which has no default value.",
            key.name
        )];
    };
    let name = &key.name;
    let invalid = |why: &str| format!("Invalid value {raw} for configuration {name}: {why}");
    let trimmed = raw.trim();
    let mut errors = Vec::new();
    let number: Option<i64> = match key.config_type {
        ConfigType::Int | ConfigType::Long => match trimmed.parse::<i64>() {
            Ok(n) if key.config_type == ConfigType::Int && i32::try_from(n).is_err() => {
                errors.push(invalid("Not a number of type INT"));
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(invalid(&format!(
                    "Not a number of type {}",
                    key.config_type.name()
                )));
                None
            }
        },
        ConfigType::Double => {
            if trimmed.parse::<f64>().is_err() {
                errors.push(invalid("Not a number of type DOUBLE"));
            }
            None
        }
        ConfigType::Boolean => {
            if !trimmed.eq_ignore_ascii_case("true") && !trimmed.eq_ignore_ascii_case("false") {
                errors.push(invalid("Expected value to be either true or false"));
            }
            None
        }
        _ => None,
    };
    match (&key.validator, number) {
        (Some(Validator::Range { min, max }), Some(n)) if n < *min || n > *max => {
            errors.push(format!(
                "Invalid value {raw} for configuration {name}: Value must be in the range [{min}, {max}]"
            ));
        }
        (Some(Validator::OneOf(allowed)), _)
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(trimmed)) =>
        {
            errors.push(format!(
                "Invalid value {raw} for configuration {name}: String must be one of: {}",
                allowed.join(", ")
            ));
        }
        (Some(Validator::NonEmpty), _) if trimmed.is_empty() => {
            errors.push(format!(
                "Invalid value {raw} for configuration {name}: String must be non-empty"
            ));
        }
        _ => {}
    }
    errors
}

/// Typed reads of properties, with the definition's defaults already applied by the
/// caller's validation (these only parse).
pub fn get_str<'a>(props: &'a Props, name: &str) -> Option<&'a str> {
    props.get(name).map(|s| s.as_str())
}

/// An integer setting, or `default` when absent or unparsable (validation reports it).
pub fn get_i64(props: &Props, name: &str, default: i64) -> i64 {
    props
        .get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A boolean setting (`true`/`false`, any case), or `default`.
pub fn get_bool(props: &Props, name: &str, default: bool) -> bool {
    match props.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        _ => default,
    }
}

/// A comma-separated list setting, trimmed, empty items dropped.
pub fn get_list(props: &Props, name: &str) -> Vec<String> {
    props
        .get(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ConfigDef {
        ConfigDef::new()
            .define("file", ConfigType::String, None, Importance::High, "f")
            .define(
                "batch.size",
                ConfigType::Int,
                Some("2000"),
                Importance::Low,
                "b",
            )
            .with_validator(Validator::Range {
                min: 1,
                max: 100_000,
            })
    }

    #[test]
    fn missing_required_and_bad_numbers_are_reported_in_kafkas_words() {
        let mut props = Props::new();
        props.insert("batch.size".into(), "x".into());
        let errs = def().errors(&props);
        assert_eq!(
            errs,
            vec![
                "Missing required configuration \"file\" which has no default value.",
                "Invalid value x for configuration batch.size: Not a number of type INT",
            ]
        );
        props.insert("file".into(), "/tmp/a".into());
        props.insert("batch.size".into(), "0".into());
        assert_eq!(
            def().errors(&props),
            vec!["Invalid value 0 for configuration batch.size: Value must be in the range [1, 100000]"]
        );
        props.insert("batch.size".into(), "10".into());
        assert!(def().errors(&props).is_empty());
    }
}
