//! Files a user attaches to a message: parsed in an ingest worker process first (a hostile
//! file costs that process, never the app), stored only when every file of the message parsed,
//! so a bad file leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cria_ingest::{DocumentKind, IngestClient, IngestOptions, IngestedDocument, PreparedImage};
use cria_store::{
    Attachment, AttachmentKind, AttachmentMeta, DocumentPage, MessageId, NewChunk, Store,
};
use serde::Serialize;

use crate::{CoreError, Result};

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
            AttachmentInput::Path(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            AttachmentInput::Bytes { name, .. } => name.clone(),
        }
    }
}

/// How far parsing the attachments has got (for a progress bar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestProgress {
    pub file_name: String,
    pub done_pages: u32,
    pub total_pages: u32,
}

/// A parsed file waiting to be stored with its message.
pub(crate) struct Parsed {
    source: PathBuf,
    /// Removed after storing (pasted bytes are written to a private temporary file).
    _temp: Option<tempfile::NamedTempFile>,
    name: String,
    document: IngestedDocument,
}

/// Parses every attachment; the first failure names its file and nothing is kept.
pub(crate) fn parse_all(
    client: &IngestClient,
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
    let options = IngestOptions::default();
    let mut parsed = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = cria_store::clean_name(&input.display_name());
        let (source, temp) = match input {
            AttachmentInput::Path(path) => (checked_file(path)?, None),
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
        let document = client
            .ingest_with(
                &source,
                &options,
                &cria_ingest::CancelFlag::new(),
                &mut |progress| {
                    on_progress(IngestProgress {
                        file_name: name.clone(),
                        done_pages: progress.done_pages,
                        total_pages: progress.total_pages,
                    })
                },
            )
            .map_err(|error| CoreError::Attachment {
                file: name.clone(),
                reason: error.to_string(),
            })?;
        parsed.push(Parsed {
            source,
            _temp: temp,
            name,
            document,
        });
    }
    Ok(parsed)
}

/// A regular file, canonicalised (no symlink games, no directories, no devices).
fn checked_file(path: &Path) -> Result<PathBuf> {
    let not_usable = |reason: String| CoreError::Attachment {
        file: path.display().to_string(),
        reason,
    };
    let canonical = std::fs::canonicalize(path).map_err(|error| not_usable(error.to_string()))?;
    let metadata = std::fs::metadata(&canonical).map_err(|error| not_usable(error.to_string()))?;
    if !metadata.is_file() {
        return Err(not_usable("it is not a regular file (a folder?)".into()));
    }
    Ok(canonical)
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
        let thumbnail = document
            .image
            .as_ref()
            .map(|image| &image.thumbnail)
            .or_else(|| {
                document
                    .pages
                    .iter()
                    .find_map(|page| page.image.as_ref().map(|image| &image.thumbnail))
            });
        if let Some(thumbnail) = thumbnail {
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
