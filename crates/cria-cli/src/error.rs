//! The one place where failures become exit codes.
//!
//! Contract: 0 success; 1 a user error (bad input, a missing file or conversation, a file that
//! is not what it claims to be); 2 the engine or a model failed (loading, generating, or
//! downloading and verifying a model), with the classified reason; 130 interrupted (Ctrl-C).
//! Every failure prints exactly one line on stderr, `cria: <message>`.

use std::process::ExitCode;

use cria_core::CoreError;
use cria_engine::EngineError;
use cria_ingest::IngestError;
use cria_models::ModelsError;

/// Exit status of a user error.
pub const EXIT_USER: u8 = 1;
/// Exit status of an engine or model failure.
pub const EXIT_ENGINE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, what shells report for an interrupted command).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user can fix it: the input, a path, an id.
    #[error("{0}")]
    User(String),
    /// The engine or a model failed; the message carries the classified reason.
    #[error("{0}")]
    Engine(String),
    /// Ctrl-C stopped the command; the message says what was kept.
    #[error("{0}")]
    Interrupted(String),
}

pub type CliResult<T> = std::result::Result<T, CliError>;

impl CliError {
    pub fn user(message: impl Into<String>) -> Self {
        CliError::User(message.into())
    }

    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::User(_) => EXIT_USER,
            CliError::Engine(_) => EXIT_ENGINE,
            CliError::Interrupted(_) => EXIT_INTERRUPTED,
        }
    }

    /// Prints the one-line message and returns the exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("cria: {}", one_line(&self.to_string()));
        ExitCode::from(self.exit_status())
    }
}

/// Folds a multi-line message (an engine's stderr tail, a parser's detail) into one line.
pub fn one_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    for word in message.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

impl From<EngineError> for CliError {
    fn from(error: EngineError) -> Self {
        CliError::Engine(error.to_string())
    }
}

impl From<IngestError> for CliError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Cancelled => {
                CliError::Interrupted("reading the file was cancelled".into())
            }
            // A file that is too big, a bomb, damaged or unsupported: the user chose the file.
            other => CliError::User(other.to_string()),
        }
    }
}

impl From<ModelsError> for CliError {
    fn from(error: ModelsError) -> Self {
        match error {
            ModelsError::Cancelled => CliError::Interrupted(error.to_string()),
            ModelsError::NotGguf { .. }
            | ModelsError::UnknownModel(_)
            | ModelsError::UnsafeName { .. }
            | ModelsError::InsufficientSpace { .. }
            | ModelsError::DiskFull { .. }
            | ModelsError::AlreadyDownloading { .. }
            | ModelsError::Io { .. }
            | ModelsError::IndexCorrupt { .. } => CliError::User(error.to_string()),
            // Catalog, network and verification failures: the model could not be obtained.
            other => CliError::Engine(other.to_string()),
        }
    }
}

impl From<CoreError> for CliError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Engine(engine) => engine.into(),
            CoreError::Models(models) => models.into(),
            other => CliError::User(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for CliError {
    /// The engine commands (`chat`, `devices`, `bench`) report through `anyhow`; an engine
    /// error anywhere in the chain is an engine failure, anything else the user's.
    fn from(error: anyhow::Error) -> Self {
        let is_engine = error
            .chain()
            .any(|cause| cause.downcast_ref::<EngineError>().is_some());
        let message = format!("{error:#}");
        if is_engine {
            CliError::Engine(message)
        } else {
            CliError::User(message)
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::User(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fold_into_one_line() {
        assert_eq!(one_line("a\n  b\r\nc "), "a b c");
    }

    #[test]
    fn failures_map_to_the_documented_codes() {
        let engine: CliError = CoreError::Engine(EngineError::NoModelLoaded).into();
        assert_eq!(engine.exit_status(), EXIT_ENGINE);
        let missing: CliError = CoreError::Store(cria_core::StoreError::NotFound {
            what: "conversation",
            id: 7,
        })
        .into();
        assert_eq!(missing.exit_status(), EXIT_USER);
        let bomb: CliError = IngestError::Bomb { detail: "x".into() }.into();
        assert_eq!(bomb.exit_status(), EXIT_USER);
        let cancelled: CliError = ModelsError::Cancelled.into();
        assert_eq!(cancelled.exit_status(), EXIT_INTERRUPTED);
        let checksum: CliError = ModelsError::ChecksumMismatch {
            file: "m.gguf".into(),
            expected: "a".into(),
            actual: "b".into(),
        }
        .into();
        assert_eq!(checksum.exit_status(), EXIT_ENGINE);
        let wrapped: CliError = anyhow::Error::new(EngineError::NoVisionProjector)
            .context("loading")
            .into();
        assert_eq!(wrapped.exit_status(), EXIT_ENGINE);
    }
}
