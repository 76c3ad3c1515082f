//! Kafka's ACL model and authorizer (placeholder: filled in by the ACL work).
