//! Measures the reader and the fixture writer (numbers for docs/benchmarks.md).
//!
//! Usage: cargo run --release -p cria-gguf --example gguf_timing -- [MODEL.gguf]

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn best_of<T>(runs: u32, mut work: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(work());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("cria-gguf-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let text = dir.join("llama4.gguf");
    let projector = dir.join("mmproj.gguf");

    let write_text = best_of(10, || cria_gguf::fixture::write_llama4_text_model(&text, 1));
    let write_projector = best_of(10, || {
        cria_gguf::fixture::write_llama4_mmproj(&projector, 1)
    });
    let inspect_text = best_of(10, || cria_gguf::inspect(&text));
    println!(
        "write llama4 text fixture ({} bytes): {write_text:?}",
        std::fs::metadata(&text)?.len()
    );
    println!(
        "write llama4 mmproj fixture ({} bytes): {write_projector:?}",
        std::fs::metadata(&projector)?.len()
    );
    println!("inspect llama4 text fixture: {inspect_text:?}");

    if let Some(model) = std::env::args().nth(1).map(PathBuf::from) {
        let info = cria_gguf::inspect(&model)?;
        let inspect_model = best_of(5, || cria_gguf::inspect(&model));
        println!(
            "inspect {} ({} bytes, {} tensors, vocabulary {:?}): {inspect_model:?}",
            model.display(),
            info.file_bytes,
            info.tensors.len(),
            info.vocab_size
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
