//! Which model writes a reply. Two profiles map the Llama 4 tiers to library models: *fast*
//! (text) and *vision* (a model with its mmproj projector). A message that shows the model an
//! image (a picture, a scanned page) goes to the vision profile; plain text goes to the fast
//! profile when one is set, else to the model in use. A conversation pinned to a profile or a
//! model always uses it. The choice and the reason are recorded on the reply.

use serde::{Deserialize, Serialize};

/// Settings keys holding the library model id of each profile.
pub const FAST_PROFILE_SETTING: &str = "profile.fast";
pub const VISION_PROFILE_SETTING: &str = "profile.vision";

/// A conversation's pin, stored in its `model_profile` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum ModelPin {
    Fast,
    Vision,
    Model(String),
}

impl ModelPin {
    pub fn to_setting(&self) -> String {
        match self {
            ModelPin::Fast => "fast".into(),
            ModelPin::Vision => "vision".into(),
            ModelPin::Model(id) => format!("model:{id}"),
        }
    }

    pub fn from_setting(value: &str) -> Option<Self> {
        match value {
            "fast" => Some(ModelPin::Fast),
            "vision" => Some(ModelPin::Vision),
            other => other
                .strip_prefix("model:")
                .filter(|id| !id.is_empty())
                .map(|id| ModelPin::Model(id.to_string())),
        }
    }
}

/// What routing knows about the machine's models.
#[derive(Debug, Clone, Default)]
pub struct RoutingInputs {
    pub fast_profile: Option<String>,
    pub vision_profile: Option<String>,
    /// The model in use (loaded now, or chosen last).
    pub active_model: Option<String>,
    /// Library models that can see images (have a projector).
    pub vision_models: Vec<String>,
    pub pin: Option<ModelPin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub model_id: String,
    /// `fast`, `vision`, `pinned` or `default`.
    pub route: &'static str,
    pub reason: String,
    /// The chosen model cannot see the images the message carries: they are left out.
    pub drops_images: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("No model is loaded. Import a Llama 4 GGUF or choose one in Models first.")]
    NoModel,
    #[error(
        "This conversation is pinned to {0:?}, which is not in the model library any more. Choose another model for it."
    )]
    PinnedModelMissing(String),
}

/// Chooses the model for a message; `needs_vision` when the prompt will show images.
pub fn route(
    inputs: &RoutingInputs,
    needs_vision: bool,
    known: &[String],
) -> Result<Route, RouteError> {
    let sees_images = |id: &str| inputs.vision_models.iter().any(|model| model == id);
    let exists = |id: &str| known.iter().any(|model| model == id);
    let finish = |model_id: String, route: &'static str, reason: String| {
        let drops_images = needs_vision && !sees_images(&model_id);
        Ok(Route {
            reason: if drops_images {
                format!("{reason}; it cannot see images, so they were left out")
            } else {
                reason
            },
            model_id,
            route,
            drops_images,
        })
    };
    let profile = |pin: &ModelPin| match pin {
        ModelPin::Fast => inputs.fast_profile.clone(),
        ModelPin::Vision => inputs.vision_profile.clone(),
        ModelPin::Model(id) => Some(id.clone()),
    };
    if let Some(pin) = &inputs.pin {
        let id = profile(pin)
            .or_else(|| inputs.active_model.clone())
            .ok_or(RouteError::NoModel)?;
        if !exists(&id) {
            return Err(RouteError::PinnedModelMissing(id));
        }
        return finish(
            id,
            "pinned",
            "this conversation is pinned to this model".into(),
        );
    }
    if needs_vision {
        if let Some(id) = inputs.vision_profile.clone().filter(|id| exists(id)) {
            return finish(id, "vision", "the message shows the model an image".into());
        }
        if let Some(id) = inputs.active_model.clone().filter(|id| sees_images(id)) {
            return finish(id, "vision", "the message shows the model an image".into());
        }
        if let Some(id) = inputs.vision_models.iter().find(|id| exists(id)).cloned() {
            return finish(
                id,
                "vision",
                "the message shows the model an image, and this model can see".into(),
            );
        }
    } else if let Some(id) = inputs.fast_profile.clone().filter(|id| exists(id)) {
        return finish(id, "fast", "plain text goes to the fast model".into());
    }
    let id = inputs
        .active_model
        .clone()
        .filter(|id| exists(id))
        .ok_or(RouteError::NoModel)?;
    finish(id, "default", "the model in use".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> RoutingInputs {
        RoutingInputs {
            fast_profile: Some("scout-text".into()),
            vision_profile: Some("scout-vision".into()),
            active_model: Some("scout-text".into()),
            vision_models: vec!["scout-vision".into()],
            pin: None,
        }
    }

    fn known() -> Vec<String> {
        vec!["scout-text".into(), "scout-vision".into()]
    }

    #[test]
    fn images_go_to_the_vision_profile_and_text_to_the_fast_one() {
        let vision = route(&inputs(), true, &known()).unwrap();
        assert_eq!(
            (vision.model_id.as_str(), vision.route),
            ("scout-vision", "vision")
        );
        assert!(!vision.drops_images);
        let text = route(&inputs(), false, &known()).unwrap();
        assert_eq!((text.model_id.as_str(), text.route), ("scout-text", "fast"));
    }

    #[test]
    fn without_profiles_the_model_in_use_answers_and_says_when_it_cannot_see() {
        let only_text = RoutingInputs {
            active_model: Some("text".into()),
            ..RoutingInputs::default()
        };
        let chosen = route(&only_text, true, &["text".into()]).unwrap();
        assert_eq!(chosen.route, "default");
        assert!(chosen.drops_images);
        assert!(chosen.reason.contains("cannot see images"));
        // A library model with a projector is preferred for images even when not in use.
        let with_vision_model = RoutingInputs {
            vision_models: vec!["seeing".into()],
            ..only_text
        };
        let chosen = route(&with_vision_model, true, &["text".into(), "seeing".into()]).unwrap();
        assert_eq!(chosen.model_id, "seeing");
    }

    #[test]
    fn a_pin_wins_and_a_missing_pinned_model_is_an_error() {
        let pinned = RoutingInputs {
            pin: Some(ModelPin::Fast),
            ..inputs()
        };
        let chosen = route(&pinned, true, &known()).unwrap();
        assert_eq!(
            (chosen.model_id.as_str(), chosen.route),
            ("scout-text", "pinned")
        );
        assert!(chosen.drops_images);
        let gone = RoutingInputs {
            pin: Some(ModelPin::Model("deleted".into())),
            ..inputs()
        };
        assert_eq!(
            route(&gone, false, &known()),
            Err(RouteError::PinnedModelMissing("deleted".into()))
        );
        assert_eq!(
            route(&RoutingInputs::default(), false, &[]),
            Err(RouteError::NoModel)
        );
    }

    #[test]
    fn pins_round_trip_through_their_setting_text() {
        for pin in [
            ModelPin::Fast,
            ModelPin::Vision,
            ModelPin::Model("a:b".into()),
        ] {
            assert_eq!(ModelPin::from_setting(&pin.to_setting()), Some(pin));
        }
        assert_eq!(ModelPin::from_setting("model:"), None);
        assert_eq!(ModelPin::from_setting("nonsense"), None);
    }
}
