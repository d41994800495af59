//! Reading, validating and writing GGUF model files without trusting them.
//!
//! Architecture Invariant: this crate knows nothing of llama.cpp and contains no `unsafe`.
//! Every model file passes [`read_file`] (or [`inspect`]) here before the engine's worker is asked
//! to load it.
//!
//! The contract: [`read_file`] reads only the header, metadata and tensor table (never tensor
//! data) with buffered reads, and returns a [`GgufFile`] only when every count, length, dimension,
//! size and offset is consistent with the file's real length; otherwise a [`GgufError`] naming the
//! failed check and the byte offset where the bad field starts. Nothing is allocated from a
//! declared length before the bytes left in the file are known to hold it, so a hostile header
//! costs at most a few MiB and a few milliseconds. [`inspect`] summarises a valid file for the app
//! ([`ModelInfo`]); [`GgufWriter`] writes the same format; [`fixture`] builds tiny Llama 4 models.
#![forbid(unsafe_code)]

pub mod fixture;
mod info;
mod read;
mod types;
mod write;

pub use info::{ModelInfo, ProjectorInfo, SplitInfo, TensorSummary, inspect, summarize};
pub use read::{
    GgufFile, MAX_ALIGNMENT, MAX_ARRAY_LEN, MAX_DIMS, MAX_KEYS, MAX_STRING_LEN,
    MAX_TENSOR_NAME_LEN, MAX_TENSORS, MAX_TOTAL_ARRAY_ELEMENTS, TensorInfo, parse_bytes, read_file,
    read_from,
};
pub use types::{Array, GgmlType, Value, ValueType};
pub use write::GgufWriter;

/// The alignment of tensor data when a file has no `general.alignment` key.
pub const DEFAULT_ALIGNMENT: u32 = 32;

/// Errors from reading, validating, summarising or writing a GGUF file.
///
/// Offsets are byte positions from the start of the file where the offending field begins.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the model file: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "not a GGUF file: it starts with {found:02x?} instead of \"GGUF\"; pick a .gguf model file"
    )]
    BadMagic { found: Vec<u8> },
    #[error(
        "unsupported GGUF version {version} (only versions 2 and 3, little-endian, are supported); \
         convert the model again with a current llama.cpp"
    )]
    UnsupportedVersion { version: u32 },
    #[error(
        "the file is truncated or damaged: {what} at byte {offset} needs {needed} bytes but only \
         {available} remain; download the model again"
    )]
    Truncated {
        what: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error(
        "damaged header: the {what} at byte {offset} declares {count}, more than the file or the \
         reader's limit allows ({max})"
    )]
    CountTooLarge {
        what: &'static str,
        offset: u64,
        count: u64,
        max: u64,
    },
    #[error("damaged metadata: key {key:?} at byte {offset} has unknown value type {type_id}")]
    UnknownValueType {
        key: String,
        offset: u64,
        type_id: u32,
    },
    #[error("damaged metadata: key {key:?} at byte {offset} is an array of arrays (not allowed)")]
    NestedArray { key: String, offset: u64 },
    #[error("damaged metadata: key {key:?} at byte {offset} holds bool byte {byte} (not 0 or 1)")]
    InvalidBool { key: String, offset: u64, byte: u8 },
    #[error("damaged metadata: key {key:?} appears twice (second at byte {offset})")]
    DuplicateKey { key: String, offset: u64 },
    #[error("damaged metadata: the key at byte {offset} has an empty name")]
    EmptyKey { offset: u64 },
    #[error(
        "bad alignment: general.alignment at byte {offset} is {alignment}; it must be a power of \
         two no larger than {max}"
    )]
    BadAlignment {
        offset: u64,
        alignment: u64,
        max: u64,
    },
    #[error("bad alignment: general.alignment at byte {offset} has type {found}, expected u32")]
    AlignmentWrongType { offset: u64, found: ValueType },
    #[error("damaged tensor table: the tensor at byte {offset} has an empty name")]
    EmptyTensorName { offset: u64 },
    #[error(
        "damaged tensor table: tensor name at byte {offset} is {len} bytes long (at most {max})"
    )]
    TensorNameTooLong { offset: u64, len: u64, max: u64 },
    #[error("damaged tensor table: tensor {name:?} appears twice (second at byte {offset})")]
    DuplicateTensor { name: String, offset: u64 },
    #[error(
        "damaged tensor table: tensor {name:?} at byte {offset} has {n_dims} dimensions (at most 4)"
    )]
    TooManyDimensions {
        name: String,
        offset: u64,
        n_dims: u32,
    },
    #[error(
        "damaged tensor table: tensor {name:?} at byte {offset} has dimension {index} = {value}, \
         which is negative as ggml's signed 64-bit size"
    )]
    BadDimension {
        name: String,
        offset: u64,
        index: usize,
        value: u64,
    },
    #[error(
        "damaged tensor table: tensor {name:?} at byte {offset}: its {what} overflows 64-bit \
         arithmetic (shape {dims:?})"
    )]
    SizeOverflow {
        name: String,
        offset: u64,
        what: &'static str,
        dims: Vec<u64>,
    },
    #[error(
        "unsupported tensor type: tensor {name:?} at byte {offset} has ggml type id {type_id}, \
         which this version of Cria does not know; the model may need a newer Cria"
    )]
    UnknownTensorType {
        name: String,
        offset: u64,
        type_id: u32,
    },
    #[error(
        "damaged tensor table: tensor {name:?} at byte {offset} has rows of {row} elements, not a \
         multiple of the {block_size}-element blocks of type {ggml_type}"
    )]
    RowNotWholeBlocks {
        name: String,
        offset: u64,
        row: u64,
        block_size: u64,
        ggml_type: GgmlType,
    },
    #[error(
        "damaged tensor table: tensor {name:?} has data offset {data_offset}, not a multiple of \
         the alignment {alignment}"
    )]
    MisalignedTensor {
        name: String,
        data_offset: u64,
        alignment: u64,
    },
    #[error(
        "the file is truncated or damaged: tensor {name:?} needs bytes {start}..{end} but the file \
         has {file_len} bytes; download the model again"
    )]
    TensorOutOfBounds {
        name: String,
        start: u64,
        end: u64,
        file_len: u64,
    },
    #[error(
        "damaged tensor table: tensor {second:?} at byte {offset} of the file overlaps the data \
         of the tensor before it ({first:?})"
    )]
    TensorsOverlap {
        first: String,
        second: String,
        offset: u64,
    },
    #[error(
        "damaged tensor table: tensor {name:?} has data offset {found}, but the tensors before it \
         end at {expected}; tensors must follow each other in table order"
    )]
    UnexpectedTensorOffset {
        name: String,
        found: u64,
        expected: u64,
    },
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongKeyType {
        key: String,
        expected: &'static str,
        found: ValueType,
    },
    #[error("cannot write tensor {name:?}: {reason}")]
    InvalidTensor { name: String, reason: String },
}

pub type Result<T> = std::result::Result<T, GgufError>;
