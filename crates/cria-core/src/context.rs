//! Assembling what the model is shown for a turn, never over its context budget.
//!
//! Contract:
//! - The system prompt and the newest user message are always sent whole; if they alone do not
//!   fit, the turn fails with [`ContextError::TooLong`] before anything is decoded.
//! - History is sent as whole messages, newest kept, oldest dropped whole turns at a time (a
//!   turn is a user message and the replies after it); a message is never cut.
//! - Once older turns are dropped, later turns start no earlier ("the window only moves
//!   forward"), and when it has to move it moves far enough to leave room for several more
//!   turns. So consecutive prompts share a long prefix and the engine's KV cache only prefills
//!   what is new.
//! - Documents go inline when their text fits the room left for material; otherwise the best
//!   chunks for the question (FTS5 BM25 from the store) are sent best first, each marked with
//!   its page,
//!   and the model is asked to cite pages as `[p. N]`. Pages without a text layer (scans) are
//!   sent as page images. What was left out becomes a notice for the user.
//!
//! Token counts here are estimates that err on the high side (the exact count needs the
//! model's tokenizer, in the worker process); the engine still refuses an overflowing prompt
//! with a typed error, so an estimate can waste a little room but never corrupt a turn.

use cria_engine::ChatRole;
use cria_store::{DocumentChunk, DocumentPage, PreparedImageRef};

/// Template tokens around each message (role header, end of turn) plus slack.
const MESSAGE_OVERHEAD_TOKENS: u32 = 8;
/// Llama 4's vision encoder reads 336-pixel tiles, 144 tokens each, at most 16 tiles plus an
/// overview; other projectors use fewer. The estimate follows Llama 4 (the largest).
const IMAGE_TILE_PIXELS: u32 = 336;
const IMAGE_TOKENS_PER_TILE: u32 = 144;
const IMAGE_MAX_TILES: u32 = 16;
const IMAGE_FRAMING_TOKENS: u32 = 16;
/// When older turns must be dropped, history is cut to this share of its room, so the next
/// few turns fit without moving the window again (each move costs a full prefill).
const HISTORY_REFILL_PERCENT: u64 = 60;
/// Documents may take at most this share of the prompt room; the rest is for the
/// conversation and the question.
pub(crate) const MATERIAL_SHARE_PERCENT: u64 = 60;
/// Retrieval asks the store for this many chunks at most and keeps those that fit.
pub(crate) const RETRIEVAL_CANDIDATES: u32 = 24;
/// Page images of scanned documents sent with one message at most.
const MAX_PAGE_IMAGES: usize = 8;

/// What the model is asked to do with attached documents.
pub(crate) const CITE_INSTRUCTION: &str = "Answer from the documents above. After each fact \
     taken from a document, cite its page like [p. 12].";

/// The context window and what is held back for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub context_tokens: u32,
    pub reply_tokens: u32,
}

impl Budget {
    /// The reply gets a quarter of the window, between 256 and 2,048 tokens.
    pub fn for_context(context_tokens: u32) -> Self {
        let reply_tokens = (context_tokens / 4)
            .clamp(256, 2048)
            .min(context_tokens / 2);
        Budget {
            context_tokens,
            reply_tokens,
        }
    }

    /// Room for the prompt.
    pub fn prompt_tokens(&self) -> u32 {
        self.context_tokens.saturating_sub(self.reply_tokens)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error(
        "the message is too long for this model's context: about {needed} tokens with the \
         system prompt, {available} available. Attach long text as a file (Cria then sends the \
         relevant parts), or raise the context size in Settings."
    )]
    TooLong { needed: u32, available: u32 },
}

/// An image as the prompt refers to it (pixels are loaded only for the messages sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptImage {
    pub sha256: String,
    pub width: u32,
    pub height: u32,
}

impl From<&PreparedImageRef> for PromptImage {
    fn from(image: &PreparedImageRef) -> Self {
        PromptImage {
            sha256: image.image_sha256.clone(),
            width: image.width,
            height: image.height,
        }
    }
}

/// One message as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: ChatRole,
    pub text: String,
    pub images: Vec<PromptImage>,
}

impl PromptMessage {
    pub fn text(role: ChatRole, text: impl Into<String>) -> Self {
        PromptMessage {
            role,
            text: text.into(),
            images: Vec::new(),
        }
    }

    /// Estimated prompt positions of this message, template included.
    pub fn cost(&self) -> u32 {
        let images: u32 = self
            .images
            .iter()
            .map(|image| estimate_image_tokens(image.width, image.height))
            .sum();
        estimate_text_tokens(&self.text)
            .saturating_add(images)
            .saturating_add(MESSAGE_OVERHEAD_TOKENS)
    }
}

/// An over-estimate of the tokens of `text`: Llama 4's tokenizer averages about four ASCII
/// characters per token on prose and three on code; other scripts about one character each.
pub fn estimate_text_tokens(text: &str) -> u32 {
    let mut ascii = 0u64;
    let mut other = 0u64;
    for character in text.chars() {
        if character.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    u32::try_from(ascii.div_ceil(3) + other).unwrap_or(u32::MAX)
}

/// An over-estimate of the positions an image takes (Llama 4 tiling).
pub fn estimate_image_tokens(width: u32, height: u32) -> u32 {
    let tiles_x = width.div_ceil(IMAGE_TILE_PIXELS).max(1);
    let tiles_y = height.div_ceil(IMAGE_TILE_PIXELS).max(1);
    let tiles = (tiles_x * tiles_y).min(IMAGE_MAX_TILES);
    // More than one tile adds an overview tile.
    let tiles = if tiles > 1 { tiles + 1 } else { tiles };
    tiles * IMAGE_TOKENS_PER_TILE + IMAGE_FRAMING_TOKENS
}

/// The messages chosen for a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// Index into the history of the first message sent.
    pub history_start: usize,
    pub messages: Vec<PromptMessage>,
    pub estimated_tokens: u32,
}

/// Chooses the history to send with `newest` (see the module contract). `min_start` is where
/// the previous turn's window began (0 when nothing was dropped yet).
pub fn fit(
    system: Option<&PromptMessage>,
    history: &[PromptMessage],
    newest: &PromptMessage,
    budget: Budget,
    min_start: usize,
) -> Result<Fitted, ContextError> {
    let available = budget.prompt_tokens();
    let fixed = system
        .map_or(0, PromptMessage::cost)
        .saturating_add(newest.cost());
    if fixed > available {
        return Err(ContextError::TooLong {
            needed: fixed,
            available,
        });
    }
    let room = available - fixed;
    let starts = turn_starts(history);
    let cost_from = |start: usize| -> u32 {
        history[start..]
            .iter()
            .map(PromptMessage::cost)
            .fold(0u32, u32::saturating_add)
    };
    // The earliest allowed turn start at or after `min_start`.
    let first_allowed = starts
        .iter()
        .copied()
        .find(|&start| start >= min_start.min(history.len()))
        .unwrap_or(history.len());
    let mut start = first_allowed;
    if cost_from(start) > room {
        // Move forward to a turn start that leaves headroom for the next turns.
        let target = u32::try_from(u64::from(room) * HISTORY_REFILL_PERCENT / 100).unwrap_or(room);
        start = starts
            .iter()
            .copied()
            .filter(|&candidate| candidate >= first_allowed)
            .find(|&candidate| cost_from(candidate) <= target)
            .unwrap_or(history.len());
    }
    let mut messages = Vec::with_capacity(history.len() - start + 2);
    messages.extend(system.cloned());
    messages.extend(history[start..].iter().cloned());
    messages.push(newest.clone());
    Ok(Fitted {
        history_start: start,
        estimated_tokens: fixed.saturating_add(cost_from(start)),
        messages,
    })
}

/// Indexes where a turn begins (a user message), plus the end: the only places history may be
/// cut. History that does not begin with a user message (an imported conversation) may also be
/// cut at 0.
fn turn_starts(history: &[PromptMessage]) -> Vec<usize> {
    let mut starts: Vec<usize> = history
        .iter()
        .enumerate()
        .filter(|(index, message)| *index == 0 || message.role == ChatRole::User)
        .map(|(index, _)| index)
        .collect();
    starts.push(history.len());
    starts
}

/// A document attached to the conversation, as material for the prompt.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    pub attachment_id: i64,
    pub sha256: String,
    pub name: String,
    pub pages: Vec<DocumentPage>,
    /// Page images of pages without a usable text layer.
    pub scans: Vec<PreparedImageRef>,
}

/// What the documents became for one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Material {
    /// Document blocks and the citation instruction, placed before the user's text.
    pub text: String,
    pub images: Vec<PromptImage>,
    pub notices: Vec<String>,
}

/// Renders `documents` for the question `question` within `room` tokens: inline when the text
/// of all fits, else the chunks `retrieve` ranks best (it gets the question and the documents'
/// sha256s and returns chunks best first).
pub fn render_documents(
    question: &str,
    documents: &[DocumentInput],
    room: u32,
    retrieve: &mut dyn FnMut(&str, &[String]) -> Vec<DocumentChunk>,
) -> Material {
    let mut material = Material::default();
    if documents.is_empty() {
        return material;
    }
    let mut room = room.saturating_sub(estimate_text_tokens(CITE_INSTRUCTION));

    // Scanned pages first: they have no text to retrieve from, and the vision model reads them.
    let mut sent_scans = 0usize;
    let mut skipped_scans: Vec<String> = Vec::new();
    let mut scan_blocks = String::new();
    for document in documents {
        let mut block = String::new();
        for scan in &document.scans {
            let cost = estimate_image_tokens(scan.width, scan.height);
            if sent_scans < MAX_PAGE_IMAGES && cost <= room {
                room -= cost;
                sent_scans += 1;
                material.images.push(PromptImage::from(scan));
                // The page marker makes a scanned page citable like any other.
                block.push_str(&format!(
                    "[p. {}]\n(a scanned page: image {sent_scans} above)\n",
                    scan.page_number
                ));
            } else {
                skipped_scans.push(format!("{} p. {}", document.name, scan.page_number));
            }
        }
        if !block.is_empty() {
            scan_blocks.push_str(&document_open_tag(document, " scanned=\"yes\""));
            scan_blocks.push_str(&block);
            scan_blocks.push_str("</document>\n\n");
        }
    }
    room = room.saturating_sub(estimate_text_tokens(&scan_blocks));
    if !skipped_scans.is_empty() {
        material.notices.push(format!(
            "{} scanned page(s) could not be shown to the model ({}); ask about fewer pages at a \
             time.",
            skipped_scans.len(),
            summarize_list(&skipped_scans)
        ));
    }

    let inline_cost: u32 = documents
        .iter()
        .map(|document| estimate_text_tokens(&inline_block(document)))
        .fold(0, u32::saturating_add);
    let mut text = String::new();
    if inline_cost <= room {
        for document in documents {
            text.push_str(&inline_block(document));
        }
    } else {
        text = excerpt_blocks(question, documents, room, retrieve, &mut material.notices);
    }
    text.push_str(&scan_blocks);
    if !text.is_empty() {
        text.push_str(CITE_INSTRUCTION);
        text.push_str("\n\n");
    }
    material.text = text;
    material
}

fn document_open_tag(document: &DocumentInput, extra: &str) -> String {
    // The name is the user's file name: quotes and angle brackets are removed so it cannot
    // close the tag.
    let name: String = document
        .name
        .chars()
        .filter(|character| !matches!(character, '"' | '<' | '>'))
        .collect();
    format!(
        "<document attachment=\"{}\" name=\"{name}\" pages=\"{}\"{extra}>\n",
        document.attachment_id,
        document.pages.len()
    )
}

fn inline_block(document: &DocumentInput) -> String {
    if document
        .pages
        .iter()
        .all(|page| page.text.trim().is_empty())
    {
        return String::new();
    }
    let mut block = document_open_tag(document, "");
    for page in &document.pages {
        if page.text.trim().is_empty() {
            continue;
        }
        block.push_str(&format!("[p. {}]\n", page.page_number));
        block.push_str(page.text.trim_end());
        block.push('\n');
    }
    block.push_str("</document>\n\n");
    block
}

fn excerpt_blocks(
    question: &str,
    documents: &[DocumentInput],
    room: u32,
    retrieve: &mut dyn FnMut(&str, &[String]) -> Vec<DocumentChunk>,
    notices: &mut Vec<String>,
) -> String {
    let shas: Vec<String> = documents.iter().map(|doc| doc.sha256.clone()).collect();
    let mut ranked = retrieve(question, &shas);
    let matched_any = !ranked.is_empty();
    if !matched_any {
        // Nothing matched the question's words ("summarise this"): the beginning of each
        // document stands in, which is what a reader would skim first.
        ranked = documents.iter().flat_map(leading_chunks).collect();
    }
    let (text, pages) = passage_blocks(documents, &ranked, room);
    let names = summarize_list(
        &documents
            .iter()
            .map(|document| document.name.clone())
            .collect::<Vec<_>>(),
    );
    notices.push(if matched_any {
        format!(
            "{names} is too long to send whole: the model saw the passages that best match your \
             question (pages {}).",
            page_ranges(&pages)
        )
    } else {
        format!(
            "{names} is too long to send whole, and no passage matched your question's words: \
             the model saw the beginning (pages {}). Ask about a specific topic to search the rest.",
            page_ranges(&pages)
        )
    });
    text
}

/// Passages already chosen by retrieval (`ranked`, best first) from `documents`, as document
/// blocks with page markers and the citation instruction; nothing inline, no notice. For a
/// follow-up question about documents attached earlier in the conversation.
pub fn render_passages(
    documents: &[DocumentInput],
    ranked: &[DocumentChunk],
    room: u32,
) -> Material {
    let room = room.saturating_sub(estimate_text_tokens(CITE_INSTRUCTION));
    let (mut text, _) = passage_blocks(documents, ranked, room);
    if !text.is_empty() {
        text.push_str(CITE_INSTRUCTION);
        text.push_str("\n\n");
    }
    Material {
        text,
        ..Material::default()
    }
}

/// The `ranked` chunks that fit `room`, best first and grouped by document, as blocks; with
/// the pages they come from, sorted.
fn passage_blocks(
    documents: &[DocumentInput],
    ranked: &[DocumentChunk],
    room: u32,
) -> (String, Vec<u32>) {
    // Take chunks best first while they fit; tags and page markers count too.
    let tag_cost: u32 = documents
        .iter()
        .map(|document| estimate_text_tokens(&document_open_tag(document, " excerpts=\"yes\"")) + 4)
        .sum();
    let mut room = room.saturating_sub(tag_cost);
    let mut chosen: Vec<&DocumentChunk> = Vec::new();
    for chunk in ranked {
        let cost = estimate_text_tokens(&chunk.text) + 8;
        if cost <= room {
            room -= cost;
            chosen.push(chunk);
        }
    }
    // Best passages first (models attend most to the start and the end of long context),
    // grouped by document, the document with the best passage first.
    let mut order: Vec<&DocumentInput> = Vec::new();
    for chunk in &chosen {
        if let Some(document) = documents.iter().find(|doc| doc.sha256 == chunk.sha256)
            && !order.iter().any(|seen| seen.sha256 == document.sha256)
        {
            order.push(document);
        }
    }
    let mut text = String::new();
    for document in order {
        let excerpts: Vec<&&DocumentChunk> = chosen
            .iter()
            .filter(|chunk| chunk.sha256 == document.sha256)
            .collect();
        if excerpts.is_empty() {
            continue;
        }
        text.push_str(&document_open_tag(document, " excerpts=\"yes\""));
        for chunk in excerpts {
            text.push_str(&format!("[p. {}]\n", chunk.page_number));
            text.push_str(chunk.text.trim_end());
            text.push('\n');
        }
        text.push_str("</document>\n\n");
    }
    let mut pages: Vec<u32> = chosen.iter().map(|chunk| chunk.page_number).collect();
    pages.sort_unstable();
    pages.dedup();
    (text, pages)
}

/// A document's chunks in order, rebuilt from its pages (paragraph-sized pieces).
fn leading_chunks(document: &DocumentInput) -> Vec<DocumentChunk> {
    let mut chunks = Vec::new();
    for page in &document.pages {
        let mut line_start = 1u32;
        for (ordinal_in_page, paragraph) in page.text.split("\n\n").enumerate() {
            let lines = u32::try_from(paragraph.lines().count().max(1)).unwrap_or(u32::MAX);
            if !paragraph.trim().is_empty() {
                chunks.push(DocumentChunk {
                    id: 0,
                    sha256: document.sha256.clone(),
                    ordinal: page.page_number * 10_000
                        + u32::try_from(ordinal_in_page).unwrap_or(9_999).min(9_999),
                    page_number: page.page_number,
                    line_start,
                    line_end: line_start + lines - 1,
                    text: paragraph.to_string(),
                });
            }
            line_start += lines + 1;
        }
    }
    chunks
}

/// "1–3, 7, 9–10".
pub fn page_ranges(pages: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = pages.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}–{last}")
        });
    }
    parts.join(", ")
}

fn summarize_list(items: &[String]) -> String {
    const SHOWN: usize = 3;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(text: &str) -> PromptMessage {
        PromptMessage::text(ChatRole::User, text)
    }

    fn assistant(text: &str) -> PromptMessage {
        PromptMessage::text(ChatRole::Assistant, text)
    }

    #[test]
    fn estimates_err_high_for_english_and_korean() {
        // 44 ASCII characters: Llama 4 needs about 10 tokens.
        assert!(estimate_text_tokens("The quick brown fox jumps over the lazy dog.") >= 10);
        assert_eq!(estimate_text_tokens("안녕하세요"), 5);
        assert_eq!(estimate_image_tokens(336, 336), 144 + 16);
        // A 1344x1344 screenshot: 16 tiles plus the overview.
        assert_eq!(estimate_image_tokens(1344, 1344), 17 * 144 + 16);
        // Tiles are capped however long the side.
        assert_eq!(estimate_image_tokens(1, 100_000), 17 * 144 + 16);
    }

    #[test]
    fn everything_fits_so_everything_is_sent() {
        let history = [user("hi"), assistant("hello")];
        let fitted = fit(
            None,
            &history,
            &user("how are you"),
            Budget::for_context(4096),
            0,
        )
        .unwrap();
        assert_eq!(fitted.history_start, 0);
        assert_eq!(fitted.messages.len(), 3);
    }

    #[test]
    fn a_message_too_long_for_the_window_is_a_typed_error() {
        let huge = "word ".repeat(10_000);
        let error = fit(None, &[], &user(&huge), Budget::for_context(2048), 0).unwrap_err();
        assert!(matches!(error, ContextError::TooLong { .. }));
        assert!(error.to_string().contains("Attach long text as a file"));
    }

    #[test]
    fn the_window_moves_forward_by_whole_turns_and_leaves_headroom() {
        let turn_text = "x".repeat(600); // ~200 tokens each
        let mut history = Vec::new();
        for _ in 0..20 {
            history.push(user(&turn_text));
            history.push(assistant(&turn_text));
        }
        let budget = Budget::for_context(4096);
        let fitted = fit(None, &history, &user("next"), budget, 0).unwrap();
        assert!(fitted.history_start > 0);
        assert_eq!(
            fitted.messages[0].role,
            ChatRole::User,
            "cut at a turn start"
        );
        assert!(fitted.estimated_tokens <= budget.prompt_tokens());
        // The next turn (one more exchange) keeps the same start: a stable prefix.
        history.push(user("next"));
        history.push(assistant("short answer"));
        let again = fit(
            None,
            &history,
            &user("and then?"),
            budget,
            fitted.history_start,
        )
        .unwrap();
        assert_eq!(again.history_start, fitted.history_start);
    }

    fn arb_message() -> impl Strategy<Value = PromptMessage> {
        (any::<bool>(), 0usize..3000, 0usize..3).prop_map(|(is_user, len, images)| PromptMessage {
            role: if is_user {
                ChatRole::User
            } else {
                ChatRole::Assistant
            },
            text: "a".repeat(len),
            images: (0..images)
                .map(|i| PromptImage {
                    sha256: format!("{i:064}"),
                    width: 400,
                    height: 300,
                })
                .collect(),
        })
    }

    proptest! {
        #[test]
        fn the_prompt_never_exceeds_the_budget_and_keeps_system_and_newest(
            history in proptest::collection::vec(arb_message(), 0..40),
            newest_len in 0usize..6000,
            system_len in 0usize..2000,
            context in 512u32..16384,
            min_start in 0usize..50,
        ) {
            let system = PromptMessage::text(ChatRole::System, "s".repeat(system_len));
            let newest = user(&"q".repeat(newest_len));
            let budget = Budget::for_context(context);
            match fit(Some(&system), &history, &newest, budget, min_start) {
                Ok(fitted) => {
                    let total: u32 = fitted.messages.iter().map(PromptMessage::cost).sum();
                    prop_assert!(total <= budget.prompt_tokens());
                    prop_assert_eq!(total, fitted.estimated_tokens);
                    prop_assert_eq!(&fitted.messages[0], &system);
                    prop_assert_eq!(fitted.messages.last().unwrap(), &newest);
                    // Whole messages only, a contiguous newest suffix of the history.
                    let sent = &fitted.messages[1..fitted.messages.len() - 1];
                    prop_assert_eq!(sent, &history[fitted.history_start..]);
                    prop_assert!(fitted.history_start >= min_start.min(history.len()));
                }
                Err(ContextError::TooLong { needed, available }) => {
                    prop_assert!(needed > available);
                    prop_assert_eq!(needed, system.cost() + newest.cost());
                }
            }
        }
    }

    fn document(pages: &[&str]) -> DocumentInput {
        DocumentInput {
            attachment_id: 7,
            sha256: "d".repeat(64),
            name: "report\".pdf".into(),
            pages: pages
                .iter()
                .enumerate()
                .map(|(index, text)| DocumentPage {
                    page_number: index as u32 + 1,
                    text: (*text).into(),
                    text_layer_usable: true,
                })
                .collect(),
            scans: Vec::new(),
        }
    }

    #[test]
    fn a_short_document_goes_inline_with_page_markers() {
        let doc = document(&["Intro text.", "The answer is 42."]);
        let material = render_documents("answer?", &[doc], 4000, &mut |_, _| {
            panic!("no retrieval for a document that fits")
        });
        assert!(material.text.starts_with(
            "<document attachment=\"7\" name=\"report.pdf\" pages=\"2\">\n[p. 1]\nIntro text.\n[p. 2]"
        ));
        assert!(material.text.ends_with(&format!("{CITE_INSTRUCTION}\n\n")));
        assert!(material.notices.is_empty());
    }

    #[test]
    fn a_long_document_sends_the_retrieved_chunks_best_first_and_says_so() {
        let pages: Vec<String> = (1..=30)
            .map(|n| format!("Page {n} filler. ").repeat(100))
            .collect();
        let page_refs: Vec<&str> = pages.iter().map(String::as_str).collect();
        let doc = document(&page_refs);
        let chunk = |page: u32, ordinal: u32| DocumentChunk {
            id: i64::from(ordinal),
            sha256: doc.sha256.clone(),
            ordinal,
            page_number: page,
            line_start: 1,
            line_end: 1,
            text: format!("fact on page {page}"),
        };
        let material = render_documents(
            "fact",
            std::slice::from_ref(&doc),
            1000,
            &mut |question, shas| {
                assert_eq!(question, "fact");
                assert_eq!(shas, std::slice::from_ref(&doc.sha256));
                vec![chunk(17, 40), chunk(3, 5)]
            },
        );
        let p3 = material.text.find("[p. 3]").unwrap();
        let p17 = material.text.find("[p. 17]").unwrap();
        assert!(p17 < p3, "best first");
        assert!(material.text.contains("excerpts=\"yes\""));
        assert_eq!(material.notices.len(), 1);
        assert!(
            material.notices[0].contains("pages 3, 17"),
            "{:?}",
            material.notices
        );
    }

    #[test]
    fn passages_for_a_follow_up_come_from_each_earlier_document_within_the_room() {
        let report = document(&["Intro.", "Budget: 12 million."]);
        let mut memo = document(&["The memo."]);
        memo.attachment_id = 9;
        memo.sha256 = "e".repeat(64);
        memo.name = "memo.docx".into();
        let chunk = |doc: &DocumentInput, page: u32, text: &str| DocumentChunk {
            id: i64::from(page),
            sha256: doc.sha256.clone(),
            ordinal: page,
            page_number: page,
            line_start: 1,
            line_end: 1,
            text: text.into(),
        };
        let ranked = [
            chunk(&memo, 1, "The memo says the budget doubled."),
            chunk(&report, 2, "Budget: 12 million."),
            chunk(&report, 1, &"filler ".repeat(400)),
        ];
        let material = render_passages(&[report.clone(), memo.clone()], &ranked, 200);
        let text = &material.text;
        // The best passage's document first, each passage with its page, as excerpts.
        let memo_at = text.find("attachment=\"9\"").expect("memo block");
        let report_at = text.find("attachment=\"7\"").expect("report block");
        assert!(memo_at < report_at, "{text}");
        assert!(text.contains("[p. 2]\nBudget: 12 million."), "{text}");
        assert!(text.contains("excerpts=\"yes\""));
        // The passage that does not fit the room is left out; the others stay.
        assert!(!text.contains("filler"), "{text}");
        assert!(
            estimate_text_tokens(text) <= 200,
            "{}",
            estimate_text_tokens(text)
        );
        assert!(text.ends_with(&format!("{CITE_INSTRUCTION}\n\n")));
        assert!(material.notices.is_empty());

        // Nothing that fits: no blocks and no instruction to cite.
        let none = render_passages(&[report], &ranked[2..], 200);
        assert!(none.text.is_empty(), "{:?}", none.text);
    }

    #[test]
    fn page_ranges_are_compact() {
        assert_eq!(page_ranges(&[1, 2, 3, 7, 9, 10]), "1–3, 7, 9–10");
        assert_eq!(page_ranges(&[]), "");
    }
}
