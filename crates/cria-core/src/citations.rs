//! Page citations: finding `[p. N]` in a reply and resolving each to the attached document and
//! page it names, using the document blocks that were in the prompt.
//!
//! The prompt marks every document as `<document attachment="ID" name=".." pages="N">` and every
//! passage with `[p. N]` (see `context.rs`). A citation resolves to the most recent document
//! block that showed that page; when none showed it (the model cited from memory of an earlier
//! turn, or guessed), to the only document that has such a page, if exactly one does. Anything
//! else stays unresolved text rather than a wrong link.

use cria_store::{AttachmentId, Citation};

/// A document block seen in the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptSource {
    pub attachment_id: i64,
    pub page_count: u32,
    /// Pages whose text (or excerpts) the block showed.
    pub shown_pages: Vec<u32>,
}

/// Document blocks in `prompt_texts`, in prompt order.
pub(crate) fn sources_in_prompt<'a>(
    prompt_texts: impl IntoIterator<Item = &'a str>,
) -> Vec<PromptSource> {
    let mut sources = Vec::new();
    for text in prompt_texts {
        let mut rest = text;
        while let Some(open) = rest.find("<document attachment=\"") {
            let after_open = &rest[open..];
            let Some(tag_end) = after_open.find('>') else {
                break;
            };
            let tag = &after_open[..tag_end];
            let body_and_rest = &after_open[tag_end + 1..];
            let body_end = body_and_rest
                .find("</document>")
                .unwrap_or(body_and_rest.len());
            let body = &body_and_rest[..body_end];
            if let Some(attachment_id) = attribute(tag, "attachment").and_then(|v| v.parse().ok()) {
                let page_count = attribute(tag, "pages")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut shown_pages: Vec<u32> = body
                    .lines()
                    .filter_map(|line| line.strip_prefix("[p. ")?.strip_suffix(']')?.parse().ok())
                    .collect();
                shown_pages.sort_unstable();
                shown_pages.dedup();
                sources.push(PromptSource {
                    attachment_id,
                    page_count,
                    shown_pages,
                });
            }
            rest = &body_and_rest[body_end..];
        }
    }
    sources
}

fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// A page reference in a reply: bytes `start..end` cite `pages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRef {
    pub start: usize,
    pub end: usize,
    pub pages: Vec<u32>,
}

/// Finds `[p. 12]`, `[p.12]`, `[pp. 3-5]`, `[p. 3, 7]`, `[page 12]` and the same in parentheses.
pub(crate) fn page_refs(reply: &str) -> Vec<PageRef> {
    let mut refs = Vec::new();
    let bytes = reply.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let close = match bytes[index] {
            b'[' => b']',
            b'(' => b')',
            _ => {
                index += 1;
                continue;
            }
        };
        let Some(length) = bytes[index + 1..]
            .iter()
            .take(40)
            .position(|&byte| byte == close)
        else {
            index += 1;
            continue;
        };
        let inner = &reply[index + 1..index + 1 + length];
        if let Some(pages) = parse_pages(inner) {
            refs.push(PageRef {
                start: index,
                end: index + length + 2,
                pages,
            });
            index += length + 2;
        } else {
            index += 1;
        }
    }
    refs
}

fn parse_pages(inner: &str) -> Option<Vec<u32>> {
    let lower = inner.trim().to_ascii_lowercase();
    let list = ["pages", "page", "pp.", "pp", "p.", "p"]
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))?;
    if !list.starts_with([' ', '.']) && !list.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut pages = Vec::new();
    for part in list.split([',', ';']) {
        let part = part
            .trim()
            .trim_start_matches("p.")
            .trim_start_matches('.')
            .trim();
        let (first, last) = match part.split_once(['-', '–']) {
            Some((first, last)) => (first.trim(), last.trim()),
            None => (part, part),
        };
        let first: u32 = first.parse().ok()?;
        let last: u32 = last.parse().ok()?;
        if first == 0 || last < first || last - first > 50 {
            return None;
        }
        pages.extend(first..=last);
    }
    (!pages.is_empty()).then_some(pages)
}

/// Resolves the page references of `reply` against the document blocks of its prompt.
pub(crate) fn resolve(reply: &str, sources: &[PromptSource]) -> Vec<Citation> {
    let mut citations = Vec::new();
    for page_ref in page_refs(reply) {
        for &page in &page_ref.pages {
            let shown = sources
                .iter()
                .rev()
                .find(|source| source.shown_pages.contains(&page));
            let source = shown.or_else(|| {
                let mut having: Vec<&PromptSource> = sources
                    .iter()
                    .filter(|source| page <= source.page_count)
                    .collect();
                having.dedup_by_key(|source| source.attachment_id);
                (having.len() == 1).then(|| having[0])
            });
            if let Some(source) = source {
                citations.push(Citation {
                    span_start: u32::try_from(page_ref.start).unwrap_or(u32::MAX),
                    span_end: u32::try_from(page_ref.end).unwrap_or(u32::MAX),
                    attachment_id: AttachmentId(source.attachment_id),
                    page_number: page,
                });
            }
        }
    }
    citations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_in_their_usual_spellings_are_found_with_their_spans() {
        let reply = "It is 42 [p. 17], see also (pp. 3-4) and [p.9; p. 11]. Not [3] or (page) or [pixel 2].";
        let refs = page_refs(reply);
        let pages: Vec<Vec<u32>> = refs.iter().map(|r| r.pages.clone()).collect();
        assert_eq!(pages, [vec![17], vec![3, 4], vec![9, 11]]);
        assert_eq!(&reply[refs[0].start..refs[0].end], "[p. 17]");
        assert_eq!(&reply[refs[1].start..refs[1].end], "(pp. 3-4)");
    }

    #[test]
    fn sources_come_from_document_blocks_in_the_prompt() {
        let prompt = "<document attachment=\"12\" name=\"a.pdf\" pages=\"30\" excerpts=\"yes\">\n\
                      [p. 17]\nfact\n[p. 3]\nother\n</document>\n\n\
                      <document attachment=\"13\" name=\"b.pdf\" pages=\"2\">\n[p. 1]\nx\n</document>\n";
        let sources = sources_in_prompt([prompt]);
        assert_eq!(
            sources,
            [
                PromptSource {
                    attachment_id: 12,
                    page_count: 30,
                    shown_pages: vec![3, 17]
                },
                PromptSource {
                    attachment_id: 13,
                    page_count: 2,
                    shown_pages: vec![1]
                },
            ]
        );
        let citations = resolve(
            "The fact [p. 17]; page one [p. 1]; unknown [p. 25]; bad [p. 99].",
            &sources,
        );
        let resolved: Vec<(i64, u32)> = citations
            .iter()
            .map(|c| (c.attachment_id.0, c.page_number))
            .collect();
        // p. 25 was not shown, but only a.pdf has 25 pages; p. 99 matches nothing.
        assert_eq!(resolved, [(12, 17), (13, 1), (12, 25)]);
    }

    #[test]
    fn a_user_cannot_forge_a_source_with_a_file_name() {
        // The renderer strips quotes and brackets from names, so a name cannot add attributes.
        let prompt = "<document attachment=\"5\" name=\"x attachment=99\" pages=\"1\">\n[p. 1]\nt\n</document>";
        assert_eq!(sources_in_prompt([prompt])[0].attachment_id, 5);
    }
}
