//! Files a user attaches to a message: parsed in an ingest worker process first (a hostile
//! file costs that process, never the app), stored only when every file of the message parsed,
//! so a bad file leaves nothing behind.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use cria_ingest::{DocumentKind, IngestClient, IngestOptions, IngestedDocument, PreparedImage};
use cria_store::{
    Attachment, AttachmentKind, AttachmentMeta, DocumentPage, MessageId, NewChunk, Store,
};
use serde::Serialize;

use crate::{CoreError, Cria, Result, blocking};

/// Attachments one message may carry.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;

/// A file to attach: a path the user chose or dropped, or bytes (a pasted screenshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentInput {
    Path(PathBuf),
    Bytes { name: String, bytes: Vec<u8> },
}

impl AttachmentInput {
    fn display_name(&self) -> String {
        match self {
            AttachmentInput::Path(path) => path_display_name(path),
            AttachmentInput::Bytes { name, .. } => name.clone(),
        }
    }
}

fn path_display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// How far parsing the attachments has got (for a progress bar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestProgress {
    pub file_name: String,
    pub done_pages: u32,
    pub total_pages: u32,
}

/// What a file holds, read when the user attaches it rather than when the message is sent: its
/// chip shows the thumbnail, the pages and the scans at once, a file that cannot be attached
/// (a folder, a link dragged from a browser, a password-protected PDF, a bomb) is refused while
/// the user is still writing, and the send that follows does not read it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentPreview {
    pub name: String,
    pub kind: AttachmentKind,
    pub size_bytes: u64,
    /// Pages (1 for an image or a text file), as the sent attachment will count them.
    pub page_count: u32,
    /// Pages without a usable text layer, which go to the model as images.
    pub scanned_pages: u32,
    /// A JPEG re-encoded by the ingest worker (the window never loads the user's own bytes):
    /// the picture, or the first scanned page.
    pub thumbnail: Option<Vec<u8>>,
}

impl AttachmentPreview {
    fn of(name: String, size_bytes: u64, document: &IngestedDocument) -> Self {
        let kind = attachment_kind(document.kind);
        // Counted as the stored attachment's summary counts them: a picture stores no pages,
        // so it is one page and no scan (its pixels go to the model as the picture itself).
        let (page_count, scanned_pages) = match kind {
            AttachmentKind::Image => (1, 0),
            _ => (
                document.pages.len().max(1),
                document
                    .pages
                    .iter()
                    .filter(|page| !page.text_layer_usable)
                    .count(),
            ),
        };
        AttachmentPreview {
            name,
            kind,
            size_bytes,
            page_count: u32::try_from(page_count).unwrap_or(u32::MAX),
            scanned_pages: u32::try_from(scanned_pages).unwrap_or(u32::MAX),
            thumbnail: thumbnail_of(document).map(|thumbnail| thumbnail.bytes.clone()),
        }
    }
}

/// Files parsed by [`Cria::preview_attachment`], waiting for the message they were attached
/// to. A send takes its file out (so the cache only holds what sits in the composer); the
/// oldest go first past [`PARSED_FILES_KEPT`] files or [`PARSED_FILES_BYTES`].
#[derive(Default)]
pub(crate) struct ParsedFiles {
    entries: Mutex<VecDeque<(FileKey, Arc<IngestedDocument>)>>,
}

/// Files kept: two messages' worth, for a user who drops files and then changes their mind.
const PARSED_FILES_KEPT: usize = 2 * MAX_ATTACHMENTS_PER_MESSAGE;

/// Memory the kept files may take (prepared images dominate: ~3 MB per picture or scan).
const PARSED_FILES_BYTES: u64 = 128 * 1024 * 1024;

/// A file as it was when it was parsed: a later change of size or modification time means
/// the parse no longer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileKey {
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

impl ParsedFiles {
    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<(FileKey, Arc<IngestedDocument>)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The parse of `key` when the file has not changed since; it stays for the next caller.
    fn peek(&self, key: &FileKey) -> Option<Arc<IngestedDocument>> {
        let entries = self.entries();
        let (_, document) = entries.iter().find(|(kept, _)| kept == key)?;
        Some(Arc::clone(document))
    }

    /// The parse of `key` when the file has not changed since, taken out of the cache. A parse
    /// of an older version of the file is dropped.
    fn take(&self, key: &FileKey) -> Option<Arc<IngestedDocument>> {
        let mut entries = self.entries();
        let position = entries.iter().position(|(kept, _)| kept.path == key.path)?;
        let (kept, document) = entries.remove(position)?;
        (kept == *key).then_some(document)
    }

    fn put(&self, key: FileKey, document: Arc<IngestedDocument>) {
        let mut entries = self.entries();
        entries.retain(|(kept, _)| kept.path != key.path);
        entries.push_back((key, document));
        let mut total: u64 = entries
            .iter()
            .map(|(_, kept)| approximate_bytes(kept))
            .sum();
        while entries.len() > PARSED_FILES_KEPT || (total > PARSED_FILES_BYTES && entries.len() > 1)
        {
            let Some((_, oldest)) = entries.pop_front() else {
                break;
            };
            total -= approximate_bytes(&oldest);
        }
    }
}

/// Roughly what a parsed file holds in memory: its texts and its prepared pictures.
fn approximate_bytes(document: &IngestedDocument) -> u64 {
    let image_bytes =
        |image: &PreparedImage| (image.rgb.len() + image.thumbnail.bytes.len()) as u64;
    let pages: u64 = document
        .pages
        .iter()
        .map(|page| page.text.len() as u64 + page.image.as_ref().map_or(0, image_bytes))
        .sum();
    let chunks: u64 = document
        .chunks
        .iter()
        .map(|chunk| chunk.text.len() as u64)
        .sum();
    pages + chunks + document.image.as_ref().map_or(0, image_bytes)
}

impl Cria {
    /// Parses a file the user has just attached (in the ingest worker, as a send would) and
    /// says what it holds; the parse is kept for the send. `on_progress` hears how far a long
    /// document is. Errors are the ones a send would give for this file. At most two files
    /// are parsed at once, however many were dropped; `cancel` (the user took the file off
    /// again) frees the slot at once, stopping the worker if it is parsing.
    pub async fn preview_attachment(
        &self,
        path: PathBuf,
        cancel: cria_ingest::CancelFlag,
        mut on_progress: impl FnMut(IngestProgress) + Send,
    ) -> Result<AttachmentPreview> {
        let name = cria_store::clean_name(&path_display_name(&path));
        let cancelled = || CoreError::Attachment {
            file: name.clone(),
            reason: "reading it was cancelled".into(),
        };
        // The flag is polled while the preview waits for a slot (keeping its place in the
        // queue): a cancelled preview must not wait behind others.
        let acquire = self.preview_slots.acquire();
        tokio::pin!(acquire);
        let _slot = loop {
            tokio::select! {
                slot = &mut acquire => {
                    break slot.map_err(|error| CoreError::Internal(error.to_string()))?;
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                    if cancel.is_cancelled() {
                        return Err(cancelled());
                    }
                }
            }
        };
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let client = self.ingest_client()?;
        let parsed_files = Arc::clone(&self.parsed_files);
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let parsing = blocking(move || {
            let key = checked_file(&path)?;
            let (source, size) = (key.path.clone(), key.size);
            let document = match parsed_files.peek(&key) {
                Some(document) => document,
                None => {
                    let document =
                        Arc::new(ingest(&client, &source, &name, &cancel, &mut |progress| {
                            let _ = sender.send(progress);
                        })?);
                    parsed_files.put(key, Arc::clone(&document));
                    document
                }
            };
            Ok::<_, CoreError>(AttachmentPreview::of(name, size, &document))
        });
        tokio::pin!(parsing);
        loop {
            tokio::select! {
                // Progress first: every page reported reaches the caller before the answer.
                biased;
                progress = receiver.recv() => match progress {
                    Some(progress) => on_progress(progress),
                    None => return parsing.await,
                },
                result = &mut parsing => return result,
            }
        }
    }
}

/// A parsed file waiting to be stored with its message.
pub(crate) struct Parsed {
    source: PathBuf,
    /// Removed after storing (pasted bytes are written to a private temporary file).
    _temp: Option<tempfile::NamedTempFile>,
    name: String,
    document: Arc<IngestedDocument>,
}

/// Parses `source` in the ingest worker; an error names the file.
fn ingest(
    client: &IngestClient,
    source: &Path,
    name: &str,
    cancel: &cria_ingest::CancelFlag,
    on_progress: &mut dyn FnMut(IngestProgress),
) -> Result<IngestedDocument> {
    client
        .ingest_with(source, &IngestOptions::default(), cancel, &mut |progress| {
            on_progress(IngestProgress {
                file_name: name.to_string(),
                done_pages: progress.done_pages,
                total_pages: progress.total_pages,
            })
        })
        .map_err(|error| CoreError::Attachment {
            file: name.to_string(),
            reason: error.to_string(),
        })
}

/// Parses every attachment; the first failure names its file and nothing is kept. A file
/// already parsed for its chip ([`Cria::preview_attachment`]) and unchanged since is not read
/// again.
pub(crate) fn parse_all(
    client: &IngestClient,
    parsed_files: &ParsedFiles,
    temp_dir: &Path,
    inputs: &[AttachmentInput],
    on_progress: &mut dyn FnMut(IngestProgress),
) -> Result<Vec<Parsed>> {
    if inputs.len() > MAX_ATTACHMENTS_PER_MESSAGE {
        return Err(CoreError::InvalidInput(format!(
            "{} files attached; a message can carry at most {MAX_ATTACHMENTS_PER_MESSAGE}.",
            inputs.len()
        )));
    }
    let mut parsed = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = cria_store::clean_name(&input.display_name());
        let (source, temp) = match input {
            AttachmentInput::Path(path) => {
                let key = checked_file(path)?;
                if let Some(document) = parsed_files.take(&key) {
                    parsed.push(Parsed {
                        source: key.path,
                        _temp: None,
                        name,
                        document,
                    });
                    continue;
                }
                (key.path, None)
            }
            AttachmentInput::Bytes { bytes, .. } => {
                let mut temp = tempfile::NamedTempFile::new_in(temp_dir).map_err(|error| {
                    CoreError::Internal(format!("cannot write a temporary file: {error}"))
                })?;
                std::io::Write::write_all(&mut temp, bytes).map_err(|error| {
                    CoreError::Internal(format!("cannot write a temporary file: {error}"))
                })?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let document = Arc::new(ingest(
            client,
            &source,
            &name,
            &cria_ingest::CancelFlag::new(),
            on_progress,
        )?);
        parsed.push(Parsed {
            source,
            _temp: temp,
            name,
            document,
        });
    }
    Ok(parsed)
}

/// A regular file, canonicalised (no symlink games, no directories, no devices), with the
/// size and modification time that tell a kept parse of it apart from a stale one.
fn checked_file(path: &Path) -> Result<FileKey> {
    let not_usable = |reason: String| CoreError::Attachment {
        file: path.display().to_string(),
        reason,
    };
    let canonical = std::fs::canonicalize(path).map_err(|error| {
        // A link dragged from a browser arrives as a "path" such as "https:/host/picture.png".
        let text = path.to_string_lossy();
        if error.kind() == std::io::ErrorKind::NotFound && looks_like_a_link(&text) {
            not_usable(
                "it is a web link, not a file on this computer. Save it from the browser, then \
                 attach the saved file."
                    .into(),
            )
        } else {
            not_usable(error.to_string())
        }
    })?;
    let metadata = std::fs::metadata(&canonical).map_err(|error| not_usable(error.to_string()))?;
    if !metadata.is_file() {
        return Err(not_usable("it is not a regular file (a folder?)".into()));
    }
    Ok(FileKey {
        path: canonical,
        size: metadata.len(),
        modified: metadata.modified().ok(),
    })
}

fn looks_like_a_link(text: &str) -> bool {
    let lower = text.trim_start().to_ascii_lowercase();
    ["http:", "https:", "ftp:", "data:", "blob:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// Stores the parsed files as attachments of `message`: the original bytes, a thumbnail, the
/// pages and chunks (for retrieval and search), and images prepared for the vision encoder.
pub(crate) fn store_all(
    store: &Arc<Store>,
    message: MessageId,
    parsed: Vec<Parsed>,
) -> Result<Vec<Attachment>> {
    let mut stored = Vec::with_capacity(parsed.len());
    for file in parsed {
        let kind = file.document.kind;
        let meta = AttachmentMeta {
            original_name: file.name.clone(),
            mime: mime_of(kind).into(),
            kind: attachment_kind(kind),
        };
        let reader = std::fs::File::open(&file.source).map_err(|error| CoreError::Attachment {
            file: file.name.clone(),
            reason: format!("it could not be read again: {error}"),
        })?;
        let attachment = store.add_attachment(message, &meta, reader)?;
        let document = &file.document;
        if let Some(thumbnail) = thumbnail_of(document) {
            store.set_thumbnail(attachment.id, thumbnail.bytes.as_slice())?;
        }
        if let Some(image) = &document.image {
            put_prepared(store, &attachment.sha256, 1, image)?;
        }
        for page in &document.pages {
            if let (false, Some(image)) = (page.text_layer_usable, &page.image) {
                put_prepared(store, &attachment.sha256, page.number, image)?;
            }
        }
        if !kind.is_image() {
            let pages: Vec<DocumentPage> = document
                .pages
                .iter()
                .map(|page| DocumentPage {
                    page_number: page.number,
                    text: page.text.clone(),
                    text_layer_usable: page.text_layer_usable,
                })
                .collect();
            let chunks: Vec<NewChunk> = document
                .chunks
                .iter()
                .map(|chunk| NewChunk {
                    page_number: chunk.page,
                    line_start: chunk.line_start,
                    line_end: chunk.line_end,
                    text: chunk.text.clone(),
                })
                .collect();
            store.put_document(&attachment.sha256, &pages, &chunks)?;
        }
        stored.push(attachment);
    }
    Ok(stored)
}

/// The picture's thumbnail, or the first rendered page's.
fn thumbnail_of(document: &IngestedDocument) -> Option<&cria_ingest::Thumbnail> {
    document
        .image
        .as_ref()
        .map(|image| &image.thumbnail)
        .or_else(|| {
            document
                .pages
                .iter()
                .find_map(|page| page.image.as_ref().map(|image| &image.thumbnail))
        })
}

/// Stores the prepared pixels as a PNG (lossless: the encoder sees exactly what ingest made).
fn put_prepared(store: &Store, source: &str, page: u32, image: &PreparedImage) -> Result<()> {
    let png = encode_png(image.width, image.height, &image.rgb)?;
    store.put_prepared_image(source, page, image.width, image.height, png.as_slice())?;
    Ok(())
}

pub(crate) fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new_with_quality(
            &mut png,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        ),
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|error| CoreError::Internal(format!("cannot encode a prepared image: {error}")))?;
    Ok(png)
}

/// Decodes a prepared image stored by [`encode_png`] into RGB pixels for the engine.
pub(crate) fn decode_prepared(store: &Store, sha256: &str) -> Result<cria_engine::ImageInput> {
    let path = store.blob_path(sha256)?;
    let bytes = std::fs::read(&path)
        .map_err(|error| CoreError::Internal(format!("cannot read a prepared image: {error}")))?;
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    // Prepared images are at most the encoder's input size; anything bigger is not ours.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let rgb = reader
        .decode()
        .map_err(|error| CoreError::Internal(format!("a prepared image is damaged: {error}")))?
        .into_rgb8();
    let (width, height) = rgb.dimensions();
    Ok(cria_engine::ImageInput::from_rgb(
        width,
        height,
        rgb.into_raw(),
    )?)
}

fn attachment_kind(kind: DocumentKind) -> AttachmentKind {
    match kind {
        kind if kind.is_image() => AttachmentKind::Image,
        DocumentKind::Text | DocumentKind::Markdown | DocumentKind::Csv => AttachmentKind::Text,
        _ => AttachmentKind::Document,
    }
}

fn mime_of(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Png => "image/png",
        DocumentKind::Jpeg => "image/jpeg",
        DocumentKind::Webp => "image/webp",
        DocumentKind::Gif => "image/gif",
        DocumentKind::Bmp => "image/bmp",
        DocumentKind::Tiff => "image/tiff",
        DocumentKind::Pdf => "application/pdf",
        DocumentKind::Docx => {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        DocumentKind::Pptx => {
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        }
        DocumentKind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        DocumentKind::Doc => "application/msword",
        DocumentKind::Xls => "application/vnd.ms-excel",
        DocumentKind::Ppt => "application/vnd.ms-powerpoint",
        DocumentKind::Html => "text/html",
        DocumentKind::Csv => "text/csv",
        DocumentKind::Markdown => "text/markdown",
        DocumentKind::Text => "text/plain",
    }
}
