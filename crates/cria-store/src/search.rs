//! Full-text search over finished messages and document chunks.
//!
//! Contract: [`search_text`] is the only text ever written into the FTS5 tables (through SQL
//! triggers that call it as `cria_search_text`), and [`fts_query`] builds every MATCH
//! expression from what a user typed. Both split Hangul, kana and Han runs into overlapping
//! two-character pieces, because neither tokenizer alone works for Korean: trigram cannot match
//! the two-syllable nouns most Korean words are, and unicode61 keeps a noun glued to its
//! particle (기호를), so a search for 기호 would miss it. With pieces on both sides, 기호를
//! is indexed as `기호 호를` and the query 기호 matches. User input never reaches FTS5 syntax:
//! it is cut into letter/digit words, each quoted as a phrase.
//!
//! Snippets and highlight ranges are computed on the original text (the index holds pieces),
//! so what the user sees is exactly what was stored.

use std::ops::Range;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::conversations::ConversationId;
use crate::messages::{MessageId, Role};

/// How many characters of context a snippet shows before the first match.
const SNIPPET_LEAD_CHARS: usize = 60;
/// How long a snippet is at most, in characters.
const SNIPPET_CHARS: usize = 220;
/// Queries longer than this are cut: nobody types more, and each word costs an index lookup.
const MAX_QUERY_WORDS: usize = 16;
/// How many matches, newest first, are ranked by BM25. A very common word can match most of
/// the history, and ranking every match costs time proportional to that (hundreds of ms at
/// 100k messages); ranking the newest matches keeps a search interactive at any size, and in
/// chat history the newest matches are the ones people look for. Rare words, the usual search,
/// have fewer matches than this and are ranked over the whole history.
pub const RANKED_MATCHES: u32 = 1000;

/// True for scripts written without spaces between words (or with particles glued to nouns).
fn is_cjk(ch: char) -> bool {
    matches!(ch as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xD7B0..=0xD7FF    // Hangul Jamo extended B
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0x20000..=0x3134F  // CJK extensions B..G
    )
}

fn push_pieces(run: &[char], out: &mut String) {
    out.push(' ');
    if run.len() == 1 {
        out.push(run[0]);
    } else {
        for pair in run.windows(2) {
            out.push(pair[0]);
            out.push(pair[1]);
            out.push(' ');
        }
    }
    out.push(' ');
}

/// The text the index sees: unchanged except that CJK runs become overlapping pairs.
pub fn search_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut run: Vec<char> = Vec::new();
    for ch in text.chars() {
        if is_cjk(ch) {
            run.push(ch);
            continue;
        }
        if !run.is_empty() {
            push_pieces(&run, &mut out);
            run.clear();
        }
        out.push(ch);
    }
    if !run.is_empty() {
        push_pieces(&run, &mut out);
    }
    out
}

/// The words of a query: runs of letters and digits, lowercased, at most [`MAX_QUERY_WORDS`].
fn query_words(query: &str) -> Vec<String> {
    query
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// An FTS5 MATCH expression for what the user typed, or `None` when it has no words.
///
/// Every word must match (implicit AND). A word is a quoted phrase of its index pieces; a lone
/// CJK character becomes a prefix so that it still finds the pairs it starts.
pub fn fts_query(query: &str) -> Option<String> {
    let mut parts = Vec::new();
    for word in query_words(query) {
        let pieces = search_text(&word);
        let pieces: Vec<&str> = pieces.split_whitespace().collect();
        let Some(last) = pieces.last() else { continue };
        let lone_cjk = last.chars().count() == 1 && last.chars().all(is_cjk);
        // Words hold only letters and digits, so there is no quote to escape.
        let phrase = format!("\"{}\"", pieces.join(" "));
        parts.push(if lone_cjk {
            format!("{phrase} *")
        } else {
            phrase
        });
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

/// Words too common to say what a question is about (English); retrieval ignores them.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does",
    "for", "from", "had", "has", "have", "how", "i", "in", "is", "it", "its", "me", "my", "of",
    "on", "or", "please", "say", "says", "tell", "that", "the", "their", "there", "this", "to",
    "was", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your",
];

/// An FTS5 expression for retrieval: any of the question's meaningful words (OR), so that BM25
/// ranks passages by how many of them, and how rare, they contain. `None` when no word is left.
pub fn retrieval_query(question: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for word in query_words(question) {
        if STOP_WORDS.contains(&word.as_str()) {
            continue;
        }
        let pieces = search_text(&word);
        let pieces: Vec<&str> = pieces.split_whitespace().collect();
        if pieces.is_empty() {
            continue;
        }
        let phrase = format!("\"{}\"", pieces.join(" "));
        if !parts.contains(&phrase) {
            parts.push(phrase);
        }
    }
    (!parts.is_empty()).then(|| parts.join(" OR "))
}

/// The chunks of the documents `only_blobs` that best match `question` (see
/// [`retrieval_query`]), best first.
pub(crate) fn retrieve_chunks(
    conn: &Connection,
    question: &str,
    only_blobs: &[String],
    limit: u32,
) -> Result<Vec<crate::DocumentChunk>> {
    let Some(expression) = retrieval_query(question) else {
        return Ok(Vec::new());
    };
    let filter = serde_json::to_string(only_blobs)
        .map_err(|error| crate::StoreError::InvalidInput(error.to_string()))?;
    let mut statement = conn.prepare_cached(
        "SELECT d.id, d.sha256, d.ordinal, d.page_number, d.line_start, d.line_end, d.text \
         FROM chunks_fts JOIN document_chunks d ON d.id = chunks_fts.rowid \
         WHERE chunks_fts MATCH ?1 AND d.sha256 IN (SELECT value FROM json_each(?2)) \
         ORDER BY chunks_fts.rank LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![expression, filter, limit],
        crate::documents::chunk_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Byte ranges in `text` where any query word occurs, case-insensitively, sorted, disjoint.
fn match_ranges(text: &str, words: &[String]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let words: Vec<Vec<char>> = words.iter().map(|w| w.chars().collect()).collect();
    for (start, _) in text.char_indices() {
        if ranges.last().is_some_and(|last| start < last.end) {
            continue;
        }
        let mut best_end = None;
        for word in &words {
            if let Some(end) = match_at(text, start, word) {
                best_end = Some(best_end.map_or(end, |best: usize| best.max(end)));
            }
        }
        if let Some(end) = best_end {
            ranges.push(start..end);
        }
    }
    ranges
}

/// If `word` (lowercase) occurs at byte `start` of `text`, the byte index where it ends.
fn match_at(text: &str, start: usize, word: &[char]) -> Option<usize> {
    let mut wanted = word.iter();
    let mut pending: Option<char> = wanted.next().copied();
    let mut end = start;
    for (offset, ch) in text[start..].char_indices() {
        if pending.is_none() {
            break;
        }
        for lower in ch.to_lowercase() {
            match pending {
                Some(expected) if expected == lower => pending = wanted.next().copied(),
                _ => return None,
            }
        }
        end = start + offset + ch.len_utf8();
    }
    if pending.is_none() { Some(end) } else { None }
}

/// A piece of `text` around the first match, with highlight byte ranges inside the snippet.
pub(crate) fn snippet(text: &str, query: &str) -> (String, Vec<Range<usize>>) {
    let words = query_words(query);
    let ranges = match_ranges(text, &words);
    let first_match = ranges.first().map_or(0, |r| r.start);
    let chars_before = text[..first_match].chars().count();
    let skip_chars = chars_before.saturating_sub(SNIPPET_LEAD_CHARS);
    let start = text
        .char_indices()
        .nth(skip_chars)
        .map_or(text.len(), |(index, _)| index);
    // Start at a word boundary when one is near, so the snippet does not open mid-word.
    let start = if start == 0 {
        0
    } else {
        text[start..first_match.max(start)]
            .find(char::is_whitespace)
            .map_or(start, |space| start + space + 1)
    };
    let end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(index, _)| start + index);
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < text.len() { "…" } else { "" };
    let mut snippet = String::with_capacity(end - start + 8);
    snippet.push_str(prefix);
    snippet.push_str(&text[start..end]);
    snippet.push_str(suffix);
    let shift = prefix.len();
    let highlights = ranges
        .into_iter()
        .filter(|r| r.start >= start && r.end <= end)
        .map(|r| (r.start - start + shift)..(r.end - start + shift))
        .collect();
    (snippet, highlights)
}

/// Where a search hit was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SearchSource {
    Message {
        conversation_id: ConversationId,
        conversation_title: String,
        message_id: MessageId,
        role: Role,
    },
    /// A chunk of a document, identified by the blob it was extracted from.
    Chunk {
        chunk_id: i64,
        sha256: String,
        page_number: u32,
        line_start: u32,
        line_end: u32,
        /// Where the document was last attached (to open that conversation), if anywhere.
        #[serde(default)]
        attached: Option<DocumentHome>,
    },
}

/// The newest message a document is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentHome {
    pub conversation_id: ConversationId,
    pub conversation_title: String,
    pub message_id: MessageId,
    /// The file's name as the user attached it.
    pub file_name: String,
}

/// One ranked result: lower `rank` is better (FTS5 BM25).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub source: SearchSource,
    pub rank: f64,
    pub snippet: String,
    /// Byte ranges of `snippet` that matched the query.
    pub highlights: Vec<Range<usize>>,
}

pub(crate) fn search_messages(
    conn: &Connection,
    query: &str,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    let Some(expression) = fts_query(query) else {
        return Ok(Vec::new());
    };
    // Take the newest matches from the index (rowid order, no ranking), rank those, and join
    // the few winners, so long texts are read only for the hits that are shown.
    let mut statement = conn.prepare_cached(
        "SELECT m.id, m.conversation_id, c.title, m.role, m.content, hits.rank \
         FROM (SELECT rowid, rank FROM \
                 (SELECT rowid, rank FROM messages_fts WHERE messages_fts MATCH ?1 \
                  ORDER BY rowid DESC LIMIT ?3) \
               ORDER BY rank LIMIT ?2) AS hits \
         JOIN messages m ON m.id = hits.rowid \
         JOIN conversations c ON c.id = m.conversation_id \
         ORDER BY hits.rank",
    )?;
    let rows = statement.query_map(params![expression, limit, RANKED_MATCHES], |row| {
        let role: String = row.get(3)?;
        let content: String = row.get(4)?;
        Ok((
            MessageId(row.get(0)?),
            ConversationId(row.get(1)?),
            row.get::<_, String>(2)?,
            role,
            content,
            row.get::<_, f64>(5)?,
        ))
    })?;
    let mut hits = Vec::new();
    for row in rows {
        let (message_id, conversation_id, conversation_title, role, content, rank) = row?;
        let role = Role::parse(&role).ok_or_else(|| crate::messages::invalid(3, role))?;
        let (snippet, highlights) = snippet(&content, query);
        hits.push(SearchHit {
            source: SearchSource::Message {
                conversation_id,
                conversation_title,
                message_id,
                role,
            },
            rank,
            snippet,
            highlights,
        });
    }
    Ok(hits)
}

/// Chunks matching `query`; with `only_blobs`, only chunks of those documents (by sha256).
pub(crate) fn search_chunks(
    conn: &Connection,
    query: &str,
    only_blobs: Option<&[String]>,
    limit: u32,
) -> Result<Vec<SearchHit>> {
    let Some(expression) = fts_query(query) else {
        return Ok(Vec::new());
    };
    let filter = only_blobs
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| crate::StoreError::InvalidInput(error.to_string()))?;
    let mut statement = conn.prepare_cached(
        "SELECT d.id, d.sha256, d.page_number, d.line_start, d.line_end, d.text, hits.rank \
         FROM (SELECT rowid, rank FROM \
                 (SELECT chunks_fts.rowid AS rowid, chunks_fts.rank AS rank \
                  FROM chunks_fts JOIN document_chunks f ON f.id = chunks_fts.rowid \
                  WHERE chunks_fts MATCH ?1 \
                    AND (?2 IS NULL OR f.sha256 IN (SELECT value FROM json_each(?2))) \
                  ORDER BY chunks_fts.rowid DESC LIMIT ?4) \
               ORDER BY rank LIMIT ?3) AS hits \
         JOIN document_chunks d ON d.id = hits.rowid \
         ORDER BY hits.rank",
    )?;
    let rows = statement.query_map(params![expression, filter, limit, RANKED_MATCHES], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, u32>(2)?,
            row.get::<_, u32>(3)?,
            row.get::<_, u32>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, f64>(6)?,
        ))
    })?;
    let mut home = conn.prepare_cached(
        "SELECT m.conversation_id, c.title, m.id, a.original_name \
         FROM attachments a \
         JOIN messages m ON m.id = a.message_id \
         JOIN conversations c ON c.id = m.conversation_id \
         WHERE a.sha256 = ?1 \
         ORDER BY a.created_at_ms DESC, a.id DESC LIMIT 1",
    )?;
    let mut hits = Vec::new();
    for row in rows {
        let (chunk_id, sha256, page_number, line_start, line_end, text, rank) = row?;
        let (snippet, highlights) = snippet(&text, query);
        let attached = home
            .query_row([&sha256], |row| {
                Ok(DocumentHome {
                    conversation_id: ConversationId(row.get(0)?),
                    conversation_title: row.get(1)?,
                    message_id: MessageId(row.get(2)?),
                    file_name: row.get(3)?,
                })
            })
            .optional()?;
        hits.push(SearchHit {
            source: SearchSource::Chunk {
                chunk_id,
                sha256,
                page_number,
                line_start,
                line_end,
                attached,
            },
            rank,
            snippet,
            highlights,
        });
    }
    Ok(hits)
}

/// Messages and chunks together, best first.
pub(crate) fn search_all(conn: &Connection, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
    let mut hits = search_messages(conn, query, limit)?;
    hits.extend(search_chunks(conn, query, None, limit)?);
    hits.sort_by(|a, b| a.rank.total_cmp(&b.rank));
    hits.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_runs_become_overlapping_pairs() {
        assert_eq!(
            search_text("기호를 봐")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["기호", "호를", "봐"]
        );
        assert_eq!(search_text("hello 世界!"), "hello  世界  !");
    }

    #[test]
    fn queries_are_quoted_words_and_never_fts_syntax() {
        assert_eq!(fts_query("기호"), Some("\"기호\"".into()));
        assert_eq!(
            fts_query("NEAR(a b) \"x\" OR *"),
            Some("\"near\" \"a\" \"b\" \"x\" \"or\"".into())
        );
        assert_eq!(fts_query("를"), Some("\"를\" *".into()));
        assert_eq!(fts_query(" -- ** "), None);
    }

    #[test]
    fn snippet_highlights_every_occurrence_in_the_original_text() {
        let text = "Der Käse ist gut. Käse!";
        let (snippet, highlights) = snippet(text, "käse");
        assert_eq!(snippet, text);
        let found: Vec<&str> = highlights.iter().map(|r| &snippet[r.clone()]).collect();
        assert_eq!(found, ["Käse", "Käse"]);
    }

    #[test]
    fn snippet_of_a_long_text_starts_near_the_match() {
        let text = format!("{} needle {}", "hay ".repeat(500), "straw ".repeat(500));
        let (snippet, highlights) = snippet(&text, "needle");
        assert!(snippet.starts_with('…') && snippet.ends_with('…'));
        assert!(snippet.chars().count() <= SNIPPET_CHARS + 2);
        assert_eq!(highlights.len(), 1);
        assert_eq!(&snippet[highlights[0].clone()], "needle");
    }
}
