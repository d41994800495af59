//! What the UI and the CLI read of a conversation: the visible branch with each message's place
//! among its siblings, its attachments, its citations, and page previews for citations.

use std::sync::Arc;

use cria_store::{Attachment, AttachmentId, ConversationId, PathEntry};
use serde::Serialize;

use crate::chat::{CitationView, stored_citations};
use crate::{CoreError, Cria, Result, blocking};

/// A message on the visible branch with everything shown beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageView {
    pub entry: PathEntry,
    /// The message and its siblings, oldest first (for the "‹ 2/3 ›" arrows).
    pub sibling_ids: Vec<cria_store::MessageId>,
    pub attachments: Vec<AttachmentSummary>,
    pub citations: Vec<CitationView>,
}

/// An attachment as a chip shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentSummary {
    pub attachment: Attachment,
    /// Pages (1 for an image or a text file).
    pub page_count: u32,
    /// Pages without a usable text layer, sent to the model as images.
    pub scanned_pages: u32,
}

/// A cited page: its text, and its image when it is a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PagePreview {
    pub attachment_id: AttachmentId,
    pub file_name: String,
    pub page_number: u32,
    pub page_count: u32,
    pub text: String,
    /// PNG bytes of the page as the model saw it (scans and images only).
    pub image_png: Option<Vec<u8>>,
}

impl Cria {
    /// The visible branch with sibling positions ("‹ 2/3 ›").
    pub async fn conversation_path(&self, id: ConversationId) -> Result<Vec<PathEntry>> {
        let store = Arc::clone(&self.store);
        blocking(move || store.active_path_entries(id)).await
    }

    /// The visible branch with attachments and citations, for display.
    pub async fn conversation_view(&self, id: ConversationId) -> Result<Vec<MessageView>> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let entries = store.active_path_entries(id)?;
            let mut views = Vec::with_capacity(entries.len());
            for entry in entries {
                let mut attachments = Vec::new();
                for attachment in store.attachments(entry.message.id)? {
                    let pages = store.document_pages(&attachment.sha256)?;
                    let scanned = pages.iter().filter(|page| !page.text_layer_usable).count();
                    attachments.push(AttachmentSummary {
                        page_count: u32::try_from(pages.len().max(1)).unwrap_or(u32::MAX),
                        scanned_pages: u32::try_from(scanned).unwrap_or(u32::MAX),
                        attachment,
                    });
                }
                let citations = stored_citations(&store, entry.message.id)?;
                let sibling_ids = if entry.sibling_count > 1 {
                    store.siblings(entry.message.id)?.ids
                } else {
                    vec![entry.message.id]
                };
                views.push(MessageView {
                    sibling_ids,
                    entry,
                    attachments,
                    citations,
                });
            }
            Ok::<_, CoreError>(views)
        })
        .await
    }

    /// What the model is shown for the visible branch (documents, excerpts and images as they
    /// were sent): for "why did it answer that", and for tests of the assembled context.
    pub async fn shown_to_model(
        &self,
        id: ConversationId,
    ) -> Result<Vec<cria_engine::ChatMessage>> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let mut shown = Vec::new();
            for message in store.active_path(id)? {
                if message.role == cria_store::Role::Assistant && message.content.trim().is_empty()
                {
                    continue;
                }
                let prompt = crate::chat::prompt_for(&store, &message)?;
                let images = prompt
                    .images
                    .iter()
                    .map(|image| crate::attach::decode_prepared(&store, &image.sha256))
                    .collect::<Result<Vec<_>>>()?;
                shown.push(cria_engine::ChatMessage {
                    role: prompt.role,
                    content: prompt.text,
                    images,
                });
            }
            Ok::<_, CoreError>(shown)
        })
        .await
    }

    /// The re-encoded thumbnail of an attachment (the webview never loads a user's original).
    pub async fn attachment_thumbnail(&self, id: AttachmentId) -> Result<Option<Vec<u8>>> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let attachment = store.get_attachment(id)?;
            let Some(sha) = attachment.thumbnail_sha256 else {
                return Ok(None);
            };
            let path = store.blob_path(&sha)?;
            std::fs::read(&path)
                .map(Some)
                .map_err(|error| CoreError::Internal(format!("cannot read a thumbnail: {error}")))
        })
        .await
    }

    /// A page of an attached document, for the preview a citation opens.
    pub async fn page_preview(&self, id: AttachmentId, page_number: u32) -> Result<PagePreview> {
        let store = Arc::clone(&self.store);
        blocking(move || {
            let attachment = store.get_attachment(id)?;
            let pages = store.document_pages(&attachment.sha256)?;
            let prepared = store.prepared_images(&attachment.sha256)?;
            let page_count =
                u32::try_from(pages.len().max(prepared.len()).max(1)).unwrap_or(u32::MAX);
            if page_number == 0 || page_number > page_count {
                return Err(CoreError::InvalidInput(format!(
                    "{} has {page_count} page(s); there is no page {page_number}",
                    attachment.original_name
                )));
            }
            let text = pages
                .iter()
                .find(|page| page.page_number == page_number)
                .map(|page| page.text.clone())
                .unwrap_or_default();
            let image_png = match prepared
                .iter()
                .find(|image| image.page_number == page_number)
            {
                Some(image) => {
                    let path = store.blob_path(&image.image_sha256)?;
                    Some(std::fs::read(&path).map_err(|error| {
                        CoreError::Internal(format!("cannot read a page image: {error}"))
                    })?)
                }
                None => None,
            };
            Ok(PagePreview {
                attachment_id: id,
                file_name: attachment.original_name,
                page_number,
                page_count,
                text,
                image_png,
            })
        })
        .await
    }
}
