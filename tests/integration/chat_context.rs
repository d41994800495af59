//! The chat core's context on real components: attachments parsed by the ingest worker, the
//! tiny Llama 4 fixture (text + mmproj) answering through the llama4 and mtmd paths, routing,
//! retrieval with page citations (Gemma 3 270M), and bad attachments refused before anything
//! is stored.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cria_core::{
    AppPaths, AttachmentInput, CoreError, Cria, MessageStatus, PreviewCancel, TurnEvent,
    TurnRequest, TurnStarted, TurnSummary,
};
use cria_engine::{CancelToken, EngineHandle, ScriptedEngine, SupervisorOptions};

use crate::ingest::fixtures::{self, PageContent};

fn open_real(data: &Path) -> (Cria, EngineHandle) {
    let handle = EngineHandle::new(SupervisorOptions::program(env!(
        "CARGO_BIN_EXE_cria-worker-host"
    )));
    let cria = Cria::open_with_engine_handle(AppPaths::in_dir(data.to_path_buf()), handle.clone())
        .unwrap()
        .with_ingest_worker(env!("CARGO_BIN_EXE_cria-ingest-host"));
    (cria, handle)
}

/// Cria on a data folder in `dir` with a scripted engine and the real ingest worker.
fn open_scripted(dir: &Path, engine: ScriptedEngine) -> Cria {
    Cria::open_with_engine(AppPaths::in_dir(dir.join("data")), Arc::new(engine))
        .unwrap()
        .with_ingest_worker(env!("CARGO_BIN_EXE_cria-ingest-host"))
}

struct Turn {
    started: TurnStarted,
    streamed: String,
    status: MessageStatus,
    error: Option<String>,
    summary: Option<TurnSummary>,
}

async fn send(
    cria: &Cria,
    conversation: Option<cria_core::ConversationId>,
    text: &str,
    attachments: Vec<AttachmentInput>,
) -> Result<Turn, CoreError> {
    let mut streamed = String::new();
    let mut finished = None;
    let mut summary = None;
    let request = TurnRequest {
        conversation,
        text: text.into(),
        attachments,
        model: None,
    };
    let started = cria
        .send(request, CancelToken::default(), |event| match event {
            TurnEvent::Token(piece) => streamed.push_str(&piece),
            TurnEvent::Summary(s) => summary = Some(s),
            TurnEvent::Finished { status, error } => finished = Some((status, error)),
            _ => {}
        })
        .await?;
    let (status, error) = finished.expect("every turn ends with Finished");
    Ok(Turn {
        started,
        streamed,
        status,
        error,
        summary,
    })
}

/// Greedy sampling: the same model gives the same text on every run.
async fn greedy(cria: &Cria) {
    let mut settings = cria.chat_settings().await.unwrap();
    settings.temperature = 0.0;
    settings.auto_title = false;
    // The fixture's random weights never end a turn by themselves: short replies keep the
    // test quick.
    settings.max_reply_tokens = Some(24);
    cria.set_chat_settings(settings).await.unwrap();
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> AttachmentInput {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    AttachmentInput::Path(path)
}

fn screenshot_png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(400, 800, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    fixtures::encode_image(
        &image::DynamicImage::ImageRgb8(image),
        image::ImageFormat::Png,
    )
}

#[tokio::test]
async fn every_route_with_the_tiny_llama4_fixture() {
    let _serial = crate::engine::ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let model = cria_tests::write_llama4_pair(dir.path());
    let (cria, handle) = open_real(&dir.path().join("data"));
    let imported = cria.import_model(model).await.unwrap();
    cria.select_model(imported.id.clone()).await.unwrap();
    // Greedy: the same fixture gives the same text on every run.
    greedy(&cria).await;

    // Plain text: the model in use (no profiles configured).
    let text = send(&cria, None, "Hello there", Vec::new()).await.unwrap();
    assert_eq!(
        (text.status, text.error.clone()),
        (MessageStatus::Complete, None)
    );
    let conversation = text.started.conversation_id;
    let stats = &text.summary.as_ref().unwrap().stats;
    assert_eq!(stats.route.as_deref(), Some("default"));
    assert_eq!(stats.model_id.as_deref(), Some(imported.id.as_str()));

    // A screenshot: the vision route, the image prepared and sent.
    let shot = send(
        &cria,
        Some(conversation),
        "What is on this screenshot?",
        vec![write(dir.path(), "shot.png", &screenshot_png())],
    )
    .await
    .unwrap();
    assert_eq!(shot.status, MessageStatus::Complete, "{:?}", shot.error);
    let stats = &shot.summary.as_ref().unwrap().stats;
    assert_eq!(stats.route.as_deref(), Some("vision"));
    assert!(stats.route_reason.as_deref().unwrap().contains("image"));
    let shot_prompt_tokens = stats.prompt_tokens.unwrap();
    // The follow-up reuses the cached prefix (history and the encoded screenshot).
    let follow = send(&cria, Some(conversation), "And the colours?", Vec::new())
        .await
        .unwrap();
    let stats = &follow.summary.as_ref().unwrap().stats;
    assert_eq!(
        stats.route.as_deref(),
        Some("vision"),
        "the image is still in the context"
    );
    // The whole previous prompt, image included, is a stable prefix: it comes from the cache.
    // (The reply after it is re-tokenized from text, which random weights' output may not
    // survive token for token.)
    assert!(
        stats.reused_tokens.unwrap() >= shot_prompt_tokens,
        "the previous prompt ({shot_prompt_tokens} positions) is reused: {stats:?}"
    );

    // A short PDF goes inline with page markers; a scanned page goes as a page image.
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Quarterly report", "Revenue grew by 12 percent."]),
        PageContent::Latin(&["Outlook", "The reactor restarts in May."]),
    ]);
    let doc = send(
        &cria,
        Some(conversation),
        "When does the reactor restart?",
        vec![write(dir.path(), "report.pdf", &pdf)],
    )
    .await
    .unwrap();
    assert_eq!(doc.status, MessageStatus::Complete, "{:?}", doc.error);
    let scan_pdf = fixtures::pdf_with_pages(&[PageContent::Scan]);
    let scan = send(
        &cria,
        Some(conversation),
        "Read this scan",
        vec![write(dir.path(), "scan.pdf", &scan_pdf)],
    )
    .await
    .unwrap();
    assert_eq!(scan.status, MessageStatus::Complete, "{:?}", scan.error);
    assert_eq!(
        scan.summary.as_ref().unwrap().stats.route.as_deref(),
        Some("vision")
    );

    // What the model was shown, rendered with the model's Llama 4 template and media markers.
    let shown = cria.shown_to_model(conversation).await.unwrap();
    let rendered = handle.render_prompt(shown.clone()).await.unwrap();
    let image_counts: Vec<usize> = shown.iter().map(|message| message.images.len()).collect();
    assert_eq!(
        image_counts,
        [0, 0, 1, 0, 0, 0, 0, 0, 1, 0],
        "images ride with their messages"
    );
    insta::assert_snapshot!(
        "llama4_prompt_with_image_pdf_and_scan",
        redact_replies(&rendered, &shown)
    );

    // Stop mid-reply: the partial reply is kept as cancelled.
    let cancel = CancelToken::default();
    let mut pieces = 0;
    let started = cria
        .send(
            TurnRequest {
                conversation: Some(conversation),
                text: "Write a long story".into(),
                ..TurnRequest::default()
            },
            cancel.clone(),
            |event| {
                if let TurnEvent::Token(_) = event {
                    pieces += 1;
                    if pieces == 3 {
                        cancel.cancel();
                    }
                }
            },
        )
        .await
        .unwrap();
    let messages = cria.conversation_messages(conversation).await.unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last.id, started.reply_message_id);
    assert_eq!(last.status, MessageStatus::Cancelled);
    assert!(!last.content.is_empty());
    handle.shutdown().await;
}

/// The fixture's random weights write random text: replies are replaced by a placeholder so the
/// snapshot pins the template, the document blocks and the media markers.
fn redact_replies(rendered: &str, shown: &[cria_engine::ChatMessage]) -> String {
    let mut redacted = rendered.to_string();
    for message in shown {
        if message.role == cria_engine::ChatRole::Assistant && !message.content.is_empty() {
            redacted = redacted.replacen(&message.content, "[reply]", 1);
        }
    }
    redacted
}

#[tokio::test]
async fn a_bad_attachment_fails_the_send_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cria = open_scripted(dir.path(), ScriptedEngine::echo(Duration::ZERO));
    let good = write(dir.path(), "notes.txt", b"Meeting notes: ship on Friday.");
    let bomb = write(
        dir.path(),
        "bomb.png",
        &fixtures::png_raw(100_000, 100_000, &[], &fixtures::zlib(&[0u8; 64])),
    );
    let error = send(&cria, None, "Look at these", vec![good.clone(), bomb])
        .await
        .err()
        .expect("a bomb image is refused");
    assert!(
        matches!(&error, CoreError::Attachment { file, .. } if file == "bomb.png"),
        "{error}"
    );
    let folder = AttachmentInput::Path(dir.path().to_path_buf());
    let error = send(&cria, None, "A folder", vec![folder])
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("not a regular file"), "{error}");
    let missing = AttachmentInput::Path(dir.path().join("missing.pdf"));
    assert!(send(&cria, None, "Gone", vec![missing]).await.is_err());
    assert!(
        cria.list_conversations(10, 0).await.unwrap().is_empty(),
        "nothing was stored"
    );

    // A text file alone is a fine message; pasted bytes work like a file.
    let turn = send(
        &cria,
        None,
        "When do we ship?",
        vec![
            good,
            AttachmentInput::Bytes {
                name: "pasted.png".into(),
                bytes: screenshot_png(),
            },
        ],
    )
    .await
    .unwrap();
    assert_eq!(turn.status, MessageStatus::Complete);
    let view = cria
        .conversation_view(turn.started.conversation_id)
        .await
        .unwrap();
    let names: Vec<&str> = view[0]
        .attachments
        .iter()
        .map(|a| a.attachment.original_name.as_str())
        .collect();
    assert_eq!(names, ["notes.txt", "pasted.png"]);
    let thumbnail = cria
        .attachment_thumbnail(view[0].attachments[1].attachment.id)
        .await
        .unwrap()
        .expect("images get a thumbnail");
    assert!(thumbnail.len() > 100);
    assert!(turn.streamed.starts_with("Echo: "));
}

#[tokio::test]
async fn a_fact_on_page_17_of_a_long_pdf_is_retrieved_and_cited() {
    let Some(model) = cria_tests::gemma_model() else {
        return;
    };
    let _serial = crate::engine::ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let filler: Vec<Vec<String>> = (1..=30)
        .map(|page| {
            (0..40)
                .map(|line| {
                    format!(
                        "Section {page}.{line}: routine maintenance notes for the pumps and valves."
                    )
                })
                .collect()
        })
        .collect();
    let fact = "The secret launch code of the Aurora probe is VIOLET-4721.";
    let mut page_lines: Vec<Vec<&str>> = filler
        .iter()
        .map(|lines| lines.iter().map(String::as_str).collect())
        .collect();
    page_lines[16].insert(10, fact);
    let pages: Vec<PageContent<'_>> = page_lines
        .iter()
        .map(|lines| PageContent::Latin(lines.as_slice()))
        .collect();
    let pdf = fixtures::pdf_with_pages(&pages);
    let (cria, handle) = open_real(&dir.path().join("data"));
    let imported = cria.import_model(model).await.unwrap();
    cria.select_model(imported.id).await.unwrap();
    greedy(&cria).await;
    let turn = send(
        &cria,
        None,
        "What is the launch code of the Aurora probe? Quote the page.",
        vec![write(dir.path(), "manual.pdf", &pdf)],
    )
    .await
    .unwrap();
    assert_eq!(turn.status, MessageStatus::Complete, "{:?}", turn.error);
    let summary = turn.summary.unwrap();
    assert!(
        summary
            .notices
            .iter()
            .any(|n| n.contains("too long to send whole")),
        "{:?}",
        summary.notices
    );
    let shown = cria
        .shown_to_model(turn.started.conversation_id)
        .await
        .unwrap();
    // Retrieval ranks the passage holding the fact first, marked with its page.
    let first_passage = shown[0].content.split("[p. ").nth(1).unwrap();
    assert!(first_passage.starts_with("17]"), "{first_passage}");
    assert!(first_passage.contains("VIOLET-4721"));
    // Gemma 3 270M is a base model: it continues the prompt rather than answering, usually by
    // repeating the best passage with its page marker. Whatever page it names must resolve to
    // the attached PDF; exact citation of a given answer is checked with a scripted reply below.
    for citation in &summary.citations {
        assert_eq!(citation.file_name, "manual.pdf");
        assert!((1..=30).contains(&citation.page_number));
        let span = &turn.streamed[citation.span_start as usize..citation.span_end as usize];
        assert!(span.contains(&citation.page_number.to_string()), "{span}");
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn a_cited_page_becomes_a_structured_citation_of_the_attached_document() {
    let dir = tempfile::tempdir().unwrap();
    let reply = "The launch code is VIOLET-4721 [p. 17]. Maintenance is routine (pp. 2-3).";
    let cria = open_scripted(dir.path(), ScriptedEngine::fixed(reply, Duration::ZERO));
    let lines: Vec<String> = (0..60)
        .map(|n| format!("Line {n}: routine maintenance notes for the pumps and valves."))
        .collect();
    let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut pages: Vec<PageContent<'_>> = (0..30).map(|_| PageContent::Latin(&line_refs)).collect();
    let fact = ["The secret launch code of the Aurora probe is VIOLET-4721."];
    pages[16] = PageContent::Latin(&fact);
    let pdf = fixtures::pdf_with_pages(&pages);
    let turn = send(
        &cria,
        None,
        "What is the launch code of the Aurora probe?",
        vec![write(dir.path(), "manual.pdf", &pdf)],
    )
    .await
    .unwrap();
    let summary = turn.summary.unwrap();
    let cited: Vec<(String, u32, &str)> = summary
        .citations
        .iter()
        .map(|c| {
            (
                c.file_name.clone(),
                c.page_number,
                &reply[c.span_start as usize..c.span_end as usize],
            )
        })
        .collect();
    assert_eq!(
        cited,
        [
            ("manual.pdf".to_string(), 17, "[p. 17]"),
            ("manual.pdf".to_string(), 2, "(pp. 2-3)"),
            ("manual.pdf".to_string(), 3, "(pp. 2-3)"),
        ]
    );
    // The stored view carries the same citations for the UI.
    let view = cria
        .conversation_view(turn.started.conversation_id)
        .await
        .unwrap();
    assert_eq!(view[1].citations, summary.citations);
    let preview = cria
        .page_preview(summary.citations[0].attachment_id, 17)
        .await
        .unwrap();
    assert!(preview.text.contains("VIOLET-4721"));
    assert_eq!(preview.page_count, 30);
    assert!(
        cria.page_preview(summary.citations[0].attachment_id, 31)
            .await
            .is_err()
    );
}

/// Sends `attachments` and counts the `Preparing` events: the pages parsed for this send.
async fn send_counting_parsed_pages(
    cria: &Cria,
    attachments: Vec<AttachmentInput>,
) -> (TurnStarted, usize) {
    let mut preparing = 0;
    let request = TurnRequest {
        conversation: None,
        text: "What is in these?".into(),
        attachments,
        model: None,
    };
    let started = cria
        .send(request, CancelToken::default(), |event| {
            if let TurnEvent::Preparing(_) = event {
                preparing += 1;
            }
        })
        .await
        .unwrap();
    (started, preparing)
}

#[tokio::test]
async fn an_attached_file_is_read_once_for_its_chip_and_again_only_when_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cria = open_scripted(dir.path(), ScriptedEngine::echo(Duration::ZERO));
    let report = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Quarterly figures are up four percent."]),
        PageContent::Scan,
    ]);
    let pdf = write(dir.path(), "report.pdf", &report);
    let AttachmentInput::Path(pdf_path) = pdf.clone() else {
        unreachable!()
    };
    let mut progress = Vec::new();
    let preview = cria
        .preview_attachment(pdf_path.clone(), PreviewCancel::new(), |event| {
            progress.push((event.file_name, event.done_pages, event.total_pages))
        })
        .await
        .unwrap();
    assert_eq!(
        progress.last(),
        Some(&("report.pdf".to_string(), 2, 2)),
        "{progress:?}"
    );
    assert_eq!(preview.name, "report.pdf");
    assert_eq!(preview.kind, cria_core::AttachmentKind::Document);
    assert_eq!((preview.page_count, preview.scanned_pages), (2, 1));
    assert_eq!(preview.size_bytes, report.len() as u64);
    let thumbnail = preview
        .thumbnail
        .expect("the scanned page gives a thumbnail");
    assert!(thumbnail.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG");

    let picture = write(dir.path(), "screen.png", &screenshot_png());
    let AttachmentInput::Path(picture_path) = picture.clone() else {
        unreachable!()
    };
    let preview = cria
        .preview_attachment(picture_path, PreviewCancel::new(), |_| {})
        .await
        .unwrap();
    assert_eq!(preview.kind, cria_core::AttachmentKind::Image);
    assert_eq!((preview.page_count, preview.scanned_pages), (1, 0));
    assert!(preview.thumbnail.is_some());

    // The send uses what the previews parsed: no page is parsed again.
    let (started, parsed_pages) =
        send_counting_parsed_pages(&cria, vec![pdf.clone(), picture]).await;
    assert_eq!(parsed_pages, 0, "the previewed files were parsed again");
    let view = cria
        .conversation_view(started.conversation_id)
        .await
        .unwrap();
    let stored: Vec<(&str, u32, u32)> = view[0]
        .attachments
        .iter()
        .map(|a| {
            (
                a.attachment.original_name.as_str(),
                a.page_count,
                a.scanned_pages,
            )
        })
        .collect();
    assert_eq!(stored, [("report.pdf", 2, 1), ("screen.png", 1, 0)]);

    // A send takes its file's parse: sending the file again parses it again.
    let (_, parsed_pages) = send_counting_parsed_pages(&cria, vec![pdf.clone()]).await;
    assert!(parsed_pages > 0);

    // A file changed after its preview is parsed again, and what is stored is the new file.
    cria.preview_attachment(pdf_path.clone(), PreviewCancel::new(), |_| {})
        .await
        .unwrap();
    let changed = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Revised: quarterly figures are up six percent."]),
        PageContent::Latin(&["Appendix."]),
        PageContent::Latin(&["Contacts."]),
    ]);
    std::fs::write(&pdf_path, &changed).unwrap();
    let (started, parsed_pages) = send_counting_parsed_pages(&cria, vec![pdf]).await;
    assert!(parsed_pages > 0, "a changed file must be parsed again");
    let view = cria
        .conversation_view(started.conversation_id)
        .await
        .unwrap();
    assert_eq!(
        (
            view[0].attachments[0].page_count,
            view[0].attachments[0].scanned_pages
        ),
        (3, 0)
    );

    // Files that cannot be attached are refused at the preview, with the send's reasons.
    let folder = cria
        .preview_attachment(dir.path().to_path_buf(), PreviewCancel::new(), |_| {})
        .await;
    assert!(
        matches!(&folder, Err(CoreError::Attachment { reason, .. }) if reason.contains("not a regular file")),
        "{folder:?}"
    );
    let link = cria
        .preview_attachment(
            "https://example.test/picture.png".into(),
            PreviewCancel::new(),
            |_| {},
        )
        .await;
    assert!(
        matches!(&link, Err(CoreError::Attachment { reason, .. }) if reason.contains("web link")),
        "{link:?}"
    );
    let missing = cria
        .preview_attachment(dir.path().join("gone.pdf"), PreviewCancel::new(), |_| {})
        .await;
    assert!(
        matches!(&missing, Err(CoreError::Attachment { reason, .. }) if !reason.contains("web link")),
        "{missing:?}"
    );
    let bomb = write(
        dir.path(),
        "bomb.png",
        &fixtures::png_raw(100_000, 100_000, &[], &fixtures::zlib(&[0u8; 64])),
    );
    let AttachmentInput::Path(bomb_path) = bomb else {
        unreachable!()
    };
    let refused = cria
        .preview_attachment(bomb_path, PreviewCancel::new(), |_| {})
        .await;
    assert!(
        matches!(&refused, Err(CoreError::Attachment { file, .. }) if file == "bomb.png"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_cancelled_preview_stops_its_worker_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cria = open_scripted(dir.path(), ScriptedEngine::echo(Duration::ZERO));
    let lines: Vec<String> = (0..40)
        .map(|n| format!("Line {n} of a long report about pumps and valves."))
        .collect();
    let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let pages: Vec<PageContent<'_>> = (0..300).map(|_| PageContent::Latin(&line_refs)).collect();
    let long = write(dir.path(), "long.pdf", &fixtures::pdf_with_pages(&pages));
    let AttachmentInput::Path(long_path) = long.clone() else {
        unreachable!()
    };

    // Taken off before its turn came: refused at once, nothing parsed.
    let cancel = PreviewCancel::new();
    cancel.cancel();
    let mut heard = 0;
    let early = cria
        .preview_attachment(long_path.clone(), cancel, |_| heard += 1)
        .await;
    assert!(
        matches!(&early, Err(CoreError::Attachment { reason, .. }) if reason.contains("cancelled")),
        "{early:?}"
    );
    assert_eq!(heard, 0);

    // Taken off while its pages are read: the worker is stopped well before the end.
    let cancel = PreviewCancel::new();
    let trigger = cancel.clone();
    let mut most_pages = 0;
    let stopped = cria
        .preview_attachment(long_path.clone(), cancel, |progress| {
            most_pages = most_pages.max(progress.done_pages);
            trigger.cancel();
        })
        .await;
    assert!(stopped.is_err(), "{stopped:?}");
    assert!(
        (1..300).contains(&most_pages),
        "read {most_pages} of 300 pages"
    );

    // Nothing of it was kept: the send parses the file itself.
    let (_, parsed_pages) = send_counting_parsed_pages(&cria, vec![long]).await;
    assert!(parsed_pages > 0);

    // Waiting behind two long reads for a slot, a cancelled preview ends at once.
    let busy: Vec<_> = ["one.pdf", "two.pdf"]
        .into_iter()
        .map(|name| {
            let AttachmentInput::Path(path) =
                write(dir.path(), name, &fixtures::pdf_with_pages(&pages))
            else {
                unreachable!()
            };
            let (cria, cancel) = (cria.clone(), PreviewCancel::new());
            let stop = cancel.clone();
            let task =
                tokio::spawn(async move { cria.preview_attachment(path, cancel, |_| {}).await });
            (task, stop)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancel = PreviewCancel::new();
    let trigger = cancel.clone();
    let waiting = tokio::spawn({
        let cria = cria.clone();
        async move { cria.preview_attachment(long_path, cancel, |_| {}).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = std::time::Instant::now();
    trigger.cancel();
    let waited = waiting.await.unwrap();
    assert!(
        matches!(&waited, Err(CoreError::Attachment { reason, .. }) if reason.contains("cancelled")),
        "{waited:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    for (task, stop) in busy {
        stop.cancel();
        let _ = task.await;
    }
}
