//! The model library as the window and the CLI see it: import a local GGUF, list models with a
//! fit verdict for this machine, remove one. Loading a model into the engine lives here too, so
//! both clients remember the same active model (the store's `active_model` setting).

use std::path::PathBuf;
use std::sync::Arc;

use cria_models::library::{ImportMode, Library, ListingRow};
use serde::Serialize;

use crate::{CoreError, Cria, Result};

/// The setting that remembers which library model to load when the next message needs one.
pub const ACTIVE_MODEL_SETTING: &str = "active_model";

/// One model of the library, with what the user needs to choose it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub id: String,
    pub name: String,
    pub architecture: String,
    pub size_bytes: u64,
    pub quantization: String,
    pub context_length: Option<u64>,
    pub vision: bool,
    /// "fits on GPU", "hybrid", "CPU only", "does not fit", or empty when unknown.
    pub verdict: String,
    pub verdict_reason: String,
    pub active: bool,
}

impl ModelSummary {
    fn from_row(row: ListingRow, active_id: Option<&str>) -> Self {
        ModelSummary {
            active: active_id == Some(row.id.as_str()),
            verdict: row
                .verdict
                .map(|verdict| verdict.label().to_string())
                .unwrap_or_default(),
            id: row.id,
            name: row.name,
            architecture: row.architecture,
            size_bytes: row.size_bytes,
            quantization: row.quantization,
            context_length: row.context_length,
            vision: row.vision,
            verdict_reason: row.verdict_reason,
        }
    }
}

impl Cria {
    pub(crate) fn open_library(paths: &crate::AppPaths) -> Result<Arc<Library>> {
        Ok(Arc::new(Library::open(&paths.library_dir())?))
    }

    /// Adds a local GGUF to the library where it lies (nothing is copied), after validating it;
    /// a vision projector in the same folder is paired automatically.
    pub async fn import_model(&self, path: PathBuf) -> Result<ModelSummary> {
        let library = Arc::clone(&self.library);
        let entry = run_blocking(move || library.import(&path, ImportMode::Reference)).await?;
        let models = self.list_models().await?;
        models
            .into_iter()
            .find(|model| model.id == entry.id)
            .ok_or_else(|| {
                CoreError::Internal(format!("imported model {} is not listed", entry.id))
            })
    }

    /// Every model in the library with its fit verdict for this machine, the active one marked.
    pub async fn list_models(&self) -> Result<Vec<ModelSummary>> {
        let library = Arc::clone(&self.library);
        let machine = cria_models::host::machine(Vec::new(), false);
        let rows = run_blocking(move || library.listing(&machine)).await?;
        let active = self.active_model_id().await?;
        Ok(rows
            .into_iter()
            .map(|row| ModelSummary::from_row(row, active.as_deref()))
            .collect())
    }

    /// Forgets a model (a referenced file stays where it is).
    pub async fn remove_model(&self, id: String) -> Result<()> {
        if self.active_model_id().await?.as_deref() == Some(id.as_str()) {
            let store = Arc::clone(&self.store);
            crate::blocking(move || store.remove_setting(ACTIVE_MODEL_SETTING).map(|_| ())).await?;
        }
        let library = Arc::clone(&self.library);
        run_blocking(move || library.remove(&id)).await
    }

    pub(crate) async fn active_model_id(&self) -> Result<Option<String>> {
        let store = Arc::clone(&self.store);
        crate::blocking(move || store.get_setting(ACTIVE_MODEL_SETTING)).await
    }
}

async fn run_blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> cria_models::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join_error| CoreError::Internal(join_error.to_string()))?
        .map_err(CoreError::from)
}
