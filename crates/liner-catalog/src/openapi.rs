//! The OpenAPI 3 document, generated from the handlers' annotations and the wire types,
//! served at `/api/catalog/openapi.json`.

use utoipa::OpenApi;

use crate::albums;

use liner_shared::openapi::{BearerAuth, CommonErrors};
pub use liner_shared::openapi::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Liner catalogue service", description = "Albums (title, artist, year, genres, MusicBrainz id) and search. \
        Search folds case and accents (\"bjork\" finds \"Björk\"), matches words of the title or artist, the last word as a \
        prefix, and ranks a title equal to the query first, then a title starting with it, then by relevance (bm25 on \
        SQLite, ts_rank on PostgreSQL), then newest. Ranked pages go at most 10,000 results deep. Imported albums have \
        `createdBy: null`. Every error answers `{\"error\":{\"code\",\"message\"}}`; 415 for a non-JSON content type, \
        413 above 64 KiB."),
    servers((url = "/api/catalog")),
    paths(albums::handlers::list, albums::handlers::get, albums::handlers::create, albums::handlers::genres),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &CommonErrors)
)]
pub struct ApiDoc;
