//! Turning files a user drops (images, PDFs, office documents, web pages, text) into
//! model-ready input: downscaled RGB images for the vision encoder, page texts with
//! provenance, page images for pages without a usable text layer, and retrieval chunks.
//!
//! Architecture Invariant: this crate knows nothing of llama.cpp, SQLite or Tauri.
//!
//! The contract:
//! - The type of a file is sniffed from its content ([`sniff`]); a file name only refines a
//!   choice between text formats (CSV vs. Markdown vs. plain text), never turns bytes into a
//!   format they are not.
//! - Untrusted files are parsed in a worker process ([`IngestClient`]): a parser that overflows
//!   its stack, exhausts memory or loops forever costs the worker, never the app. The worker
//!   runs this same executable with [`WORKER_FLAG`]; every binary that uses [`IngestClient`]
//!   calls [`worker_main_if_requested`] first thing in `main`.
//! - Every cap in [`IngestLimits`] is enforced with a typed error ([`IngestError`]), never by
//!   silently truncating content. Where a result is deliberately partial (pages beyond the
//!   render cap are not rendered), [`IngestedDocument::warnings`] says so.
//! - [`ingest_bytes`] runs the parsers in the calling process; it is meant for the worker, for
//!   fuzzing and for trusted input, not for files a user dropped.
#![forbid(unsafe_code)]

mod base64;
pub mod chunk;
mod client;
mod fonts;
mod html;
mod images;
mod office;
mod pdf;
#[doc(hidden)]
pub mod pdf_writer;
mod protocol;
pub mod sniff;
mod text;
mod worker;

pub use chunk::{Chunk, ChunkOptions};
pub use client::{CancelFlag, IngestClient, Progress};
pub use images::{PreparedImage, Thumbnail, prepare_image, prepare_pixels};
pub use pdf::render_pdf_page;
pub use sniff::{DocumentKind, sniff};
pub use worker::{WORKER_FLAG, worker_main_if_requested};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors from ingesting a file. Serialisable because the worker sends them to the app as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IngestError {
    #[error(
        "unsupported file type: {detail}. Cria reads images, PDFs, Word/PowerPoint/Excel files, web pages, CSV and text files"
    )]
    Unsupported { detail: String },
    #[error(
        "{what} is too large ({actual} > limit {limit}); split the document or raise the limit"
    )]
    TooLarge {
        what: String,
        actual: u64,
        limit: u64,
    },
    #[error("the file looks like a decompression bomb: {detail}")]
    Bomb { detail: String },
    #[error("the {kind} file is damaged or malformed: {detail}")]
    Corrupt { kind: String, detail: String },
    #[error(
        "the PDF is password-protected; remove the password (e.g. print it to a new PDF) and drop it again"
    )]
    PasswordRequired,
    #[error("reading the file took longer than {seconds} s and was stopped")]
    Timeout { seconds: u64 },
    #[error("reading the file was cancelled")]
    Cancelled,
    #[error("reading the file needed more than the {limit_bytes}-byte memory cap and was stopped")]
    MemoryLimit { limit_bytes: u64 },
    #[error(
        "the document reader crashed ({status}); the file is probably malformed. Reader output: {stderr_tail}"
    )]
    WorkerCrashed { status: String, stderr_tail: String },
    #[error("could not read {path}: {message}")]
    Io { path: String, message: String },
    #[error("the document reader could not be started or misbehaved: {detail}")]
    Worker { detail: String },
}

pub type Result<T> = std::result::Result<T, IngestError>;

/// Stack for threads that run parsers (the worker's parser thread, PDF page-text threads):
/// deeply nested but legitimate documents must not overflow it.
pub(crate) const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Caps applied to one file. The defaults suit a desktop with a few GiB free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestLimits {
    /// Largest input file accepted.
    pub max_input_bytes: u64,
    /// Most pages (PDF pages, slides, sheets) accepted in one document.
    pub max_pages: u32,
    /// Largest decoded size of any one compressed stream (PDF stream, zip entry).
    pub max_stream_bytes: u64,
    /// Largest decoded size of all compressed streams and produced text of one document.
    pub max_document_bytes: u64,
    /// Largest image (width × height) decoded; checked from the header before decoding.
    pub max_image_pixels: u64,
    /// Most pages rendered to images for the vision model per document; further pages that
    /// need rendering are reported in `warnings` and keep `image: None`.
    pub max_rendered_pages: u32,
    /// Address-space cap the worker process sets on itself (bytes).
    pub worker_memory_bytes: u64,
    /// Wall-clock limit for one file, enforced by the parent (seconds).
    pub timeout_seconds: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 256 * 1024 * 1024,
            max_pages: 2_000,
            max_stream_bytes: 64 * 1024 * 1024,
            max_document_bytes: 512 * 1024 * 1024,
            max_image_pixels: 64_000_000,
            max_rendered_pages: 40,
            worker_memory_bytes: 3 * 1024 * 1024 * 1024,
            timeout_seconds: 120,
        }
    }
}

/// What to produce besides text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestOptions {
    pub limits: IngestLimits,
    /// Long side of images for the vision encoder, in pixels. Aspect ratio is kept; the
    /// model's own preprocessing tiles the image, so a screenshot is not squashed into one tile.
    pub max_image_side: u32,
    /// Long side of the UI thumbnail, in pixels.
    pub thumbnail_side: u32,
    /// Resolution for rendering PDF pages that lack a usable text layer.
    pub render_dpi: f32,
    pub chunking: ChunkOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            limits: IngestLimits::default(),
            max_image_side: 1344,
            thumbnail_side: 256,
            render_dpi: 150.0,
            chunking: ChunkOptions::default(),
        }
    }
}

/// A file turned into model-ready input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedDocument {
    pub kind: DocumentKind,
    /// Title, author, producer, … where the format carries them.
    pub metadata: BTreeMap<String, String>,
    /// Pages in order; a format without pages (an image, a text file) has exactly one.
    pub pages: Vec<Page>,
    /// Retrieval chunks with page and line provenance, built from `pages`.
    pub chunks: Vec<Chunk>,
    /// For image files: the image prepared for the vision encoder.
    pub image: Option<PreparedImage>,
    /// Things the user should know: pages not rendered, encoding guessed, …
    pub warnings: Vec<String>,
}

/// One page (or slide, sheet, whole text file) of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// 1-based, as shown to users in citations.
    pub number: u32,
    /// Text in reading order; Markdown for office documents.
    pub text: String,
    /// False when the page has no text layer or one that is garbage (a scan, a broken font
    /// encoding); such pages carry `image` for the vision model instead.
    pub text_layer_usable: bool,
    pub image: Option<PreparedImage>,
}

/// Ingests bytes in the calling process. Untrusted files belong in [`IngestClient`] instead:
/// a stack overflow or allocation failure in a parser aborts the process that runs it.
/// `file_name` only refines text formats (see [`sniff`]).
pub fn ingest_bytes(
    bytes: &[u8],
    file_name: Option<&str>,
    options: &IngestOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<IngestedDocument> {
    let limits = &options.limits;
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(IngestError::TooLarge {
            what: "the file".into(),
            actual: bytes.len() as u64,
            limit: limits.max_input_bytes,
        });
    }
    let kind = sniff(bytes, file_name)?;
    let mut document = match kind {
        kind if kind.is_image() => {
            let image = prepare_image(bytes, options)?;
            IngestedDocument {
                kind,
                metadata: BTreeMap::from([
                    ("width".to_string(), image.original_width.to_string()),
                    ("height".to_string(), image.original_height.to_string()),
                ]),
                pages: vec![Page {
                    number: 1,
                    text: String::new(),
                    text_layer_usable: false,
                    image: None,
                }],
                chunks: Vec::new(),
                image: Some(image),
                warnings: Vec::new(),
            }
        }
        DocumentKind::Pdf => pdf::ingest_pdf(bytes, options, progress)?,
        DocumentKind::Docx
        | DocumentKind::Pptx
        | DocumentKind::Xlsx
        | DocumentKind::Doc
        | DocumentKind::Xls
        | DocumentKind::Ppt => office::ingest_office(bytes, kind, limits)?,
        DocumentKind::Html => {
            let decoded = text::decode(bytes)?;
            let mut document = text::single_page(kind, html::html_to_text(&decoded.text));
            document.warnings.extend(decoded.warning);
            document
        }
        DocumentKind::Csv => {
            let decoded = text::decode(bytes)?;
            let mut document =
                text::single_page(kind, text::csv_to_markdown(&decoded.text, limits)?);
            document.warnings.extend(decoded.warning);
            document
        }
        DocumentKind::Markdown | DocumentKind::Text => {
            let decoded = text::decode(bytes)?;
            let mut document = text::single_page(kind, decoded.text);
            document.warnings.extend(decoded.warning);
            document
        }
        other => {
            return Err(IngestError::Unsupported {
                detail: format!("{other:?}"),
            });
        }
    };
    let produced: u64 = document
        .pages
        .iter()
        .map(|page| page.text.len() as u64)
        .sum();
    if produced > limits.max_document_bytes {
        return Err(IngestError::TooLarge {
            what: "the extracted text".into(),
            actual: produced,
            limit: limits.max_document_bytes,
        });
    }
    document.chunks = chunk::chunk_pages(&document.pages, &options.chunking);
    Ok(document)
}
