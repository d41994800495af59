//! Writes the fuzz corpus seeds: the Llama 4 fixtures and a few small edge-case files.
//!
//! Usage: cargo run -p cria-gguf --example fuzz_seeds -- fuzz/corpus/read_gguf

use std::path::PathBuf;

use cria_gguf::{GgmlType, GgufWriter, fixture};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds OUTPUT_DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    fixture::write_llama4_text_model(&dir.join("llama4-text.gguf"), 1)?;
    fixture::write_llama4_mmproj(&dir.join("llama4-mmproj.gguf"), 1)?;
    fixture::write_llama4_mmproj_f16_position_embedding(&dir.join("llama4-mmproj-f16.gguf"), 1)?;

    // Small files reach the interesting branches faster than 1 MB ones.
    let mut small = GgufWriter::new();
    small
        .add("general.architecture", "llama")
        .add("general.alignment", 64u32)
        .add("general.file_type", 15u32)
        .add("llama.block_count", 1u32)
        .add("split.count", 2u16)
        .add(
            "tokenizer.ggml.tokens",
            vec!["a".to_owned(), "b".to_owned()],
        )
        .add("tokenizer.ggml.add_bos_token", true)
        .add("tokenizer.chat_template", "{{ messages }}");
    small.add_tensor(
        "blk.0.ffn_up_exps.weight",
        &[256, 2],
        GgmlType::Q4K,
        vec![0; 288],
    )?;
    small.add_f32_tensor("output_norm.weight", &[4], &[1.0; 4])?;
    small.write_file(&dir.join("small-q4k.gguf"))?;

    let mut empty = GgufWriter::new();
    empty.set_version(2);
    empty.write_file(&dir.join("empty-v2.gguf"))?;
    println!("seeds written to {}", dir.display());
    Ok(())
}
