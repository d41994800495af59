//! How replies are written: the default system prompt, sampling, automatic titles, and the
//! fast / vision model profiles. Stored as settings; validated here so a bad value never
//! reaches the engine.

use std::sync::Arc;

use cria_engine::Sampling;
use serde::{Deserialize, Serialize};

use crate::chat::{
    AUTO_TITLE_SETTING, MAX_REPLY_TOKENS_SETTING, MIN_P_SETTING, SYSTEM_PROMPT_SETTING,
    TEMPERATURE_SETTING, TOP_P_SETTING,
};
use crate::routing::{FAST_PROFILE_SETTING, VISION_PROFILE_SETTING};
use crate::{CoreError, Cria, Result, blocking};

/// Longest system prompt accepted (characters).
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSettings {
    /// Used by conversations without a system prompt of their own.
    pub system_prompt: Option<String>,
    /// Ask the model for a short title after a conversation's first exchange.
    pub auto_title: bool,
    /// 0 is greedy (always the likeliest token).
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    /// Longest reply in tokens; `None`: a quarter of the context (256 to 2,048).
    pub max_reply_tokens: Option<u32>,
    /// Library model id for plain-text messages.
    pub fast_profile: Option<String>,
    /// Library model id (with a projector) for messages with images or scanned pages.
    pub vision_profile: Option<String>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        let sampling = Sampling::LLAMA4_DEFAULT;
        ChatSettings {
            system_prompt: None,
            auto_title: true,
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            min_p: sampling.min_p,
            max_reply_tokens: None,
            fast_profile: None,
            vision_profile: None,
        }
    }
}

impl ChatSettings {
    fn validate(&self) -> Result<()> {
        let in_range = |name: &str, value: f32, max: f32| {
            if value.is_finite() && (0.0..=max).contains(&value) {
                Ok(())
            } else {
                Err(CoreError::InvalidInput(format!(
                    "{name} must be between 0 and {max}, not {value}"
                )))
            }
        };
        in_range("temperature", self.temperature, 2.0)?;
        in_range("top-p", self.top_p, 1.0)?;
        in_range("min-p", self.min_p, 1.0)?;
        if self.max_reply_tokens == Some(0) {
            return Err(CoreError::InvalidInput(
                "the longest reply must be at least one token".into(),
            ));
        }
        if self
            .system_prompt
            .as_ref()
            .is_some_and(|prompt| prompt.chars().count() > MAX_SYSTEM_PROMPT_CHARS)
        {
            return Err(CoreError::InvalidInput(format!(
                "the system prompt is longer than {MAX_SYSTEM_PROMPT_CHARS} characters"
            )));
        }
        Ok(())
    }
}

impl Cria {
    pub async fn chat_settings(&self) -> Result<ChatSettings> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let defaults = ChatSettings::default();
            let number = |key: &str, default: f32| -> cria_store::Result<f32> {
                Ok(store
                    .get_setting(key)?
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(default))
            };
            Ok::<_, CoreError>(ChatSettings {
                system_prompt: store
                    .get_setting(SYSTEM_PROMPT_SETTING)?
                    .filter(|prompt| !prompt.trim().is_empty()),
                auto_title: store.get_setting(AUTO_TITLE_SETTING)?.as_deref() != Some("off"),
                temperature: number(TEMPERATURE_SETTING, defaults.temperature)?,
                top_p: number(TOP_P_SETTING, defaults.top_p)?,
                min_p: number(MIN_P_SETTING, defaults.min_p)?,
                max_reply_tokens: store
                    .get_setting(MAX_REPLY_TOKENS_SETTING)?
                    .and_then(|value| value.parse().ok())
                    .filter(|&tokens: &u32| tokens > 0),
                fast_profile: store.get_setting(FAST_PROFILE_SETTING)?,
                vision_profile: store.get_setting(VISION_PROFILE_SETTING)?,
            })
        })
        .await
    }

    /// Saves all chat settings at once (after checking every value).
    pub async fn set_chat_settings(&self, settings: ChatSettings) -> Result<()> {
        settings.validate()?;
        let known = self.list_models().await?;
        for profile in [&settings.fast_profile, &settings.vision_profile]
            .into_iter()
            .flatten()
        {
            if !known.iter().any(|model| &model.id == profile) {
                return Err(CoreError::InvalidInput(format!(
                    "{profile:?} is not in the model library"
                )));
            }
        }
        let store = Arc::clone(&self.store);
        blocking(move || {
            let set_or_remove = |key: &str, value: Option<&str>| -> cria_store::Result<()> {
                match value {
                    Some(value) => store.set_setting(key, value),
                    None => store.remove_setting(key).map(|_| ()),
                }
            };
            set_or_remove(
                SYSTEM_PROMPT_SETTING,
                settings
                    .system_prompt
                    .as_deref()
                    .filter(|prompt| !prompt.trim().is_empty()),
            )?;
            store.set_setting(
                AUTO_TITLE_SETTING,
                if settings.auto_title { "on" } else { "off" },
            )?;
            store.set_setting(TEMPERATURE_SETTING, &settings.temperature.to_string())?;
            store.set_setting(TOP_P_SETTING, &settings.top_p.to_string())?;
            store.set_setting(MIN_P_SETTING, &settings.min_p.to_string())?;
            set_or_remove(
                MAX_REPLY_TOKENS_SETTING,
                settings
                    .max_reply_tokens
                    .map(|tokens| tokens.to_string())
                    .as_deref(),
            )?;
            set_or_remove(FAST_PROFILE_SETTING, settings.fast_profile.as_deref())?;
            set_or_remove(VISION_PROFILE_SETTING, settings.vision_profile.as_deref())?;
            Ok::<_, CoreError>(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppPaths;

    #[tokio::test]
    async fn settings_round_trip_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cria = Cria::open_with_engine(
            AppPaths::in_dir(dir.path().join("data")),
            Arc::new(cria_engine::NoModelEngine),
        )
        .unwrap();
        assert_eq!(cria.chat_settings().await.unwrap(), ChatSettings::default());
        let chosen = ChatSettings {
            system_prompt: Some("Answer briefly.".into()),
            auto_title: false,
            temperature: 0.0,
            max_reply_tokens: Some(64),
            ..ChatSettings::default()
        };
        cria.set_chat_settings(chosen.clone()).await.unwrap();
        assert_eq!(cria.chat_settings().await.unwrap(), chosen);
        for bad in [
            ChatSettings {
                temperature: f32::NAN,
                ..ChatSettings::default()
            },
            ChatSettings {
                top_p: 1.5,
                ..ChatSettings::default()
            },
            ChatSettings {
                fast_profile: Some("not-a-model".into()),
                ..ChatSettings::default()
            },
        ] {
            assert!(matches!(
                cria.set_chat_settings(bad).await,
                Err(CoreError::InvalidInput(_))
            ));
        }
        assert_eq!(cria.chat_settings().await.unwrap(), chosen, "unchanged");
    }
}
