//! How models are loaded: context size, CPU threads and GPU offload. Each is automatic unless
//! the user chose a value (the engine then explains its own choice in `LoadedModel`). Stored as
//! settings, validated here, applied to every load; changing them reloads the loaded model so
//! the user sees the effect at once.

use std::sync::Arc;

use cria_engine::LoadOptions;
use serde::{Deserialize, Serialize};

use crate::{CoreError, Cria, Result, blocking};

const CONTEXT_SIZE_SETTING: &str = "engine.context_size";
const THREADS_SETTING: &str = "engine.threads";
const GPU_LAYERS_SETTING: &str = "engine.gpu_layers";

/// Context sizes a user may choose (tokens). Llama 4 advertises millions, but the KV cache of
/// even 1M tokens needs hundreds of GiB; the engine checks the choice against the model.
pub const CONTEXT_SIZE_RANGE: std::ops::RangeInclusive<u32> = 512..=1_048_576;
/// More threads than this never helps on a desktop (and a typo should not spawn thousands).
pub const MAX_THREADS: u32 = 256;
/// llama.cpp treats any count above the model's layers as "all"; keep the number sane.
pub const MAX_GPU_LAYERS: u32 = 1_000;

/// `None` everywhere means automatic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSettings {
    /// Tokens of context; automatic: chosen from the KV cache's cost and free memory.
    pub context_size: Option<u32>,
    /// CPU threads; automatic: the physical cores, so a busy desktop stays responsive.
    pub threads: Option<u32>,
    /// Layers offloaded to the GPU; automatic: all when a GPU backend finds a device. 0 keeps
    /// the model on the CPU.
    pub gpu_layers: Option<u32>,
}

/// Each field's check, shared by saving (an error says what is allowed) and reading (a value
/// edited by hand into something invalid counts as automatic).
fn checked_context_size(size: u32) -> Result<u32> {
    if CONTEXT_SIZE_RANGE.contains(&size) {
        return Ok(size);
    }
    Err(CoreError::InvalidInput(format!(
        "the context size must be between {} and {} tokens, not {size}",
        CONTEXT_SIZE_RANGE.start(),
        CONTEXT_SIZE_RANGE.end()
    )))
}

fn checked_threads(threads: u32) -> Result<u32> {
    if (1..=MAX_THREADS).contains(&threads) {
        return Ok(threads);
    }
    Err(CoreError::InvalidInput(format!(
        "threads must be between 1 and {MAX_THREADS}, not {threads}"
    )))
}

fn checked_gpu_layers(layers: u32) -> Result<u32> {
    if layers <= MAX_GPU_LAYERS {
        return Ok(layers);
    }
    Err(CoreError::InvalidInput(format!(
        "GPU layers must be at most {MAX_GPU_LAYERS} (any number above the model's layers \
         offloads all of them), not {layers}"
    )))
}

impl EngineSettings {
    fn validate(&self) -> Result<()> {
        self.context_size.map(checked_context_size).transpose()?;
        self.threads.map(checked_threads).transpose()?;
        self.gpu_layers.map(checked_gpu_layers).transpose()?;
        Ok(())
    }

    /// Puts the user's choices into a load request.
    pub(crate) fn apply(&self, options: &mut LoadOptions) {
        options.n_ctx = self.context_size;
        options.threads = self.threads;
        options.gpu_layers = self.gpu_layers;
    }
}

impl Cria {
    pub async fn engine_settings(&self) -> Result<EngineSettings> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let number = |key: &str, check: fn(u32) -> Result<u32>| -> Result<Option<u32>> {
                Ok(store
                    .get_setting(key)?
                    .and_then(|value| value.parse().ok())
                    .and_then(|value| check(value).ok()))
            };
            Ok::<_, CoreError>(EngineSettings {
                context_size: number(CONTEXT_SIZE_SETTING, checked_context_size)?,
                threads: number(THREADS_SETTING, checked_threads)?,
                gpu_layers: number(GPU_LAYERS_SETTING, checked_gpu_layers)?,
            })
        })
        .await
    }

    /// Saves the engine settings and, when a model is loaded, reloads it with them. A load
    /// that fails (the context does not fit in memory, say) leaves the settings saved and
    /// returns the engine's error, so the user can pick another value.
    pub async fn set_engine_settings(&self, settings: EngineSettings) -> Result<()> {
        settings.validate()?;
        let store = Arc::clone(&self.store);
        blocking(move || {
            let set_or_remove = |key: &str, value: Option<u32>| -> cria_store::Result<()> {
                match value {
                    Some(value) => store.set_setting(key, &value.to_string()),
                    None => store.remove_setting(key).map(|_| ()),
                }
            };
            set_or_remove(CONTEXT_SIZE_SETTING, settings.context_size)?;
            set_or_remove(THREADS_SETTING, settings.threads)?;
            set_or_remove(GPU_LAYERS_SETTING, settings.gpu_layers)?;
            Ok::<_, CoreError>(())
        })
        .await?;
        if let Some(loaded) = self.loaded_model().await? {
            self.select_model(loaded.id).await?;
        }
        Ok(())
    }

    /// The compute devices llama.cpp sees (name, backend, memory), for the settings screen.
    pub async fn devices(&self) -> Result<Vec<cria_engine::DeviceInfo>> {
        match &self.engine_handle {
            Some(handle) => Ok(handle.devices().await?),
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppPaths;

    #[tokio::test]
    async fn engine_settings_round_trip_apply_to_loads_and_refuse_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let cria = Cria::open_with_engine(
            AppPaths::in_dir(dir.path().join("data")),
            Arc::new(cria_engine::NoModelEngine),
        )
        .unwrap();
        assert_eq!(
            cria.engine_settings().await.unwrap(),
            EngineSettings::default()
        );
        let chosen = EngineSettings {
            context_size: Some(8192),
            threads: Some(3),
            gpu_layers: Some(0),
        };
        cria.set_engine_settings(chosen).await.unwrap();
        assert_eq!(cria.engine_settings().await.unwrap(), chosen);
        let mut options = LoadOptions::new("model.gguf");
        chosen.apply(&mut options);
        assert_eq!(
            (options.n_ctx, options.threads, options.gpu_layers),
            (Some(8192), Some(3), Some(0))
        );

        for bad in [
            EngineSettings {
                context_size: Some(100),
                ..EngineSettings::default()
            },
            EngineSettings {
                threads: Some(0),
                ..EngineSettings::default()
            },
            EngineSettings {
                gpu_layers: Some(5_000),
                ..EngineSettings::default()
            },
        ] {
            let error = cria.set_engine_settings(bad).await.unwrap_err();
            assert!(matches!(error, CoreError::InvalidInput(_)), "{error}");
        }
        assert_eq!(cria.engine_settings().await.unwrap(), chosen, "unchanged");

        // Back to automatic.
        cria.set_engine_settings(EngineSettings::default())
            .await
            .unwrap();
        assert_eq!(
            cria.engine_settings().await.unwrap(),
            EngineSettings::default()
        );
    }
}
