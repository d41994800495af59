//! Ingest through the worker process: real content comes out right, hostile files end in a
//! typed error or a bounded result, and the test process (standing in for the app) survives.

pub(crate) mod fixtures;

use cria_ingest::{
    CancelFlag, DocumentKind, IngestClient, IngestError, IngestOptions, IngestedDocument,
};
use fixtures::PageContent;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn client() -> IngestClient {
    IngestClient::with_worker_program(env!("CARGO_BIN_EXE_cria-ingest-host"))
}

fn options() -> IngestOptions {
    let mut options = IngestOptions::default();
    options.limits.timeout_seconds = 60;
    options.limits.worker_memory_bytes = 1536 * 1024 * 1024;
    options
}

struct Dropped {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write_file(name: &str, bytes: &[u8]) -> Dropped {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    Dropped { _dir: dir, path }
}

fn ingest_named(
    name: &str,
    bytes: &[u8],
    options: &IngestOptions,
) -> (Result<IngestedDocument, IngestError>, Duration) {
    let file = write_file(name, bytes);
    let started = Instant::now();
    let result = client().ingest(&file.path, options);
    (result, started.elapsed())
}

fn ingest_ok(name: &str, bytes: &[u8]) -> IngestedDocument {
    match ingest_named(name, bytes, &options()).0 {
        Ok(document) => document,
        Err(error) => panic!("{name}: {error}"),
    }
}

/// A short description of an outcome: documents carry megabytes of pixels, too much to print.
fn summary(result: &Result<IngestedDocument, IngestError>) -> String {
    match result {
        Ok(document) => format!(
            "Ok({:?}, {} pages, warnings {:?})",
            document.kind,
            document.pages.len(),
            document.warnings
        ),
        Err(error) => format!("Err({error:?})"),
    }
}

/// A hostile file must end within its limits in a result or a typed error; never a hang.
fn assert_bounded(
    name: &str,
    result: &Result<IngestedDocument, IngestError>,
    elapsed: Duration,
    options: &IngestOptions,
) {
    // Shown with --nocapture: which cap or error each hostile file met.
    eprintln!("{name}: {} in {elapsed:?}", summary(result));
    assert!(
        elapsed <= Duration::from_secs(options.limits.timeout_seconds + 5),
        "{name}: took {elapsed:?}"
    );
    if let Ok(document) = result {
        assert!(
            document.pages.len() as u64 <= u64::from(options.limits.max_pages),
            "{name}: too many pages"
        );
        if let Some(image) = &document.image {
            assert!(
                u64::from(image.width) * u64::from(image.height) <= options.limits.max_image_pixels
            );
        }
    }
}

#[test]
fn multi_page_pdf_keeps_text_per_page_including_korean() {
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&[
            "Alpha page one introduces the topic.",
            "Second line of page one.",
        ]),
        PageContent::Latin(&["Beta page two holds the results."]),
        PageContent::Korean(&["대한민국의 수도는 서울입니다", "기호를 사용한 수식"]),
    ]);
    let mut progress = Vec::new();
    let file = write_file("report.pdf", &pdf);
    let document = client()
        .ingest_with(&file.path, &options(), &CancelFlag::new(), &mut |p| {
            progress.push(p)
        })
        .expect("a valid PDF");
    assert_eq!(document.kind, DocumentKind::Pdf);
    assert_eq!(document.pages.len(), 3);
    assert_eq!(
        document.metadata.get("title").map(String::as_str),
        Some("Generated")
    );
    assert!(
        document.pages[0]
            .text
            .contains("Alpha page one introduces the topic."),
        "{:?}",
        document.pages[0].text
    );
    assert!(document.pages[0].text.contains("Second line of page one."));
    assert!(!document.pages[0].text.contains("Beta"));
    assert!(
        document.pages[1]
            .text
            .contains("Beta page two holds the results.")
    );
    let korean: String = document.pages[2].text.split_whitespace().collect();
    assert!(
        korean.contains("대한민국의수도는서울입니다"),
        "{:?}",
        document.pages[2].text
    );
    assert!(korean.contains("기호를사용한수식"));
    assert!(
        document
            .pages
            .iter()
            .all(|page| page.text_layer_usable && page.image.is_none())
    );
    assert_eq!(
        progress.last().map(|p| (p.done_pages, p.total_pages)),
        Some((3, 3))
    );
    let beta = document
        .chunks
        .iter()
        .find(|chunk| chunk.text.contains("Beta page two"))
        .expect("a chunk cites page two");
    assert_eq!(beta.page, 2);
    assert_eq!(beta.line_start, 1);
}

#[test]
fn scanned_page_is_detected_and_rendered_for_the_vision_model() {
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["A normal page with a real text layer in it."]),
        PageContent::Scan,
    ]);
    let document = ingest_ok("scan.pdf", &pdf);
    assert!(document.pages[0].text_layer_usable);
    assert!(document.pages[0].image.is_none());
    assert!(!document.pages[1].text_layer_usable);
    let image = document.pages[1]
        .image
        .as_ref()
        .expect("the scanned page is rendered");
    // 612×792 pt at 150 dpi is 1275×1650, capped to a 1344 long side with the aspect kept.
    assert_eq!(image.height, 1344);
    assert!(
        (1030..=1040).contains(&image.width),
        "width {}",
        image.width
    );
    assert_eq!(image.rgb.len(), (image.width * image.height * 3) as usize);
    // The dark bars of the scan are in the rendering, not a blank page.
    assert!(image.rgb.iter().any(|&value| value < 80));
    assert!(image.rgb.iter().any(|&value| value > 200));
    assert_eq!(image.thumbnail.mime, "image/jpeg");
    assert!(image.thumbnail.bytes.starts_with(&[0xFF, 0xD8]));
}

#[test]
fn rotated_jpeg_is_turned_upright() {
    let document = ingest_ok("photo.jpg", &fixtures::jpeg_with_orientation_6());
    assert_eq!(document.kind, DocumentKind::Jpeg);
    let image = document.image.expect("an image");
    assert_eq!((image.width, image.height), (20, 40));
    let pixel = |x: u32, y: u32| {
        let index = ((y * image.width + x) * 3) as usize;
        [image.rgb[index], image.rgb[index + 1], image.rgb[index + 2]]
    };
    // The left (red) half of the stored image is the top after turning 90° clockwise.
    let top = pixel(10, 5);
    let bottom = pixel(10, 35);
    assert!(top[0] > 150 && top[2] < 100, "top {top:?}");
    assert!(bottom[2] > 150 && bottom[0] < 100, "bottom {bottom:?}");
    assert_eq!(image.source_sha256.len(), 64);
}

#[test]
fn large_screenshot_is_capped_on_the_long_side_not_squashed() {
    let screenshot =
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(3840, 2160, |x, y| {
            image::Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                128,
                if x < 100 { 0 } else { 255 },
            ])
        }));
    let png = fixtures::encode_image(&screenshot, image::ImageFormat::Png);
    let image = ingest_ok("screen.png", &png).image.expect("an image");
    assert_eq!((image.width, image.height), (1344, 756));
    assert_eq!((image.original_width, image.original_height), (3840, 2160));
    // Transparent pixels are flattened onto white.
    assert_eq!(&image.rgb[..3], &[255, 255, 255]);
    assert!(image.thumbnail.width <= 256 && image.thumbnail.height <= 256);
}

#[test]
fn docx_table_becomes_markdown() {
    let document = ingest_ok("figures.docx", &fixtures::docx_with_table());
    assert_eq!(document.kind, DocumentKind::Docx);
    let text = &document.pages[0].text;
    assert!(text.contains("Quarterly Figures"), "{text}");
    assert!(text.contains("Revenue grew in every region."));
    let table_row = text
        .lines()
        .find(|line| line.contains("Seoul"))
        .unwrap_or_else(|| panic!("no Seoul row in {text}"));
    assert!(
        table_row.contains('|') && table_row.contains("1200"),
        "{table_row}"
    );
}

#[test]
fn xlsx_sheet_becomes_a_markdown_table() {
    let document = ingest_ok("sales.xlsx", &fixtures::xlsx_with_sheet());
    assert_eq!(document.kind, DocumentKind::Xlsx);
    let text = &document.pages[0].text;
    let row = text
        .lines()
        .find(|line| line.contains("Incheon"))
        .unwrap_or_else(|| panic!("no Incheon row in {text}"));
    assert!(row.contains('|') && row.contains("4521"), "{row}");
    assert!(text.contains("Daegu") && text.contains("3310"), "{text}");
}

#[test]
fn shift_jis_csv_becomes_a_table() {
    let (csv, _, _) = encoding_rs::SHIFT_JIS.encode("都市,人口\n東京,13960000\n大阪,8839000\n");
    let document = ingest_ok("cities.csv", &csv);
    assert_eq!(document.kind, DocumentKind::Csv);
    assert_eq!(
        document.pages[0].text,
        "| 都市 | 人口 |\n| --- | --- |\n| 東京 | 13960000 |\n| 大阪 | 8839000 |\n"
    );
    assert!(
        document
            .warnings
            .iter()
            .any(|warning| warning.contains("Shift_JIS"))
    );
}

#[test]
fn text_that_looks_like_html_stays_literal() {
    let payload = "<img src=x onerror=alert(1)> <script>alert(2)</script>";
    let document = ingest_ok("notes.txt", payload.as_bytes());
    assert_eq!(document.kind, DocumentKind::Text);
    assert_eq!(document.pages[0].text, payload);

    let pdf = fixtures::pdf_with_pages(&[PageContent::Latin(&[
        "<img src=x onerror=alert(1)> is the text",
    ])]);
    let document = ingest_ok("payload.pdf", &pdf);
    assert!(
        document.pages[0]
            .text
            .contains("<img src=x onerror=alert(1)>"),
        "{:?}",
        document.pages[0].text
    );

    let html = "<html><body><nav>Menu Home</nav><p>&lt;script&gt;alert(3)&lt;/script&gt; body</p><script>alert(4)</script></body></html>";
    let document = ingest_ok("page.html", html.as_bytes());
    assert_eq!(document.kind, DocumentKind::Html);
    assert_eq!(document.pages[0].text, "<script>alert(3)</script> body");
}

#[test]
fn image_bombs_are_refused_from_the_header_or_bounded() {
    let options = options();
    // 100000×100000 declared in a ~60-byte file.
    let (result, elapsed) = ingest_named(
        "huge.png",
        &fixtures::png_raw(100_000, 100_000, &[], &fixtures::zlib(&[0; 16])),
        &options,
    );
    assert!(
        matches!(result, Err(IngestError::TooLarge { .. })),
        "{}",
        summary(&result)
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // IDAT of 64 MiB of zeros behind a 1×1 header, and a 20000×20000 zero IDAT bomb.
    let (result, elapsed) = ingest_named(
        "idat.png",
        &fixtures::png_raw(1, 1, &[], &fixtures::zlib_zeros(64 << 20)),
        &options,
    );
    assert_bounded("idat", &result, elapsed, &options);
    let (result, elapsed) = ingest_named(
        "idat2.png",
        &fixtures::png_raw(20_000, 20_000, &[], &fixtures::zlib_zeros(8 << 20)),
        &options,
    );
    assert!(
        matches!(result, Err(IngestError::TooLarge { .. })),
        "{}",
        summary(&result)
    );
    assert_bounded("idat2", &result, elapsed, &options);

    // iTXt inflating to 160 MiB on a valid 1×1 image.
    let (result, elapsed) = ingest_named("itxt.png", &fixtures::png_itxt_bomb(160 << 20), &options);
    assert_bounded("itxt", &result, elapsed, &options);
    if let Ok(document) = &result {
        let image = document.image.as_ref().expect("an image");
        assert_eq!((image.width, image.height), (1, 1));
    }

    // 10,000 frames: only the first is decoded.
    let (result, elapsed) = ingest_named("anim.gif", &fixtures::gif_with_frames(10_000), &options);
    let document = result.expect("an animated GIF decodes its first frame");
    assert_eq!(
        document.image.map(|image| (image.width, image.height)),
        Some((2, 2))
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn empty_random_and_truncated_files_get_typed_errors() {
    let options = options();
    let (result, _) = ingest_named("empty.pdf", b"", &options);
    assert!(
        matches!(result, Err(IngestError::Unsupported { .. })),
        "{}",
        summary(&result)
    );

    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for name in ["random.pdf", "random.png", "random.docx"] {
        let (result, _) = ingest_named(name, &random, &options);
        assert!(
            matches!(result, Err(IngestError::Unsupported { .. })),
            "{name}: {}",
            summary(&result)
        );
    }

    let red = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        64,
        64,
        image::Rgb([200, 10, 10]),
    ));
    let samples: Vec<(&str, Vec<u8>)> = vec![
        (
            "t.png",
            fixtures::encode_image(&red, image::ImageFormat::Png),
        ),
        (
            "t.jpg",
            fixtures::encode_image(&red, image::ImageFormat::Jpeg),
        ),
        (
            "t.gif",
            fixtures::encode_image(&red, image::ImageFormat::Gif),
        ),
        (
            "t.bmp",
            fixtures::encode_image(&red, image::ImageFormat::Bmp),
        ),
        (
            "t.tiff",
            fixtures::encode_image(&red, image::ImageFormat::Tiff),
        ),
        (
            "t.webp",
            fixtures::encode_image(&red, image::ImageFormat::WebP),
        ),
        (
            "t.pdf",
            fixtures::pdf_with_pages(&[PageContent::Latin(&["Some text for truncation."])]),
        ),
        ("t.docx", fixtures::docx_with_table()),
    ];
    for (name, bytes) in samples {
        let whole = ingest_named(name, &bytes, &options).0;
        assert!(whole.is_ok(), "{name} whole: {}", summary(&whole));
        let (result, elapsed) = ingest_named(name, &bytes[..bytes.len() / 2], &options);
        assert_bounded(name, &result, elapsed, &options);
        assert!(
            !matches!(
                result,
                Err(IngestError::WorkerCrashed { .. } | IngestError::Timeout { .. })
            ),
            "{name} truncated: {}",
            summary(&result)
        );
    }
}

#[test]
fn hostile_pdfs_end_in_typed_errors_or_bounded_results() {
    let mut options = options();
    options.limits.max_stream_bytes = 16 << 20;
    options.limits.timeout_seconds = 30;

    let (result, elapsed) = ingest_named(
        "bomb.pdf",
        &fixtures::pdf_with_flate_bomb(64 << 20),
        &options,
    );
    assert!(
        matches!(
            result,
            Err(IngestError::Bomb { .. } | IngestError::MemoryLimit { .. })
        ),
        "{}",
        summary(&result)
    );
    assert_bounded("bomb", &result, elapsed, &options);

    let (result, elapsed) = ingest_named(
        "pages.pdf",
        &fixtures::pdf_with_many_pages(10_000),
        &options,
    );
    assert!(
        matches!(result, Err(IngestError::TooLarge { limit: 2000, .. })),
        "{}",
        summary(&result)
    );
    assert_bounded("pages", &result, elapsed, &options);

    for (name, bytes) in [
        ("nested.pdf", fixtures::pdf_with_nested_arrays(10_000)),
        ("loop.pdf", fixtures::pdf_with_self_referencing_pages()),
        ("form.pdf", fixtures::pdf_with_self_drawing_form()),
    ] {
        let (result, elapsed) = ingest_named(name, &bytes, &options);
        assert_bounded(name, &result, elapsed, &options);
        assert!(
            !matches!(result, Err(IngestError::Timeout { .. })),
            "{name}: {}",
            summary(&result)
        );
    }
}

#[test]
fn a_page_of_ten_million_operators_is_bounded_and_cancellable() {
    let content = "0 0 m\n".repeat(10_000_000).into_bytes();
    let mut pdf = fixtures::PdfWriter::default();
    let catalog = pdf.reserve();
    let tree = pdf.reserve();
    let stream = pdf.add_stream("/Filter /FlateDecode", &fixtures::zlib(&content));
    drop(content);
    let page = pdf.add(format!(
        "<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 200 200] /Contents {stream} 0 R >>"
    ));
    pdf.set(
        tree,
        format!("<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>"),
    );
    pdf.set(catalog, format!("<< /Type /Catalog /Pages {tree} 0 R >>"));
    let bytes = pdf.finish(catalog, None);

    let mut options = options();
    options.limits.timeout_seconds = 20;
    let (result, elapsed) = ingest_named("ops.pdf", &bytes, &options);
    assert_bounded("ops", &result, elapsed, &options);

    let file = write_file("ops.pdf", &bytes);
    let cancel = CancelFlag::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let result = client().ingest_with(&file.path, &options, &cancel, &mut |_| {});
    canceller.join().expect("canceller thread");
    if started.elapsed() >= Duration::from_millis(300) {
        assert!(
            matches!(result, Err(IngestError::Cancelled)),
            "{}",
            summary(&result)
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn caps_are_errors_not_truncation() {
    let mut options = options();
    options.limits.max_input_bytes = 1000;
    let (result, _) = ingest_named("big.txt", &vec![b'a'; 2000], &options);
    assert!(
        matches!(
            result,
            Err(IngestError::TooLarge {
                actual: 2000,
                limit: 1000,
                ..
            })
        ),
        "{}",
        summary(&result)
    );

    let mut options = self::options();
    options.limits.timeout_seconds = 1;
    let content = "0 0 m\n".repeat(3_000_000).into_bytes();
    let pdf = fixtures::pdf_with_raw_page(content, "");
    let (result, elapsed) = ingest_named("slow.pdf", &pdf, &options);
    if elapsed >= Duration::from_secs(1) {
        assert!(
            matches!(result, Err(IngestError::Timeout { seconds: 1 })),
            "{}",
            summary(&result)
        );
    }
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");

    let missing = client().ingest(
        std::path::Path::new("/nonexistent/cria/file.pdf"),
        &self::options(),
    );
    assert!(
        matches!(missing, Err(IngestError::Io { .. })),
        "{}",
        summary(&missing)
    );
}

#[test]
fn encrypted_pdfs_open_with_the_empty_password_or_ask_for_one() {
    let document = ingest_ok(
        "open.pdf",
        &fixtures::encrypted_pdf("", "Encrypted but openable text."),
    );
    assert!(
        document.pages[0]
            .text
            .contains("Encrypted but openable text."),
        "{:?}",
        document.pages[0].text
    );

    let (result, _) = ingest_named(
        "locked.pdf",
        &fixtures::encrypted_pdf("letmein", "Secret text."),
        &options(),
    );
    assert!(
        matches!(result, Err(IngestError::PasswordRequired)),
        "{}",
        summary(&result)
    );
}

#[test]
fn any_pdf_page_renders_on_request_and_missing_pages_are_errors() {
    let pdf = fixtures::pdf_with_pages(&[
        PageContent::Latin(&["Rendered on request."]),
        PageContent::Korean(&["대한민국의 수도는 서울입니다"]),
    ]);
    let image = cria_ingest::render_pdf_page(&pdf, 0, &options()).expect("the page renders");
    assert_eq!(image.height, 1344);
    let dark = image
        .rgb
        .chunks_exact(3)
        .filter(|pixel| pixel.iter().all(|&value| value < 128))
        .count();
    assert!(dark > 100, "the text is drawn ({dark} dark pixels)");
    // A page whose CJK font is not embedded renders too, its Hangul drawn with the bundled
    // fallback font (without it the glyphs would be missing and the page blank).
    let korean =
        cria_ingest::render_pdf_page(&pdf, 1, &options()).expect("the Korean page renders");
    let dark = korean
        .rgb
        .chunks_exact(3)
        .filter(|pixel| pixel.iter().all(|&value| value < 128))
        .count();
    assert!(dark > 100, "the Hangul is drawn ({dark} dark pixels)");
    if let Some(dir) = std::env::var_os("CRIA_RENDER_DUMP_DIR") {
        image::RgbImage::from_raw(korean.width, korean.height, korean.rgb.clone())
            .expect("a whole image")
            .save(std::path::Path::new(&dir).join("korean-page.png"))
            .expect("write the rendered page");
    }
    let result = cria_ingest::render_pdf_page(&pdf, 5, &options());
    assert!(matches!(result, Err(IngestError::Corrupt { .. })));
}

#[test]
fn a_worker_over_its_memory_cap_is_a_typed_error_and_the_app_survives() {
    let mut options = options();
    options.limits.worker_memory_bytes = 512 * 1024 * 1024;
    // 120 MiB of two-column CSV: ~31 million rows of cells need several GiB as parsed cells.
    let csv = "a,b\n".repeat(30 << 20);
    let (result, elapsed) = ingest_named("huge.csv", csv.as_bytes(), &options);
    drop(csv);
    assert!(
        matches!(result, Err(IngestError::MemoryLimit { limit_bytes }) if limit_bytes == 512 * 1024 * 1024),
        "{}",
        summary(&result)
    );
    assert_bounded("huge.csv", &result, elapsed, &options);
}
