//! OpenAPI pieces every service's document shares: the error body every non-2xx answer
//! carries, the bearer-token security scheme, and the error answers that any operation
//! can get from the gateway in front of it or from the shared request parsing.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, Type};
use utoipa::{Modify, ToSchema};

/// The error shape of every non-2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_field`, `review_exists`, `room_closed`.
    pub code: String,
    /// Human text; for 422 it names the field.
    pub message: String,
}

/// Adds the `bearer` (JWT) security scheme that operations name in `security(...)`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Which operations an error answer applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Every operation: the gateway admits, routes and forwards each request.
    Every,
    /// Operations with a JSON request body.
    WithBody,
    /// Operations that need a token (edge authentication at the gateway, then the service).
    WithToken,
}

/// The error answers shared by every service, each in the [`ErrorBody`] shape.
const COMMON_ERRORS: &[(Applies, &str, &str)] = &[
    (
        Applies::Every,
        "400",
        "Malformed request: a bad path or query parameter (`bad_path`, `bad_query`), malformed JSON \
         (`malformed_json`), an unreadable body (`bad_body`) or a bad `Host` header (`bad_host`).",
    ),
    (
        Applies::Every,
        "429",
        "Rate limited (`rate_limited`): too many requests from this address (gateway), too many writes \
         for this user (gateway), or, on login, too many failures. `Retry-After` gives the seconds to wait.",
    ),
    (Applies::Every, "502", "The service failed to answer (`bad_gateway`)."),
    (
        Applies::Every,
        "503",
        "No healthy instance of the service, the gateway shedding load, tokens cannot be verified right \
         now, or the database is down (`unavailable`).",
    ),
    (Applies::Every, "504", "The service did not answer within the route's timeout (`upstream_timeout`)."),
    (Applies::WithBody, "408", "The request body stalled (`request_timeout`)."),
    (Applies::WithBody, "413", "The request body is larger than 64 KiB (`payload_too_large`)."),
    (Applies::WithBody, "415", "The body is not `Content-Type: application/json` (`unsupported_media_type`)."),
    (
        Applies::WithBody,
        "422",
        "Well-formed JSON, but a field is missing, unknown, mistyped or invalid (`invalid_field`; the message \
         names the field).",
    ),
    (Applies::WithToken, "401", "Missing, malformed, expired or unverifiable token (`unauthorized`)."),
];

/// Adds to every operation the error answers it can get whatever its handler does (see
/// [`COMMON_ERRORS`]), unless the operation documents that status itself.
pub struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in ops.into_iter().flatten() {
                add_common_errors(op);
            }
        }
    }
}

fn add_common_errors(op: &mut Operation) {
    let has_body = op.request_body.is_some();
    let needs_token = op.security.is_some();
    for &(applies, status, description) in COMMON_ERRORS {
        let applies = match applies {
            Applies::Every => true,
            Applies::WithBody => has_body,
            Applies::WithToken => needs_token,
        };
        if !applies || op.responses.responses.contains_key(status) {
            continue;
        }
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        );
        if status == "429" {
            let seconds = utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(seconds))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            );
        }
        op.responses.responses.insert(status.to_owned(), response.build().into());
    }
}
