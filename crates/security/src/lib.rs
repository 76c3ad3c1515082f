//! Gregor's security model, free of sockets and of the broker: what a principal is, how
//! a SASL exchange proves one, how TLS is configured, and what a principal may do.
//!
//! # Layout
//! - [`principal`]: who a connection is (`User:alice`).
//! - [`acl`]: Kafka's ACL model (principal, host, operation, permission, resource
//!   pattern), its filters and validation, and the [`acl::Authorizer`] that decides a
//!   request against an indexed set of bindings.
//!
//! # Invariants
//! - Nothing here logs or returns a secret (a password, a salted key, a token).
//! - Every function that reads client bytes returns an error for bad input; none panics.
//! - No I/O: decisions are pure functions of their inputs (the bindings come from the
//!   metadata image, the settings from the broker config).

pub mod acl;
pub mod principal;

pub use principal::Principal;
