//! What the app needs to know about a model file without loading it.
//!
//! Contract: [`inspect`] validates the file ([`crate::read_file`]) and summarises it. Keys that are
//! absent are `None`; keys that are present with a type no converter writes (a string where a
//! count belongs) are a [`GgufError::WrongKeyType`], since llama.cpp would refuse them too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::read::GgufFile;
use crate::types::{GgmlType, Value};
use crate::{GgufError, Result};

/// Summary of a model or projector file, for the model list and the memory planner.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ModelInfo {
    pub gguf_version: u32,
    pub file_bytes: u64,
    /// `general.architecture`, e.g. `llama4`, `gemma3`, `clip`.
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.file_type` (llama.cpp's `llama_ftype`), if present.
    pub file_type: Option<u64>,
    /// E.g. `Q4_K_M` (from `general.file_type`) or `Q4_K` (the type holding most bytes).
    pub quantization: String,
    pub context_length: Option<u64>,
    pub block_count: Option<u64>,
    pub embedding_length: Option<u64>,
    pub feed_forward_length: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    /// Per-head key width when it is not `embedding_length / head_count` (Gemma 3: 256), which
    /// the KV-cache estimate needs.
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    pub expert_count: Option<u64>,
    pub expert_used_count: Option<u64>,
    pub expert_feed_forward_length: Option<u64>,
    /// Llama 4: every n-th layer is MoE.
    pub interleave_moe_layer_step: Option<u64>,
    /// `{arch}.attention.sliding_window`.
    pub sliding_window: Option<u64>,
    /// Chunked attention span: Llama 4 without a sliding-window key gets llama.cpp's 8192.
    pub attention_chunk_size: Option<u64>,
    /// Number of tokens (`tokenizer.ggml.tokens`, else `{arch}.vocab_size`).
    pub vocab_size: Option<u64>,
    pub tokenizer_model: Option<String>,
    pub tokenizer_pre: Option<String>,
    pub chat_template: Option<String>,
    /// Present when the file is a multimodal projector (mmproj).
    pub projector: Option<ProjectorInfo>,
    /// Present when the model is split across several files.
    pub split: Option<SplitInfo>,
    pub tensors: Vec<TensorSummary>,
    pub tensor_bytes: u64,
    /// Bytes of MoE expert tensors (`ffn_*_exps`), which the planner keeps in CPU RAM.
    pub expert_tensor_bytes: u64,
    pub non_expert_tensor_bytes: u64,
    /// Bytes per tensor type name.
    pub bytes_by_type: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectorInfo {
    /// `clip.projector_type`, e.g. `llama4`, `gemma3`.
    pub projector_type: Option<String>,
    pub has_vision_encoder: bool,
    pub has_audio_encoder: bool,
    pub image_size: Option<u64>,
    pub patch_size: Option<u64>,
    pub projection_dim: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitInfo {
    /// `split.count`: files in the whole model.
    pub count: u64,
    /// `split.no`: this file's index, from 0.
    pub index: u64,
    /// `split.tensors.count`: tensors in the whole model.
    pub tensors_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub ggml_type: GgmlType,
    pub dims: Vec<u64>,
    pub bytes: u64,
    pub is_expert: bool,
}

impl ModelInfo {
    pub fn is_mmproj(&self) -> bool {
        self.projector.is_some()
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }
}

/// Validates the file at `path` and summarises it.
pub fn inspect(path: &Path) -> Result<ModelInfo> {
    summarize(&crate::read_file(path)?)
}

/// Summarises an already validated file.
pub fn summarize(file: &GgufFile) -> Result<ModelInfo> {
    let keys = Keys { file };
    let architecture = keys.string("general.architecture")?;
    let arch = architecture.clone().unwrap_or_default();
    let arch_key = |suffix: &str| format!("{arch}.{suffix}");

    let tensors: Vec<TensorSummary> = file
        .tensors()
        .iter()
        .map(|tensor| TensorSummary {
            name: tensor.name.clone(),
            ggml_type: tensor.ggml_type,
            dims: tensor.dims.clone(),
            bytes: tensor.n_bytes,
            is_expert: is_expert_tensor(&tensor.name),
        })
        .collect();
    // Each tensor fits in the file, so sums cannot exceed the file length.
    let tensor_bytes = tensors.iter().map(|tensor| tensor.bytes).sum();
    let expert_tensor_bytes = tensors
        .iter()
        .filter(|tensor| tensor.is_expert)
        .map(|tensor| tensor.bytes)
        .sum();
    let mut bytes_by_type = BTreeMap::new();
    for tensor in &tensors {
        *bytes_by_type
            .entry(tensor.ggml_type.name().to_owned())
            .or_insert(0) += tensor.bytes;
    }

    let file_type = keys.count("general.file_type")?;
    let quantization = file_type
        .and_then(file_type_label)
        .map(str::to_owned)
        .or_else(|| dominant_type(&tensors).map(|t| t.name().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned());

    let vocab_size = match file.get("tokenizer.ggml.tokens") {
        Some(Value::Array(tokens)) => Some(tokens.len() as u64),
        Some(other) => {
            return Err(GgufError::WrongKeyType {
                key: "tokenizer.ggml.tokens".to_owned(),
                expected: "array",
                found: other.value_type(),
            });
        }
        None => keys.count(&arch_key("vocab_size"))?,
    };

    let sliding_window = keys.count(&arch_key("attention.sliding_window"))?;
    // llama.cpp gives Llama 4 chunked attention of 8192 tokens unless a sliding window is set.
    let attention_chunk_size = (arch == "llama4" && sliding_window.is_none()).then_some(8192);

    let projector_type = keys.string("clip.projector_type")?;
    let has_vision_encoder = keys.flag("clip.has_vision_encoder")?;
    let has_audio_encoder = keys.flag("clip.has_audio_encoder")?;
    let projector = if arch == "clip" || projector_type.is_some() {
        Some(ProjectorInfo {
            projector_type,
            has_vision_encoder,
            has_audio_encoder,
            image_size: keys.count("clip.vision.image_size")?,
            patch_size: keys.count("clip.vision.patch_size")?,
            projection_dim: keys.count("clip.vision.projection_dim")?,
        })
    } else {
        None
    };

    let split = match keys.count("split.count")? {
        Some(count) if count > 1 => Some(SplitInfo {
            count,
            index: keys.count("split.no")?.unwrap_or(0),
            tensors_count: keys.count("split.tensors.count")?,
        }),
        _ => None,
    };

    Ok(ModelInfo {
        gguf_version: file.version(),
        file_bytes: file.file_len(),
        name: keys.string("general.name")?,
        file_type,
        quantization,
        context_length: keys.count(&arch_key("context_length"))?,
        block_count: keys.count(&arch_key("block_count"))?,
        embedding_length: keys.count(&arch_key("embedding_length"))?,
        feed_forward_length: keys.count_or_first(&arch_key("feed_forward_length"))?,
        head_count: keys.count_or_first(&arch_key("attention.head_count"))?,
        head_count_kv: keys.count_or_first(&arch_key("attention.head_count_kv"))?,
        key_length: keys.count(&arch_key("attention.key_length"))?,
        value_length: keys.count(&arch_key("attention.value_length"))?,
        expert_count: keys.count(&arch_key("expert_count"))?,
        expert_used_count: keys.count(&arch_key("expert_used_count"))?,
        expert_feed_forward_length: keys.count(&arch_key("expert_feed_forward_length"))?,
        interleave_moe_layer_step: keys.count(&arch_key("interleave_moe_layer_step"))?,
        sliding_window,
        attention_chunk_size,
        vocab_size,
        tokenizer_model: keys.string("tokenizer.ggml.model")?,
        tokenizer_pre: keys.string("tokenizer.ggml.pre")?,
        chat_template: keys.string("tokenizer.chat_template")?,
        architecture,
        projector,
        split,
        tensor_bytes,
        expert_tensor_bytes,
        non_expert_tensor_bytes: tensor_bytes - expert_tensor_bytes,
        tensors,
        bytes_by_type,
    })
}

/// MoE expert weights: `blk.N.ffn_{gate,up,down,gate_up}_exps.*`.
fn is_expert_tensor(name: &str) -> bool {
    name.split('.')
        .any(|part| part.starts_with("ffn_") && part.ends_with("_exps"))
}

/// The type that holds the most bytes among matrices (norms and biases are F32 in every file).
fn dominant_type(tensors: &[TensorSummary]) -> Option<GgmlType> {
    let mut bytes: BTreeMap<GgmlType, u64> = BTreeMap::new();
    for tensor in tensors.iter().filter(|tensor| tensor.dims.len() >= 2) {
        *bytes.entry(tensor.ggml_type).or_insert(0) += tensor.bytes;
    }
    bytes
        .into_iter()
        .max_by_key(|&(_, bytes)| bytes)
        .map(|(ggml_type, _)| ggml_type)
}

/// llama.cpp's `llama_ftype` names (gaps are ids ggml removed).
fn file_type_label(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// Typed metadata lookups that report a present key of the wrong type.
struct Keys<'a> {
    file: &'a GgufFile,
}

impl Keys<'_> {
    fn wrong(key: &str, expected: &'static str, value: &Value) -> GgufError {
        GgufError::WrongKeyType {
            key: key.to_owned(),
            expected,
            found: value.value_type(),
        }
    }

    fn wrong_array(key: &str) -> GgufError {
        GgufError::WrongKeyType {
            key: key.to_owned(),
            expected: "an integer or an integer array",
            found: crate::ValueType::Array,
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.file.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(Self::wrong(key, "string", other)),
        }
    }

    /// A non-negative integer of any width.
    fn count(&self, key: &str) -> Result<Option<u64>> {
        match self.file.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, "a non-negative integer", value)),
        }
    }

    /// A count, or the first element of a per-layer array (some models vary it per layer).
    fn count_or_first(&self, key: &str) -> Result<Option<u64>> {
        match self.file.get(key) {
            Some(Value::Array(array)) => Ok(match array {
                crate::Array::U32(values) => values.first().map(|&v| v.into()),
                crate::Array::I32(values) => values.first().and_then(|&v| u64::try_from(v).ok()),
                crate::Array::U64(values) => values.first().copied(),
                _ => return Err(Self::wrong_array(key)),
            }),
            _ => self.count(key),
        }
    }

    fn flag(&self, key: &str) -> Result<bool> {
        match self.file.get(key) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(Self::wrong(key, "bool", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GgufWriter, parse_bytes};

    fn summary_of(writer: &GgufWriter) -> Result<ModelInfo> {
        summarize(&parse_bytes(&writer.to_bytes()).expect("structurally valid"))
    }

    #[test]
    fn quantization_falls_back_to_the_type_holding_most_matrix_bytes() {
        let mut writer = GgufWriter::new();
        writer.add("general.architecture", "llama");
        writer
            .add_tensor(
                "blk.0.attn_q.weight",
                &[256, 4],
                GgmlType::Q4K,
                vec![0; 4 * 144],
            )
            .expect("tensor");
        writer
            .add_tensor(
                "blk.0.attn_k.weight",
                &[32, 2],
                GgmlType::Q8_0,
                vec![0; 2 * 34],
            )
            .expect("tensor");
        // A large 1-D F32 norm must not count: norms are F32 in every file.
        writer
            .add_f32_tensor("output_norm.weight", &[1024], &[1.0; 1024])
            .expect("tensor");
        let info = summary_of(&writer).expect("summary");
        assert_eq!(info.quantization, "Q4_K");
        assert_eq!(info.file_type, None);
        assert_eq!(info.tensor_bytes, 4 * 144 + 2 * 34 + 4096);
        assert_eq!(info.bytes_by_type["F32"], 4096);

        writer.add("general.file_type", 17u32);
        assert_eq!(summary_of(&writer).expect("summary").quantization, "Q5_K_M");
        // An id llama.cpp does not define and no tensors to fall back on.
        let mut fresh = GgufWriter::new();
        fresh.add("general.file_type", 999u32);
        assert_eq!(summary_of(&fresh).expect("summary").quantization, "unknown");
    }

    #[test]
    fn expert_tensors_are_recognised_by_name() {
        for (name, expert) in [
            ("blk.1.ffn_gate_exps.weight", true),
            ("blk.1.ffn_down_exps.weight", true),
            ("blk.1.ffn_gate_up_exps.weight", true),
            ("blk.1.ffn_up_exps.bias", true),
            ("blk.1.ffn_gate_shexp.weight", false),
            ("blk.1.ffn_gate_inp.weight", false),
            ("blk.1.ffn_up.weight", false),
            ("token_embd.weight", false),
        ] {
            assert_eq!(is_expert_tensor(name), expert, "{name}");
        }
    }

    #[test]
    fn per_layer_arrays_give_their_first_value() {
        let mut writer = GgufWriter::new();
        writer
            .add("general.architecture", "openelm")
            .add("openelm.attention.head_count", vec![12i32, 16, 20])
            .add("openelm.attention.head_count_kv", vec![3u32, 4, 5])
            .add("openelm.feed_forward_length", 768u64)
            .add("openelm.block_count", 3u8);
        let info = summary_of(&writer).expect("summary");
        assert_eq!(info.head_count, Some(12));
        assert_eq!(info.head_count_kv, Some(3));
        assert_eq!(info.feed_forward_length, Some(768));
        assert_eq!(info.block_count, Some(3));
        assert_eq!(info.attention_chunk_size, None);
    }

    #[test]
    fn wrongly_typed_keys_are_errors_not_silent_gaps() {
        for (key, value) in [
            ("general.architecture", Value::U32(1)),
            ("llama4.block_count", Value::I32(-4)),
            (
                "llama4.attention.head_count",
                Value::Array(crate::Array::F32(vec![1.0])),
            ),
            ("tokenizer.ggml.tokens", Value::String("a".to_owned())),
            ("clip.has_vision_encoder", Value::U8(1)),
        ] {
            let mut writer = GgufWriter::new();
            if key != "general.architecture" {
                writer.add("general.architecture", "llama4");
            }
            writer.add(key, value);
            let error = summary_of(&writer).expect_err(key);
            assert!(
                matches!(error, GgufError::WrongKeyType { key: ref found, .. } if found == key),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn a_projector_is_recognised_by_its_type_key_even_without_the_clip_architecture() {
        let mut writer = GgufWriter::new();
        writer
            .add("clip.projector_type", "gemma3")
            .add("clip.has_vision_encoder", true);
        let info = summary_of(&writer).expect("summary");
        let projector = info.projector.expect("mmproj");
        assert_eq!(projector.projector_type.as_deref(), Some("gemma3"));
        assert!(projector.has_vision_encoder && !projector.has_audio_encoder);
        assert_eq!(info.architecture, None);
    }
}
