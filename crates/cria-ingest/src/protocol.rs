//! The worker protocol: length-prefixed JSON frames (4-byte little-endian length, then a JSON
//! document) over the worker's stdin (one [`WorkerRequest`]) and stdout ([`WorkerEvent`]s until
//! `Done` or `Failed`). Lengths are checked against a cap before anything is allocated, so a
//! confused or hostile peer cannot make the other side allocate without bound. The worker's
//! stderr is free text kept only for crash reports.

use crate::{IngestError, IngestOptions, IngestedDocument, Progress};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Largest request frame (a path and options).
pub(crate) const MAX_REQUEST_FRAME: u32 = 1024 * 1024;
/// Largest event frame: a document with its page images, base64-encoded.
pub(crate) const MAX_EVENT_FRAME: u32 = 1024 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerRequest {
    pub path: PathBuf,
    pub file_name: Option<String>,
    pub options: IngestOptions,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub(crate) enum WorkerEvent {
    Progress(Progress),
    Done(Box<IngestedDocument>),
    Failed(IngestError),
}

pub(crate) fn write_frame<T: Serialize>(writer: &mut impl Write, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    let length = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame over 4 GiB"))?;
    writer.write_all(&length.to_le_bytes())?;
    writer.write_all(&body)?;
    writer.flush()
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub(crate) fn read_frame<T: DeserializeOwned>(
    reader: &mut impl Read,
    max_length: u32,
) -> io::Result<Option<T>> {
    let mut length_bytes = [0u8; 4];
    match reader.read_exact(&mut length_bytes) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = u32::from_le_bytes(length_bytes);
    if length > max_length {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes exceeds the {max_length}-byte cap"),
        ));
    }
    let mut body = vec![0u8; length as usize];
    reader.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}
