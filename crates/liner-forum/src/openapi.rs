//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/forums/openapi.json`. WebSocket frames cannot be expressed as
//! OpenAPI operations; the `/connect` operation's description lists them.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::{chat, rooms};

/// The error shape of every non-2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_field`, `room_exists`, `room_closed`.
    pub code: String,
    /// Human text; for 422 it names the field.
    pub message: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Liner forum service", description = "Discussion rooms per album or genre and live chat over WebSocket. Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, 413 above 64 KiB."),
    servers((url = "/api/forums")),
    paths(
        rooms::handlers::create, rooms::handlers::list, rooms::handlers::get, rooms::handlers::close,
        rooms::handlers::history, chat::connect,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;
