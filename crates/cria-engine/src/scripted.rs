//! A test double that streams a scripted reply. Selected only by a test setting
//! (`CRIA_TEST_ENGINE=scripted`), never by default: a user must never see canned text.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    BoxFuture, CancelToken, ChatRole, Engine, FinishReason, GenerateEvent, GenerateOutcome,
    GenerateRequest, Result,
};

/// Replies with "Echo: <last user message>" (or a fixed script), one word at a time.
#[derive(Debug, Clone)]
pub struct ScriptedEngine {
    script: Option<String>,
    delay: Duration,
}

impl ScriptedEngine {
    /// Echoes the last user message, streaming a word every `delay`.
    pub fn echo(delay: Duration) -> Self {
        ScriptedEngine {
            script: None,
            delay,
        }
    }

    /// Streams `script` regardless of the request.
    pub fn fixed(script: impl Into<String>, delay: Duration) -> Self {
        ScriptedEngine {
            script: Some(script.into()),
            delay,
        }
    }

    fn reply_for(&self, request: &GenerateRequest) -> String {
        if let Some(script) = &self.script {
            return script.clone();
        }
        let last_user = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == ChatRole::User)
            .map(|message| message.content.as_str())
            .unwrap_or_default();
        format!("Echo: {last_user}")
    }
}

/// Splits text into pieces that keep their trailing whitespace, like tokens do.
fn pieces(text: &str) -> Vec<&str> {
    text.split_inclusive(char::is_whitespace).collect()
}

impl Engine for ScriptedEngine {
    fn generate(
        &self,
        request: GenerateRequest,
        events: mpsc::UnboundedSender<GenerateEvent>,
        cancel: CancelToken,
    ) -> BoxFuture<'_, Result<GenerateOutcome>> {
        let reply = self.reply_for(&request);
        let delay = self.delay;
        Box::pin(async move {
            let mut generated_tokens = 0;
            for piece in pieces(&reply) {
                if cancel.is_cancelled() {
                    return Ok(GenerateOutcome::simple(
                        FinishReason::Cancelled,
                        generated_tokens,
                    ));
                }
                if generated_tokens >= request.max_tokens {
                    return Ok(GenerateOutcome::simple(
                        FinishReason::Length,
                        generated_tokens,
                    ));
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                if events
                    .send(GenerateEvent::Token(piece.to_string()))
                    .is_err()
                {
                    break;
                }
                generated_tokens += 1;
            }
            Ok(GenerateOutcome::simple(
                FinishReason::Stop,
                generated_tokens,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatMessage;

    fn request(text: &str, max_tokens: u32) -> GenerateRequest {
        GenerateRequest::new(vec![ChatMessage::text(ChatRole::User, text)], max_tokens)
    }

    async fn collect(
        engine: &ScriptedEngine,
        request: GenerateRequest,
    ) -> (String, GenerateOutcome) {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let outcome = engine
            .generate(request, sender, CancelToken::default())
            .await
            .unwrap();
        let mut text = String::new();
        while let Ok(event) = receiver.try_recv() {
            if let GenerateEvent::Token(piece) = event {
                text.push_str(&piece);
            }
        }
        (text, outcome)
    }

    #[tokio::test]
    async fn echoes_the_last_user_message_piece_by_piece() {
        let engine = ScriptedEngine::echo(Duration::ZERO);
        let (text, outcome) = collect(&engine, request("two words", 100)).await;
        assert_eq!(text, "Echo: two words");
        assert_eq!(outcome.generated_tokens, 3);
        assert_eq!(outcome.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn stops_at_max_tokens() {
        let engine = ScriptedEngine::echo(Duration::ZERO);
        let (text, outcome) = collect(&engine, request("a b c d", 2)).await;
        assert_eq!(text, "Echo: a ");
        assert_eq!(outcome.finish_reason, FinishReason::Length);
    }

    #[tokio::test]
    async fn a_cancelled_request_stops_streaming() {
        let engine = ScriptedEngine::echo(Duration::ZERO);
        let cancel = CancelToken::default();
        cancel.cancel();
        let (sender, _receiver) = mpsc::unbounded_channel();
        let outcome = engine
            .generate(request("x y", 10), sender, cancel)
            .await
            .unwrap();
        assert_eq!(outcome.finish_reason, FinishReason::Cancelled);
        assert_eq!(outcome.generated_tokens, 0);
    }
}
