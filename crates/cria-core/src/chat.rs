//! One chat turn end to end: persist the user's message, stream the reply from the engine to
//! the caller and into the store, and finish it with the right status whatever happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cria_engine::{
    CancelToken, ChatMessage, ChatRole, EngineError, FinishReason, GenerateEvent, GenerateRequest,
};
use cria_store::{ConversationId, GenerationStats, MessageId, MessageStatus, Role, Store};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{CoreError, Cria, Result, blocking};

/// Streamed text is committed at least this often, so a crash loses at most this much.
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// ...or after this many pieces, whichever comes first.
const COMMIT_EVERY_PIECES: usize = 16;
/// Until a real context budget exists, replies are capped here.
const DEFAULT_MAX_TOKENS: u32 = 1024;
const TITLE_MAX_CHARS: usize = 60;

/// Identifiers of a turn, known before the first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TurnStarted {
    pub conversation_id: ConversationId,
    pub user_message_id: MessageId,
    pub reply_message_id: MessageId,
}

/// What a caller sees of a turn, in order: `Started`, any number of `Token`s, `Finished`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TurnEvent {
    Started(TurnStarted),
    Token(String),
    Finished {
        status: MessageStatus,
        error: Option<String>,
    },
}

impl Cria {
    /// Sends `text` as the user's next message (starting a conversation when `conversation` is
    /// `None`) and streams the reply. The reply is in the store from its first piece on.
    pub async fn send_message(
        &self,
        conversation: Option<ConversationId>,
        text: String,
        cancel: CancelToken,
        mut on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(CoreError::InvalidInput("The message is empty.".into()));
        }
        let store = Arc::clone(&self.store);
        let (started, history) = blocking(move || start_turn(&store, conversation, &text)).await?;
        self.running_turns()
            .insert(started.reply_message_id, cancel.clone());
        on_event(TurnEvent::Started(started));
        let result = self
            .stream_reply(started, history, cancel, &mut on_event)
            .await;
        self.running_turns().remove(&started.reply_message_id);
        result.map(|()| started)
    }

    fn running_turns(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<MessageId, CancelToken>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn stream_reply(
        &self,
        started: TurnStarted,
        history: Vec<ChatMessage>,
        cancel: CancelToken,
        on_event: &mut (impl FnMut(TurnEvent) + Send),
    ) -> Result<()> {
        // Loading the remembered model on the first message after a start can take a while;
        // the reply already exists (streaming, empty) so the user sees it is on its way.
        let model_id = match self.ensure_model_loaded().await {
            Ok(model_id) => model_id,
            Err(error) => {
                let message = error.to_string();
                self.finish(
                    started.reply_message_id,
                    MessageStatus::Failed,
                    Some(message.clone()),
                    GenerationStats::default(),
                )
                .await?;
                on_event(TurnEvent::Finished {
                    status: MessageStatus::Failed,
                    error: Some(message),
                });
                return Ok(());
            }
        };
        let request = GenerateRequest::new(history, DEFAULT_MAX_TOKENS);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let engine = Arc::clone(&self.engine);
        let generation =
            tokio::spawn(async move { engine.generate(request, sender, cancel).await });

        let mut pending = String::new();
        let mut pending_pieces = 0;
        let mut last_commit = Instant::now();
        while let Some(event) = receiver.recv().await {
            let GenerateEvent::Token(piece) = event else {
                continue;
            };
            on_event(TurnEvent::Token(piece.clone()));
            pending.push_str(&piece);
            pending_pieces += 1;
            if pending_pieces >= COMMIT_EVERY_PIECES || last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit_text(started.reply_message_id, std::mem::take(&mut pending))
                    .await?;
                pending_pieces = 0;
                last_commit = Instant::now();
            }
        }
        self.commit_text(started.reply_message_id, pending).await?;

        let mut stats = GenerationStats {
            model_id,
            ..GenerationStats::default()
        };
        let (status, error) = match generation.await {
            Ok(Ok(outcome)) => {
                stats.prompt_tokens = Some(outcome.prompt_tokens);
                stats.completion_tokens = Some(outcome.generated_tokens);
                stats.ttft_ms = Some(outcome.time_to_first_token_ms.round() as u32);
                stats.tokens_per_second = Some(outcome.generation_tokens_per_second);
                let status = match outcome.finish_reason {
                    FinishReason::Cancelled => MessageStatus::Cancelled,
                    _ => MessageStatus::Complete,
                };
                (status, None)
            }
            // The engine died under the reply: what was streamed is kept, and the next
            // message starts a fresh engine.
            Ok(Err(crash @ EngineError::Crashed { .. })) => {
                (MessageStatus::Interrupted, Some(crash.to_string()))
            }
            Ok(Err(engine_error)) => (MessageStatus::Failed, Some(engine_error.to_string())),
            Err(join_error) => (
                MessageStatus::Failed,
                Some(format!("internal error: {join_error}")),
            ),
        };
        self.finish(started.reply_message_id, status, error.clone(), stats)
            .await?;
        on_event(TurnEvent::Finished { status, error });
        Ok(())
    }

    async fn finish(
        &self,
        reply: MessageId,
        status: MessageStatus,
        error: Option<String>,
        stats: GenerationStats,
    ) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.finish_message(reply, status, error.as_deref(), &stats)).await
    }

    async fn commit_text(&self, reply: MessageId, text: String) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        blocking(move || store.append_text(reply, &text)).await
    }
}

/// Persists the user's message and an empty streaming reply; returns the history to send.
fn start_turn(
    store: &Store,
    conversation: Option<ConversationId>,
    text: &str,
) -> cria_store::Result<(TurnStarted, Vec<ChatMessage>)> {
    let conversation_id = match conversation {
        Some(id) => store.get_conversation(id)?.id,
        None => store.create_conversation(&title_from(text))?.id,
    };
    let parent = store
        .active_path(conversation_id)?
        .last()
        .map(|message| message.id);
    let user = store.append_message(
        conversation_id,
        parent,
        Role::User,
        text,
        MessageStatus::Complete,
    )?;
    let history = store
        .active_path(conversation_id)?
        .into_iter()
        .filter(|message| !message.content.is_empty())
        .map(|message| ChatMessage {
            role: match message.role {
                Role::System => ChatRole::System,
                Role::User => ChatRole::User,
                Role::Assistant => ChatRole::Assistant,
            },
            content: message.content,
            images: Vec::new(),
        })
        .collect();
    let reply = store.append_message(
        conversation_id,
        Some(user.id),
        Role::Assistant,
        "",
        MessageStatus::Streaming,
    )?;
    let started = TurnStarted {
        conversation_id,
        user_message_id: user.id,
        reply_message_id: reply.id,
    };
    Ok((started, history))
}

/// A first title from the opening message: its first line, cut at a word boundary.
fn title_from(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or_default().trim();
    if first_line.chars().count() <= TITLE_MAX_CHARS {
        return first_line.to_string();
    }
    let cut: String = first_line.chars().take(TITLE_MAX_CHARS).collect();
    let at_word = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppPaths;
    use cria_engine::{NoModelEngine, ScriptedEngine};

    fn cria_with(engine: Arc<dyn cria_engine::Engine>) -> (tempfile::TempDir, Cria) {
        let dir = tempfile::tempdir().unwrap();
        let cria =
            Cria::open_with_engine(AppPaths::in_dir(dir.path().join("data")), engine).unwrap();
        (dir, cria)
    }

    #[tokio::test]
    async fn a_turn_streams_the_reply_and_stores_it() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let mut streamed = String::new();
        let mut finished = None;
        let started = cria
            .send_message(
                None,
                "hello there".into(),
                CancelToken::default(),
                |event| match event {
                    TurnEvent::Token(piece) => streamed.push_str(&piece),
                    TurnEvent::Finished { status, .. } => finished = Some(status),
                    TurnEvent::Started(_) => {}
                },
            )
            .await
            .unwrap();
        assert_eq!(streamed, "Echo: hello there");
        assert_eq!(finished, Some(MessageStatus::Complete));
        let messages = cria
            .conversation_messages(started.conversation_id)
            .await
            .unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].content, "Echo: hello there");
        let conversations = cria.list_conversations(10, 0).await.unwrap();
        assert_eq!(conversations[0].title, "hello there");
    }

    #[tokio::test]
    async fn the_second_turn_sees_the_whole_history() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let first = cria
            .send_message(None, "one".into(), CancelToken::default(), |_| {})
            .await
            .unwrap();
        cria.send_message(
            Some(first.conversation_id),
            "two".into(),
            CancelToken::default(),
            |_| {},
        )
        .await
        .unwrap();
        let messages = cria
            .conversation_messages(first.conversation_id)
            .await
            .unwrap();
        let texts: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["one", "Echo: one", "two", "Echo: two"]);
    }

    #[tokio::test]
    async fn without_a_model_the_reply_fails_with_a_clear_message() {
        let (_dir, cria) = cria_with(Arc::new(NoModelEngine));
        let mut error = None;
        let started = cria
            .send_message(None, "hi".into(), CancelToken::default(), |event| {
                if let TurnEvent::Finished { error: e, .. } = event {
                    error = e;
                }
            })
            .await
            .unwrap();
        assert!(error.unwrap().contains("No model is loaded"));
        let messages = cria
            .conversation_messages(started.conversation_id)
            .await
            .unwrap();
        assert_eq!(messages[1].status, MessageStatus::Failed);
        assert_eq!(messages[0].content, "hi", "the user's message is kept");
    }

    #[tokio::test]
    async fn an_empty_message_is_refused_before_anything_is_stored() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let result = cria
            .send_message(None, "   ".into(), CancelToken::default(), |_| {})
            .await;
        assert!(matches!(result, Err(CoreError::InvalidInput(_))));
        assert!(cria.list_conversations(10, 0).await.unwrap().is_empty());
    }

    #[test]
    fn titles_are_cut_at_a_word_boundary() {
        assert_eq!(title_from("short"), "short");
        let long = "word ".repeat(30);
        let title = title_from(&long);
        assert!(title.ends_with("word…"), "{title}");
        assert!(title.chars().count() <= TITLE_MAX_CHARS + 1);
    }
}
