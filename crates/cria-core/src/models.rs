//! The model library as the window and the CLI see it: import a local GGUF, list models with a
//! fit verdict for this machine, remove one. Loading a model into the engine lives here too, so
//! both clients remember the same active model (the store's `active_model` setting).

use std::path::PathBuf;
use std::sync::Arc;

use cria_engine::LoadOptions;
use cria_models::library::{ImportMode, Library, ListingRow};
use cria_models::planner::{GpuDevice, Machine};
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

/// The model the engine holds, and how it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedModel {
    pub id: String,
    pub architecture: String,
    pub context_size: u32,
    pub threads: u32,
    pub gpu_layers: u32,
    /// Why the model runs on the CPU although a GPU was possible or asked for.
    pub cpu_fallback_reason: Option<String>,
    pub vision: bool,
}

impl LoadedModel {
    fn new(id: String, info: cria_engine::ModelInfo) -> Self {
        LoadedModel {
            id,
            architecture: info.architecture,
            context_size: info.n_ctx,
            threads: info.threads,
            gpu_layers: info.gpu_layers,
            cpu_fallback_reason: info.cpu_fallback_reason,
            vision: info.vision,
        }
    }
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
        let entry = crate::blocking(move || library.import(&path, ImportMode::Reference)).await?;
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
        let listed = Arc::clone(&library);
        // Asking llama.cpp for GPUs starts the engine's worker: only worth it when there is a
        // model to judge (a first start lists nothing and starts no process).
        if crate::blocking(move || listed.models()).await?.is_empty() {
            return Ok(Vec::new());
        }
        let machine = self.this_machine().await;
        let rows = crate::blocking(move || library.listing(&machine)).await?;
        let active = self.active_model_id().await?;
        Ok(rows
            .into_iter()
            .map(|row| ModelSummary::from_row(row, active.as_deref()))
            .collect())
    }

    /// RAM from the system and the GPUs llama.cpp sees (asked once: the worker starts for it,
    /// and devices do not change while Cria runs). Without a GPU answer the plan is CPU-only.
    async fn this_machine(&self) -> Machine {
        let gpus = match &self.engine_handle {
            Some(handle) => {
                let devices = self
                    .gpu_devices
                    .get_or_try_init(|| async { handle.devices().await })
                    .await;
                match devices {
                    Ok(devices) => devices.clone(),
                    Err(error) => {
                        tracing::warn!(%error, "could not list GPUs; planning for the CPU only");
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        };
        let unified = gpus
            .iter()
            .any(|device| device.kind == "igpu" || device.backend == "Metal");
        let gpus = gpus
            .into_iter()
            .filter(|device| device.kind == "gpu" || device.kind == "igpu")
            .map(|device| GpuDevice {
                name: device.description,
                vram_total: device.memory_total_bytes,
                vram_free: Some(device.memory_free_bytes),
                bandwidth_gbps: None,
            })
            .collect();
        cria_models::host::machine(gpus, unified)
    }

    /// Forgets a model (a referenced file stays where it is).
    pub async fn remove_model(&self, id: String) -> Result<()> {
        if self.active_model_id().await?.as_deref() == Some(id.as_str()) {
            let store = Arc::clone(&self.store);
            crate::blocking(move || store.remove_setting(ACTIVE_MODEL_SETTING).map(|_| ())).await?;
        }
        let library = Arc::clone(&self.library);
        crate::blocking(move || library.remove(&id)).await
    }

    /// Loads a library model into the engine now and remembers it for later starts.
    pub async fn select_model(&self, id: String) -> Result<LoadedModel> {
        let handle = self.engine_handle.as_ref().ok_or_else(|| {
            CoreError::InvalidInput(
                "this engine cannot load models (a test double is in use)".into(),
            )
        })?;
        let options = self.load_options(&id).await?;
        let info = handle.load(options).await?;
        let store = Arc::clone(&self.store);
        let remembered = id.clone();
        crate::blocking(move || store.set_setting(ACTIVE_MODEL_SETTING, &remembered)).await?;
        Ok(LoadedModel::new(id, info))
    }

    /// The model the engine has loaded, if any.
    pub async fn loaded_model(&self) -> Result<Option<LoadedModel>> {
        let Some(handle) = &self.engine_handle else {
            return Ok(None);
        };
        // Only a chosen model is ever loaded; without one, asking would start the worker for
        // nothing.
        let Some(id) = self.active_model_id().await? else {
            return Ok(None);
        };
        let Some(info) = handle.status().await? else {
            return Ok(None);
        };
        Ok(Some(LoadedModel::new(id, info)))
    }

    /// Before a reply routed to `id`: makes it the loaded model (loading it when another one, or
    /// none, is loaded) and remembers it. Returns its context size in tokens.
    pub(crate) async fn ensure_model(&self, id: &str) -> Result<u32> {
        let handle = self
            .engine_handle
            .as_ref()
            .ok_or_else(|| CoreError::Internal("no engine can load models".into()))?;
        let active = self.active_model_id().await?;
        if active.as_deref() == Some(id)
            && let Some(info) = handle.status().await?
        {
            return Ok(info.n_ctx);
        }
        let options = self.load_options(id).await?;
        let info = handle.load(options).await?;
        let store = Arc::clone(&self.store);
        let remembered = id.to_string();
        crate::blocking(move || store.set_setting(ACTIVE_MODEL_SETTING, &remembered)).await?;
        Ok(info.n_ctx)
    }

    async fn load_options(&self, id: &str) -> Result<LoadOptions> {
        let library = Arc::clone(&self.library);
        let id = id.to_string();
        let (files, mmproj) = crate::blocking(move || {
            let entry = library
                .models()?
                .into_iter()
                .find(|entry| entry.id == id)
                .ok_or_else(|| cria_models::ModelsError::NotGguf {
                    path: PathBuf::from(&id),
                    reason: "it is not in the model library (was it removed?)".into(),
                })?;
            library.paths(&entry)
        })
        .await?;
        let model_path = files
            .into_iter()
            .next()
            .ok_or_else(|| CoreError::Internal("a library model without files".into()))?;
        let mut options = LoadOptions::new(model_path);
        options.mmproj_path = mmproj;
        Ok(options)
    }

    pub(crate) async fn active_model_id(&self) -> Result<Option<String>> {
        let store = Arc::clone(&self.store);
        crate::blocking(move || store.get_setting(ACTIVE_MODEL_SETTING)).await
    }
}
