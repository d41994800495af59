//! Feeds arbitrary bytes to image preparation under small caps. It must never panic, and an
//! accepted image must respect the caps and hold exactly width × height RGB pixels.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = cria_ingest::IngestOptions::default();
    options.limits.max_image_pixels = 4_000_000;
    if let Ok(image) = cria_ingest::prepare_image(data, &options) {
        assert!(image.width.max(image.height) <= options.max_image_side);
        assert_eq!(image.rgb.len() as u64, u64::from(image.width) * u64::from(image.height) * 3);
        assert!(u64::from(image.original_width) * u64::from(image.original_height) <= 4_000_000);
    }
});
