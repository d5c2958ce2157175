//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/users-reviews/openapi.json`.

use utoipa::OpenApi;

use crate::{reviews, users};

use liner_shared::openapi::{BearerAuth, CommonErrors};
pub use liner_shared::openapi::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Liner review service", description = "Users, login, album reviews, scores and charts. Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, 413 above 64 KiB."),
    servers((url = "/api/users-reviews")),
    paths(
        users::handlers::register, users::handlers::login, users::handlers::profile,
        reviews::handlers::create, reviews::handlers::get, reviews::handlers::list_by_album,
        reviews::handlers::list_by_user, reviews::handlers::update, reviews::handlers::delete,
        reviews::charts::charts,
    ),
    components(schemas(ErrorBody, ErrorDetail, reviews::model::Sort, reviews::model::Period)),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;
