//! Terminal output: what is safe to print, highlights, dates, sizes and a progress line.
//!
//! Contract: text from the database or a model is shown on a terminal with its control
//! characters replaced (a stored reply must not be able to move the cursor or retitle the
//! window); piped output is the exact text. Colour and the progress line appear only on a
//! terminal, and the progress line only without `--quiet`.

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Where output goes and how it may look.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub quiet: bool,
    pub stdout_terminal: bool,
    pub stderr_terminal: bool,
}

impl Output {
    pub fn detect(quiet: bool) -> Self {
        Output {
            quiet,
            stdout_terminal: std::io::stdout().is_terminal(),
            stderr_terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Text for stdout: as stored when piped, with control characters made harmless on a
    /// terminal.
    pub fn text<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.stdout_terminal {
            std::borrow::Cow::Owned(printable(text, true))
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    }

    /// A note on stderr (stats, what was done), unless `--quiet`.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A progress line on stderr, drawn only when stderr is a terminal and not `--quiet`.
    pub fn progress(&self) -> ProgressLine {
        ProgressLine {
            enabled: self.stderr_terminal && !self.quiet,
            last_drawn: None,
            drawn: false,
        }
    }
}

/// `text` with control characters replaced by spaces (newlines and tabs kept when
/// `keep_lines`). Replacing code points one for one keeps the text's shape.
pub fn printable(text: &str, keep_lines: bool) -> String {
    text.chars()
        .map(|ch| match ch {
            '\n' | '\t' if keep_lines => ch,
            ch if ch.is_control() => ' ',
            ch => ch,
        })
        .collect()
}

const HIGHLIGHT_ON: &str = "\x1b[1;33m";
const HIGHLIGHT_OFF: &str = "\x1b[0m";

/// A search snippet on one line: highlighted byte `ranges` in bold yellow when `colour`,
/// plain otherwise. Ranges that do not fall on character boundaries are ignored.
pub fn highlighted(snippet: &str, ranges: &[Range<usize>], colour: bool) -> String {
    let mut out = String::with_capacity(snippet.len() + ranges.len() * 12);
    let starts = |index: usize| ranges.iter().any(|range| range.start == index);
    let ends = |index: usize| ranges.iter().any(|range| range.end == index);
    let mut open = false;
    for (index, ch) in snippet.char_indices() {
        if colour && open && ends(index) {
            out.push_str(HIGHLIGHT_OFF);
            open = false;
        }
        if colour && !open && starts(index) {
            out.push_str(HIGHLIGHT_ON);
            open = true;
        }
        out.push(if ch.is_control() { ' ' } else { ch });
    }
    if open {
        out.push_str(HIGHLIGHT_OFF);
    }
    out
}

/// A time in milliseconds since the epoch as `YYYY-MM-DD HH:MM` UTC.
pub fn utc_minutes(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's published algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// Bytes in decimal units with one decimal, as disks and downloads are sold.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A single self-overwriting status line on stderr.
pub struct ProgressLine {
    enabled: bool,
    last_drawn: Option<Instant>,
    drawn: bool,
}

/// Redraws at most this often, so a fast stream of events costs nothing.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

impl ProgressLine {
    /// Shows `text` (cut to one line), at most every [`REDRAW_INTERVAL`] unless `force`.
    pub fn show(&mut self, text: &str, force: bool) {
        if !self.enabled {
            return;
        }
        if !force
            && self
                .last_drawn
                .is_some_and(|at| at.elapsed() < REDRAW_INTERVAL)
        {
            return;
        }
        self.last_drawn = Some(Instant::now());
        let line: String = printable(text, false).chars().take(100).collect();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{line}");
        let _ = stderr.flush();
        self.drawn = true;
    }

    /// Removes the line, leaving the cursor at the start of an empty line.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(printable("a\x1b]0;x\x07b\nc", true), "a ]0;x b\nc");
        assert_eq!(printable("a\nb", false), "a b");
    }

    #[test]
    fn highlights_wrap_the_matched_ranges_only_in_colour() {
        let snippet = "오늘 날씨가 좋네요";
        let start = snippet.find("날씨").unwrap();
        let range = start..start + "날씨".len();
        assert_eq!(
            highlighted(snippet, std::slice::from_ref(&range), false),
            snippet
        );
        assert_eq!(
            highlighted(snippet, &[range], true),
            format!("오늘 {HIGHLIGHT_ON}날씨{HIGHLIGHT_OFF}가 좋네요")
        );
        let last = 2.."a b".len();
        assert_eq!(
            highlighted("a b", std::slice::from_ref(&last), true),
            format!("a {HIGHLIGHT_ON}b{HIGHLIGHT_OFF}")
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_minutes(0), "1970-01-01 00:00");
        assert_eq!(utc_minutes(951_782_400_000), "2000-02-29 00:00");
        assert_eq!(utc_minutes(1_798_679_100_000), "2026-12-31 01:05");
    }

    #[test]
    fn sizes_are_shown_in_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(253_113_024), "253.1 MB");
        assert_eq!(human_bytes(2_000_000_000_000), "2.0 TB");
    }
}
