//! Ingest benchmarks for docs/benchmarks.md (run with `--release`):
//! text of a generated 100-page text PDF beside poppler's `pdftotext` on the same file,
//! a 4K screenshot to encoder input, and rendering a page at 150 dpi.
//!
//! `cargo run --release -p cria-ingest --example ingest_bench [-- OUT_DIR]`

use cria_ingest::{IngestOptions, ingest_bytes, prepare_image, prepare_pixels, render_pdf_page};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let options = IngestOptions::default();

    let pdf = text_pdf(100);
    let pdf_path = out_dir.join("cria-bench-100-pages.pdf");
    std::fs::write(&pdf_path, &pdf)?;
    let ours = best_of(|| {
        let document =
            ingest_bytes(&pdf, None, &options, &mut |_| {}).expect("the generated PDF ingests");
        assert_eq!(document.pages.len(), 100);
        assert!(document.pages.iter().all(|page| page.text_layer_usable));
    });
    let text_out = out_dir.join("cria-bench-100-pages.txt");
    let poppler = best_of(|| {
        let status = std::process::Command::new("pdftotext")
            .arg(&pdf_path)
            .arg(&text_out)
            .status()
            .expect("pdftotext is installed");
        assert!(status.success());
    });
    println!(
        "100-page text PDF ({} KiB): cria-ingest {:.1} ms, pdftotext {:.1} ms, ratio {:.2}",
        pdf.len() / 1024,
        ms(ours),
        ms(poppler),
        ours.as_secs_f64() / poppler.as_secs_f64()
    );

    let screenshot = screenshot_rgb(3840, 2160);
    let resize_only = best_of(|| {
        let image = prepare_pixels(3840, 2160, screenshot.clone(), &options).expect("valid pixels");
        assert_eq!((image.width, image.height), (1344, 756));
    });
    let png = encode_png(3840, 2160, &screenshot);
    let with_decode = best_of(|| {
        let image = prepare_image(&png, &options).expect("valid PNG");
        assert_eq!((image.width, image.height), (1344, 756));
    });
    println!(
        "4K screenshot to encoder input: {:.1} ms from pixels (resize + thumbnail), {:.1} ms from a PNG file ({} KiB, decode included)",
        ms(resize_only),
        ms(with_decode),
        png.len() / 1024
    );

    let render = best_of(|| {
        let image = render_pdf_page(&pdf, 0, &options).expect("page renders");
        assert!(image.original_width >= 1200);
    });
    println!(
        "render one text page at 150 dpi (1275x1650, then resize + thumbnail): {:.1} ms",
        ms(render)
    );
    Ok(())
}

fn best_of(mut run: impl FnMut()) -> Duration {
    run();
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A screenshot-like image: flat panels, lines of "text" made of dark strokes.
fn screenshot_rgb(width: u32, height: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let panel = if x < 600 {
                [240, 242, 245]
            } else {
                [255, 255, 255]
            };
            let stroke = (y % 24) < 12 && (x % 9) < 5 && x > 640 && (y / 24) % 3 != 2;
            rgb.extend_from_slice(if stroke { &[30, 30, 30] } else { &panel });
        }
    }
    rgb
}

fn encode_png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut out,
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .expect("in-memory encode");
    out.into_inner()
}

/// `pages` Letter pages of 45 lines of Helvetica text each, Flate-compressed content.
fn text_pdf(pages: usize) -> Vec<u8> {
    use std::io::Write;
    let mut objects: Vec<Vec<u8>> = vec![Vec::new(), Vec::new()];
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut kids = String::new();
    for page in 0..pages {
        let mut content = String::from("BT /F1 11 Tf 14 TL 60 740 Td\n");
        for line in 0..45 {
            content.push_str(&format!(
                "(Page {page} line {line}: the quarterly report shows revenue, costs and margins by region.) Tj T*\n"
            ));
        }
        content.push_str("ET\n");
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content.as_bytes()).expect("in-memory");
        let data = encoder.finish().expect("in-memory");
        let mut stream = format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .into_bytes();
        stream.extend_from_slice(&data);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
        let content_id = objects.len();
        objects.push(
            format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>")
                .into_bytes(),
        );
        kids.push_str(&format!("{} 0 R ", objects.len()));
    }
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    objects[1] = format!("<< /Type /Pages /Kids [{kids}] /Count {pages} >>").into_bytes();
    cria_ingest::pdf_writer::write_pdf(&objects, 1, None)
}
