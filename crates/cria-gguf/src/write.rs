//! The GGUF writer: the layout [`crate::read_file`] reads, with tensor data aligned and padded.
//!
//! The writer checks that each tensor's data matches its shape and type, but otherwise writes what
//! it is given, duplicate keys and odd alignments included: tests use it to build hostile files.
//! The data layout uses `general.alignment` when it holds a valid power of two, else 32.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::types::{Array, GgmlType, Value};
use crate::{DEFAULT_ALIGNMENT, GgufError, Result};

/// Builds a GGUF file in memory, then writes it in one pass.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty GGUF v3 file.
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the version written in the header (2 and 3 share the little-endian layout).
    pub fn set_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Appends a key/value (a repeated key is written twice, as given).
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Appends a tensor; `data` must hold exactly the bytes its shape and type need.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ggml_type: GgmlType,
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let expected = dims
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim))
            .and_then(|n_elements| ggml_type.bytes_for(n_elements));
        if expected != Some(data.len() as u64) {
            return Err(GgufError::InvalidTensor {
                name,
                reason: format!(
                    "shape {dims:?} of type {ggml_type} needs {expected:?} bytes, got {}",
                    data.len()
                ),
            });
        }
        self.tensors.push(PendingTensor {
            name,
            dims: dims.to_vec(),
            ggml_type,
            data,
        });
        Ok(self)
    }

    /// Appends an F32 tensor from its values.
    pub fn add_f32_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        values: &[f32],
    ) -> Result<&mut Self> {
        let data = values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        self.add_tensor(name, dims, GgmlType::F32, data)
    }

    /// Appends an F16 tensor, rounding each value to the nearest half-precision float.
    pub fn add_f16_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        values: &[f32],
    ) -> Result<&mut Self> {
        let data = values
            .iter()
            .flat_map(|&value| f32_to_f16_bits(value).to_le_bytes())
            .collect();
        self.add_tensor(name, dims, GgmlType::F16, data)
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .rev()
            .find(|(key, _)| key == "general.alignment")
            .and_then(|(_, value)| match *value {
                Value::U32(alignment) if alignment.is_power_of_two() => Some(alignment.into()),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT.into())
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_into(&mut bytes);
        bytes
    }

    /// Writes the complete file to `writer`.
    pub fn write_to<W: Write>(&self, mut writer: W) -> Result<()> {
        writer.write_all(&self.to_bytes())?;
        writer.flush()?;
        Ok(())
    }

    /// Creates (or replaces) the file at `path`.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        self.write_to(BufWriter::new(File::create(path)?))
    }

    fn write_into(&self, out: &mut Vec<u8>) {
        let alignment = self.alignment();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(out, value);
        }
        let mut data_offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for tensor in &self.tensors {
            put_string(out, &tensor.name);
            out.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for dim in &tensor.dims {
                out.extend_from_slice(&dim.to_le_bytes());
            }
            out.extend_from_slice(&tensor.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&data_offset.to_le_bytes());
            offsets.push(data_offset);
            data_offset = (data_offset + tensor.data.len() as u64).next_multiple_of(alignment);
        }
        pad_to(out, alignment);
        for tensor in &self.tensors {
            out.extend_from_slice(&tensor.data);
            pad_to(out, alignment);
        }
    }
}

fn pad_to(out: &mut Vec<u8>, alignment: u64) {
    let len = (out.len() as u64).next_multiple_of(alignment);
    out.resize(len as usize, 0);
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(text) => put_string(out, text),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Array(array) => {
            out.extend_from_slice(&array.element_type().id().to_le_bytes());
            out.extend_from_slice(&(array.len() as u64).to_le_bytes());
            macro_rules! numbers {
                ($values:expr) => {
                    for v in $values {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                };
            }
            match array {
                Array::U8(values) => out.extend_from_slice(values),
                Array::I8(values) => numbers!(values),
                Array::U16(values) => numbers!(values),
                Array::I16(values) => numbers!(values),
                Array::U32(values) => numbers!(values),
                Array::I32(values) => numbers!(values),
                Array::F32(values) => numbers!(values),
                Array::U64(values) => numbers!(values),
                Array::I64(values) => numbers!(values),
                Array::F64(values) => numbers!(values),
                Array::Bool(values) => out.extend(values.iter().map(|&v| u8::from(v))),
                Array::String(values) => {
                    for text in values {
                        put_string(out, text);
                    }
                }
            }
        }
    }
}

/// IEEE 754 binary32 → binary16, round to nearest even, with infinities, NaN and subnormals.
pub(crate) fn f32_to_f16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exponent == 0xff {
        let nan_bit = if mantissa != 0 { 0x0200 } else { 0 };
        return sign | 0x7c00 | nan_bit;
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        if half_exponent < -10 {
            return sign;
        }
        // Subnormal: shift the mantissa (with its implicit leading 1) into place, then round.
        let full = mantissa | 0x0080_0000;
        let shift = (14 - half_exponent) as u32;
        let mut half = full >> shift;
        let rest = full & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        if rest > halfway || (rest == halfway && half & 1 == 1) {
            half += 1;
        }
        return sign | half as u16;
    }
    let mut half = ((half_exponent as u32) << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) {
        // A carry into the exponent is correct (it may round up to infinity).
        half += 1;
    }
    sign | half as u16
}

macro_rules! value_from {
    ($($type:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$type> for Value {
                fn from(value: $type) -> Self {
                    Value::$variant(value)
                }
            }
            impl From<Vec<$type>> for Array {
                fn from(values: Vec<$type>) -> Self {
                    Array::$variant(values)
                }
            }
            impl From<Vec<$type>> for Value {
                fn from(values: Vec<$type>) -> Self {
                    Value::Array(Array::$variant(values))
                }
            }
        )*
    };
}

value_from!(
    u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32, f32 => F32,
    bool => Bool, String => String, u64 => U64, i64 => I64, f64 => F64,
);

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::String(text.to_owned())
    }
}

impl From<Array> for Value {
    fn from(array: Array) -> Self {
        Value::Array(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_known_bit_patterns() {
        for (value, bits) in [
            (0.0f32, 0x0000u16),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (0.5, 0x3800),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00),
            (f32::INFINITY, 0x7c00),
            (5.960_464_5e-8, 0x0001),
            (6.103_515_6e-5, 0x0400),
            (0.1, 0x2e66),
            (1.0 + 1.0 / 2048.0, 0x3c00),
            (1.0 + 3.0 / 2048.0, 0x3c02),
        ] {
            assert_eq!(f32_to_f16_bits(value), bits, "{value}");
        }
        assert_eq!(f32_to_f16_bits(f32::NAN) & 0x7c00, 0x7c00);
        assert_ne!(f32_to_f16_bits(f32::NAN) & 0x03ff, 0);
    }
}
