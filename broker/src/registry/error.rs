//! Confluent's error answers: an HTTP status and a body
//! `{"error_code": 40401, "message": "..."}`, with the same codes and the
//! same wording clients and scripts match on.

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: i32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: i32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        serde_json::json!({"error_code": self.code, "message": self.message}).to_string()
    }

    pub fn subject_not_found(s: &str) -> ApiError {
        ApiError::new(404, 40401, format!("Subject '{s}' not found."))
    }
    pub fn version_not_found(v: i32) -> ApiError {
        ApiError::new(404, 40402, format!("Version {v} not found."))
    }
    pub fn schema_not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(404, 40403, format!("Schema {what} not found"))
    }
    pub fn subject_soft_deleted(s: &str) -> ApiError {
        ApiError::new(
            404,
            40404,
            format!("Subject '{s}' was soft deleted.Set permanent=true to delete permanently"),
        )
    }
    pub fn subject_not_soft_deleted(s: &str) -> ApiError {
        ApiError::new(
            404,
            40405,
            format!("Subject '{s}' was not deleted first before being permanently deleted"),
        )
    }
    pub fn version_soft_deleted(s: &str, v: i32) -> ApiError {
        ApiError::new(
            404,
            40406,
            format!("Subject '{s}' Version {v} was soft deleted.Set permanent=true to delete permanently"),
        )
    }
    pub fn version_not_soft_deleted(s: &str, v: i32) -> ApiError {
        ApiError::new(
            404,
            40407,
            format!(
                "Subject '{s}' Version {v} was not deleted first before being permanently deleted"
            ),
        )
    }
    pub fn subject_config_not_found(s: &str) -> ApiError {
        ApiError::new(
            404,
            40408,
            format!("Subject '{s}' does not have subject-level compatibility configured"),
        )
    }
    pub fn subject_mode_not_found(s: &str) -> ApiError {
        ApiError::new(
            404,
            40409,
            format!("Subject '{s}' does not have subject-level mode configured"),
        )
    }
    pub fn invalid_schema(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(422, 42201, msg.to_string())
    }
    pub fn invalid_version(v: &str) -> ApiError {
        ApiError::new(
            422,
            42202,
            format!("The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""),
        )
    }
    pub fn invalid_compatibility(level: &str) -> ApiError {
        ApiError::new(
            422,
            42203,
            format!("Invalid compatibility level '{level}'. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"),
        )
    }
    pub fn invalid_mode(mode: &str) -> ApiError {
        ApiError::new(
            422,
            42204,
            format!("Invalid mode '{mode}'. Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT"),
        )
    }
    pub fn not_permitted(msg: impl Into<String>) -> ApiError {
        ApiError::new(422, 42205, msg)
    }
    pub fn referenced(s: &str, v: i32) -> ApiError {
        ApiError::new(
            422,
            42206,
            format!("One or more references exist to the schema {{subject={s},version={v}}}"),
        )
    }
    pub fn incompatible(messages: &[String]) -> ApiError {
        let mut m = String::from(
            "Schema being registered is incompatible with an earlier schema for subject",
        );
        if !messages.is_empty() {
            m.push_str(", details: [");
            m.push_str(&messages.join(", "));
            m.push(']');
        }
        ApiError::new(409, 409, m)
    }
    pub fn store(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            500,
            50001,
            format!("Error in the backend data store - {msg}"),
        )
    }
    pub fn timeout(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(500, 50002, format!("Operation timed out - {msg}"))
    }
    pub fn unprocessable(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(422, 422, format!("Unprocessable Entity: {msg}"))
    }
    pub fn bad_request(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(400, 400, format!("Bad Request: {msg}"))
    }
    pub fn not_found() -> ApiError {
        ApiError::new(404, 404, "HTTP 404 Not Found")
    }
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, 405, "HTTP 405 Method Not Allowed")
    }
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            413,
            format!("Request entity too large: the limit is {limit} bytes"),
        )
    }
}
