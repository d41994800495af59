//! `cria ingest FILE`: what Cria extracts from a file, for people asking "why didn't it see
//! page 3" and for tests.
//!
//! Contract: the file is parsed by `cria_ingest::IngestClient` in a worker process (this
//! executable re-run with `--cria-ingest-worker`) under the default caps and timeout, exactly
//! as an attachment would be. Nothing is written anywhere. `--json` prints [`IngestReport`],
//! whose field names are stable (docs/cli.md); pixels are never printed, only their sizes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use cria_ingest::{CancelFlag, IngestClient, IngestOptions, IngestedDocument, PreparedImage};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::print_json;
use crate::term::Output;

#[derive(Args)]
pub struct IngestArgs {
    /// The file: an image, PDF, Word/PowerPoint/Excel document, web page, CSV or text file.
    file: PathBuf,
    /// Print everything extracted (pages with text, chunks with provenance) as JSON.
    #[arg(long)]
    json: bool,
}

/// `cria ingest --json`.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub file: PathBuf,
    /// The sniffed type (`pdf`, `png`, `docx`, `markdown`, …), from the content, not the name.
    #[serde(rename = "type")]
    pub kind: cria_ingest::DocumentKind,
    pub metadata: BTreeMap<String, String>,
    pub pages: Vec<PageReport>,
    /// Numbers of the pages without a usable text layer (scans), which the vision model reads.
    pub scanned_pages: Vec<u32>,
    /// For an image file: the picture as prepared for the vision model.
    pub image: Option<ImageReport>,
    pub chunks: Vec<ChunkReport>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PageReport {
    /// 1-based, as citations show it.
    pub number: u32,
    pub text_layer_usable: bool,
    /// Characters of `text`.
    pub chars: usize,
    pub text: String,
    /// The page rendered for the vision model (scans), if it was.
    pub rendered: Option<ImageReport>,
}

#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub width: u32,
    pub height: u32,
    pub original_width: u32,
    pub original_height: u32,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct ChunkReport {
    pub page: u32,
    pub line_start: u32,
    pub line_end: u32,
    pub chars: usize,
    pub text: String,
}

impl ImageReport {
    fn of(image: &PreparedImage) -> Self {
        ImageReport {
            width: image.width,
            height: image.height,
            original_width: image.original_width,
            original_height: image.original_height,
            sha256: image.source_sha256.clone(),
        }
    }
}

impl IngestReport {
    pub fn new(file: PathBuf, document: IngestedDocument) -> Self {
        IngestReport {
            file,
            kind: document.kind,
            metadata: document.metadata,
            scanned_pages: document
                .pages
                .iter()
                .filter(|page| !page.text_layer_usable && !document.kind.is_image())
                .map(|page| page.number)
                .collect(),
            pages: document
                .pages
                .into_iter()
                .map(|page| PageReport {
                    number: page.number,
                    text_layer_usable: page.text_layer_usable,
                    chars: page.text.chars().count(),
                    rendered: page.image.as_ref().map(ImageReport::of),
                    text: page.text,
                })
                .collect(),
            image: document.image.as_ref().map(ImageReport::of),
            chunks: document
                .chunks
                .into_iter()
                .map(|chunk| ChunkReport {
                    page: chunk.page,
                    line_start: chunk.line_start,
                    line_end: chunk.line_end,
                    chars: chunk.text.chars().count(),
                    text: chunk.text,
                })
                .collect(),
            warnings: document.warnings,
        }
    }
}

pub async fn run(args: IngestArgs, output: Output) -> CliResult<()> {
    check_readable_file(&args.file)?;
    let client = IngestClient::new()?;
    let cancel = CancelFlag::new();
    let file = args.file.clone();
    let worker_cancel = cancel.clone();
    let mut progress = output.progress();
    let (progress_sender, mut progress_events) = tokio::sync::mpsc::unbounded_channel();
    let parse = tokio::task::spawn_blocking(move || {
        client.ingest_with(
            &file,
            &IngestOptions::default(),
            &worker_cancel,
            &mut |event| {
                let _ = progress_sender.send(event);
            },
        )
    });
    tokio::pin!(parse);
    let result = loop {
        tokio::select! {
            result = &mut parse => break result,
            Some(event) = progress_events.recv() => progress.show(
                &format!("reading page {} of {}", event.done_pages, event.total_pages),
                false,
            ),
            _ = tokio::signal::ctrl_c() => cancel.cancel(),
        }
    };
    progress.clear();
    let document = result
        .map_err(|error| CliError::user(format!("the document reader failed: {error}")))??;
    let report = IngestReport::new(args.file, document);
    if args.json {
        return print_json(&report);
    }
    print!("{}", summary(&report));
    Ok(())
}

/// Refuses a missing path, a folder or an unreadable file with a clear message before a
/// worker is started.
fn check_readable_file(path: &Path) -> CliResult<()> {
    let meta = std::fs::metadata(path)
        .map_err(|error| CliError::user(format!("cannot read {}: {error}", path.display())))?;
    if meta.is_dir() {
        return Err(CliError::user(format!(
            "{} is a folder; give the path of a file",
            path.display()
        )));
    }
    std::fs::File::open(path)
        .map_err(|error| CliError::user(format!("cannot read {}: {error}", path.display())))?;
    Ok(())
}

/// The human summary: what the file is, page by page, without the text.
fn summary(report: &IngestReport) -> String {
    let mut lines = vec![
        format!("file      {}", report.file.display()),
        format!(
            "type      {}",
            serde_json::to_value(report.kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
    ];
    for (key, value) in &report.metadata {
        lines.push(format!("{key:<9} {}", crate::term::printable(value, false)));
    }
    if let Some(image) = &report.image {
        lines.push(format!(
            "image     {}×{} (prepared for the vision model from {}×{})",
            image.width, image.height, image.original_width, image.original_height
        ));
    } else {
        let scanned = if report.scanned_pages.is_empty() {
            String::new()
        } else {
            let numbers: Vec<String> = report.scanned_pages.iter().map(u32::to_string).collect();
            format!(", scanned: {}", numbers.join(", "))
        };
        lines.push(format!("pages     {}{scanned}", report.pages.len()));
        for page in &report.pages {
            let how = match (&page.rendered, page.text_layer_usable) {
                (_, true) => "text layer usable".to_string(),
                (Some(image), false) => format!(
                    "no usable text layer; rendered {}×{} for the vision model",
                    image.width, image.height
                ),
                (None, false) => "no usable text layer; not rendered (see warnings)".to_string(),
            };
            lines.push(format!(
                "  page {:<4} {:>7} chars, {how}",
                page.number, page.chars
            ));
        }
    }
    lines.push(format!("chunks    {}", report.chunks.len()));
    for warning in &report.warnings {
        lines.push(format!(
            "warning   {}",
            crate::term::printable(warning, false)
        ));
    }
    lines.push(String::new());
    lines.join("\n")
}
