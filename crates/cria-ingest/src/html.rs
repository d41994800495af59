//! HTML to readable text without navigation chrome.
//!
//! A small tag scanner, not a full HTML5 parser: it only needs to find text and a handful of
//! element names, and it must never execute or keep markup. Content inside `script`, `style`,
//! `nav`, `header`, `footer`, `aside`, `noscript`, `template`, `svg`, `iframe`, `form` and
//! `button` is dropped; block elements become line breaks, headings become `#` lines, list
//! items `- ` lines; character references are decoded. The output is plain text: anything that
//! looks like markup in it came from the page's text and is shown literally by the UI.

/// Elements whose whole content is chrome or code, not the document's text.
const DROPPED: &[&str] = &[
    "script", "style", "nav", "header", "footer", "aside", "noscript", "template", "svg", "iframe",
    "form", "button", "select", "head",
];

const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "br",
    "tr",
    "table",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "hr",
    "dd",
    "dt",
    "dl",
    "figure",
    "figcaption",
    "title",
    "body",
];

/// Nesting depth of dropped elements tracked before giving up on balance (malformed pages
/// with thousands of unclosed `<nav>` tags stay linear).
const MAX_DROP_DEPTH: usize = 10_000;

pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut drop_stack: Vec<String> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(tag_start) = rest.find('<') else {
            if drop_stack.is_empty() {
                push_text(&mut out, rest);
            }
            break;
        };
        if drop_stack.is_empty() {
            push_text(&mut out, &rest[..tag_start]);
        }
        rest = &rest[tag_start..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(tag_end) = find_tag_end(rest) else {
            // An unterminated '<' is text, not a tag.
            if drop_stack.is_empty() {
                push_text(&mut out, rest);
            }
            break;
        };
        let tag = &rest[1..tag_end];
        rest = &rest[tag_end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let self_closing = tag.ends_with('/');
        if DROPPED.contains(&name.as_str()) {
            if closing {
                if let Some(position) = drop_stack.iter().rposition(|open| *open == name) {
                    drop_stack.truncate(position);
                }
            } else if !self_closing && drop_stack.len() < MAX_DROP_DEPTH {
                drop_stack.push(name.clone());
                // Raw-text elements end only at their own closing tag, whatever they contain.
                if matches!(name.as_str(), "script" | "style") {
                    let closing_tag = format!("</{name}");
                    let lowered = rest.to_ascii_lowercase();
                    match lowered.find(&closing_tag) {
                        Some(end) => rest = &rest[end..],
                        None => rest = "",
                    }
                }
            }
            continue;
        }
        if !drop_stack.is_empty() {
            continue;
        }
        if BLOCK.contains(&name.as_str()) {
            ensure_line_break(&mut out);
            if !closing {
                match name.as_str() {
                    "h1" => out.push_str("# "),
                    "h2" => out.push_str("## "),
                    "h3" => out.push_str("### "),
                    "h4" | "h5" | "h6" => out.push_str("#### "),
                    "li" => out.push_str("- "),
                    _ => {}
                }
            }
        } else if matches!(name.as_str(), "td" | "th") && !closing {
            out.push_str(" | ");
        }
    }
    tidy(&out)
}

/// Finds the `>` that ends the tag starting at `s[0] == '<'`, skipping quoted attribute values.
fn find_tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (index, character) in s.char_indices().skip(1) {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(character),
            (None, '>') => return Some(index),
            _ => {}
        }
    }
    None
}

fn push_text(out: &mut String, raw: &str) {
    let decoded = decode_entities(raw);
    let mut last_space = out.ends_with(char::is_whitespace) || out.is_empty();
    for character in decoded.chars() {
        if character.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
        } else {
            out.push(character);
            last_space = false;
        }
    }
}

fn ensure_line_break(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn tidy(out: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in out.lines().map(str::trim) {
        if line.is_empty() || line.chars().all(|c| c == '|' || c == ' ') {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n")
}

fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(index, _)| index);
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((character, end)) => {
                out.push(character);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "deg" => '°',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "times" => '×',
        "divide" => '÷',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn chrome_and_scripts_are_dropped_text_is_kept() {
        let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head>
            <body><nav><a href="/">Home</a> | <a href="/x">Menu</a></nav>
            <header>Site banner</header>
            <h1>Report &amp; summary</h1><p>First  para<br>next line</p>
            <script>if (a < b) { alert("x</p>") }</script>
            <ul><li>one</li><li>two</li></ul>
            <table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
            <p>&lt;img src=x onerror=alert(1)&gt;</p>
            <footer>Copyright</footer></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "# Report & summary\nFirst para\nnext line\n- one\n- two\n| k | v\n| a | 1\n<img src=x onerror=alert(1)>"
        );
    }
}
