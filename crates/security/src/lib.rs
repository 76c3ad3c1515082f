//! Gregor's security model, free of sockets and of the broker (the only I/O is reading PEM files): what a principal is, how
//! a SASL exchange proves one, how TLS is configured, and what a principal may do.
//!
//! # Layout
//! - [`principal`]: who a connection is (`User:alice`).
//! - [`scram`]: SCRAM-SHA-256/512 credentials and the server side of the exchange.
//! - [`plain`]: SASL/PLAIN against JAAS-configured users.
//! - [`oauthbearer`]: SASL/OAUTHBEARER: JWTs checked against a JWKS file.
//! - [`tls`]: rustls server configuration from PEM files, reloaded when they change;
//!   the principal of a client certificate.
//! - [`acl`]: Kafka's ACL model (principal, host, operation, permission, resource
//!   pattern) and the authorizer that decides a request against a set of bindings.
//!
//! # Invariants
//! - Nothing here logs or returns a secret (a password, a salted key, a token).
//! - Every function that reads client bytes returns an error for bad input; none panics.

pub mod acl;
pub mod oauthbearer;
pub mod plain;
pub mod principal;
pub mod scram;
pub mod scram_client;
pub mod tls;

pub use principal::Principal;
