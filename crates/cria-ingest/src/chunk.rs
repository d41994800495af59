//! Splitting page texts into retrieval chunks that can be cited by page and line.
//!
//! Sizes: a chunk holds whole lines up to about 1,200 characters (~300 Llama tokens for
//! English, fewer characters' worth for Korean), and the next chunk repeats the last ~200
//! characters' worth of lines. Lexical retrieval (FTS5 BM25) ranks best on passages of a few
//! sentences: long enough to hold a claim and its context, short enough that eight of them fit
//! a prompt beside a conversation. The overlap keeps a sentence cut at a boundary findable.
//! Chunks never span pages, so every citation names exactly one page; `line_start..=line_end`
//! are 1-based line numbers within that page. A single line longer than the maximum is split
//! at character boundaries into several chunks that all cite that line.

use crate::Page;
use serde::{Deserialize, Serialize};

/// A retrieval chunk with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// 1-based page number.
    pub page: u32,
    /// 1-based first line on that page.
    pub line_start: u32,
    /// 1-based last line (inclusive).
    pub line_end: u32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChunkOptions {
    /// Target maximum characters per chunk.
    pub max_chars: usize,
    /// Characters of trailing lines repeated at the start of the next chunk.
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            max_chars: 1_200,
            overlap_chars: 200,
        }
    }
}

pub fn chunk_pages(pages: &[Page], options: &ChunkOptions) -> Vec<Chunk> {
    let max_chars = options.max_chars.max(16);
    let overlap_chars = options.overlap_chars.min(max_chars / 2);
    let mut chunks = Vec::new();
    for page in pages {
        // (line number, text) of lines that carry text; blank lines only separate.
        let lines: Vec<(u32, &str)> = page
            .text
            .lines()
            .enumerate()
            .map(|(index, line)| {
                (
                    u32::try_from(index + 1).unwrap_or(u32::MAX),
                    line.trim_end(),
                )
            })
            .filter(|(_, line)| !line.trim().is_empty())
            .collect();
        let mut start = 0;
        while start < lines.len() {
            let (first_number, first_line) = lines[start];
            if first_line.chars().count() > max_chars {
                for piece in split_chars(first_line, max_chars) {
                    chunks.push(Chunk {
                        page: page.number,
                        line_start: first_number,
                        line_end: first_number,
                        text: piece,
                    });
                }
                start += 1;
                continue;
            }
            let mut end = start;
            let mut size = first_line.chars().count();
            while end + 1 < lines.len() {
                let next = lines[end + 1].1.chars().count();
                if size + 1 + next > max_chars {
                    break;
                }
                size += 1 + next;
                end += 1;
            }
            let text = lines[start..=end]
                .iter()
                .map(|(_, line)| *line)
                .collect::<Vec<_>>()
                .join("\n");
            chunks.push(Chunk {
                page: page.number,
                line_start: first_number,
                line_end: lines[end].0,
                text,
            });
            if end + 1 >= lines.len() {
                break;
            }
            // Step back over trailing lines worth at most `overlap_chars`, always advancing.
            let mut next_start = end + 1;
            let mut overlap = 0;
            while next_start > start + 1 {
                let candidate = lines[next_start - 1].1.chars().count();
                if overlap + candidate > overlap_chars {
                    break;
                }
                overlap += candidate;
                next_start -= 1;
            }
            start = next_start;
        }
    }
    chunks
}

fn split_chars(line: &str, max_chars: usize) -> Vec<String> {
    let characters: Vec<char> = line.chars().collect();
    characters
        .chunks(max_chars)
        .map(|piece| piece.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(number: u32, text: &str) -> Page {
        Page {
            number,
            text: text.to_string(),
            text_layer_usable: true,
            image: None,
        }
    }

    #[test]
    fn chunks_cite_their_lines_and_overlap() {
        let text: String = (1..=30)
            .map(|n| format!("line number {n:02} of the page\n"))
            .collect();
        let options = ChunkOptions {
            max_chars: 200,
            overlap_chars: 60,
        };
        let chunks = chunk_pages(&[page(3, &text)], &options);
        assert!(chunks.len() > 3);
        for chunk in &chunks {
            assert_eq!(chunk.page, 3);
            assert!(chunk.text.chars().count() <= 200);
            let first = chunk.text.lines().next().expect("non-empty chunk");
            assert_eq!(
                first,
                format!("line number {:02} of the page", chunk.line_start)
            );
            let last = chunk.text.lines().last().expect("non-empty chunk");
            assert_eq!(
                last,
                format!("line number {:02} of the page", chunk.line_end)
            );
        }
        for pair in chunks.windows(2) {
            assert!(
                pair[1].line_start <= pair[0].line_end,
                "consecutive chunks overlap"
            );
            assert!(pair[1].line_start > pair[0].line_start, "chunking advances");
        }
        assert_eq!(chunks.last().map(|chunk| chunk.line_end), Some(30));
    }

    #[test]
    fn long_lines_split_and_pages_never_mix() {
        let long = "가".repeat(2_500);
        let chunks = chunk_pages(
            &[page(1, &long), page(2, "\n\nshort\n")],
            &ChunkOptions::default(),
        );
        assert_eq!(chunks.len(), 4);
        assert!(
            chunks[..3]
                .iter()
                .all(|c| c.page == 1 && c.line_start == 1 && c.line_end == 1)
        );
        assert_eq!(chunks[3].line_start, 3);
        assert_eq!(chunks[3].text, "short");
    }
}
