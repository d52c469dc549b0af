//! ApiVersions: the table of APIs and version ranges this broker serves
//! (`wire::codec::SUPPORTED`). Requests above our max are answered by the
//! codec itself with the v0-shaped UNSUPPORTED_VERSION fallback.

use kafka_protocol::messages::ApiVersionsResponse;

use crate::wire::codec::api_versions_table;

/// The ApiVersions answer.
pub(super) fn api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_versions_table())
}
