//! What every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use liner_shared::auth::Verifier;
use liner_shared::db::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub verifier: Arc<Verifier>,
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
