//! Helpers shared by Cria's integration tests (fixtures, paths to the workspace's files).

use std::path::{Path, PathBuf};

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub mod store_crash;
