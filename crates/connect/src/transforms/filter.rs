//! `Filter` and the predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone.

use gregor_connect_api::config::get_str;
use gregor_connect_api::{ConnectError, ConnectRecord, Props};
use regex::Regex;

use super::{Predicate, RecordContext, Transformation};

/// `Filter`: drops every record it is applied to (used with a predicate).
pub(crate) struct Filter;

impl Transformation for Filter {
    fn apply(
        &self,
        _r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        Ok(None)
    }
}

struct TopicNameMatches(Regex);

impl Predicate for TopicNameMatches {
    fn test(&self, r: &ConnectRecord) -> bool {
        self.0.is_match(&r.topic)
    }
}

struct HasHeaderKey(String);

impl Predicate for HasHeaderKey {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.headers.iter().any(|h| h.key == self.0)
    }
}

struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, r: &ConnectRecord) -> bool {
        r.value.is_null()
    }
}

pub(crate) fn create_predicate(
    class: &str,
    props: &Props,
) -> Result<Box<dyn Predicate>, ConnectError> {
    let short = class.rsplit('.').next().unwrap_or(class);
    let missing = |n: &str| {
        ConnectError::Config(format!(
            "Missing required configuration \"{n}\" which has no default value."
        ))
    };
    Ok(match short {
        "TopicNameMatches" => {
            let p = get_str(props, "pattern").ok_or_else(|| missing("pattern"))?;
            // Java's Matcher.matches(): the whole topic name.
            let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                ConnectError::Config(format!("Invalid value {p} for configuration pattern: {e}"))
            })?;
            Box::new(TopicNameMatches(re))
        }
        "HasHeaderKey" => Box::new(HasHeaderKey(
            get_str(props, "name")
                .ok_or_else(|| missing("name"))?
                .to_string(),
        )),
        "RecordIsTombstone" => Box::new(RecordIsTombstone),
        _ => {
            return Err(ConnectError::Config(format!(
                "Class {class} could not be found."
            )))
        }
    })
}
