//! Gregor's security model, free of sockets and of the broker: what a principal is, how
//! a SASL exchange proves one, how TLS is configured, and what a principal may do.
//!
//! # Layout
//! - [`principal`]: who a connection is (`User:alice`).
//! - [`acl`]: Kafka's ACL model (principal, host, operation, permission, resource
//!   pattern) and the authorizer that decides a request against a set of bindings.
//!
//! # Invariants
//! - Nothing here logs or returns a secret (a password, a salted key, a token).
//! - Every function that reads client bytes returns an error for bad input; none panics.

pub mod acl;
pub mod principal;

pub use principal::Principal;
