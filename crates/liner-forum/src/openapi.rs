//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/forums/openapi.json`. WebSocket frames cannot be expressed as
//! OpenAPI operations; the `/connect` operation's description lists them.

use utoipa::OpenApi;

use crate::{chat, moderation, rooms, threads};

use liner_shared::openapi::{BearerAuth, CommonErrors};
pub use liner_shared::openapi::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Liner forum service", description = "Discussion rooms per album or genre and live chat over WebSocket. Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, 413 above 64 KiB."),
    servers((url = "/api/forums")),
    paths(
        rooms::handlers::create, rooms::handlers::list, rooms::handlers::get, rooms::handlers::close,
        rooms::handlers::history, rooms::handlers::ratings, chat::connect,
        moderation::handlers::delete_message, moderation::handlers::mute, moderation::handlers::unmute,
        moderation::handlers::kick, moderation::handlers::slow_mode, moderation::handlers::moderation,
        moderation::handlers::report, moderation::handlers::reports, moderation::handlers::resolve,
        threads::handlers::open,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;
