//! Feeds arbitrary bytes, prefixed to look like a PDF, to the whole in-process ingest path
//! under small caps. Parse failures are fine; panics are bugs. (Aborts such as stack overflows
//! are what the worker process contains in the app; here they are findings to fix upstream.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = cria_ingest::IngestOptions::default();
    options.limits.max_pages = 50;
    options.limits.max_stream_bytes = 4 << 20;
    options.limits.max_document_bytes = 16 << 20;
    options.limits.max_rendered_pages = 1;
    options.render_dpi = 36.0;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend_from_slice(data);
    for bytes in [data, pdf.as_slice()] {
        if let Ok(document) = cria_ingest::ingest_bytes(bytes, None, &options, &mut |_| {}) {
            assert!(document.pages.len() <= 50);
            for chunk in &document.chunks {
                assert!(document.pages.iter().any(|page| page.number == chunk.page));
            }
        }
    }
});
