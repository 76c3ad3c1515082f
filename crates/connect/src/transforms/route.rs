//! Topic routers: RegexRouter and TimestampRouter.

use gregor_connect_api::config::get_str;
use gregor_connect_api::{ConnectError, ConnectRecord, Props};
use regex::Regex;

use super::{time, RecordContext, Transformation};

/// `RegexRouter`: when `regex` matches the whole topic, the topic becomes `replacement`
/// (Java's `$1` group references).
pub(crate) struct RegexRouter {
    regex: Regex,
    replacement: String,
}

/// Java's `$1` means group 1 even when a letter follows; the regex crate would read
/// `$1abc` as a group named `1abc`, so groups are braced.
pub(crate) fn java_replacement(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else if c == '\\' {
            if let Some(next) = chars.next() {
                if next == '$' {
                    out.push_str("$$");
                } else {
                    out.push(next);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl RegexRouter {
    pub(crate) fn new(props: &Props) -> Result<Self, ConnectError> {
        let missing = |n: &str| {
            ConnectError::Config(format!(
                "Missing required configuration \"{n}\" which has no default value."
            ))
        };
        let pattern = get_str(props, "regex").ok_or_else(|| missing("regex"))?;
        let replacement = get_str(props, "replacement").ok_or_else(|| missing("replacement"))?;
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            ConnectError::Config(format!(
                "Invalid value {pattern} for configuration regex: {e}"
            ))
        })?;
        Ok(RegexRouter {
            regex,
            replacement: java_replacement(replacement),
        })
    }
}

impl Transformation for RegexRouter {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        if self.regex.is_match(&r.topic) {
            r.topic = self
                .regex
                .replace(&r.topic, self.replacement.as_str())
                .into_owned();
        }
        Ok(Some(r))
    }
}

/// `TimestampRouter`: the topic becomes `topic.format` (default `${topic}-${timestamp}`)
/// with the record timestamp formatted by `timestamp.format` (default `yyyyMMdd`, UTC).
pub(crate) struct TimestampRouter {
    topic_format: String,
    timestamp_format: String,
}

impl TimestampRouter {
    pub(crate) fn new(props: &Props) -> Result<Self, ConnectError> {
        Ok(TimestampRouter {
            topic_format: get_str(props, "topic.format")
                .unwrap_or("${topic}-${timestamp}")
                .to_string(),
            timestamp_format: get_str(props, "timestamp.format")
                .unwrap_or("yyyyMMdd")
                .to_string(),
        })
    }
}

impl Transformation for TimestampRouter {
    fn apply(
        &self,
        mut r: ConnectRecord,
        _ctx: &RecordContext,
    ) -> Result<Option<ConnectRecord>, ConnectError> {
        let ts = r.timestamp.ok_or_else(|| {
            ConnectError::Data(format!("Timestamp missing on record: {}", r.topic))
        })?;
        r.topic = self
            .topic_format
            .replace("${topic}", &r.topic)
            .replace("${timestamp}", &time::format(ts, &self.timestamp_format));
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_connect_api::Value;

    #[test]
    fn regex_router_uses_java_group_references() {
        let props: Props = [("regex", "(.*)-raw"), ("replacement", "$1x-clean")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let rr = RegexRouter::new(&props).unwrap();
        let r = ConnectRecord::new("orders-raw", None, Value::Null);
        let r = rr.apply(r, &RecordContext::default()).unwrap().unwrap();
        assert_eq!(r.topic, "ordersx-clean");
        let r = ConnectRecord::new("x-orders-raw-y", None, Value::Null);
        assert_eq!(
            rr.apply(r, &RecordContext::default())
                .unwrap()
                .unwrap()
                .topic,
            "x-orders-raw-y"
        );
    }
}

#[cfg(test)]
mod timestamp_router_tests {
    use super::*;
    use gregor_connect_api::Value;

    #[test]
    fn timestamp_router_formats_the_record_time() {
        let tr = TimestampRouter::new(&Props::new()).unwrap();
        let mut r = ConnectRecord::new("logs", None, Value::Null);
        r.timestamp = Some(1_709_214_306_789);
        assert_eq!(
            tr.apply(r, &RecordContext::default())
                .unwrap()
                .unwrap()
                .topic,
            "logs-20240229"
        );
        let no_ts = ConnectRecord::new("logs", None, Value::Null);
        assert!(tr.apply(no_ts, &RecordContext::default()).is_err());
    }
}
