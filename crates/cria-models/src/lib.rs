//! Cria's model library: the curated catalog, importing local GGUF files, resumable verified
//! downloads, and the fit planner that says whether (and how) a model runs on this machine.
//!
//! The contract, module by module:
//! - [`catalog`]: `models/catalog.toml` parsed and validated; every download URL is https on an
//!   allow-listed host, every size is positive, every mmproj reference resolves.
//! - [`planner`]: pure arithmetic from [`planner::ModelFacts`] and [`planner::Machine`] to a
//!   [`planner::FitPlan`]: where each byte goes (GPU, CPU RAM), the largest useful context, a verdict
//!   in plain words and an expected speed range. No I/O, never NaN, never zero for a real model.
//! - [`host`]: this computer's memory, combined with the GPUs the engine reports.
//! - [`names`]: the only way a model or file name becomes a path inside the library directory.
//! - [`library`]: the library directory and its `library.json` index (written atomically),
//!   importing local GGUFs (in place or copied), pairing mmproj files, listing with fit verdicts.
//! - [`download`] and [`net`]: streaming downloads into `.part` files with resume, sha256, size
//!   checks, fsync and atomic rename; every redirect hop re-checked against [`net::NetworkPolicy`].
//!
//! Architecture Invariant: this crate knows nothing of Tauri or llama.cpp; among Cria crates it
//! depends on `cria-gguf` only. Nothing here writes outside the library directory it was given,
//! and a file appears under its final name only when complete and verified.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod download;
pub mod host;
pub mod library;
pub mod names;
pub mod net;
pub mod planner;

use std::path::PathBuf;

/// Everything that can go wrong in the model library. Messages say what happened and what the
/// user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("the model catalog could not be read: {0}")]
    CatalogParse(String),
    #[error("the model catalog is invalid: {0}")]
    CatalogInvalid(String),
    #[error("unsafe name {name:?}: {reason}; use a plain file name without folders")]
    UnsafeName { name: String, reason: &'static str },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the disk is full while writing {path}; free some space and retry (the download resumes)"
    )]
    DiskFull { path: PathBuf },
    #[error(
        "not enough free space in {dir}: {needed} bytes needed, {available} available; free some space or choose another library folder"
    )]
    InsufficientSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("{path} is not a usable GGUF model: {reason}")]
    NotGguf { path: PathBuf, reason: String },
    #[error("refused to contact {url}: {reason}")]
    UrlRejected { url: String, reason: String },
    #[error("too many redirects (more than {0}) starting at {1}")]
    TooManyRedirects(usize, String),
    #[error("the server answered {status} for {url}; the file was not saved")]
    HttpStatus { status: u16, url: String },
    #[error("network error while fetching {url}: {message}; check the connection and retry")]
    Network { url: String, message: String },
    #[error(
        "the server sent an inconsistent Content-Range ({got:?}) for {url}; the partial file was kept unchanged"
    )]
    BadContentRange { url: String, got: String },
    #[error("the server sent an empty file for {url}; nothing was saved")]
    EmptyBody { url: String },
    #[error("{file}: expected {expected} bytes but received {actual}; retry to resume")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{file}: checksum mismatch (expected sha256 {expected}, got {actual}); the damaged download was deleted"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{file}: no sha256 is known for this file, so it cannot be verified; refusing to save it"
    )]
    MissingChecksum { file: String },
    #[error("the response from {url} is larger than the {limit}-byte limit for metadata")]
    BodyTooLarge { url: String, limit: u64 },
    #[error(
        "the response from {url} uses Content-Encoding {encoding:?}, which is refused for safety"
    )]
    UnexpectedEncoding { url: String, encoding: String },
    #[error("{file} is already being downloaded; wait for that download or cancel it")]
    AlreadyDownloading { file: String },
    #[error("the download was cancelled; the partial file is kept so it can resume")]
    Cancelled,
    #[error("the library index {path} is damaged: {message}")]
    IndexCorrupt { path: PathBuf, message: String },
    #[error("no model {0:?} in the library")]
    UnknownModel(String),
}

pub type Result<T> = std::result::Result<T, ModelsError>;

impl ModelsError {
    /// Wraps an I/O error with what was being done, turning "no space left" into [`Self::DiskFull`].
    pub(crate) fn io(
        context: impl Into<String>,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return Self::DiskFull {
                path: path.to_path_buf(),
            };
        }
        Self::Io {
            context: format!("{} ({})", context.into(), path.display()),
            source,
        }
    }
}

#[cfg(test)]
mod wiring {
    /// Architecture Invariant check: the manifest names no Cria crate but `cria-gguf`, and
    /// nothing of Tauri, llama.cpp or native TLS.
    #[test]
    fn dependencies_respect_the_crate_boundaries() {
        let manifest = include_str!("../Cargo.toml");
        let dependencies: Vec<&str> = manifest
            .lines()
            .filter_map(|line| line.split_once(".workspace").map(|(name, _)| name.trim()))
            .chain(
                manifest
                    .lines()
                    .filter_map(|line| line.split_once(" = {").map(|(name, _)| name.trim())),
            )
            .collect();
        assert!(dependencies.contains(&"cria-gguf"), "{dependencies:?}");
        for name in &dependencies {
            assert!(
                !name.starts_with("cria-") || *name == "cria-gguf",
                "{name} must not be a dependency"
            );
            for banned in ["tauri", "llama", "native-tls", "openssl", "aws-lc"] {
                assert!(!name.contains(banned), "{name} must not be a dependency");
            }
        }
    }
}
