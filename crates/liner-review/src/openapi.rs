//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/users-reviews/openapi.json`.

use utoipa::OpenApi;

use crate::{follows, likes, lists, reviews, users};

use liner_shared::openapi::{BearerAuth, CommonErrors};
pub use liner_shared::openapi::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Liner review service", description = "Users, login, album reviews, scores and charts; likes, follows and the feed, lists of albums. Likes, follows and list changes are limited to 5 per second per user (bursts of 30; 429 with `Retry-After`). Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, 413 above 64 KiB."),
    servers((url = "/api/users-reviews")),
    paths(
        users::handlers::register, users::handlers::login, users::handlers::profile,
        users::settings::read, users::settings::update,
        reviews::handlers::create, reviews::handlers::get, reviews::handlers::list_by_album,
        reviews::handlers::list_by_user, reviews::handlers::update, reviews::handlers::delete,
        reviews::charts::charts,
        likes::handlers::like, likes::handlers::unlike, likes::handlers::liked, likes::handlers::user_likes,
        follows::handlers::follow, follows::handlers::unfollow, follows::handlers::status,
        follows::handlers::followers, follows::handlers::following, follows::handlers::feed,
        lists::handlers::create, lists::handlers::get, lists::handlers::update, lists::handlers::delete,
        lists::handlers::add_item, lists::handlers::reorder, lists::handlers::edit_item, lists::handlers::remove_item, lists::handlers::of_user,
    ),
    components(schemas(ErrorBody, ErrorDetail, reviews::model::Sort, reviews::model::Period)),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;
