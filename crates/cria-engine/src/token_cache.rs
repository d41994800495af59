//! Tokenizing only the new part of a prompt.
//!
//! Every request carries the whole conversation, rendered by the chat template into one text.
//! Tokenizing all of it again on every turn costs time that grows with the history, and for
//! Llama 4 it is not small: llama.cpp has no hand-written splitter for Llama 4's pre-tokenizer
//! regex and falls back to `std::regex`, measured at tens of microseconds per byte on this
//! project's 2-core machine (a 4 KB history took most of a follow-up's time to first token).
//!
//! Contract: [`PrefixTokenCache::tokenize`] returns exactly what tokenizing the whole text at
//! once returns. It reuses a cached prefix only up to a *checkpoint*: a byte offset where the
//! text was split while it was tokenized, so the tokens before it are known exactly. A split is
//! only made where it cannot change the result: right before a special token's text (llama.cpp
//! cuts the text at special tokens before tokenizing the pieces, so a piece that starts with
//! one tokenizes the same alone as inside the whole), where that token does not strip the
//! whitespace before it and no other special token's text spans the cut ([`SpecialTexts`]).
//! Each piece that starts at a split is checked to start with the expected special token;
//! if one does not, the text is tokenized whole and nothing is cached from it.

use std::collections::{HashMap, VecDeque};

/// How many recent texts are kept: a few conversations switched between.
const CACHED_TEXTS: usize = 4;

/// The texts of a model's special tokens (llama.cpp's control and user-defined tokens, the
/// ones it cuts the text at), to decide where a prompt may be split.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpecialTexts<T> {
    /// Text → (strips whitespace before it, token).
    by_text: HashMap<Vec<u8>, (bool, T)>,
    /// The distinct text lengths, longest first. Lookups go by length because vocabularies
    /// hold thousands of special tokens (Gemma 3) but only a few dozen lengths.
    lengths: Vec<usize>,
}

impl<T: Copy> SpecialTexts<T> {
    pub(crate) fn new(tokens: impl IntoIterator<Item = (String, bool, T)>) -> Self {
        let by_text: HashMap<Vec<u8>, (bool, T)> = tokens
            .into_iter()
            .filter(|(text, _, _)| !text.is_empty())
            .map(|(text, strips_before, token)| (text.into_bytes(), (strips_before, token)))
            .collect();
        let mut lengths: Vec<usize> = by_text.keys().map(Vec::len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        SpecialTexts { by_text, lengths }
    }

    fn special_at(&self, bytes: &[u8], at: usize, length: usize) -> Option<&(bool, T)> {
        bytes
            .get(at..at + length)
            .and_then(|candidate| self.by_text.get(candidate))
    }

    /// The special token a split at `at` would start the second piece with, when splitting
    /// there is safe; `None` otherwise.
    pub(crate) fn split_at(&self, text: &str, at: usize) -> Option<T> {
        if at == 0 || at >= text.len() || !text.is_char_boundary(at) {
            return None;
        }
        let bytes = text.as_bytes();
        // The longest special token starting here (llama.cpp matches longer texts first).
        let &(strips_before, token) = self
            .lengths
            .iter()
            .find_map(|&length| self.special_at(bytes, at, length))?;
        if strips_before {
            return None;
        }
        // No special token's text may run across the cut.
        let spans_cut = self.lengths.iter().any(|&length| {
            (1..length.min(at + 1))
                .any(|before| self.special_at(bytes, at - before, length).is_some())
        });
        (!spans_cut).then_some(token)
    }
}

struct CachedText<T> {
    text: String,
    add_special: bool,
    tokens: Vec<T>,
    /// Where the text was split, ascending: byte offset, tokens before it, and the special
    /// token the piece after it starts with.
    checkpoints: Vec<(usize, usize, T)>,
}

/// Tokenizations of recent prompt texts (see the module doc).
pub(crate) struct PrefixTokenCache<T> {
    texts: VecDeque<CachedText<T>>,
}

impl<T> Default for PrefixTokenCache<T> {
    fn default() -> Self {
        PrefixTokenCache {
            texts: VecDeque::new(),
        }
    }
}

/// What one call did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TokenizeStats {
    /// Bytes of the text whose tokens came from the cache.
    pub reused_bytes: usize,
    /// Bytes handed to the tokenizer.
    pub tokenized_bytes: usize,
}

impl<T: Copy + PartialEq> PrefixTokenCache<T> {
    /// Tokenizes `text` as `tokenize_piece(text, add_special)` would, reusing the longest
    /// cached prefix that ends at a checkpoint. `split_candidates` are offsets where the text
    /// may be cut (the ends of whole messages); those `specials` says are safe become
    /// checkpoints for later calls. `add_special` is only passed on for the first piece.
    pub(crate) fn tokenize(
        &mut self,
        text: &str,
        add_special: bool,
        split_candidates: &[usize],
        specials: &SpecialTexts<T>,
        mut tokenize_piece: impl FnMut(&str, bool) -> Vec<T>,
    ) -> (Vec<T>, TokenizeStats) {
        if let Some(position) = self
            .texts
            .iter()
            .position(|cached| cached.add_special == add_special && cached.text == text)
        {
            let cached = self
                .texts
                .remove(position)
                .expect("the position was just found");
            let tokens = cached.tokens.clone();
            self.texts.push_front(cached);
            let stats = TokenizeStats {
                reused_bytes: text.len(),
                tokenized_bytes: 0,
            };
            return (tokens, stats);
        }

        // The longest reusable prefix: a checkpoint inside the common prefix of a cached
        // text that is still a safe cut in the new text (what follows it may have changed).
        let mut tokens = Vec::new();
        let mut checkpoints = Vec::new();
        for cached in self.texts.iter().filter(|c| c.add_special == add_special) {
            let common = common_prefix_len(&cached.text, text);
            let reusable = cached.checkpoints.iter().rposition(|&(at, _, token)| {
                at <= common && specials.split_at(text, at) == Some(token)
            });
            if let Some(index) = reusable {
                let (at, count, _) = cached.checkpoints[index];
                if checkpoints.last().is_none_or(|&(best, _, _)| at > best) {
                    tokens = cached.tokens[..count].to_vec();
                    checkpoints = cached.checkpoints[..=index].to_vec();
                }
            }
        }
        let reused_bytes = checkpoints.last().map_or(0, |&(at, _, _)| at);

        let mut cuts: Vec<(usize, T)> = split_candidates
            .iter()
            .filter(|&&at| at > reused_bytes)
            .filter_map(|&at| specials.split_at(text, at).map(|token| (at, token)))
            .collect();
        cuts.sort_by_key(|&(at, _)| at);
        cuts.dedup_by_key(|&mut (at, _)| at);
        let mut tokenized_bytes = 0;
        let mut from = reused_bytes;
        let mut expected = checkpoints.last().map(|&(_, _, token)| token);
        let ends = cuts
            .iter()
            .map(|&(at, token)| (at, Some(token)))
            .chain([(text.len(), None)]);
        for (to, next_expected) in ends {
            let piece = tokenize_piece(&text[from..to], add_special && from == 0);
            tokenized_bytes += to - from;
            if let Some(expected) = expected
                && piece.first() != Some(&expected)
            {
                // The cut was not where llama.cpp cuts: tokenize the whole text instead.
                let whole = tokenize_piece(text, add_special);
                let stats = TokenizeStats {
                    reused_bytes: 0,
                    tokenized_bytes: tokenized_bytes + text.len(),
                };
                return (whole, stats);
            }
            tokens.extend(piece);
            if let Some(token) = next_expected {
                checkpoints.push((to, tokens.len(), token));
            }
            from = to;
            expected = next_expected;
        }
        self.texts.push_front(CachedText {
            text: text.to_owned(),
            add_special,
            tokens: tokens.clone(),
            checkpoints,
        });
        self.texts.truncate(CACHED_TEXTS);
        let stats = TokenizeStats {
            reused_bytes,
            tokenized_bytes,
        };
        (tokens, stats)
    }
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Special tokens of the fake vocabulary: `<|eot|>` strips the whitespace before it, and
    /// `ab<|end|` is longer than `<|end|>` and can swallow its start.
    const SPECIALS: &[(&str, bool, u32)] = &[
        ("<|start|>", false, 1),
        ("<|end|>", false, 2),
        ("<|eot|>", true, 3),
        ("<|start|>x", false, 4),
        ("ab<|end|", false, 5),
    ];

    fn specials() -> SpecialTexts<u32> {
        SpecialTexts::new(
            SPECIALS
                .iter()
                .map(|&(text, strips, id)| (text.to_owned(), strips, id)),
        )
    }

    enum Fragment {
        Raw(String),
        Special(u32),
    }

    /// A tokenizer that behaves like llama.cpp's where it matters: the text is cut at special
    /// tokens (longest text first), `<|eot|>` strips the whitespace before it, and raw text is
    /// tokenized with a context-dependent merge ("ab" is one token), so a cut inside raw text
    /// changes the result.
    fn tokenize_like_llama(text: &str, add_special: bool) -> Vec<u32> {
        let mut sorted = SPECIALS.to_vec();
        sorted.sort_by_key(|special| std::cmp::Reverse(special.0.len()));
        let mut fragments = vec![Fragment::Raw(text.to_owned())];
        for &(special, strips_before, id) in &sorted {
            let mut next = Vec::new();
            for fragment in fragments {
                let Fragment::Raw(mut raw) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(found) = raw.find(special) {
                    let mut before = raw[..found].to_owned();
                    if strips_before {
                        before.truncate(before.trim_end().len());
                    }
                    next.push(Fragment::Raw(before));
                    next.push(Fragment::Special(id));
                    raw = raw[found + special.len()..].to_owned();
                }
                next.push(Fragment::Raw(raw));
            }
            fragments = next;
        }
        let mut tokens = Vec::new();
        if add_special {
            tokens.push(0);
        }
        for fragment in fragments {
            match fragment {
                Fragment::Special(id) => tokens.push(id),
                Fragment::Raw(raw) => {
                    let chars: Vec<char> = raw.chars().collect();
                    let mut index = 0;
                    while index < chars.len() {
                        if chars[index] == 'a' && chars.get(index + 1) == Some(&'b') {
                            tokens.push(1000);
                            index += 2;
                        } else {
                            tokens.push(2000 + chars[index] as u32);
                            index += 1;
                        }
                    }
                }
            }
        }
        tokens
    }

    /// A chat template like Llama 4's: each message is `<|start|>role\ncontent<|end|>`.
    fn render(messages: &[String], generation_prompt: bool) -> String {
        let mut text = String::from("<s>");
        for (index, content) in messages.iter().enumerate() {
            let role = if index % 2 == 0 { "user" } else { "assistant" };
            text.push_str(&format!("<|start|>{role}\n{content}<|end|>"));
        }
        if generation_prompt {
            text.push_str("<|start|>assistant\n");
        }
        text
    }

    fn tokenize_cached(
        cache: &mut PrefixTokenCache<u32>,
        messages: &[String],
        extra_candidates: &[usize],
    ) -> (Vec<u32>, TokenizeStats) {
        let text = render(messages, true);
        let mut candidates = vec![render(messages, false).len()];
        // Extra proposals: any offset, or the start of some `<` (where special tokens begin,
        // so the safety checks are what decides).
        let openings: Vec<usize> = text.match_indices('<').map(|(at, _)| at).collect();
        candidates.extend(extra_candidates.iter().map(|&pick| match pick % 2 {
            0 => pick % (text.len() + 1),
            _ => openings[pick % openings.len()],
        }));
        cache.tokenize(&text, true, &candidates, &specials(), tokenize_like_llama)
    }

    #[test]
    fn a_growing_conversation_tokenizes_only_its_new_turn() {
        let mut cache = PrefixTokenCache::default();
        let mut messages = Vec::new();
        let mut new_bytes = Vec::new();
        for turn in 0..10 {
            messages.push(format!("question {turn} about abba"));
            let (tokens, stats) = tokenize_cached(&mut cache, &messages, &[]);
            let text = render(&messages, true);
            assert_eq!(tokens, tokenize_like_llama(&text, true));
            assert_eq!(stats.reused_bytes + stats.tokenized_bytes, text.len());
            new_bytes.push(stats.tokenized_bytes);
            messages.push(format!("answer {turn}: ab ab ab"));
        }
        // After the first turn, only the previous reply, the new question and the generation
        // prompt are tokenized: the same amount every turn, however long the history.
        assert!(new_bytes[1..].iter().all(|&bytes| bytes == new_bytes[1]));
        assert!(new_bytes[9] * 5 < render(&messages, true).len());
    }

    #[test]
    fn the_same_text_again_is_not_tokenized() {
        let mut cache = PrefixTokenCache::default();
        let messages = vec!["hello".to_owned()];
        let (first, _) = tokenize_cached(&mut cache, &messages, &[]);
        let (again, stats) = tokenize_cached(&mut cache, &messages, &[]);
        assert_eq!(first, again);
        assert_eq!(stats.tokenized_bytes, 0);
    }

    #[test]
    fn unsafe_cuts_are_refused() {
        let specials = specials();
        let text = "x ab<|end|>y <|eot|>z<|start|>x";
        // Inside raw text, before a token that strips the space before it, and where a longer
        // special token's text spans the cut.
        assert_eq!(specials.split_at(text, 1), None);
        assert_eq!(specials.split_at(text, text.find("<|eot|>").unwrap()), None);
        assert_eq!(specials.split_at(text, text.find("<|end|>").unwrap()), None);
        // Before a special token: safe, and the longest text there wins.
        assert_eq!(
            specials.split_at(text, text.find("<|start|>").unwrap()),
            Some(4)
        );
        assert_eq!(specials.split_at(text, 0), None);
        assert_eq!(specials.split_at(text, text.len()), None);
    }

    #[test]
    fn a_cut_llama_cpp_would_not_make_falls_back_to_the_whole_text() {
        // `<|start|>` is a safe cut by itself, but here `<|start|>x` follows and is what
        // llama.cpp matches; the piece then starts with another token than expected.
        let specials = SpecialTexts::new([("<|start|>".to_owned(), false, 1u32)]);
        let text = "ab<|start|>xab";
        let mut cache = PrefixTokenCache::default();
        let (tokens, _) = cache.tokenize(text, false, &[2], &specials, tokenize_like_llama);
        assert_eq!(tokens, tokenize_like_llama(text, false));
    }

    fn message() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("a".to_owned()),
                Just("b".to_owned()),
                Just(" ".to_owned()),
                Just("\n".to_owned()),
                Just("<|".to_owned()),
                Just("<|end|>".to_owned()),
                Just("<|eot|>".to_owned()),
                Just("<|start|>".to_owned()),
                Just("x".to_owned()),
                Just("é".to_owned()),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        /// Whatever the conversation does (grow, regenerate, edit an earlier message, switch
        /// between conversations) and whatever cut points are proposed, the tokens equal those
        /// of the whole text tokenized at once.
        #[test]
        fn cached_tokens_always_equal_whole_tokenization(
            steps in proptest::collection::vec(
                (message(), 0usize..4, proptest::collection::vec(0usize..400, 0..4)),
                1..16,
            )
        ) {
            let mut cache = PrefixTokenCache::default();
            let mut conversations: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
            for (step, (text, action, extra)) in steps.into_iter().enumerate() {
                let conversation = &mut conversations[step % 2];
                match action {
                    // Edit: cut the history back to an earlier message.
                    0 if conversation.len() > 2 => conversation.truncate(conversation.len() / 2),
                    // Regenerate: the same messages again.
                    1 => {}
                    _ => conversation.push(text),
                }
                if conversation.is_empty() {
                    conversation.push("hi".to_owned());
                }
                let (tokens, stats) = tokenize_cached(&mut cache, conversation, &extra);
                let whole = render(conversation, true);
                prop_assert_eq!(tokens, tokenize_like_llama(&whole, true));
                prop_assert!(stats.reused_bytes <= whole.len());
            }
        }
    }
}
