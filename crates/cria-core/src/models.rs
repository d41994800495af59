//! The model library as the window and the CLI see it: import a local GGUF, list models with a
//! fit verdict for this machine, remove one. Loading a model into the engine lives here too, so
//! both clients remember the same active model (the store's `active_model` setting).

use std::path::PathBuf;
use std::sync::Arc;

use cria_engine::LoadOptions;
use cria_models::catalog::{Catalog, SplitName};
use cria_models::download::{CancelToken as DownloadCancel, DownloadEvent, Downloader};
use cria_models::library::{ImportMode, Library, LibraryEntry, ListingRow};
use cria_models::net::NetworkPolicy;
use cria_models::planner::{ContextRequest, GpuDevice, Machine};
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
    /// Why the context has this size (the user's choice, or what memory allowed).
    pub context_reason: String,
    pub threads: u32,
    /// Layers llama.cpp placed on a GPU, of `offloadable_layers`.
    pub gpu_layers: u32,
    pub offloadable_layers: u32,
    /// Weights in GPU memory, and the GPUs holding them.
    pub gpu_weight_bytes: u64,
    pub gpu_devices: Vec<String>,
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
            context_reason: info.n_ctx_reason,
            threads: info.threads,
            gpu_layers: info.gpu_layers,
            offloadable_layers: info.offloadable_layers,
            gpu_weight_bytes: info.gpu_weight_bytes,
            gpu_devices: info.gpu_devices,
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
    /// none, is loaded) and remembers it. Returns its context size in tokens. `on_load` is
    /// called just before a load starts (it can take minutes for a large model).
    pub(crate) async fn ensure_model(&self, id: &str, on_load: impl FnOnce()) -> Result<u32> {
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
        on_load();
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
        self.engine_settings().await?.apply(&mut options);
        Ok(options)
    }

    pub(crate) async fn active_model_id(&self) -> Result<Option<String>> {
        let store = Arc::clone(&self.store);
        crate::blocking(move || store.get_setting(ACTIVE_MODEL_SETTING)).await
    }
}

/// Test-only: serve catalog downloads from a loopback HTTP server instead of the model hub.
/// Only `http://localhost:<port>` (or a `*.localhost` name) is accepted; the path of every
/// catalog URL is kept, and sizes and checksums are still verified.
pub const TEST_CATALOG_BASE_URL_ENV: &str = "CRIA_TEST_CATALOG_BASE_URL";

/// A downloadable catalog entry (one quantization of a model).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    /// The name `cria models pull` and `cria models fit` take.
    pub id: String,
    pub name: String,
    pub quantization: String,
    pub size_bytes: u64,
    pub vision: bool,
    pub note: Option<String>,
}

/// Where a fit verdict's figures came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FitSource {
    /// A catalog entry: sizes as published, so the plan is an estimate.
    Catalog { id: String },
    /// A model of the library.
    Library { id: String },
    /// A GGUF file read from disk.
    File { path: PathBuf },
}

/// The planner's verdict for one model on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    pub name: String,
    pub source: FitSource,
    /// The verdict in words ("fits on GPU", "hybrid GPU + CPU", "CPU only", "does not fit").
    pub verdict_label: String,
    pub plan: cria_models::planner::FitPlan,
}

impl Cria {
    /// Makes a library model the one the next message loads (what the window's model picker
    /// remembers), without loading it now.
    pub async fn set_active_model(&self, id: String) -> Result<()> {
        let library = Arc::clone(&self.library);
        let wanted = id.clone();
        let known = crate::blocking(move || {
            library
                .models()
                .map(|models| models.iter().any(|entry| entry.id == wanted))
        })
        .await?;
        if !known {
            return Err(cria_models::ModelsError::UnknownModel(id).into());
        }
        let store = Arc::clone(&self.store);
        crate::blocking(move || store.set_setting(ACTIVE_MODEL_SETTING, &id)).await
    }

    /// The catalog's downloadable entries.
    pub fn catalog_entries(&self) -> Result<Vec<CatalogEntry>> {
        let catalog = Catalog::bundled()?;
        Ok(catalog
            .variants
            .iter()
            .map(|variant| CatalogEntry {
                id: variant.id.clone(),
                name: catalog
                    .model(&variant.model)
                    .map_or_else(|| variant.model.clone(), |model| model.name.clone()),
                quantization: variant.quantization.clone(),
                size_bytes: variant.size_estimate(),
                vision: variant.mmproj.is_some(),
                note: variant.note.clone(),
            })
            .collect())
    }

    /// The fit verdict on this machine for a catalog entry, a library model (by id) or a GGUF
    /// file (by path), tried in that order.
    pub async fn fit(&self, name: &str) -> Result<FitReport> {
        let catalog = Catalog::bundled()?;
        let (facts, source) = if catalog.variant(name).is_some() {
            let facts = catalog.facts(name, true)?;
            (facts, FitSource::Catalog { id: name.into() })
        } else if let Some(entry) = self.library_entry(name).await? {
            let facts = entry.facts.ok_or_else(|| {
                CoreError::InvalidInput(format!(
                    "The layout of {name} could not be read from its file, so no fit estimate \
                     is available."
                ))
            })?;
            (facts, FitSource::Library { id: entry.id })
        } else if std::path::Path::new(name).exists() {
            let path = PathBuf::from(name);
            let facts = crate::blocking({
                let path = path.clone();
                move || facts_of_file(&path)
            })
            .await?;
            (facts, FitSource::File { path })
        } else {
            let known: Vec<&str> = catalog.variants.iter().map(|v| v.id.as_str()).collect();
            return Err(CoreError::InvalidInput(format!(
                "{name:?} is not a catalog entry, a library model or a file. Catalog entries: {}",
                known.join(", ")
            )));
        };
        let machine = self.this_machine().await;
        let plan = cria_models::planner::plan(&facts, &machine, ContextRequest::Largest);
        Ok(FitReport {
            name: facts.name.clone(),
            source,
            verdict_label: plan.verdict.label().to_string(),
            plan,
        })
    }

    /// Downloads a catalog entry into the library (resuming a partial download, verifying
    /// sizes and sha256) and adds it. Cancelling keeps the partial files for the next try.
    pub async fn pull_model(
        &self,
        variant_id: &str,
        with_vision: bool,
        cancel: &DownloadCancel,
        on_event: &mut (dyn FnMut(DownloadEvent) + Send),
    ) -> Result<ModelSummary> {
        let catalog = Catalog::bundled()?;
        if catalog.variant(variant_id).is_none() {
            let known: Vec<&str> = catalog.variants.iter().map(|v| v.id.as_str()).collect();
            return Err(CoreError::InvalidInput(format!(
                "{variant_id:?} is not in the catalog. Catalog entries: {}",
                known.join(", ")
            )));
        }
        let mut job = catalog.download_job(variant_id, with_vision)?;
        let policy = match test_catalog_base_url()? {
            Some(base) => {
                for file in &mut job.files {
                    file.url = rebase_url(&file.url, &base);
                }
                NetworkPolicy::loopback_for_tests()
            }
            None => NetworkPolicy::production(),
        };
        let library = Arc::clone(&self.library);
        let dir = {
            let variant = variant_id.to_string();
            crate::blocking(move || library.download_dir(&variant)).await?
        };
        let downloader = Downloader::new(policy)?;
        let files = downloader.download(&dir, &job, cancel, on_event).await?;
        let library = Arc::clone(&self.library);
        let variant = variant_id.to_string();
        let entry =
            crate::blocking(move || library.add_downloaded(&catalog, &variant, &files)).await?;
        self.list_models()
            .await?
            .into_iter()
            .find(|model| model.id == entry.id)
            .ok_or_else(|| {
                CoreError::Internal(format!("downloaded model {} is not listed", entry.id))
            })
    }

    async fn library_entry(&self, id: &str) -> Result<Option<LibraryEntry>> {
        let library = Arc::clone(&self.library);
        let id = id.to_string();
        crate::blocking(move || {
            library
                .models()
                .map(|models| models.into_iter().find(|entry| entry.id == id))
        })
        .await
    }
}

/// Planner facts read from a GGUF file (all its split parts when it is part 1 of several).
fn facts_of_file(path: &std::path::Path) -> Result<cria_models::planner::ModelFacts> {
    let not_gguf = |reason: String| cria_models::ModelsError::NotGguf {
        path: path.to_path_buf(),
        reason,
    };
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let parts = match SplitName::parse(file_name) {
        Some(split) => {
            let folder = path.parent().unwrap_or(std::path::Path::new("."));
            (1..=split.count)
                .map(|index| folder.join(split.part_name(index)))
                .collect()
        }
        None => vec![path.to_path_buf()],
    };
    let mut infos = Vec::with_capacity(parts.len());
    for part in &parts {
        infos.push(cria_gguf::inspect(part).map_err(|error| not_gguf(error.to_string()))?);
    }
    if infos.first().is_some_and(cria_gguf::ModelInfo::is_mmproj) {
        return Err(
            not_gguf("this is a vision projector (mmproj), not a model".to_string()).into(),
        );
    }
    let name = infos
        .first()
        .and_then(|info| info.name.clone())
        .unwrap_or_else(|| file_name.to_string());
    cria_models::library::facts_from_info(&name, &infos, 0).ok_or_else(|| {
        not_gguf("its metadata lacks the layer, width or head counts the planner needs".into())
            .into()
    })
}

/// The loopback base URL a test set, checked; `None` in normal use.
fn test_catalog_base_url() -> Result<Option<String>> {
    match std::env::var(TEST_CATALOG_BASE_URL_ENV) {
        Ok(base) if !base.is_empty() => {
            let base = checked_test_base_url(&base)?;
            tracing::warn!(%base, "downloading catalog files from a loopback test server");
            Ok(Some(base))
        }
        _ => Ok(None),
    }
}

/// `base` without a trailing slash when it is `http://localhost[:port]` (or a `*.localhost`
/// name); an error otherwise.
fn checked_test_base_url(base: &str) -> Result<String> {
    let base = base.trim_end_matches('/').to_string();
    let authority = base.strip_prefix("http://").unwrap_or_default();
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    let loopback_host = host == "localhost" || host.ends_with(".localhost");
    let port_ok = port.is_empty() || port.parse::<u16>().is_ok();
    if !loopback_host || !port_ok {
        return Err(CoreError::InvalidInput(format!(
            "{TEST_CATALOG_BASE_URL_ENV} must be http://localhost:<port> (it is for tests only)"
        )));
    }
    Ok(base)
}

/// `https://host/path?query` with its scheme and host replaced by `base`.
fn rebase_url(url: &str, base: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |slash| &after_scheme[slash..]);
    format!("{base}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_may_replace_the_catalog_host() {
        assert_eq!(
            checked_test_base_url("http://localhost:8123/").unwrap(),
            "http://localhost:8123"
        );
        assert!(checked_test_base_url("http://cdn.localhost:1").is_ok());
        for refused in [
            "https://localhost:1",
            "http://example.org:80",
            "http://127.0.0.1:80",
            "http://localhost.example.org",
            "http://localhost:1/path",
            "http://localhost:99999",
            "file:///etc",
        ] {
            assert!(checked_test_base_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn rebasing_keeps_the_path_and_query() {
        assert_eq!(
            rebase_url(
                "https://huggingface.co/org/repo/resolve/main/m.gguf?download=1",
                "http://localhost:9"
            ),
            "http://localhost:9/org/repo/resolve/main/m.gguf?download=1"
        );
    }

    #[tokio::test]
    async fn fit_names_a_catalog_entry_and_refuses_unknown_names() {
        let dir = tempfile::tempdir().unwrap();
        let cria = Cria::open_with_engine(
            crate::AppPaths::in_dir(dir.path().join("data")),
            Arc::new(cria_engine::NoModelEngine),
        )
        .unwrap();
        let entry = &cria.catalog_entries().unwrap()[0];
        let report = cria.fit(&entry.id).await.unwrap();
        assert_eq!(
            report.source,
            FitSource::Catalog {
                id: entry.id.clone()
            }
        );
        assert_eq!(report.verdict_label, report.plan.verdict.label());
        let error = cria.fit("no-such-model").await.unwrap_err();
        assert!(error.to_string().contains(&entry.id), "{error}");
        assert!(matches!(
            cria.set_active_model("no-such-model".into()).await,
            Err(CoreError::Models(cria_models::ModelsError::UnknownModel(_)))
        ));
    }
}
