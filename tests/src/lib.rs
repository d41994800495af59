//! Helpers shared by Cria's integration tests (fixtures, paths to the workspace's files).

use std::path::{Path, PathBuf};

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Gemma 3 270M, fetched by `scripts/fetch-test-models.sh` into `models/`. Missing: a failure
/// under CI, else `None` (the caller skips, saying so).
pub fn gemma_model() -> Option<PathBuf> {
    let path = workspace_root().join("models/gemma-3-270m-q4_k_m.gguf");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing; CI must fetch it (scripts/)",
        path.display()
    );
    eprintln!(
        "skipping: {} is missing (fetch it with scripts/)",
        path.display()
    );
    None
}

/// Writes the tiny Llama 4 fixture (text model and its mmproj beside it, seed 11) into
/// `dir/downloads/` and returns the model's path.
pub fn write_llama4_pair(dir: &Path) -> PathBuf {
    let models = dir.join("downloads");
    std::fs::create_dir_all(&models).expect("create the downloads folder");
    let model = models.join("Llama-4-Tiny.gguf");
    cria_gguf::fixture::write_llama4_text_model(&model, 11).expect("write the fixture model");
    cria_gguf::fixture::write_llama4_mmproj(&models.join("mmproj-Llama-4-Tiny.gguf"), 11)
        .expect("write the fixture mmproj");
    model
}

pub mod store_crash;
