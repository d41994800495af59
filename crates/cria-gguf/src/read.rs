//! The GGUF reader and validator.
//!
//! Layout (v2 and v3, little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64`
//! key/value count; the key/values (`string` key, `u32` type, value); the tensor table (`string`
//! name, `u32` dimension count, `u64` per dimension, `u32` ggml type, `u64` data offset relative
//! to the data section); padding to the alignment; the data section. Strings are a `u64` byte
//! length then the bytes.
//!
//! Every declared count or length is checked against the bytes left in the file (and a fixed
//! limit) before anything is allocated for it; every size and offset is computed with checked
//! arithmetic. Only the header, metadata and tensor table are read; tensor data never is.
//!
//! What passes here passes llama.cpp's own `gguf_init_from_file` checks too (same type table,
//! dimension and size limits, alignment rules, tensors laid out in table order), and each tensor's
//! data lies inside the file, which llama.cpp's loader checks only later.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use crate::types::{Array, GgmlType, Value, ValueType};
use crate::{DEFAULT_ALIGNMENT, GgufError, Result};

/// The largest `general.alignment` accepted. Real files use 32 (sometimes 64); larger values
/// only make sense as an attempt to push the data section past the end of the file.
pub const MAX_ALIGNMENT: u64 = 1 << 16;
/// ggml's `GGML_MAX_NAME` is 64 including the terminating NUL.
pub const MAX_TENSOR_NAME_LEN: u64 = 63;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// The longest single string (a chat template is tens of KiB; this is far above any real one).
pub const MAX_STRING_LEN: u64 = 64 << 20;
/// The longest array (vocabularies reach 262,144 tokens; merges about 500,000).
pub const MAX_ARRAY_LEN: u64 = 1 << 22;
/// All array elements of all keys together, which bounds the memory a header can cost.
pub const MAX_TOTAL_ARRAY_ELEMENTS: u64 = 1 << 23;
/// The most tensors (the largest MoE models have a few thousand).
pub const MAX_TENSORS: u64 = 1 << 20;
/// The most metadata keys.
pub const MAX_KEYS: u64 = 1 << 20;

const MAGIC: &[u8; 4] = b"GGUF";
/// magic + version + tensor count + key/value count.
const HEADER_LEN: u64 = 4 + 4 + 8 + 8;
/// The smallest key/value: length, a 1-byte key, type, a 1-byte value.
const MIN_KV_LEN: u64 = 8 + 1 + 4 + 1;
/// The smallest tensor entry: name length, a 1-byte name, dimension count, type, offset.
const MIN_TENSOR_INFO_LEN: u64 = 8 + 1 + 4 + 4 + 8;

/// A validated GGUF file's header: metadata and tensor table, no tensor data.
#[derive(Debug, Clone)]
pub struct GgufFile {
    version: u32,
    alignment: u32,
    data_offset: u64,
    file_len: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
}

/// One entry of the tensor table, with its size worked out.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml `ne` order: innermost (row length) first.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section, as stored in the file.
    pub offset: u64,
    /// Offset of the data from the start of the file.
    pub file_offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

impl GgufFile {
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment in bytes (`general.alignment`, default 32).
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Where the data section starts.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// All key/values in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index
            .get(key)
            .map(|&index| &self.metadata[index].1)
    }

    /// All tensors in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|tensor| tensor.name == name)
    }
}

/// Reads and validates the header of the GGUF file at `path`.
pub fn read_file(path: &Path) -> Result<GgufFile> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    read_from(BufReader::with_capacity(64 * 1024, file), file_len)
}

/// Reads and validates a GGUF file held in memory (tests, fuzzing).
pub fn parse_bytes(bytes: &[u8]) -> Result<GgufFile> {
    read_from(bytes, bytes.len() as u64)
}

/// Reads and validates a GGUF header from `reader`, positioned at the start of a file of
/// `file_len` bytes. Pass a buffered reader: fields are read a few bytes at a time.
pub fn read_from<R: Read>(reader: R, file_len: u64) -> Result<GgufFile> {
    let mut input = Input {
        reader,
        position: 0,
        file_len,
        array_elements_left: MAX_TOTAL_ARRAY_ELEMENTS,
    };

    // A file shorter than the magic is "truncated" if what it has matches, else "not GGUF".
    let magic_len = file_len.min(4) as usize;
    let mut magic = [0u8; 4];
    input.fill("the GGUF magic", &mut magic[..magic_len])?;
    if magic[..magic_len] != MAGIC[..magic_len] {
        return Err(GgufError::BadMagic {
            found: magic[..magic_len].to_vec(),
        });
    }
    if magic_len < 4 {
        return Err(GgufError::Truncated {
            what: "the GGUF magic",
            offset: 0,
            needed: 4,
            available: file_len,
        });
    }
    let version = input.u32("the version")?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }

    let tensor_count_offset = input.position;
    let n_tensors = input.u64("the tensor count")?;
    let kv_count_offset = input.position;
    let n_kv = input.u64("the key/value count")?;
    let table_bytes = file_len.saturating_sub(HEADER_LEN);
    let max_tensors = MAX_TENSORS.min(table_bytes / MIN_TENSOR_INFO_LEN);
    if n_tensors > max_tensors {
        return Err(GgufError::CountTooLarge {
            what: "tensor count",
            offset: tensor_count_offset,
            count: n_tensors,
            max: max_tensors,
        });
    }
    let tensor_table_min = n_tensors * MIN_TENSOR_INFO_LEN;
    let max_kv = MAX_KEYS.min((table_bytes - tensor_table_min) / MIN_KV_LEN);
    if n_kv > max_kv {
        return Err(GgufError::CountTooLarge {
            what: "key/value count",
            offset: kv_count_offset,
            count: n_kv,
            max: max_kv,
        });
    }

    let mut metadata = Vec::new();
    let mut key_index = HashMap::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..n_kv {
        let key_offset = input.position;
        let key = input.string("a metadata key", MAX_STRING_LEN)?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey { offset: key_offset });
        }
        if key_index.contains_key(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_offset,
            });
        }
        let value_offset = input.position;
        let value = input.value(&key)?;
        if key == "general.alignment" {
            alignment = checked_alignment(&value, value_offset)?;
        }
        key_index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }

    let mut tensors: Vec<TensorInfo> = Vec::new();
    let mut tensor_names = HashSet::new();
    for _ in 0..n_tensors {
        let tensor = input.tensor_info()?;
        if !tensor_names.insert(tensor.0.name.clone()) {
            return Err(GgufError::DuplicateTensor {
                name: tensor.0.name,
                offset: tensor.1,
            });
        }
        tensors.push(tensor.0);
    }

    let header_end = input.position;
    let alignment_bytes = u64::from(alignment);
    // Cannot overflow: header_end <= file_len and alignment <= 2^16.
    let data_offset = header_end.div_ceil(alignment_bytes) * alignment_bytes;
    for tensor in &mut tensors {
        if !tensor.offset.is_multiple_of(alignment_bytes) {
            return Err(GgufError::MisalignedTensor {
                name: tensor.name.clone(),
                data_offset: tensor.offset,
                alignment: alignment_bytes,
            });
        }
        let out_of_bounds = |end: u64| GgufError::TensorOutOfBounds {
            name: tensor.name.clone(),
            start: data_offset.saturating_add(tensor.offset),
            end,
            file_len,
        };
        let start = data_offset
            .checked_add(tensor.offset)
            .ok_or_else(|| out_of_bounds(u64::MAX))?;
        let end = start
            .checked_add(tensor.n_bytes)
            .ok_or_else(|| out_of_bounds(u64::MAX))?;
        if end > file_len {
            return Err(out_of_bounds(end));
        }
        tensor.file_offset = start;
    }
    check_data_layout(&tensors, alignment_bytes, data_offset)?;

    Ok(GgufFile {
        version,
        alignment,
        data_offset,
        file_len,
        metadata,
        key_index,
        tensors,
    })
}

/// llama.cpp requires the data section to hold the tensors in table order, each starting at the
/// padded end of the one before: anything else (overlaps, gaps, reordering) it refuses, so we do.
fn check_data_layout(tensors: &[TensorInfo], alignment: u64, data_offset: u64) -> Result<()> {
    let mut expected = 0u64;
    let mut previous: Option<&TensorInfo> = None;
    for tensor in tensors {
        if tensor.offset < expected {
            return Err(GgufError::TensorsOverlap {
                first: previous.map_or_else(String::new, |p| p.name.clone()),
                second: tensor.name.clone(),
                offset: tensor.file_offset,
            });
        }
        if tensor.offset > expected {
            return Err(GgufError::UnexpectedTensorOffset {
                name: tensor.name.clone(),
                found: tensor.offset,
                expected,
            });
        }
        let padded = tensor
            .n_bytes
            .checked_next_multiple_of(alignment)
            .and_then(|padded| expected.checked_add(padded));
        expected = padded.ok_or_else(|| GgufError::SizeOverflow {
            name: tensor.name.clone(),
            offset: data_offset,
            what: "data section size",
            dims: tensor.dims.clone(),
        })?;
        previous = Some(tensor);
    }
    Ok(())
}

fn checked_alignment(value: &Value, offset: u64) -> Result<u32> {
    let Value::U32(alignment) = *value else {
        return Err(GgufError::AlignmentWrongType {
            offset,
            found: value.value_type(),
        });
    };
    if alignment == 0 || !alignment.is_power_of_two() || u64::from(alignment) > MAX_ALIGNMENT {
        return Err(GgufError::BadAlignment {
            offset,
            alignment: alignment.into(),
            max: MAX_ALIGNMENT,
        });
    }
    Ok(alignment)
}

struct Input<R> {
    reader: R,
    position: u64,
    file_len: u64,
    array_elements_left: u64,
}

impl<R: Read> Input<R> {
    fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.position)
    }

    /// Reads exactly `buffer.len()` bytes, which the caller has already bounded.
    fn fill(&mut self, what: &'static str, buffer: &mut [u8]) -> Result<()> {
        let needed = buffer.len() as u64;
        let truncated = |available| GgufError::Truncated {
            what,
            offset: self.position,
            needed,
            available,
        };
        if needed > self.remaining() {
            return Err(truncated(self.remaining()));
        }
        match self.reader.read_exact(buffer) {
            Ok(()) => {}
            // The file shrank while we read it, or the reader is shorter than its stated length.
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => {
                return Err(truncated(0));
            }
            Err(error) => return Err(error.into()),
        }
        self.position += needed;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut bytes = [0u8; N];
        self.fill(what, &mut bytes)?;
        Ok(bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed string of at most `max_len` bytes. Invalid UTF-8 is replaced rather than
    /// rejected: llama.cpp does not require UTF-8 either, and a replaced character in a token is
    /// no reason to refuse a model.
    fn string(&mut self, what: &'static str, max_len: u64) -> Result<String> {
        let offset = self.position;
        let len = self.u64(what)?;
        let max = max_len.min(self.remaining());
        if len > max {
            return Err(GgufError::CountTooLarge {
                what: "string length",
                offset,
                count: len,
                max,
            });
        }
        // Bounded just above by the bytes left in the file and by `max_len`.
        let mut bytes = vec![0u8; len as usize];
        self.fill(what, &mut bytes)?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        })
    }

    fn value_type(&mut self, key: &str) -> Result<ValueType> {
        let offset = self.position;
        let type_id = self.u32("a value type")?;
        ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_owned(),
            offset,
            type_id,
        })
    }

    fn value(&mut self, key: &str) -> Result<Value> {
        let value_type = self.value_type(key)?;
        if value_type == ValueType::Array {
            return self.array_value(key).map(Value::Array);
        }
        self.scalar(key, value_type)
    }

    fn scalar(&mut self, key: &str, value_type: ValueType) -> Result<Value> {
        const WHAT: &str = "a metadata value";
        Ok(match value_type {
            ValueType::U8 => Value::U8(self.array::<1>(WHAT)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(WHAT)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(WHAT)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(WHAT)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.array(WHAT)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(WHAT)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(WHAT)?)),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.array(WHAT)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(WHAT)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(WHAT)?)),
            ValueType::Bool => {
                let offset = self.position;
                match self.array::<1>(WHAT)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    byte => {
                        return Err(GgufError::InvalidBool {
                            key: key.to_owned(),
                            offset,
                            byte,
                        });
                    }
                }
            }
            ValueType::String => Value::String(self.string("a string value", MAX_STRING_LEN)?),
            ValueType::Array => {
                return Err(GgufError::NestedArray {
                    key: key.to_owned(),
                    offset: self.position,
                });
            }
        })
    }

    fn array_value(&mut self, key: &str) -> Result<Array> {
        let type_offset = self.position;
        let element_type = self.value_type(key)?;
        if element_type == ValueType::Array {
            return Err(GgufError::NestedArray {
                key: key.to_owned(),
                offset: type_offset,
            });
        }
        let count_offset = self.position;
        let count = self.u64("an array length")?;
        // A string element takes at least its 8-byte length.
        let min_element_len = element_type.fixed_size().unwrap_or(8);
        let max = MAX_ARRAY_LEN
            .min(self.array_elements_left)
            .min(self.remaining() / min_element_len);
        if count > max {
            return Err(GgufError::CountTooLarge {
                what: "array length",
                offset: count_offset,
                count,
                max,
            });
        }
        self.array_elements_left -= count;
        // Bounded just above by MAX_ARRAY_LEN and by the bytes left in the file.
        let count = count as usize;
        macro_rules! numbers {
            ($variant:ident, $type:ty) => {{
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(<$type>::from_le_bytes(self.array("an array element")?));
                }
                Array::$variant(values)
            }};
        }
        Ok(match element_type {
            ValueType::U8 => {
                let mut values = vec![0u8; count];
                self.fill("an array element", &mut values)?;
                Array::U8(values)
            }
            ValueType::I8 => numbers!(I8, i8),
            ValueType::U16 => numbers!(U16, u16),
            ValueType::I16 => numbers!(I16, i16),
            ValueType::U32 => numbers!(U32, u32),
            ValueType::I32 => numbers!(I32, i32),
            ValueType::F32 => numbers!(F32, f32),
            ValueType::U64 => numbers!(U64, u64),
            ValueType::I64 => numbers!(I64, i64),
            ValueType::F64 => numbers!(F64, f64),
            ValueType::Bool => {
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(self.scalar(key, ValueType::Bool)?.as_bool() == Some(true));
                }
                Array::Bool(values)
            }
            ValueType::String => {
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(self.string("an array string", MAX_STRING_LEN)?);
                }
                Array::String(values)
            }
            ValueType::Array => unreachable!("nested arrays were rejected above"),
        })
    }

    /// One tensor table entry and the offset where it starts.
    fn tensor_info(&mut self) -> Result<(TensorInfo, u64)> {
        let offset = self.position;
        let name_len = self.u64("a tensor name")?;
        if name_len == 0 {
            return Err(GgufError::EmptyTensorName { offset });
        }
        if name_len > MAX_TENSOR_NAME_LEN {
            return Err(GgufError::TensorNameTooLong {
                offset,
                len: name_len,
                max: MAX_TENSOR_NAME_LEN,
            });
        }
        let mut name_bytes = vec![0u8; name_len as usize];
        self.fill("a tensor name", &mut name_bytes)?;
        let name = String::from_utf8_lossy(&name_bytes).into_owned();

        let n_dims = self.u32("a tensor's dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDimensions {
                name,
                offset,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for index in 0..n_dims as usize {
            let value = self.u64("a tensor dimension")?;
            // ggml keeps dimensions as int64_t.
            if value > i64::MAX as u64 {
                return Err(GgufError::BadDimension {
                    name,
                    offset,
                    index,
                    value,
                });
            }
            dims.push(value);
        }
        let type_id = self.u32("a tensor type")?;
        let data_offset = self.u64("a tensor offset")?;

        let Some(ggml_type) = GgmlType::from_id(type_id) else {
            return Err(GgufError::UnknownTensorType {
                name,
                offset,
                type_id,
            });
        };
        let overflow = |what, name, dims| GgufError::SizeOverflow {
            name,
            offset,
            what,
            dims,
        };
        // ggml computes element counts and byte sizes in int64_t / size_t: stay below i64::MAX.
        let Some(n_elements) = dims
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim))
            .filter(|&n| n <= i64::MAX as u64)
        else {
            return Err(overflow("element count", name, dims));
        };
        let row = dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(ggml_type.block_size()) {
            return Err(GgufError::RowNotWholeBlocks {
                name,
                offset,
                row,
                block_size: ggml_type.block_size(),
                ggml_type,
            });
        }
        let Some(n_bytes) = ggml_type
            .bytes_for(n_elements)
            .filter(|&n| n <= i64::MAX as u64)
        else {
            return Err(overflow("byte size", name, dims));
        };
        Ok((
            TensorInfo {
                name,
                dims,
                ggml_type,
                offset: data_offset,
                file_offset: 0,
                n_elements,
                n_bytes,
            },
            offset,
        ))
    }
}
