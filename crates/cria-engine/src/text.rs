//! Pure text helpers of generation: turning token bytes into valid UTF-8 pieces, holding back
//! text that may be the start of a stop string, the plain prompt format for models without a
//! chat template, and image content hashes. No llama.cpp here, so all of it is unit-tested.

use sha2::{Digest, Sha256};

use crate::{ChatMessage, ChatRole};

/// Collects token bytes and releases only complete UTF-8 characters.
///
/// A token may end in the middle of a multi-byte character (byte-level BPE does this for
/// emoji and CJK); the incomplete tail waits for the next token. Bytes that can never become
/// valid UTF-8 are replaced by U+FFFD so the stream cannot stall.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(valid) => {
                    out.push_str(valid);
                    self.pending.clear();
                    return out;
                }
                Err(error) => {
                    let valid_up_to = error.valid_up_to();
                    out.push_str(
                        std::str::from_utf8(&self.pending[..valid_up_to])
                            .expect("prefix validated by from_utf8"),
                    );
                    match error.error_len() {
                        // Incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid_up_to);
                            return out;
                        }
                        Some(invalid_len) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid_up_to + invalid_len);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// Finds stop strings in streamed text and holds back any tail that could still become one.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum StopScan {
    /// Safe to stream now (may be empty while a partial match is held back).
    Continue(String),
    /// A stop string was found: stream this text, then end the generation.
    Stopped(String),
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops
                .iter()
                .filter(|stop| !stop.is_empty())
                .cloned()
                .collect(),
            held: String::new(),
        }
    }

    pub fn push(&mut self, piece: &str) -> StopScan {
        self.held.push_str(piece);
        let earliest = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(start) = earliest {
            let before = self.held[..start].to_string();
            self.held.clear();
            return StopScan::Stopped(before);
        }
        // Hold back the longest tail that is a proper prefix of some stop string.
        let mut keep_from = self.held.len();
        for (index, _) in self.held.char_indices() {
            let tail = &self.held[index..];
            if self.stops.iter().any(|stop| stop.starts_with(tail)) {
                keep_from = index;
                break;
            }
        }
        let released = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        StopScan::Continue(released)
    }

    /// Ends the stream without a stop string: held-back text is part of the reply after all.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The prompt for a model without any usable chat template: labelled turns, ending with the
/// assistant's label so the model continues as the assistant. `media_marker` is placed once
/// per image, before the message's text.
pub fn render_plain_prompt(messages: &[ChatMessage], media_marker: &str) -> String {
    let mut prompt = String::new();
    for message in messages {
        let label = match message.role {
            ChatRole::System => "System",
            ChatRole::User => "User",
            ChatRole::Assistant => "Assistant",
        };
        prompt.push_str(label);
        prompt.push_str(": ");
        prompt.push_str(&message_content(message, media_marker));
        prompt.push_str("\n\n");
    }
    prompt.push_str("Assistant:");
    prompt
}

/// A message's text with one media marker per image in front (where mtmd inserts the image).
pub(crate) fn message_content(message: &ChatMessage, media_marker: &str) -> String {
    let mut content = String::new();
    for _ in &message.images {
        content.push_str(media_marker);
        content.push('\n');
    }
    content.push_str(&message.content);
    content
}

/// SHA-256 over the size and pixels, hex: equal hashes mean equal images.
pub(crate) fn content_hash(width: u32, height: u32, rgb: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(width.to_le_bytes());
    hasher.update(height.to_le_bytes());
    hasher.update(rgb);
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_tokens_is_released_whole() {
        let mut stream = Utf8Stream::default();
        let crab = "🦀".as_bytes();
        assert_eq!(stream.push(&crab[..1]), "");
        assert_eq!(stream.push(&crab[1..3]), "");
        assert_eq!(stream.push(&crab[3..]), "🦀");
        assert_eq!(stream.push(b"ok"), "ok");
        assert_eq!(stream.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_without_stalling() {
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(stream.push(&"é".as_bytes()[..1]), "");
        assert_eq!(stream.finish(), "\u{fffd}");
    }

    #[test]
    fn a_stop_string_split_over_pieces_is_never_streamed() {
        let mut matcher = StopMatcher::new(&["</end>".to_string()]);
        assert_eq!(
            matcher.push("Hello </"),
            StopScan::Continue("Hello ".into())
        );
        assert_eq!(matcher.push("en"), StopScan::Continue(String::new()));
        assert_eq!(matcher.push("d> more"), StopScan::Stopped(String::new()));
    }

    #[test]
    fn a_false_start_of_a_stop_string_is_released() {
        let mut matcher = StopMatcher::new(&["STOP".to_string()]);
        assert_eq!(matcher.push("ST"), StopScan::Continue(String::new()));
        assert_eq!(matcher.push("ay"), StopScan::Continue("STay".into()));
        assert_eq!(matcher.push("S"), StopScan::Continue(String::new()));
        assert_eq!(matcher.finish(), "S");
    }

    #[test]
    fn the_earliest_of_several_stop_strings_wins() {
        let mut matcher = StopMatcher::new(&["b c".to_string(), "a b".to_string()]);
        assert_eq!(matcher.push("x a b c"), StopScan::Stopped("x ".into()));
    }

    #[test]
    fn no_stop_strings_streams_everything() {
        let mut matcher = StopMatcher::new(&[String::new()]);
        assert_eq!(matcher.push("abc"), StopScan::Continue("abc".into()));
    }

    #[test]
    fn the_plain_prompt_labels_turns_and_places_images_first() {
        let mut user = ChatMessage::text(ChatRole::User, "What is this?");
        user.images
            .push(crate::ImageInput::from_rgb(1, 1, vec![0, 0, 0]).expect("a valid 1x1 image"));
        let prompt = render_plain_prompt(
            &[ChatMessage::text(ChatRole::System, "Be brief."), user],
            "<m>",
        );
        assert_eq!(
            prompt,
            "System: Be brief.\n\nUser: <m>\nWhat is this?\n\nAssistant:"
        );
    }

    #[test]
    fn equal_pixels_hash_equal_and_different_sizes_differ() {
        let a = content_hash(2, 1, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(a, content_hash(2, 1, &[1, 2, 3, 4, 5, 6]));
        assert_ne!(a, content_hash(1, 2, &[1, 2, 3, 4, 5, 6]));
        assert_ne!(a, content_hash(2, 1, &[1, 2, 3, 4, 5, 7]));
        assert_eq!(a.len(), 64);
    }
}
