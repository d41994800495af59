//! The worker protocol: framed messages over the worker's stdin (requests) and stdout (events).
//!
//! A frame is `b"CRIA"`, a little-endian `u32` JSON length, the JSON, a `u32` blob count, and
//! each blob as a `u32` length plus bytes. Blobs carry image pixels so that megabytes of RGB
//! never pass through JSON. The magic makes stray output on stdout a clear protocol error
//! instead of a misread length. Sizes are bounded so a broken peer cannot exhaust memory.
//! The worker speaks first with [`WorkerEvent::Ready`] naming [`PROTOCOL_VERSION`].

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::{
    ChatMessage, DeviceInfo, EngineError, GenerateOutcome, GenerateRequest, LoadOptions, ModelInfo,
};

/// Bumped whenever a message changes shape.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

const MAGIC: &[u8; 4] = b"CRIA";
const MAX_JSON_BYTES: u32 = 64 << 20;
const MAX_BLOBS: u32 = 256;
const MAX_BLOB_BYTES: u32 = 3 * 8192 * 8192;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerRequest {
    Load(LoadOptions),
    /// Image pixels follow as blobs, one per image in prompt order. `id` (from 1) names the
    /// generation for `Cancel`.
    Generate {
        id: u64,
        request: GenerateRequest,
    },
    /// Ends generation `id` if it is running (handled by the stdin thread while the engine
    /// is busy; a late cancel for a finished generation does nothing).
    Cancel {
        id: u64,
    },
    Bench(BenchRequest),
    /// The prompt a generation would see (images as media markers), without generating.
    Render {
        messages: Vec<ChatMessage>,
    },
    Unload,
    Status,
    Devices,
    /// Test only: abort the process in the middle of the next token stream. Refused unless
    /// the worker runs with `CRIA_ENGINE_ALLOW_TEST_ABORT=1`.
    Abort,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerEvent {
    Ready {
        protocol_version: u32,
        pid: u32,
    },
    /// How far reading the weights of a `Load` has got (0.0 to 1.0, in whole percents),
    /// before its `Loaded` or `Error`.
    LoadProgress {
        fraction: f32,
    },
    Loaded(ModelInfo),
    Unloaded,
    Status {
        loaded: Option<ModelInfo>,
    },
    Devices {
        devices: Vec<DeviceInfo>,
    },
    PrefillProgress {
        done: u32,
        total: u32,
    },
    Token {
        text: String,
    },
    Done(GenerateOutcome),
    BenchResult(BenchResult),
    Rendered {
        prompt: String,
    },
    Error(EngineError),
}

/// llama-bench style measurement: `n_prompt` tokens prefilled, `n_gen` tokens generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchRequest {
    pub n_prompt: u32,
    pub n_gen: u32,
    pub repetitions: u32,
}

/// Best-of-repetitions speeds of a [`BenchRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub prompt_tokens_per_second: f64,
    pub generation_tokens_per_second: f64,
    pub threads: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub json: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

impl Frame {
    pub fn of<T: Serialize>(message: &T, blobs: Vec<Vec<u8>>) -> Frame {
        Frame {
            json: serde_json::to_vec(message).expect("protocol messages always serialize"),
            blobs,
        }
    }

    pub fn parse<T: for<'de> Deserialize<'de>>(&self) -> Result<T, EngineError> {
        serde_json::from_slice(&self.json)
            .map_err(|error| EngineError::Protocol(format!("unreadable message: {error}")))
    }

    pub fn encode(&self) -> Vec<u8> {
        let blob_bytes: usize = self.blobs.iter().map(|blob| blob.len() + 4).sum();
        let mut out = Vec::with_capacity(12 + self.json.len() + blob_bytes);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.json.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.json);
        out.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for blob in &self.blobs {
            out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
            out.extend_from_slice(blob);
        }
        out
    }
}

pub(crate) fn write_frame(writer: &mut impl Write, frame: &Frame) -> io::Result<()> {
    writer.write_all(&frame.encode())?;
    writer.flush()
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub(crate) fn read_frame(reader: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        let n = reader.read(&mut magic[filled..])?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated frame",
            ));
        }
        filled += n;
    }
    if &magic != MAGIC {
        return Err(invalid(format!(
            "expected a frame, got bytes {:?}",
            String::from_utf8_lossy(&magic)
        )));
    }
    let json_len = read_u32(reader)?;
    if json_len > MAX_JSON_BYTES {
        return Err(invalid(format!("message of {json_len} bytes is too large")));
    }
    let json = read_exact_vec(reader, json_len)?;
    let n_blobs = read_u32(reader)?;
    if n_blobs > MAX_BLOBS {
        return Err(invalid(format!("{n_blobs} attachments is too many")));
    }
    let mut blobs = Vec::with_capacity(n_blobs as usize);
    for _ in 0..n_blobs {
        let blob_len = read_u32(reader)?;
        if blob_len > MAX_BLOB_BYTES {
            return Err(invalid(format!(
                "attachment of {blob_len} bytes is too large"
            )));
        }
        blobs.push(read_exact_vec(reader, blob_len)?);
    }
    Ok(Some(Frame { json, blobs }))
}

/// The async twin of [`read_frame`], for the supervisor.
pub(crate) async fn read_frame_async(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Option<Frame>> {
    use tokio::io::AsyncReadExt;
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < 4 {
        let n = reader.read(&mut magic[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated frame",
            ));
        }
        filled += n;
    }
    if &magic != MAGIC {
        return Err(invalid(format!(
            "expected a frame, got bytes {:?}",
            String::from_utf8_lossy(&magic)
        )));
    }
    let json_len = reader.read_u32_le().await?;
    if json_len > MAX_JSON_BYTES {
        return Err(invalid(format!("message of {json_len} bytes is too large")));
    }
    let mut json = vec![0u8; json_len as usize];
    reader.read_exact(&mut json).await?;
    let n_blobs = reader.read_u32_le().await?;
    if n_blobs > MAX_BLOBS {
        return Err(invalid(format!("{n_blobs} attachments is too many")));
    }
    let mut blobs = Vec::with_capacity(n_blobs as usize);
    for _ in 0..n_blobs {
        let blob_len = reader.read_u32_le().await?;
        if blob_len > MAX_BLOB_BYTES {
            return Err(invalid(format!(
                "attachment of {blob_len} bytes is too large"
            )));
        }
        let mut blob = vec![0u8; blob_len as usize];
        reader.read_exact(&mut blob).await?;
        blobs.push(blob);
    }
    Ok(Some(Frame { json, blobs }))
}

fn read_u32(reader: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_exact_vec(reader: &mut impl Read, len: u32) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; len as usize];
    reader.read_exact(&mut buffer)?;
    Ok(buffer)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_blobs() {
        let frame = Frame::of(&WorkerRequest::Status, vec![vec![1, 2, 3], Vec::new()]);
        let bytes = frame.encode();
        let mut reader = &bytes[..];
        let read = read_frame(&mut reader).unwrap().unwrap();
        assert!(matches!(
            read.parse::<WorkerRequest>().unwrap(),
            WorkerRequest::Status
        ));
        assert_eq!(read.blobs, vec![vec![1, 2, 3], Vec::new()]);
        assert!(read_frame(&mut reader).unwrap().is_none());
    }

    #[test]
    fn stray_output_and_oversized_frames_are_errors() {
        let mut reader = &b"hello world"[..];
        let error = read_frame(&mut reader).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let error = read_frame(&mut &huge[..]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let truncated = &Frame::of(&WorkerRequest::Cancel { id: 1 }, Vec::new()).encode()[..6];
        assert!(read_frame(&mut &truncated[..]).is_err());
    }
}
