//! One chat turn end to end: parse and store the attachments, persist the user's message,
//! route to a model, assemble the context within its budget, stream the reply to the caller and
//! into the store, and finish it with the right status, stats, notices and citations whatever
//! happens. Regenerate, edit and continue are turns too: they differ only in which messages
//! they add to the tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cria_engine::{
    CancelToken, ChatMessage, ChatRole, EngineError, FinishReason, GenerateEvent, GenerateRequest,
    Sampling,
};
use cria_store::{
    Attachment, AttachmentKind, Citation, ConversationId, GenerationStats, Message, MessageId,
    MessageStatus, PromptView, Role, Store,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::attach::{self, AttachmentInput, IngestProgress};
use crate::context::{self, Budget, ContextError, DocumentInput, PromptImage, PromptMessage};
use crate::routing::{self, ModelPin, Route, RoutingInputs};
use crate::{CoreError, Cria, Result, blocking, citations};

/// Streamed text is committed at least this often, so a crash loses at most this much.
const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// ...or after this many pieces, whichever comes first.
const COMMIT_EVERY_PIECES: usize = 16;
/// The context a test double pretends to have.
const TEST_DOUBLE_CONTEXT: u32 = 8192;
const TITLE_MAX_CHARS: usize = 60;
/// Settings: the default system prompt, automatic titles, and sampling overrides.
pub const SYSTEM_PROMPT_SETTING: &str = "system_prompt";
pub const AUTO_TITLE_SETTING: &str = "auto_title";
pub const TEMPERATURE_SETTING: &str = "sampling.temperature";
pub const TOP_P_SETTING: &str = "sampling.top_p";
pub const MIN_P_SETTING: &str = "sampling.min_p";
pub const MAX_REPLY_TOKENS_SETTING: &str = "max_reply_tokens";

/// What the user sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnRequest {
    /// `None` starts a new conversation.
    pub conversation: Option<ConversationId>,
    pub text: String,
    pub attachments: Vec<AttachmentInput>,
    /// This turn only: a profile or model instead of the conversation's pin or automatic
    /// routing (the CLI's `--profile` / `--model`).
    pub model: Option<ModelPin>,
}

/// Identifiers of a turn, known before the first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TurnStarted {
    pub conversation_id: ConversationId,
    pub user_message_id: MessageId,
    pub reply_message_id: MessageId,
}

/// A citation as the UI shows it: a span of the reply linking to a page of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CitationView {
    pub span_start: u32,
    pub span_end: u32,
    pub attachment_id: cria_store::AttachmentId,
    pub file_name: String,
    pub page_number: u32,
}

/// How a reply came about, sent just before `Finished`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnSummary {
    pub stats: GenerationStats,
    pub notices: Vec<String>,
    pub citations: Vec<CitationView>,
}

/// What a caller sees of a turn, in order: any number of `Preparing` (attachments being
/// parsed), `Started`, `LoadingModel` when the reply's model must be loaded first, any number
/// of `Token`s, `Summary`, `Finished`, and possibly `Titled`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TurnEvent {
    Preparing(IngestProgress),
    Started(TurnStarted),
    /// The model (by its library id) is being loaded for this reply: seconds for a small
    /// model, minutes for a large one read from a slow disk.
    LoadingModel(String),
    Token(String),
    Summary(TurnSummary),
    Finished {
        status: MessageStatus,
        error: Option<String>,
    },
    /// The conversation got a title from the model after its first exchange.
    Titled(String),
}

/// How the reply message relates to what is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    /// A new (or regenerated) reply to the user message before it.
    Fresh,
    /// More text for a reply that was cut short.
    Continue,
}

/// A message on the path with what the model is shown for it.
struct PathMessage {
    message: Message,
    prompt: PromptMessage,
}

impl Cria {
    /// Sends `text` as the user's next message (starting a conversation when `conversation` is
    /// `None`) and streams the reply. The reply is in the store from its first piece on.
    pub async fn send_message(
        &self,
        conversation: Option<ConversationId>,
        text: String,
        cancel: CancelToken,
        on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let request = TurnRequest {
            conversation,
            text,
            ..TurnRequest::default()
        };
        self.send(request, cancel, on_event).await
    }

    /// Sends a message with attachments. Every attachment is parsed (in a worker process)
    /// before anything is stored: a file that cannot be read fails the send with its name and
    /// the reason, and the conversation is left as it was.
    pub async fn send(
        &self,
        request: TurnRequest,
        cancel: CancelToken,
        mut on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let text = request.text.trim().to_string();
        if text.is_empty() && request.attachments.is_empty() {
            return Err(CoreError::InvalidInput("The message is empty.".into()));
        }
        let parsed = self
            .parse_attachments(request.attachments, &mut on_event)
            .await?;
        let store = Arc::clone(&self.store);
        let conversation = request.conversation;
        let model_override = request.model;
        let started = blocking(move || {
            let conversation_id = match conversation {
                Some(id) => store.get_conversation(id)?.id,
                None => store.create_conversation(&title_from(&text))?.id,
            };
            let parent = store.active_path(conversation_id)?.last().map(|m| m.id);
            let user = store.append_message(
                conversation_id,
                parent,
                Role::User,
                &text,
                MessageStatus::Complete,
            )?;
            attach::store_all(&store, user.id, parsed)?;
            let reply = new_reply(&store, conversation_id, user.id)?;
            Ok::<_, CoreError>(TurnStarted {
                conversation_id,
                user_message_id: user.id,
                reply_message_id: reply,
            })
        })
        .await?;
        self.run_turn(
            started,
            ReplyMode::Fresh,
            model_override,
            None,
            cancel,
            &mut on_event,
        )
        .await
    }

    /// Writes a new reply to the same user message, kept beside the old one ("‹ 2/2 ›").
    pub async fn regenerate(
        &self,
        reply: MessageId,
        cancel: CancelToken,
        mut on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let store = Arc::clone(&self.store);
        let started = blocking(move || {
            let old = store.get_message(reply)?;
            let parent = match (old.role, old.parent_id) {
                (Role::Assistant, Some(parent)) => parent,
                _ => {
                    return Err(CoreError::InvalidInput(
                        "only a reply to a message can be regenerated".into(),
                    ));
                }
            };
            let again = store.regenerate_message(reply)?;
            Ok(TurnStarted {
                conversation_id: old.conversation_id,
                user_message_id: parent,
                reply_message_id: again.id,
            })
        })
        .await?;
        self.run_turn(started, ReplyMode::Fresh, None, None, cancel, &mut on_event)
            .await
    }

    /// Sends an edited copy of a user message as a new branch (the original and its replies
    /// stay, one arrow away) and streams the reply to it.
    pub async fn edit_and_resend(
        &self,
        message: MessageId,
        text: String,
        cancel: CancelToken,
        mut on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let text = text.trim().to_string();
        let store = Arc::clone(&self.store);
        let started = blocking(move || {
            let original = store.get_message(message)?;
            if original.role != Role::User {
                return Err(CoreError::InvalidInput(
                    "only your own messages can be edited".into(),
                ));
            }
            if text.is_empty() && store.attachments(message)?.is_empty() {
                return Err(CoreError::InvalidInput("The message is empty.".into()));
            }
            let edited = store.edit_message(message, &text)?;
            let reply = new_reply(&store, edited.conversation_id, edited.id)?;
            Ok(TurnStarted {
                conversation_id: edited.conversation_id,
                user_message_id: edited.id,
                reply_message_id: reply,
            })
        })
        .await?;
        self.run_turn(started, ReplyMode::Fresh, None, None, cancel, &mut on_event)
            .await
    }

    /// Generates more of a reply that stopped early (cancelled, cut off by length, or
    /// interrupted by an engine crash); the new text is appended to it.
    pub async fn continue_reply(
        &self,
        reply: MessageId,
        cancel: CancelToken,
        mut on_event: impl FnMut(TurnEvent) + Send,
    ) -> Result<TurnStarted> {
        let store = Arc::clone(&self.store);
        let started = blocking(move || {
            let message = store.get_message(reply)?;
            let path = store.active_path(message.conversation_id)?;
            let is_last = path.last().map(|last| last.id) == Some(reply);
            let parent = message
                .parent_id
                .filter(|_| is_last && message.role == Role::Assistant);
            let Some(parent) = parent else {
                return Err(CoreError::InvalidInput(
                    "only the last reply of the visible branch can be continued".into(),
                ));
            };
            if message.content.trim().is_empty() {
                return Err(CoreError::InvalidInput(
                    "this reply has no text to continue; regenerate it instead".into(),
                ));
            }
            store.reopen_reply(reply)?;
            let started = TurnStarted {
                conversation_id: message.conversation_id,
                user_message_id: parent,
                reply_message_id: reply,
            };
            Ok((started, message))
        })
        .await?;
        let (started, before) = started;
        self.run_turn(
            started,
            ReplyMode::Continue,
            None,
            Some(before),
            cancel,
            &mut on_event,
        )
        .await
    }

    /// Shows the branch through `message` (for the "‹ 2/3 ›" arrows).
    pub async fn switch_branch(&self, message: MessageId) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.switch_branch(message)).await
    }

    /// Pins a conversation to a profile or a model (`None`: automatic routing).
    pub async fn pin_conversation(
        &self,
        conversation: ConversationId,
        pin: Option<ModelPin>,
    ) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            store.set_model_profile(conversation, pin.map(|pin| pin.to_setting()).as_deref())
        })
        .await
    }

    async fn parse_attachments(
        &self,
        inputs: Vec<AttachmentInput>,
        on_event: &mut (impl FnMut(TurnEvent) + Send),
    ) -> Result<Vec<attach::Parsed>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.ingest_client()?;
        let temp_dir = self.paths.data_dir().to_path_buf();
        let parsed_files = Arc::clone(&self.parsed_files);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let parsing = tokio::task::spawn_blocking(move || {
            attach::parse_all(
                &client,
                &parsed_files,
                &temp_dir,
                &inputs,
                &mut |progress| {
                    let _ = sender.send(progress);
                },
            )
        });
        while let Some(progress) = receiver.recv().await {
            on_event(TurnEvent::Preparing(progress));
        }
        parsing
            .await
            .map_err(|join_error| CoreError::Internal(join_error.to_string()))?
    }

    fn running_turns(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<MessageId, CancelToken>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Generates the reply of `started`, which is already in the store as `streaming`.
    /// `continued` is the reply as it was before a continue reopened it.
    async fn run_turn(
        &self,
        started: TurnStarted,
        mode: ReplyMode,
        model_override: Option<ModelPin>,
        continued: Option<Message>,
        cancel: CancelToken,
        on_event: &mut (impl FnMut(TurnEvent) + Send),
    ) -> Result<TurnStarted> {
        self.running_turns()
            .insert(started.reply_message_id, cancel.clone());
        on_event(TurnEvent::Started(started));
        let result = self
            .generate_reply(started, mode, model_override, continued, cancel, on_event)
            .await;
        self.running_turns().remove(&started.reply_message_id);
        result.map(|()| started)
    }

    async fn generate_reply(
        &self,
        started: TurnStarted,
        mode: ReplyMode,
        model_override: Option<ModelPin>,
        continued: Option<Message>,
        cancel: CancelToken,
        on_event: &mut (impl FnMut(TurnEvent) + Send),
    ) -> Result<()> {
        let reply_id = started.reply_message_id;
        let prepared = match self
            .prepare_prompt(started, mode, model_override, on_event)
            .await
        {
            Ok(prepared) => prepared,
            Err(error) => {
                // The reply exists (streaming): a new one ends as failed with a message that
                // says what to do; a reply being continued is put back as it was (its text
                // was not touched), and the error goes to the caller.
                let message = error.to_string();
                let (status, stored_error, stats) = match continued {
                    Some(before) => (before.status, before.error, before.stats),
                    None => (
                        MessageStatus::Failed,
                        Some(message.clone()),
                        GenerationStats::default(),
                    ),
                };
                self.finish(reply_id, status, stored_error, stats).await?;
                on_event(TurnEvent::Finished {
                    status,
                    error: Some(message),
                });
                return Ok(());
            }
        };
        let settings = self.chat_settings().await?;
        // The title request repeats this prompt exactly, so it costs only its own tokens.
        let shown_for_title = prepared.first_exchange.then(|| prepared.messages.clone());
        let request = GenerateRequest {
            messages: prepared.messages,
            max_tokens: settings
                .max_reply_tokens
                .map_or(prepared.budget.reply_tokens, |cap| {
                    cap.min(prepared.budget.reply_tokens)
                }),
            sampling: Sampling {
                temperature: settings.temperature,
                top_p: settings.top_p,
                min_p: settings.min_p,
                // A fresh seed per reply: regenerating must give a different answer.
                seed: fresh_seed(reply_id),
            },
            stop: Vec::new(),
            ignore_eos: false,
            continue_reply: mode == ReplyMode::Continue,
        };
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
                self.commit_text(reply_id, std::mem::take(&mut pending))
                    .await?;
                pending_pieces = 0;
                last_commit = Instant::now();
            }
        }
        self.commit_text(reply_id, pending).await?;

        let mut stats = GenerationStats {
            model_id: prepared.route.as_ref().map(|route| route.model_id.clone()),
            route: prepared.route.as_ref().map(|route| route.route.to_string()),
            route_reason: prepared.route.as_ref().map(|route| route.reason.clone()),
            ..GenerationStats::default()
        };
        let (status, error) = match generation.await {
            Ok(Ok(outcome)) => {
                stats.prompt_tokens = Some(outcome.prompt_tokens);
                stats.completion_tokens = Some(outcome.generated_tokens);
                stats.reused_tokens = Some(outcome.reused_tokens);
                stats.ttft_ms = Some(outcome.time_to_first_token_ms.round() as u32);
                stats.tokens_per_second = Some(outcome.generation_tokens_per_second);
                stats.finish_reason = Some(finish_reason_name(outcome.finish_reason).into());
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
        let summary = self
            .record_outcome(
                reply_id,
                &prepared.sources,
                prepared.notices,
                &stats,
                prepared.context_from,
            )
            .await?;
        self.finish(reply_id, status, error.clone(), stats).await?;
        on_event(TurnEvent::Summary(summary));
        on_event(TurnEvent::Finished { status, error });
        if prepared.first_exchange
            && status == MessageStatus::Complete
            && let Some(shown) = shown_for_title
            && let Some(title) = self.generate_title(started, shown).await
        {
            on_event(TurnEvent::Titled(title));
        }
        Ok(())
    }

    /// Routes, loads the model, and assembles the context for the reply of `started`.
    async fn prepare_prompt(
        &self,
        started: TurnStarted,
        mode: ReplyMode,
        model_override: Option<ModelPin>,
        on_event: &mut (impl FnMut(TurnEvent) + Send),
    ) -> Result<PreparedPrompt> {
        let store = Arc::clone(&self.store);
        let mut gathered = blocking(move || gather(&store, started, mode)).await?;
        if model_override.is_some() {
            gathered.conversation_pin = model_override;
        }

        let needs_vision = gathered.newest_needs_vision
            || gathered.history[gathered.min_start.min(gathered.history.len())..]
                .iter()
                .any(|entry| !entry.prompt.images.is_empty());
        let route = self
            .choose_route(gathered.conversation_pin.clone(), needs_vision)
            .await?;
        let context_tokens = match &route {
            Some(route) => {
                self.ensure_model(&route.model_id, || {
                    on_event(TurnEvent::LoadingModel(route.model_id.clone()))
                })
                .await?
            }
            None => TEST_DOUBLE_CONTEXT,
        };
        let budget = Budget::for_context(context_tokens);
        let drops_images = route.as_ref().is_some_and(|route| route.drops_images);

        let store = Arc::clone(&self.store);
        blocking(move || assemble(&store, gathered, budget, route, drops_images)).await
    }

    async fn choose_route(
        &self,
        pin: Option<ModelPin>,
        needs_vision: bool,
    ) -> Result<Option<Route>> {
        if self.engine_handle.is_none() {
            return Ok(None);
        }
        let models = self.list_models().await?;
        let store = Arc::clone(&self.store);
        let (fast_profile, vision_profile, active_model) = blocking(move || {
            Ok::<_, CoreError>((
                store.get_setting(routing::FAST_PROFILE_SETTING)?,
                store.get_setting(routing::VISION_PROFILE_SETTING)?,
                store.get_setting(crate::ACTIVE_MODEL_SETTING)?,
            ))
        })
        .await?;
        let inputs = RoutingInputs {
            fast_profile,
            vision_profile,
            active_model,
            vision_models: models
                .iter()
                .filter(|model| model.vision)
                .map(|model| model.id.clone())
                .collect(),
            pin,
        };
        let known: Vec<String> = models.into_iter().map(|model| model.id).collect();
        routing::route(&inputs, needs_vision, &known)
            .map(Some)
            .map_err(|error| CoreError::InvalidInput(error.to_string()))
    }

    async fn record_outcome(
        &self,
        reply: MessageId,
        sources: &[citations::PromptSource],
        notices: Vec<String>,
        stats: &GenerationStats,
        context_from: Option<MessageId>,
    ) -> Result<TurnSummary> {
        let store = Arc::clone(&self.store);
        let sources = sources.to_vec();
        let stats = stats.clone();
        blocking(move || {
            let content = store.get_message(reply)?.content;
            let resolved = citations::resolve(&content, &sources);
            store.set_citations(reply, &resolved)?;
            store.set_notices(reply, &notices)?;
            if let Some(from) = context_from {
                store.set_context_from(reply, from)?;
            }
            let citations = citation_views(&store, &resolved)?;
            Ok::<_, CoreError>(TurnSummary {
                stats,
                notices,
                citations,
            })
        })
        .await
    }

    /// Asks the model for a short title after the first exchange; keeps the first-line title
    /// when the model gives nothing usable. The request repeats the conversation as its prefix,
    /// so the engine reuses its cache and the next turn's prefix is still cached too.
    async fn generate_title(
        &self,
        started: TurnStarted,
        shown: Vec<ChatMessage>,
    ) -> Option<String> {
        self.engine_handle.as_ref()?;
        let store = Arc::clone(&self.store);
        let conversation = started.conversation_id;
        let reply_id = started.reply_message_id;
        let (enabled, reply) = blocking(move || {
            let enabled = store.get_setting(AUTO_TITLE_SETTING)?.as_deref() != Some("off");
            Ok::<_, CoreError>((enabled, store.get_message(reply_id)?.content))
        })
        .await
        .ok()?;
        if !enabled {
            return None;
        }
        let mut messages = shown;
        messages.push(ChatMessage::text(ChatRole::Assistant, reply));
        messages.push(ChatMessage::text(
            ChatRole::User,
            "Write a title of at most six words for this conversation. Reply with the title only.",
        ));
        let mut request = GenerateRequest::new(messages, 24);
        request.sampling = Sampling::GREEDY;
        request.stop = vec!["\n".into()];
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let engine = Arc::clone(&self.engine);
        let generation = tokio::spawn(async move {
            engine
                .generate(request, sender, CancelToken::default())
                .await
        });
        let mut text = String::new();
        while let Some(event) = receiver.recv().await {
            if let GenerateEvent::Token(piece) = event {
                text.push_str(&piece);
            }
        }
        generation.await.ok()?.ok()?;
        let title = clean_title(&text)?;
        let store = Arc::clone(&self.store);
        let saved = title.clone();
        blocking(move || store.rename_conversation(conversation, &saved))
            .await
            .ok()?;
        Some(title)
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

fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::StopString => "stop_string",
        FinishReason::Length => "length",
        FinishReason::ContextFull => "context_full",
        FinishReason::Cancelled => "cancelled",
    }
}

fn fresh_seed(reply: MessageId) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    nanos ^ (reply.0 as u32).rotate_left(16)
}

/// An empty `streaming` reply to `user`, made the visible continuation.
fn new_reply(store: &Store, conversation: ConversationId, user: MessageId) -> Result<MessageId> {
    Ok(store
        .append_message(
            conversation,
            Some(user),
            Role::Assistant,
            "",
            MessageStatus::Streaming,
        )?
        .id)
}

/// What the store holds for a turn, before the model (and so the budget) is known.
struct Gathered {
    system: Option<String>,
    conversation_pin: Option<ModelPin>,
    /// Messages before the newest user message, with their prompt views.
    history: Vec<PathMessage>,
    newest: Message,
    newest_view: Option<PromptView>,
    newest_attachments: Vec<Attachment>,
    /// Documents attached earlier in the conversation (retrieval for later questions).
    earlier_documents: Vec<Attachment>,
    /// The reply being continued (its text so far).
    partial_reply: Option<Message>,
    newest_needs_vision: bool,
    /// Where the previous reply's context began (index into `history`).
    min_start: usize,
    first_exchange: bool,
}

struct PreparedPrompt {
    messages: Vec<ChatMessage>,
    budget: Budget,
    route: Option<Route>,
    notices: Vec<String>,
    sources: Vec<citations::PromptSource>,
    context_from: Option<MessageId>,
    first_exchange: bool,
}

fn gather(store: &Store, started: TurnStarted, mode: ReplyMode) -> Result<Gathered> {
    let conversation = store.get_conversation(started.conversation_id)?;
    let system = match conversation.system_prompt.clone() {
        Some(prompt) => Some(prompt),
        None => store.get_setting(SYSTEM_PROMPT_SETTING)?,
    }
    .filter(|prompt| !prompt.trim().is_empty());
    let path = store.active_path(started.conversation_id)?;
    let user_index = path
        .iter()
        .position(|message| message.id == started.user_message_id)
        .ok_or_else(|| {
            CoreError::Internal("the turn's message is not on the visible branch".into())
        })?;
    let partial_reply = match mode {
        ReplyMode::Continue => Some(store.get_message(started.reply_message_id)?),
        ReplyMode::Fresh => None,
    };
    let newest = path[user_index].clone();
    let mut history = Vec::with_capacity(user_index);
    let mut earlier_documents = Vec::new();
    for message in &path[..user_index] {
        let prompt = prompt_for(store, message)?;
        if message.role == Role::User {
            earlier_documents.extend(
                store
                    .attachments(message.id)?
                    .into_iter()
                    .filter(|attachment| attachment.kind != AttachmentKind::Image),
            );
        }
        // Failed replies without text say nothing the model should see again.
        if message.role == Role::Assistant && message.content.trim().is_empty() {
            continue;
        }
        history.push(PathMessage {
            message: message.clone(),
            prompt,
        });
    }
    // The window of the previous reply on this path.
    let previous_reply = path[..user_index]
        .iter()
        .rev()
        .find(|message| message.role == Role::Assistant);
    let min_start = match previous_reply {
        Some(reply) => match store.context_from(reply.id)? {
            Some(from) => history
                .iter()
                .position(|entry| entry.message.id == from)
                .unwrap_or(0),
            None => 0,
        },
        None => 0,
    };
    let newest_view = store.prompt_view(newest.id)?;
    let newest_view = (newest_view != PromptView::default()).then_some(newest_view);
    let newest_attachments = store.attachments(newest.id)?;
    let newest_needs_vision = match &newest_view {
        Some(view) => !view.images.is_empty(),
        None => newest_attachments.iter().any(|attachment| {
            store
                .prepared_images(&attachment.sha256)
                .map(|images| !images.is_empty())
                .unwrap_or(false)
        }),
    };
    Ok(Gathered {
        system,
        conversation_pin: conversation
            .model_profile
            .as_deref()
            .and_then(ModelPin::from_setting),
        first_exchange: user_index == 0 && mode == ReplyMode::Fresh,
        history,
        newest,
        newest_view,
        newest_attachments,
        earlier_documents,
        partial_reply,
        newest_needs_vision,
        min_start,
    })
}

/// What the model is shown for a stored message.
pub(crate) fn prompt_for(store: &Store, message: &Message) -> Result<PromptMessage> {
    let role = chat_role(message.role);
    if message.role != Role::User {
        return Ok(PromptMessage::text(role, message.content.clone()));
    }
    prompt_from_view(store, message, store.prompt_view(message.id)?)
}

/// A user message as its stored prompt view shows it to the model.
fn prompt_from_view(store: &Store, message: &Message, view: PromptView) -> Result<PromptMessage> {
    let mut images = Vec::with_capacity(view.images.len());
    for sha in &view.images {
        let (width, height) = png_dimensions(&store.blob_path(sha)?)?;
        images.push(PromptImage {
            sha256: sha.clone(),
            width,
            height,
        });
    }
    Ok(PromptMessage {
        role: ChatRole::User,
        text: view.text.unwrap_or_else(|| message.content.clone()),
        images,
    })
}

/// Reads a PNG's size from its header (prepared images are PNGs Cria wrote).
fn png_dimensions(path: &std::path::Path) -> Result<(u32, u32)> {
    use std::io::Read;
    let mut header = [0u8; 24];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map_err(|error| CoreError::Internal(format!("cannot read a prepared image: {error}")))?;
    if &header[..8] != b"\x89PNG\r\n\x1a\n" || &header[12..16] != b"IHDR" {
        return Err(CoreError::Internal("a prepared image is not a PNG".into()));
    }
    let width = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
    let height = u32::from_be_bytes([header[20], header[21], header[22], header[23]]);
    Ok((width, height))
}

fn assemble(
    store: &Store,
    gathered: Gathered,
    budget: Budget,
    route: Option<Route>,
    drops_images: bool,
) -> Result<PreparedPrompt> {
    let system = gathered
        .system
        .as_ref()
        .map(|text| PromptMessage::text(ChatRole::System, text.clone()));
    let history: Vec<PromptMessage> = gathered
        .history
        .iter()
        .map(|entry| entry.prompt.clone())
        .collect();
    let mut notices = Vec::new();

    // The newest user message: rendered once (then stored, so later turns repeat it exactly).
    let newest_prompt = match &gathered.newest_view {
        Some(view) => prompt_from_view(store, &gathered.newest, view.clone())?,
        None => {
            let fixed = system.as_ref().map_or(0, PromptMessage::cost)
                + context::estimate_text_tokens(&gathered.newest.content)
                + 16;
            let room = budget.prompt_tokens().saturating_sub(fixed);
            let room = u32::try_from(u64::from(room) * context::MATERIAL_SHARE_PERCENT / 100)
                .unwrap_or(room);
            let (prompt, material_notices) = render_newest(store, &gathered, &history, room)?;
            notices.extend(material_notices);
            store.set_prompt_view(
                gathered.newest.id,
                &PromptView {
                    text: (prompt.text != gathered.newest.content).then(|| prompt.text.clone()),
                    images: prompt
                        .images
                        .iter()
                        .map(|image| image.sha256.clone())
                        .collect(),
                },
            )?;
            prompt
        }
    };
    // A reply being continued goes after the newest message: its text so far takes room from
    // the history, not from what is held back for the rest of the reply.
    let partial_reply = gathered
        .partial_reply
        .as_ref()
        .map(|partial| PromptMessage::text(ChatRole::Assistant, partial.content.clone()));
    let history_budget = match &partial_reply {
        Some(partial) => Budget {
            context_tokens: budget.context_tokens.saturating_sub(partial.cost()),
            ..budget
        },
        None => budget,
    };
    let mut fitted = context::fit(
        system.as_ref(),
        &history,
        &newest_prompt,
        history_budget,
        gathered.min_start,
    )
    .map_err(|error| match (&partial_reply, error) {
        (Some(_), ContextError::TooLong { .. }) => CoreError::InvalidInput(
            "this reply already fills the model's context, so it cannot be continued; ask a \
             follow-up question (or raise the context size in Settings)"
                .into(),
        ),
        (_, error) => CoreError::InvalidInput(error.to_string()),
    })?;
    if fitted.history_start > 0 {
        let dropped = gathered.history[..fitted.history_start]
            .iter()
            .filter(|entry| entry.message.role == Role::User)
            .count();
        notices.push(format!(
            "The conversation is longer than the model's context: its first {dropped} message(s) \
             were left out of this reply."
        ));
    }
    if let Some(partial) = partial_reply {
        fitted.estimated_tokens = fitted.estimated_tokens.saturating_add(partial.cost());
        fitted.messages.push(partial);
    }
    let sources = citations::sources_in_prompt(fitted.messages.iter().map(|m| m.text.as_str()));
    // Only attachments of this conversation can be cited (a document's text could imitate
    // a block naming another conversation's file).
    let own: Vec<i64> = gathered
        .newest_attachments
        .iter()
        .chain(gathered.earlier_documents.iter())
        .map(|attachment| attachment.id.0)
        .collect();
    let sources: Vec<_> = sources
        .into_iter()
        .filter(|source| own.contains(&source.attachment_id))
        .collect();

    let mut dropped_images = 0usize;
    let mut messages = Vec::with_capacity(fitted.messages.len());
    for prompt in &fitted.messages {
        let mut images = Vec::new();
        if drops_images {
            dropped_images += prompt.images.len();
        } else {
            for image in &prompt.images {
                images.push(attach::decode_prepared(store, &image.sha256)?);
            }
        }
        messages.push(ChatMessage {
            role: prompt.role,
            content: prompt.text.clone(),
            images,
        });
    }
    if dropped_images > 0 {
        notices.push(format!(
            "{dropped_images} image(s) were left out: the model answering cannot see images. Set \
             a vision model (with its mmproj file) in Models."
        ));
    }
    let context_from = gathered
        .history
        .get(fitted.history_start)
        .map(|entry| entry.message.id)
        .or(Some(gathered.newest.id));
    Ok(PreparedPrompt {
        messages,
        budget,
        route,
        notices,
        sources,
        context_from,
        first_exchange: gathered.first_exchange,
    })
}

/// Renders the newest user message: its documents (inline or retrieved), earlier documents
/// retrieved for this question, images and scanned pages, then the user's text.
fn render_newest(
    store: &Store,
    gathered: &Gathered,
    history: &[PromptMessage],
    room: u32,
) -> Result<(PromptMessage, Vec<String>)> {
    let mut images = Vec::new();
    let mut documents = Vec::new();
    for attachment in &gathered.newest_attachments {
        let prepared = store.prepared_images(&attachment.sha256)?;
        if attachment.kind == AttachmentKind::Image {
            images.extend(prepared.iter().map(PromptImage::from));
            continue;
        }
        documents.push(document_input(store, attachment, prepared)?);
    }
    let image_cost: u32 = images
        .iter()
        .map(|image: &PromptImage| context::estimate_image_tokens(image.width, image.height))
        .sum();
    let room = room.saturating_sub(image_cost);
    let question = gathered.newest.content.as_str();
    let mut retrieve = |query: &str, shas: &[String]| -> Vec<cria_store::DocumentChunk> {
        retrieve_chunks(store, query, shas)
    };
    let mut material = context::render_documents(question, &documents, room, &mut retrieve);

    // Documents from earlier turns: passages for this question that the history does not
    // already show.
    if documents.is_empty() && !gathered.earlier_documents.is_empty() && !question.is_empty() {
        let shas: Vec<String> = gathered
            .earlier_documents
            .iter()
            .map(|attachment| attachment.sha256.clone())
            .collect();
        let shown: String = history
            .iter()
            .map(|message| message.text.as_str())
            .collect();
        let fresh: Vec<cria_store::DocumentChunk> = retrieve_chunks(store, question, &shas)
            .into_iter()
            .filter(|chunk| !shown.contains(chunk.text.trim()))
            .collect();
        if !fresh.is_empty() {
            let earlier: Vec<DocumentInput> = gathered
                .earlier_documents
                .iter()
                .filter(|attachment| fresh.iter().any(|chunk| chunk.sha256 == attachment.sha256))
                .map(|attachment| document_input(store, attachment, Vec::new()))
                .collect::<Result<_>>()?;
            material = context::render_passages(&earlier, &fresh, room);
        }
    }
    images.extend(material.images);
    let text = format!("{}{}", material.text, gathered.newest.content);
    Ok((
        PromptMessage {
            role: ChatRole::User,
            text,
            images,
        },
        material.notices,
    ))
}

/// A stored document as material for the prompt (`scans`: its page images to send).
fn document_input(
    store: &Store,
    attachment: &Attachment,
    scans: Vec<cria_store::PreparedImageRef>,
) -> Result<DocumentInput> {
    Ok(DocumentInput {
        attachment_id: attachment.id.0,
        sha256: attachment.sha256.clone(),
        name: attachment.original_name.clone(),
        pages: store.document_pages(&attachment.sha256)?,
        scans,
    })
}

fn retrieve_chunks(store: &Store, query: &str, shas: &[String]) -> Vec<cria_store::DocumentChunk> {
    store
        .retrieve_chunks(query, shas, context::RETRIEVAL_CANDIDATES)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "retrieval failed; sending the beginning of the documents");
            Vec::new()
        })
}

fn citation_views(store: &Store, citations: &[Citation]) -> Result<Vec<CitationView>> {
    citations
        .iter()
        .map(|citation| {
            let attachment = store.get_attachment(citation.attachment_id)?;
            Ok(CitationView {
                span_start: citation.span_start,
                span_end: citation.span_end,
                attachment_id: citation.attachment_id,
                file_name: attachment.original_name,
                page_number: citation.page_number,
            })
        })
        .collect()
}

/// The citations of a stored reply, for display.
pub(crate) fn stored_citations(store: &Store, reply: MessageId) -> Result<Vec<CitationView>> {
    citation_views(store, &store.citations(reply)?)
}

fn chat_role(role: Role) -> ChatRole {
    match role {
        Role::System => ChatRole::System,
        Role::User => ChatRole::User,
        Role::Assistant => ChatRole::Assistant,
    }
}

/// A model's title suggestion, cleaned: one line, no quotes or trailing period, bounded;
/// `None` when nothing readable is left.
fn clean_title(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    let line = line
        .trim_start_matches(['#', '*', ' '])
        .trim_start_matches("Title:")
        .trim()
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '*' | '“' | '”'))
        .trim_end_matches('.')
        .trim();
    // A garbled suggestion (invalid UTF-8 from the model, mostly symbols) never replaces the
    // readable first-line title.
    let visible = line.chars().filter(|c| !c.is_whitespace()).count();
    let readable = line.chars().filter(|c| c.is_alphanumeric()).count();
    if readable < 2
        || readable * 10 < visible * 7
        || line
            .chars()
            .any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)
    {
        return None;
    }
    Some(cut_at_word(line))
}

/// A first title from the opening message: its first line, cut at a word boundary.
fn title_from(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or_default().trim();
    if first_line.is_empty() {
        return "New chat".into();
    }
    cut_at_word(first_line)
}

fn cut_at_word(line: &str) -> String {
    if line.chars().count() <= TITLE_MAX_CHARS {
        return line.to_string();
    }
    let cut: String = line.chars().take(TITLE_MAX_CHARS).collect();
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

    async fn turn(
        cria: &Cria,
        conversation: Option<ConversationId>,
        text: &str,
    ) -> (TurnStarted, String, MessageStatus) {
        let mut streamed = String::new();
        let mut finished = None;
        let started = cria
            .send_message(
                conversation,
                text.into(),
                CancelToken::default(),
                |event| match event {
                    TurnEvent::Token(piece) => streamed.push_str(&piece),
                    TurnEvent::Finished { status, .. } => finished = Some(status),
                    _ => {}
                },
            )
            .await
            .unwrap();
        (started, streamed, finished.unwrap())
    }

    #[tokio::test]
    async fn a_turn_streams_the_reply_and_stores_it() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let (started, streamed, status) = turn(&cria, None, "hello there").await;
        assert_eq!(streamed, "Echo: hello there");
        assert_eq!(status, MessageStatus::Complete);
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
        let (first, _, _) = turn(&cria, None, "one").await;
        turn(&cria, Some(first.conversation_id), "two").await;
        let messages = cria
            .conversation_messages(first.conversation_id)
            .await
            .unwrap();
        let texts: Vec<_> = messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["one", "Echo: one", "two", "Echo: two"]);
    }

    #[tokio::test]
    async fn regenerate_keeps_both_replies_and_edit_keeps_both_branches() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let (first, _, _) = turn(&cria, None, "question").await;
        let again = cria
            .regenerate(first.reply_message_id, CancelToken::default(), |_| {})
            .await
            .unwrap();
        assert_ne!(again.reply_message_id, first.reply_message_id);
        assert_eq!(again.user_message_id, first.user_message_id);
        let path = cria.conversation_path(first.conversation_id).await.unwrap();
        assert_eq!((path[1].sibling_index, path[1].sibling_count), (1, 2));
        assert_eq!(path[1].message.content, "Echo: question");

        let edited = cria
            .edit_and_resend(
                first.user_message_id,
                "better question".into(),
                CancelToken::default(),
                |_| {},
            )
            .await
            .unwrap();
        let path = cria.conversation_path(first.conversation_id).await.unwrap();
        let texts: Vec<_> = path.iter().map(|e| e.message.content.as_str()).collect();
        assert_eq!(texts, ["better question", "Echo: better question"]);
        assert_eq!((path[0].sibling_index, path[0].sibling_count), (1, 2));

        // Back to the first branch: its two replies are still there.
        cria.switch_branch(first.user_message_id).await.unwrap();
        let path = cria.conversation_path(first.conversation_id).await.unwrap();
        assert_eq!(path[0].message.content, "question");
        assert_eq!(path[1].sibling_count, 2);
        assert_ne!(edited.conversation_id.0, 0);
    }

    #[tokio::test]
    async fn continue_appends_to_a_cut_reply() {
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::echo(Duration::ZERO)));
        let (first, _, _) = turn(&cria, None, "go on").await;
        let continued = cria
            .continue_reply(first.reply_message_id, CancelToken::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(continued.reply_message_id, first.reply_message_id);
        let path = cria
            .conversation_messages(first.conversation_id)
            .await
            .unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(path[1].content, "Echo: go onEcho: go on");
        assert_eq!(path[1].status, MessageStatus::Complete);
        // A user message cannot be continued.
        assert!(
            cria.continue_reply(first.user_message_id, CancelToken::default(), |_| {})
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn continuing_a_long_reply_takes_its_room_from_the_history() {
        // Each reply is ~1,400 estimated tokens. Four exchanges of history fit the test
        // double's 6,144-token prompt room; with the reply being continued they do not.
        let reply = "word ".repeat(840);
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::fixed(reply, Duration::ZERO)));
        let mut conversation = None;
        let mut last = None;
        for n in 0..5 {
            let (started, _, status) = turn(&cria, conversation, &format!("question {n}")).await;
            assert_eq!(status, MessageStatus::Complete);
            conversation = Some(started.conversation_id);
            last = Some(started);
        }
        let last = last.unwrap();
        let mut notices = Vec::new();
        cria.continue_reply(last.reply_message_id, CancelToken::default(), |event| {
            if let TurnEvent::Summary(summary) = event {
                notices = summary.notices;
            }
        })
        .await
        .unwrap();
        assert!(
            notices.iter().any(|notice| notice.contains("left out")),
            "the oldest turns make room for the partial reply: {notices:?}"
        );

        // A reply that alone fills the context cannot be continued: a clear error, and the
        // reply stays as it was.
        // (Ten long pieces: the test double streams at most the reply reserve's pieces.)
        let (_dir, cria) = cria_with(Arc::new(ScriptedEngine::fixed(
            format!("{} ", "w".repeat(3_000)).repeat(10),
            Duration::ZERO,
        )));
        let (started, before, _) = turn(&cria, None, "write a lot").await;
        let path = cria
            .conversation_messages(started.conversation_id)
            .await
            .unwrap();
        let reply_before = path[1].clone();
        let mut finished = None;
        cria.continue_reply(started.reply_message_id, CancelToken::default(), |event| {
            if let TurnEvent::Finished { status, error } = event {
                finished = Some((status, error));
            }
        })
        .await
        .unwrap();
        let (status, error) = finished.unwrap();
        assert!(
            error
                .as_deref()
                .unwrap_or_default()
                .contains("cannot be continued"),
            "{error:?}"
        );
        assert_eq!(status, reply_before.status);
        let path = cria
            .conversation_messages(started.conversation_id)
            .await
            .unwrap();
        assert_eq!(path[1].content, before);
        assert_eq!(path[1].status, reply_before.status);
        assert_eq!(path[1].error, reply_before.error);
        assert_eq!(path[1].stats, reply_before.stats);
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
    fn titles_are_cut_at_a_word_boundary_and_model_titles_cleaned() {
        assert_eq!(title_from("short"), "short");
        let long = "word ".repeat(30);
        let title = title_from(&long);
        assert!(title.ends_with("word…"), "{title}");
        assert!(title.chars().count() <= TITLE_MAX_CHARS + 1);
        assert_eq!(
            clean_title("\"Tuning a Llama.\"\nmore").as_deref(),
            Some("Tuning a Llama")
        );
        assert_eq!(
            clean_title("Title: Rust lifetimes").as_deref(),
            Some("Rust lifetimes")
        );
        assert_eq!(clean_title(" ?! "), None);
        assert_eq!(clean_title("re\u{FFFD}on}?re\u{FFFD}on}?"), None);
        assert_eq!(clean_title("a}?b{#c%^&*"), None);
        assert_eq!(
            clean_title("C++ templates, explained").as_deref(),
            Some("C++ templates, explained")
        );
    }
}
