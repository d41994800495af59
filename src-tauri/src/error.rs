//! The one error type the webview sees: `{ kind, message }`. The UI branches on `kind` and
//! shows `message`, which the core wrote for people.

use cria_core::CoreError;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    NotFound,
    InvalidInput,
    Engine,
    /// A model file could not be imported, found or planned.
    Model,
    Storage,
    Internal,
    /// The user cancelled the operation (a download keeps its partial file to resume).
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<CoreError> for IpcError {
    fn from(error: CoreError) -> Self {
        let kind = match &error {
            CoreError::Store(cria_core::StoreError::NotFound { .. }) => ErrorKind::NotFound,
            CoreError::Store(_) => ErrorKind::Storage,
            CoreError::Engine(_) => ErrorKind::Engine,
            CoreError::Models(_) => ErrorKind::Model,
            CoreError::InvalidInput(_) | CoreError::Attachment { .. } => ErrorKind::InvalidInput,
            CoreError::NoDataDir | CoreError::Internal(_) => ErrorKind::Internal,
        };
        IpcError {
            kind,
            message: error.to_string(),
        }
    }
}

pub type IpcResult<T> = Result<T, IpcError>;
