//! The registry's errors, and their one mapping to Confluent's error bodies
//! (`{"error_code": N, "message": "..."}`) and HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::CONTENT_TYPE;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    #[error("Schema {0} not found")]
    SchemaNotFound(String),
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, i32),
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, i32),
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    #[error("Subject '{0}' does not have subject-level mode configured")]
    SubjectModeNotFound(String),
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: {details:?}")]
    Incompatible {
        subject: String,
        details: Vec<String>,
    },
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibility,
    #[error("Invalid mode. Valid values are READWRITE, READONLY, IMPORT")]
    InvalidMode,
    #[error("Subject {0} is in read-only mode")]
    ReadOnly(String),
    #[error("One or more references exist to the schema {{subject={0},version={1}}}")]
    ReferenceExists(String, i32),
    #[error("Schema id {0} is already used by a different schema")]
    IdInUse(i32),
    #[error("Unprocessable request: {0}")]
    BadRequest(String),
    #[error("HTTP 404 Not Found")]
    NoSuchEndpoint,
    #[error("Error in the backend data store: {0}")]
    Store(String),
    #[error("Operation timed out: {0}")]
    Timeout(String),
    #[error("Error while forwarding the request to the primary: {0}")]
    Forward(String),
}

impl RegistryError {
    /// Confluent's error code for this error. The HTTP status is derived from it.
    pub fn code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound(_) => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::SubjectSoftDeleted(_) => 40404,
            RegistryError::SubjectNotSoftDeleted(_) => 40405,
            RegistryError::VersionSoftDeleted(..) => 40406,
            RegistryError::VersionNotSoftDeleted(..) => 40407,
            RegistryError::SubjectConfigNotFound(_) => 40408,
            RegistryError::SubjectModeNotFound(_) => 40409,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibility => 42203,
            RegistryError::InvalidMode => 42204,
            RegistryError::ReadOnly(_) => 42205,
            RegistryError::ReferenceExists(..) => 42206,
            RegistryError::IdInUse(_) => 42207,
            RegistryError::BadRequest(_) => 422,
            RegistryError::NoSuchEndpoint => 404,
            RegistryError::Store(_) => 50001,
            RegistryError::Timeout(_) => 50002,
            RegistryError::Forward(_) => 50003,
        }
    }

    pub fn status(&self) -> StatusCode {
        let code = self.code();
        let http = if code < 1000 { code } else { code / 100 };
        StatusCode::from_u16(http as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code(), "message": self.to_string()});
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
            body.to_string(),
        )
            .into_response()
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_http_statuses() {
        let cases = [
            (RegistryError::SubjectNotFound("s".into()), 404),
            (RegistryError::VersionNotFound("2".into()), 404),
            (RegistryError::SchemaNotFound("9".into()), 404),
            (
                RegistryError::Incompatible {
                    subject: "s".into(),
                    details: vec![],
                },
                409,
            ),
            (RegistryError::InvalidSchema("x".into()), 422),
            (RegistryError::InvalidVersion("x".into()), 422),
            (RegistryError::ReadOnly("s".into()), 422),
            (RegistryError::Store("x".into()), 500),
            (RegistryError::Forward("x".into()), 500),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e}");
        }
    }
}
