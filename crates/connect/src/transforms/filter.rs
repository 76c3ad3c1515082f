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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transforms::Chain;
    use gregor_connect_api::{Header, Value};

    #[test]
    fn filter_with_predicates_and_negate() {
        let props: Props = [
            ("transforms", "dropTomb,keepOnlyTagged"),
            (
                "transforms.dropTomb.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.dropTomb.predicate", "tomb"),
            (
                "transforms.keepOnlyTagged.type",
                "org.apache.kafka.connect.transforms.Filter",
            ),
            ("transforms.keepOnlyTagged.predicate", "tagged"),
            ("transforms.keepOnlyTagged.negate", "true"),
            ("predicates", "tomb,tagged"),
            (
                "predicates.tomb.type",
                "org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
            ),
            (
                "predicates.tagged.type",
                "org.apache.kafka.connect.transforms.predicates.HasHeaderKey",
            ),
            ("predicates.tagged.name", "tag"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let chain = Chain::from_config(&props).unwrap();
        let ctx = RecordContext::default();
        let mut tagged = ConnectRecord::new("t", None, Value::String("x".into()));
        tagged.headers.push(Header {
            key: "tag".into(),
            value: None,
        });
        assert!(chain.apply(tagged.clone(), &ctx).unwrap().is_some());
        let untagged = ConnectRecord::new("t", None, Value::String("x".into()));
        assert!(chain.apply(untagged, &ctx).unwrap().is_none());
        tagged.value = Value::Null;
        assert!(chain.apply(tagged, &ctx).unwrap().is_none());
        let mut bad = props.clone();
        bad.insert("transforms.dropTomb.predicate".into(), "missing".into());
        assert!(Chain::from_config(&bad).is_err());
    }
}
