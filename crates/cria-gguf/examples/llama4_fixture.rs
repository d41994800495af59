//! Writes the tiny random-weight Llama 4 text model and its vision projector into a folder, as
//! a user's download would lie side by side. Used by the end-to-end tests (first-run import).
//!
//! Usage: cargo run -p cria-gguf --example llama4_fixture -- OUTPUT_DIR

use std::path::PathBuf;

use cria_gguf::fixture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: llama4_fixture OUTPUT_DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    let model = dir.join("Llama-4-Tiny-Test-F32.gguf");
    fixture::write_llama4_text_model(&model, 7)?;
    fixture::write_llama4_mmproj(&dir.join("mmproj-Llama-4-Tiny-Test-F32.gguf"), 7)?;
    println!("{}", model.display());
    Ok(())
}
