//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/users-reviews/openapi.json`.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::{reviews, users};

/// The error shape of every non-2xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_field`, `review_exists`.
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
    info(title = "Liner review service", description = "Users, login and album reviews. Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, 413 above 64 KiB."),
    servers((url = "/api/users-reviews")),
    paths(
        users::handlers::register, users::handlers::login, users::handlers::profile,
        reviews::handlers::create, reviews::handlers::get, reviews::handlers::list_by_album,
        reviews::handlers::update, reviews::handlers::delete,
    ),
    components(schemas(ErrorBody, ErrorDetail, reviews::model::Sort)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;
