//! Conversation management for the sidebar and settings: rename, pin, archive (the first step of
//! a delete the user can undo), delete, search, export, the theme setting, and the check that
//! decides which links from a reply may leave the app.
//!
//! Contract: every function validates its input and returns `CoreError::InvalidInput` with a
//! message for people; nothing here panics on user data.

use std::path::PathBuf;
use std::sync::Arc;

use cria_store::{Conversation, ExportOptions, Listing, SearchHit};

use crate::{ConversationId, CoreError, Cria, Result, blocking};

/// Search results returned at most, messages and document chunks together.
pub const MAX_SEARCH_RESULTS: u32 = 50;
/// Longest search query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// Longest address a link may have to be opened.
pub const MAX_URL_CHARS: usize = 2048;
/// Settings key of the colour theme.
pub const THEME_SETTING: &str = "ui.theme";
/// Folder under the data folder that exports are written to.
pub const EXPORTS_DIR: &str = "exports";

/// The colour theme: fixed, or following the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }

    pub fn parse(value: &str) -> Option<Theme> {
        match value {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            "system" => Some(Theme::System),
            _ => None,
        }
    }
}

/// The format of an exported conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The visible branch, for reading and sharing.
    Markdown,
    /// The whole tree, re-importable.
    Json,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Markdown => "md",
            ExportFormat::Json => "json",
        }
    }
}

impl Cria {
    pub async fn rename_conversation(&self, id: ConversationId, title: String) -> Result<()> {
        let title = title.trim().to_string();
        if title.is_empty() {
            return Err(CoreError::InvalidInput(
                "A conversation needs a title; type at least one character.".into(),
            ));
        }
        let store = Arc::clone(&self.store);
        blocking(move || store.rename_conversation(id, &title)).await
    }

    pub async fn set_conversation_pinned(&self, id: ConversationId, pinned: bool) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.set_pinned(id, pinned)).await
    }

    /// Hides a conversation from the sidebar (or brings it back). The UI archives first when the
    /// user deletes, so "undo" is a plain un-archive and nothing is lost if the app closes.
    pub async fn set_conversation_archived(
        &self,
        id: ConversationId,
        archived: bool,
    ) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.set_archived(id, archived)).await
    }

    /// Deletes a conversation, its messages and attachment files no other message uses.
    pub async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.delete_conversation(id)).await
    }

    /// Messages and document text matching `query` (any language, Korean included), best first.
    /// An empty query finds nothing.
    pub async fn search(&self, query: String) -> Result<Vec<SearchHit>> {
        self.search_limited(query, MAX_SEARCH_RESULTS).await
    }

    /// [`Self::search`] returning at most `limit` hits (1 to [`MAX_SEARCH_RESULTS`]).
    pub async fn search_limited(&self, query: String, limit: u32) -> Result<Vec<SearchHit>> {
        if !(1..=MAX_SEARCH_RESULTS).contains(&limit) {
            return Err(CoreError::InvalidInput(format!(
                "The number of search results must be between 1 and {MAX_SEARCH_RESULTS}."
            )));
        }
        let query = query.trim().to_string();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(CoreError::InvalidInput(format!(
                "The search is too long; use at most {MAX_QUERY_CHARS} characters."
            )));
        }
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let store = Arc::clone(&self.store);
        blocking(move || store.search(&query, limit)).await
    }

    /// Conversations of one listing (the sidebar's, the archived ones, or all), pinned first,
    /// then most recently updated.
    pub async fn list_conversations_in(
        &self,
        listing: Listing,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Conversation>> {
        let store = Arc::clone(&self.store);
        blocking(move || store.list_conversations_in(listing, limit, offset)).await
    }

    /// One conversation's title, flags and times.
    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        let store = Arc::clone(&self.store);
        blocking(move || store.get_conversation(id)).await
    }

    /// A conversation as export text (Markdown: the visible branch; JSON: the whole tree,
    /// re-importable), for a caller that writes it somewhere itself.
    pub async fn export_conversation_text(
        &self,
        id: ConversationId,
        format: ExportFormat,
    ) -> Result<String> {
        let store = Arc::clone(&self.store);
        blocking(move || match format {
            ExportFormat::Markdown => store.export_markdown(id),
            ExportFormat::Json => store.export_json_string(id, ExportOptions::default()),
        })
        .await
    }

    /// Imports a JSON export (see [`ExportFormat::Json`]) as a new conversation, all or
    /// nothing, and returns its id. The file is untrusted: the store caps and checks it.
    pub async fn import_conversation(&self, file: PathBuf) -> Result<ConversationId> {
        let opened = std::fs::File::open(&file).map_err(|error| {
            CoreError::InvalidInput(format!(
                "Cannot read {}: {error}. Check the path and that the file is readable.",
                file.display()
            ))
        })?;
        let is_file = opened
            .metadata()
            .map(|meta| meta.is_file())
            .unwrap_or(false);
        if !is_file {
            return Err(CoreError::InvalidInput(format!(
                "{} is not a file; give the path of a conversation exported as JSON.",
                file.display()
            )));
        }
        let store = Arc::clone(&self.store);
        blocking(move || store.import_json(std::io::BufReader::new(opened))).await
    }

    /// Writes a conversation to `<data folder>/exports/` and returns the file's path. Existing
    /// files are never overwritten: a number is added to the name instead.
    pub async fn export_conversation(
        &self,
        id: ConversationId,
        format: ExportFormat,
    ) -> Result<PathBuf> {
        let store = Arc::clone(&self.store);
        let folder = self.paths.data_dir().join(EXPORTS_DIR);
        blocking(move || {
            let conversation = store.get_conversation(id)?;
            let text = match format {
                ExportFormat::Markdown => store.export_markdown(id)?,
                ExportFormat::Json => store.export_json_string(id, ExportOptions::default())?,
            };
            Ok::<_, cria_store::StoreError>((conversation.title, text))
        })
        .await
        .and_then(|(title, text)| write_export(&folder, &title, id, format, &text))
    }

    /// The colour theme the user chose; `System` when none was chosen or the value is unknown.
    pub async fn theme(&self) -> Result<Theme> {
        let store = Arc::clone(&self.store);
        let value = blocking(move || store.get_setting(THEME_SETTING)).await?;
        Ok(value.as_deref().and_then(Theme::parse).unwrap_or_default())
    }

    pub async fn set_theme(&self, theme: Theme) -> Result<()> {
        let store = Arc::clone(&self.store);
        blocking(move || store.set_setting(THEME_SETTING, theme.as_str())).await
    }
}

fn write_export(
    folder: &std::path::Path,
    title: &str,
    id: ConversationId,
    format: ExportFormat,
    text: &str,
) -> Result<PathBuf> {
    let cannot = |error: std::io::Error| {
        CoreError::InvalidInput(format!(
            "Could not write the export to {}: {error}. Check that the folder is writable.",
            folder.display()
        ))
    };
    std::fs::create_dir_all(folder).map_err(cannot)?;
    let stem = format!("{}-{}", file_stem(title), id.0);
    for attempt in 0..1000u32 {
        let name = if attempt == 0 {
            format!("{stem}.{}", format.extension())
        } else {
            format!("{stem}-{attempt}.{}", format.extension())
        };
        let path = folder.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(text.as_bytes()).map_err(cannot)?;
                file.sync_all().map_err(cannot)?;
                return Ok(path);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(cannot(error)),
        }
    }
    Err(CoreError::InvalidInput(format!(
        "Too many exports of this conversation in {}; remove some and try again.",
        folder.display()
    )))
}

/// A file name from a title: letters (any script), digits, `-` and `_`; at most 60 characters.
fn file_stem(title: &str) -> String {
    let mut stem = String::new();
    for character in title.chars() {
        if stem.chars().count() >= 60 {
            break;
        }
        if character.is_alphanumeric() || character == '-' || character == '_' {
            stem.push(character);
        } else if !stem.ends_with('-') && !stem.is_empty() {
            stem.push('-');
        }
    }
    let stem = stem.trim_end_matches('-').to_string();
    if stem.is_empty() {
        "conversation".into()
    } else {
        stem
    }
}

/// Checks that a link from a reply may be opened outside the app: `https://host…` or
/// `mailto:…`, no whitespace or control characters, at most [`MAX_URL_CHARS`]. Returns it
/// trimmed. Everything else (javascript:, data:, file:, smb:, http:, …) is refused.
pub fn checked_external_url(url: &str) -> Result<String> {
    let url = url.trim();
    let refuse = |why: &str| {
        Err(CoreError::InvalidInput(format!(
            "This link was not opened: {why}"
        )))
    };
    if url.chars().count() > MAX_URL_CHARS {
        return refuse("it is too long.");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains spaces or control characters.");
    }
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.starts_with('@') || host.starts_with(':') {
            return refuse("it has no host.");
        }
        return Ok(url.to_string());
    }
    if let Some(rest) = lower.strip_prefix("mailto:")
        && !rest.is_empty()
    {
        return Ok(url.to_string());
    }
    refuse("only https and mailto links open outside Cria.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppPaths;

    fn cria() -> (tempfile::TempDir, Cria) {
        let dir = tempfile::tempdir().expect("temp dir");
        let cria = Cria::open_with_engine(
            AppPaths::in_dir(dir.path().to_path_buf()),
            Arc::new(cria_engine::NoModelEngine),
        )
        .expect("open");
        (dir, cria)
    }

    fn conversation(cria: &Cria, title: &str, text: &str) -> ConversationId {
        let conversation = cria.store.create_conversation(title).expect("create");
        cria.store
            .append_message(
                conversation.id,
                None,
                cria_store::Role::User,
                text,
                cria_store::MessageStatus::Complete,
            )
            .expect("append");
        conversation.id
    }

    #[tokio::test]
    async fn renames_pins_archives_and_deletes() {
        let (_dir, cria) = cria();
        let first = conversation(&cria, "First", "hello");
        let second = conversation(&cria, "Second", "world");
        cria.rename_conversation(first, "  Renamed  ".into())
            .await
            .unwrap();
        cria.set_conversation_pinned(first, true).await.unwrap();
        let listed = cria.list_conversations(10, 0).await.unwrap();
        assert_eq!(listed[0].id, first);
        assert_eq!(listed[0].title, "Renamed");
        assert!(listed[0].pinned);

        cria.set_conversation_archived(second, true).await.unwrap();
        let ids: Vec<_> = cria
            .list_conversations(10, 0)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, vec![first]);
        cria.set_conversation_archived(second, false).await.unwrap();
        assert_eq!(cria.list_conversations(10, 0).await.unwrap().len(), 2);

        cria.delete_conversation(second).await.unwrap();
        assert!(matches!(
            cria.store.get_conversation(second),
            Err(cria_store::StoreError::NotFound { .. })
        ));
        assert_eq!(cria.list_conversations(10, 0).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn exported_text_imports_as_a_new_equal_conversation() {
        let (dir, cria) = cria();
        let id = conversation(&cria, "Trip", "오늘 날씨");
        let json = cria
            .export_conversation_text(id, ExportFormat::Json)
            .await
            .unwrap();
        let file = dir.path().join("trip.json");
        std::fs::write(&file, &json).unwrap();
        let copy = cria.import_conversation(file).await.unwrap();
        assert_ne!(copy, id);
        assert_eq!(
            cria.export_conversation_text(copy, ExportFormat::Json)
                .await
                .unwrap(),
            json
        );
        let markdown = cria
            .export_conversation_text(copy, ExportFormat::Markdown)
            .await
            .unwrap();
        assert!(markdown.contains("오늘 날씨"), "{markdown}");
    }

    #[tokio::test]
    async fn imports_refuse_folders_missing_files_and_garbage() {
        let (dir, cria) = cria();
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, "{ not an export").unwrap();
        for path in [
            dir.path().to_path_buf(),
            dir.path().join("missing.json"),
            garbage,
        ] {
            assert!(
                cria.import_conversation(path.clone()).await.is_err(),
                "{path:?}"
            );
        }
        assert!(cria.list_conversations(10, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn listings_and_search_limits() {
        let (_dir, cria) = cria();
        let first = conversation(&cria, "First", "apple pie");
        conversation(&cria, "Second", "apple tart");
        cria.set_conversation_archived(first, true).await.unwrap();
        let archived = cria
            .list_conversations_in(Listing::Archived, 10, 0)
            .await
            .unwrap();
        assert_eq!(archived.len(), 1);
        assert_eq!(archived[0].id, first);
        assert_eq!(
            cria.list_conversations_in(Listing::All, 10, 0)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(cria.conversation(first).await.unwrap().title, "First");
        assert_eq!(
            cria.search_limited("apple".into(), 1).await.unwrap().len(),
            1
        );
        for limit in [0, MAX_SEARCH_RESULTS + 1] {
            assert!(matches!(
                cria.search_limited("apple".into(), limit).await,
                Err(CoreError::InvalidInput(_))
            ));
        }
    }

    #[tokio::test]
    async fn refuses_an_empty_title() {
        let (_dir, cria) = cria();
        let id = conversation(&cria, "Title", "x");
        let error = cria
            .rename_conversation(id, "   ".into())
            .await
            .unwrap_err();
        assert!(matches!(error, CoreError::InvalidInput(_)));
    }

    #[tokio::test]
    async fn searches_korean_and_bounds_the_query() {
        let (_dir, cria) = cria();
        conversation(&cria, "Korean", "오늘 날씨가 좋네요");
        conversation(&cria, "Other", "nothing to see");
        let hits = cria.search("날씨".into()).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert!(!hits[0].highlights.is_empty());
        assert!(cria.search("  ".into()).await.unwrap().is_empty());
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(matches!(
            cria.search(long).await,
            Err(CoreError::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn exports_to_the_exports_folder_without_overwriting() {
        let (dir, cria) = cria();
        let id = conversation(&cria, "Plans: 2026 / Q1", "ship it");
        let first = cria
            .export_conversation(id, ExportFormat::Markdown)
            .await
            .unwrap();
        let second = cria
            .export_conversation(id, ExportFormat::Markdown)
            .await
            .unwrap();
        let json = cria
            .export_conversation(id, ExportFormat::Json)
            .await
            .unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with(dir.path().join(EXPORTS_DIR)));
        assert_eq!(
            first.file_name().unwrap().to_str().unwrap(),
            format!("Plans-2026-Q1-{}.md", id.0)
        );
        assert!(std::fs::read_to_string(&first).unwrap().contains("ship it"));
        let json = std::fs::read_to_string(json).unwrap();
        assert!(json.trim_start().starts_with('{') && json.contains("ship it"));
    }

    #[tokio::test]
    async fn export_of_a_missing_conversation_is_not_found() {
        let (_dir, cria) = cria();
        let error = cria
            .export_conversation(ConversationId(999), ExportFormat::Json)
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            CoreError::Store(cria_store::StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn remembers_the_theme() {
        let (_dir, cria) = cria();
        assert_eq!(cria.theme().await.unwrap(), Theme::System);
        cria.set_theme(Theme::Dark).await.unwrap();
        assert_eq!(cria.theme().await.unwrap(), Theme::Dark);
    }

    #[test]
    fn only_https_and_mailto_links_may_open() {
        assert_eq!(
            checked_external_url(" https://example.org/a?b ").unwrap(),
            "https://example.org/a?b"
        );
        assert!(checked_external_url("mailto:a@example.org").is_ok());
        assert!(checked_external_url("HTTPS://Example.org").is_ok());
        for url in [
            "http://example.org",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "smb://host/share",
            "https://",
            "https://exa mple.org",
            "https://example.org/\nmore",
            "mailto:",
            "",
        ] {
            assert!(
                checked_external_url(url).is_err(),
                "{url:?} must be refused"
            );
        }
        assert!(
            checked_external_url(&format!("https://e.org/{}", "a".repeat(MAX_URL_CHARS))).is_err()
        );
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("../../etc/passwd"), "etc-passwd");
        assert_eq!(file_stem("회의 메모"), "회의-메모");
        assert_eq!(file_stem("///"), "conversation");
    }
}
