//! Feeds arbitrary bytes (with and without a misleading file name) to type sniffing. It must
//! never panic, and a kind it reports must be consistent with the bytes' magic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in [None, Some("file.pdf"), Some("file.csv"), Some("file.docx")] {
        if let Ok(kind) = cria_ingest::sniff(data, name) {
            if kind == cria_ingest::DocumentKind::Png {
                assert!(data.starts_with(b"\x89PNG"));
            }
        }
    }
});
