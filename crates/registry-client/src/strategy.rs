//! Subject name strategies: under which subject a topic's key or value schema lives.

/// Confluent's `key.subject.name.strategy` / `value.subject.name.strategy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value` (the default).
    #[default]
    TopicName,
    /// The record's fully-qualified name.
    RecordName,
    /// `<topic>-<record name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// Parses a strategy class name (fully qualified, as Confluent's configs give it, or
    /// its simple name).
    pub fn from_class(class: &str) -> Option<Self> {
        match class.trim().rsplit('.').next().unwrap_or_default() {
            "TopicNameStrategy" => Some(SubjectNameStrategy::TopicName),
            "RecordNameStrategy" => Some(SubjectNameStrategy::RecordName),
            "TopicRecordNameStrategy" => Some(SubjectNameStrategy::TopicRecordName),
            _ => None,
        }
    }

    /// The subject for `topic`'s key or value whose record is named `record_name`;
    /// `None` when the strategy needs a record name and there is none (a primitive).
    pub fn subject(self, topic: &str, is_key: bool, record_name: Option<&str>) -> Option<String> {
        match self {
            SubjectNameStrategy::TopicName => {
                Some(format!("{topic}-{}", if is_key { "key" } else { "value" }))
            }
            SubjectNameStrategy::RecordName => record_name.map(str::to_string),
            SubjectNameStrategy::TopicRecordName => record_name.map(|r| format!("{topic}-{r}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_name_subjects_as_confluent_does() {
        let t = SubjectNameStrategy::from_class(
            "io.confluent.kafka.serializers.subject.TopicNameStrategy",
        );
        assert_eq!(t, Some(SubjectNameStrategy::TopicName));
        let t = SubjectNameStrategy::TopicName;
        assert_eq!(
            t.subject("orders", false, None).as_deref(),
            Some("orders-value")
        );
        assert_eq!(
            t.subject("orders", true, Some("x.Y")).as_deref(),
            Some("orders-key")
        );
        let r = SubjectNameStrategy::RecordName;
        assert_eq!(
            r.subject("orders", false, Some("x.Y")).as_deref(),
            Some("x.Y")
        );
        assert_eq!(r.subject("orders", false, None), None);
        let tr = SubjectNameStrategy::TopicRecordName;
        assert_eq!(
            tr.subject("o", false, Some("x.Y")).as_deref(),
            Some("o-x.Y")
        );
        assert_eq!(SubjectNameStrategy::from_class("Nope"), None);
    }
}
