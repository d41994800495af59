//! Tiny random-weight Llama 4 models that llama.cpp's real `llama4` text and clip code paths load.
//!
//! Contract: the shapes, keys and tensor names are those in `shared/design/LLAMA4-FIXTURE.md`
//! (verified against the llama.cpp that `llama-cpp-sys-2` vendors). Weights are ~N(0, 0.02) from a
//! splitmix64 stream seeded by the caller, norms are 1, so the same seed always gives the same
//! bytes. Output of such a model is gibberish by design; tests use it to check loading,
//! templating, image encoding, decoding, cancellation and errors. Each file is written in a few
//! milliseconds (about 1.3 MB of text model, 0.2 MB of projector).

use std::path::Path;

use crate::{GgufWriter, Result};

/// Text model: embedding width.
pub const TEXT_N_EMBD: u64 = 64;
/// Text model: transformer blocks (0 and 2 dense, 1 and 3 MoE; 3 is the full-attention layer).
pub const TEXT_N_LAYER: u64 = 4;
pub const TEXT_N_HEAD: u64 = 4;
pub const TEXT_N_HEAD_KV: u64 = 2;
pub const TEXT_HEAD_DIM: u64 = TEXT_N_EMBD / TEXT_N_HEAD;
/// Dense FFN width.
pub const TEXT_N_FF: u64 = 128;
pub const TEXT_N_EXPERT: u64 = 4;
pub const TEXT_N_EXPERT_USED: u64 = 1;
/// Width of each expert's FFN and of the shared expert.
pub const TEXT_N_FF_EXPERT: u64 = 96;
/// Every second layer is MoE: layer `i` is MoE when `(i + 1) % step == 0`.
pub const TEXT_MOE_LAYER_STEP: u64 = 2;
pub const TEXT_CONTEXT_LENGTH: u64 = 16384;

/// The Llama 4 special tokens, in the order they follow the ordinary vocabulary; all CONTROL.
pub const LLAMA4_SPECIAL_TOKENS: [&str; 20] = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|header_start|>",
    "<|header_end|>",
    "<|eom|>",
    "<|eot|>",
    "<|step|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|finetune_right_pad|>",
    "<|image_start|>",
    "<|image_end|>",
    "<|vision_reserved_special_token_0|>",
    "<|patch|>",
    "<|tile_x_separator|>",
    "<|tile_y_separator|>",
    "<|image|>",
];

/// A condensed Llama 4 chat template (our own wording of its format). llama.cpp recognises any
/// template containing `<|header_start|>` and `<|header_end|>` as its built-in Llama 4 one:
/// `<|begin_of_text|>`, then per message `<|header_start|>ROLE<|header_end|>\n\nCONTENT<|eot|>`,
/// then `<|header_start|>assistant<|header_end|>\n\n` when a reply is wanted.
pub const LLAMA4_CHAT_TEMPLATE: &str = "{{- bos_token }}\
{%- for message in messages %}\
{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' }}\
{%- if message['content'] is string %}{{- message['content'] | trim }}\
{%- else %}{%- for part in message['content'] %}\
{%- if part['type'] == 'image' %}{{- '<|image|>' }}\
{%- elif part['type'] == 'text' %}{{- part['text'] | trim }}{%- endif %}\
{%- endfor %}{%- endif %}\
{{- '<|eot|>' }}\
{%- endfor %}\
{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}";

/// BPE merges of the fixture vocabulary, highest priority first; every result is a token too.
pub const TEXT_MERGES: [(&str, &str); 10] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("i", "n"),
    ("a", "n"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "a"),
    ("r", "e"),
    ("Ġ", "s"),
];

/// llama.cpp's token types.
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Vision projector: input image side in pixels.
pub const VISION_IMAGE_SIZE: u64 = 56;
pub const VISION_PATCH_SIZE: u64 = 14;
/// ViT width.
pub const VISION_N_EMBD: u64 = 32;
pub const VISION_N_LAYER: u64 = 2;
pub const VISION_N_HEAD: u64 = 2;
pub const VISION_N_FF: u64 = 64;
/// Pixel-shuffle factor: 2×2 patches become one token.
pub const VISION_SCALE_FACTOR: u64 = 2;

/// The fixture's vocabulary in token-id order: the 256 GPT-2 byte-level symbols, the merge
/// results, then [`LLAMA4_SPECIAL_TOKENS`].
pub fn llama4_vocabulary() -> Vec<String> {
    let mut tokens: Vec<String> = byte_level_symbols().into_iter().map(String::from).collect();
    tokens.extend(
        TEXT_MERGES
            .iter()
            .map(|(left, right)| format!("{left}{right}")),
    );
    tokens.extend(LLAMA4_SPECIAL_TOKENS.iter().map(|token| token.to_string()));
    tokens
}

/// The token id of a special token of the fixture vocabulary.
pub fn llama4_special_token_id(token: &str) -> Option<u32> {
    let first_special = 256 + TEXT_MERGES.len();
    LLAMA4_SPECIAL_TOKENS
        .iter()
        .position(|special| *special == token)
        .map(|index| (first_special + index) as u32)
}

/// The tiny Llama 4 text model, ready to write.
pub fn llama4_text_model(seed: u64) -> Result<GgufWriter> {
    let tokens = llama4_vocabulary();
    let n_vocab = tokens.len() as u64;
    let token_types: Vec<i32> = (0..tokens.len())
        .map(|index| {
            if index >= 256 + TEXT_MERGES.len() {
                TOKEN_TYPE_CONTROL
            } else {
                TOKEN_TYPE_NORMAL
            }
        })
        .collect();
    let merges: Vec<String> = TEXT_MERGES
        .iter()
        .map(|(left, right)| format!("{left} {right}"))
        .collect();
    let special = |token: &str| {
        // Every name passed below is in LLAMA4_SPECIAL_TOKENS.
        llama4_special_token_id(token).unwrap_or(0)
    };

    let mut writer = GgufWriter::new();
    writer
        .add("general.architecture", "llama4")
        .add("general.name", "Cria Llama 4 test fixture")
        .add("general.file_type", 0u32)
        .add("general.alignment", 32u32)
        .add("llama4.vocab_size", n_vocab as u32)
        .add("llama4.context_length", TEXT_CONTEXT_LENGTH as u32)
        .add("llama4.embedding_length", TEXT_N_EMBD as u32)
        .add("llama4.block_count", TEXT_N_LAYER as u32)
        .add("llama4.feed_forward_length", TEXT_N_FF as u32)
        .add("llama4.attention.head_count", TEXT_N_HEAD as u32)
        .add("llama4.attention.head_count_kv", TEXT_N_HEAD_KV as u32)
        .add("llama4.attention.layer_norm_rms_epsilon", 1e-5f32)
        .add("llama4.rope.dimension_count", TEXT_HEAD_DIM as u32)
        .add("llama4.rope.freq_base", 500_000f32)
        .add("llama4.expert_count", TEXT_N_EXPERT as u32)
        .add("llama4.expert_used_count", TEXT_N_EXPERT_USED as u32)
        .add("llama4.expert_feed_forward_length", TEXT_N_FF_EXPERT as u32)
        .add(
            "llama4.interleave_moe_layer_step",
            TEXT_MOE_LAYER_STEP as u32,
        )
        .add("tokenizer.ggml.model", "gpt2")
        .add("tokenizer.ggml.pre", "llama4")
        .add("tokenizer.ggml.tokens", tokens)
        .add("tokenizer.ggml.token_type", token_types)
        .add("tokenizer.ggml.merges", merges)
        .add("tokenizer.ggml.bos_token_id", special("<|begin_of_text|>"))
        .add("tokenizer.ggml.eos_token_id", special("<|eot|>"))
        .add(
            "tokenizer.ggml.padding_token_id",
            special("<|finetune_right_pad|>"),
        )
        .add("tokenizer.ggml.add_bos_token", true)
        .add("tokenizer.chat_template", LLAMA4_CHAT_TEMPLATE);

    let mut weights = Weights::new(seed);
    let (embd, ff, ff_exp, n_expert) = (TEXT_N_EMBD, TEXT_N_FF, TEXT_N_FF_EXPERT, TEXT_N_EXPERT);
    let kv_width = TEXT_N_HEAD_KV * TEXT_HEAD_DIM;
    weights.random(&mut writer, "token_embd.weight", &[embd, n_vocab])?;
    weights.ones(&mut writer, "output_norm.weight", &[embd])?;
    weights.random(&mut writer, "output.weight", &[embd, n_vocab])?;
    for layer in 0..TEXT_N_LAYER {
        let name = |tensor: &str| format!("blk.{layer}.{tensor}.weight");
        weights.ones(&mut writer, name("attn_norm"), &[embd])?;
        weights.random(&mut writer, name("attn_q"), &[embd, embd])?;
        weights.random(&mut writer, name("attn_k"), &[embd, kv_width])?;
        weights.random(&mut writer, name("attn_v"), &[embd, kv_width])?;
        weights.random(&mut writer, name("attn_output"), &[embd, embd])?;
        weights.ones(&mut writer, name("ffn_norm"), &[embd])?;
        if (layer + 1) % TEXT_MOE_LAYER_STEP == 0 {
            weights.random(&mut writer, name("ffn_gate_inp"), &[embd, n_expert])?;
            weights.random(
                &mut writer,
                name("ffn_gate_exps"),
                &[embd, ff_exp, n_expert],
            )?;
            weights.random(&mut writer, name("ffn_up_exps"), &[embd, ff_exp, n_expert])?;
            weights.random(
                &mut writer,
                name("ffn_down_exps"),
                &[ff_exp, embd, n_expert],
            )?;
            weights.random(&mut writer, name("ffn_gate_shexp"), &[embd, ff_exp])?;
            weights.random(&mut writer, name("ffn_up_shexp"), &[embd, ff_exp])?;
            weights.random(&mut writer, name("ffn_down_shexp"), &[ff_exp, embd])?;
        } else {
            weights.random(&mut writer, name("ffn_gate"), &[embd, ff])?;
            weights.random(&mut writer, name("ffn_up"), &[embd, ff])?;
            weights.random(&mut writer, name("ffn_down"), &[ff, embd])?;
        }
    }
    Ok(writer)
}

/// Writes the tiny Llama 4 text model (about 1.3 MB) to `path`.
pub fn write_llama4_text_model(path: &Path, seed: u64) -> Result<()> {
    llama4_text_model(seed)?.write_file(path)
}

/// The tiny llama4 vision projector; `position_embedding_f16` stores `v.position_embd.weight`
/// as F16, which llama.cpp's CPU backend cannot add and aborts on.
pub fn llama4_mmproj(seed: u64, position_embedding_f16: bool) -> Result<GgufWriter> {
    let mut writer = GgufWriter::new();
    writer
        .add("general.architecture", "clip")
        .add("general.name", "Cria Llama 4 vision test fixture")
        .add("general.file_type", 0u32)
        .add("general.alignment", 32u32)
        .add("clip.has_vision_encoder", true)
        .add("clip.projector_type", "llama4")
        .add("clip.use_gelu", true)
        .add("clip.vision.image_size", VISION_IMAGE_SIZE as u32)
        .add("clip.vision.patch_size", VISION_PATCH_SIZE as u32)
        .add("clip.vision.embedding_length", VISION_N_EMBD as u32)
        .add("clip.vision.feed_forward_length", VISION_N_FF as u32)
        .add("clip.vision.block_count", VISION_N_LAYER as u32)
        .add("clip.vision.attention.head_count", VISION_N_HEAD as u32)
        .add("clip.vision.projection_dim", TEXT_N_EMBD as u32)
        .add("clip.vision.attention.layer_norm_epsilon", 1e-5f32)
        .add("clip.vision.image_mean", vec![0.5f32; 3])
        .add("clip.vision.image_std", vec![0.5f32; 3])
        .add(
            "clip.vision.projector.scale_factor",
            VISION_SCALE_FACTOR as u32,
        );

    let mut weights = Weights::new(seed);
    let width = VISION_N_EMBD;
    let patch_inputs = 3 * VISION_PATCH_SIZE * VISION_PATCH_SIZE;
    let n_positions = (VISION_IMAGE_SIZE / VISION_PATCH_SIZE).pow(2) + 1;
    let shuffled = width * VISION_SCALE_FACTOR * VISION_SCALE_FACTOR;
    weights.random(&mut writer, "v.patch_embd.weight", &[patch_inputs, width])?;
    weights.random(&mut writer, "v.class_embd", &[width])?;
    let position_dims = [width, n_positions];
    let position_values = weights.normal_values(&position_dims);
    if position_embedding_f16 {
        writer.add_f16_tensor("v.position_embd.weight", &position_dims, &position_values)?;
    } else {
        writer.add_f32_tensor("v.position_embd.weight", &position_dims, &position_values)?;
    }
    for block in 0..VISION_N_LAYER {
        let name = |tensor: &str| format!("v.blk.{block}.{tensor}.weight");
        for attention in ["attn_q", "attn_k", "attn_v", "attn_out"] {
            weights.random(&mut writer, name(attention), &[width, width])?;
        }
        weights.random(&mut writer, name("ffn_up"), &[width, VISION_N_FF])?;
        weights.random(&mut writer, name("ffn_down"), &[VISION_N_FF, width])?;
    }
    weights.random(
        &mut writer,
        "mm.model.mlp.1.weight",
        &[shuffled, TEXT_N_EMBD],
    )?;
    weights.random(
        &mut writer,
        "mm.model.mlp.2.weight",
        &[TEXT_N_EMBD, TEXT_N_EMBD],
    )?;
    weights.random(
        &mut writer,
        "mm.model.fc.weight",
        &[TEXT_N_EMBD, TEXT_N_EMBD],
    )?;
    Ok(writer)
}

/// Writes the tiny llama4 vision projector (about 0.2 MB) to `path`.
pub fn write_llama4_mmproj(path: &Path, seed: u64) -> Result<()> {
    llama4_mmproj(seed, false)?.write_file(path)
}

/// Writes a projector that passes validation but makes llama.cpp abort inside image encoding
/// (F16 `v.position_embd.weight`): the engine's worker-crash test.
pub fn write_llama4_mmproj_f16_position_embedding(path: &Path, seed: u64) -> Result<()> {
    llama4_mmproj(seed, true)?.write_file(path)
}

/// GPT-2's byte-level alphabet in its token order: printable Latin-1 bytes stand for themselves,
/// the other 68 bytes map to U+0100 onwards in byte order.
fn byte_level_symbols() -> Vec<char> {
    let printable = |byte: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&byte)
            || (0xA1..=0xAC).contains(&byte)
            || (0xAE..=0xFF).contains(&byte)
    };
    let mut symbols: Vec<char> = (0u32..256)
        .filter(|&byte| printable(byte))
        .filter_map(char::from_u32)
        .collect();
    symbols.extend(
        (0u32..256)
            .filter(|&byte| !printable(byte))
            .enumerate()
            .filter_map(|(index, _)| char::from_u32(256 + index as u32)),
    );
    symbols
}

/// A deterministic stream of weights ~N(0, 0.02).
struct Weights {
    state: u64,
}

impl Weights {
    const STD_DEV: f64 = 0.02;

    fn new(seed: u64) -> Self {
        Weights { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so the logarithm below is finite.
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal_values(&mut self, dims: &[u64]) -> Vec<f32> {
        let count = dims.iter().product::<u64>() as usize;
        let mut values = Vec::with_capacity(count);
        while values.len() < count {
            // Box–Muller: two independent normals per pair of uniforms.
            let radius = (-2.0 * self.unit().ln()).sqrt() * Self::STD_DEV;
            let angle = std::f64::consts::TAU * self.unit();
            values.push((radius * angle.cos()) as f32);
            values.push((radius * angle.sin()) as f32);
        }
        values.truncate(count);
        values
    }

    fn random(
        &mut self,
        writer: &mut GgufWriter,
        name: impl Into<String>,
        dims: &[u64],
    ) -> Result<()> {
        let values = self.normal_values(dims);
        writer.add_f32_tensor(name, dims, &values)?;
        Ok(())
    }

    fn ones(
        &mut self,
        writer: &mut GgufWriter,
        name: impl Into<String>,
        dims: &[u64],
    ) -> Result<()> {
        let count = dims.iter().product::<u64>() as usize;
        writer.add_f32_tensor(name, dims, &vec![1.0; count])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GgmlType, Value, parse_bytes, summarize};

    #[test]
    fn text_model_has_the_llama4_shape_and_tokenizer() {
        let bytes = llama4_text_model(7).expect("fixture builds").to_bytes();
        let file = parse_bytes(&bytes).expect("fixture is valid");
        let info = summarize(&file).expect("fixture summarises");
        assert_eq!(info.architecture.as_deref(), Some("llama4"));
        assert_eq!(info.block_count, Some(TEXT_N_LAYER));
        assert_eq!(info.embedding_length, Some(64));
        assert_eq!(info.head_count, Some(4));
        assert_eq!(info.head_count_kv, Some(2));
        assert_eq!(info.expert_count, Some(4));
        assert_eq!(info.expert_used_count, Some(1));
        assert_eq!(info.expert_feed_forward_length, Some(96));
        assert_eq!(info.interleave_moe_layer_step, Some(2));
        assert_eq!(info.context_length, Some(16384));
        assert_eq!(info.attention_chunk_size, Some(8192));
        assert_eq!(info.vocab_size, Some(256 + 10 + 20));
        assert_eq!(info.tokenizer_model.as_deref(), Some("gpt2"));
        assert_eq!(info.tokenizer_pre.as_deref(), Some("llama4"));
        let template = info.chat_template.as_deref().expect("template");
        assert!(template.contains("<|header_start|>") && template.contains("<|header_end|>"));
        assert!(info.projector.is_none());
        assert_eq!(info.quantization, "F32");

        // Layers 1 and 3 are MoE with a shared expert; 0 and 2 dense.
        for layer in 0..4 {
            let moe = file.tensor(&format!("blk.{layer}.ffn_gate_exps.weight"));
            let dense = file.tensor(&format!("blk.{layer}.ffn_gate.weight"));
            assert_eq!(moe.is_some(), layer % 2 == 1, "layer {layer}");
            assert_eq!(dense.is_some(), layer % 2 == 0, "layer {layer}");
        }
        let down = file.tensor("blk.1.ffn_down_exps.weight").expect("experts");
        assert_eq!(down.dims, [96, 64, 4]);
        assert_eq!(
            file.tensor("blk.3.attn_k.weight").expect("k").dims,
            [64, 32]
        );
        assert!(info.expert_tensor_bytes > 0);
        assert_eq!(
            info.expert_tensor_bytes,
            2 * 3 * 64 * 96 * 4 * 4,
            "three expert tensors in each of two MoE layers"
        );

        // Tokenizer: byte symbols, merges whose results are tokens, special tokens as CONTROL.
        let Some(Value::Array(crate::Array::String(tokens))) = file.get("tokenizer.ggml.tokens")
        else {
            panic!("tokens missing");
        };
        assert_eq!(tokens[0], "!");
        assert!(tokens.iter().any(|token| token == "Ġ"));
        for (left, right) in TEXT_MERGES {
            assert!(tokens.contains(&format!("{left}{right}")));
        }
        let Some(Value::Array(crate::Array::I32(types))) = file.get("tokenizer.ggml.token_type")
        else {
            panic!("token types missing");
        };
        for special in LLAMA4_SPECIAL_TOKENS {
            let id = llama4_special_token_id(special).expect("special") as usize;
            assert_eq!(tokens[id], special);
            assert_eq!(types[id], 3);
        }
        assert_eq!(
            file.get("tokenizer.ggml.eos_token_id"),
            Some(&Value::U32(
                llama4_special_token_id("<|eot|>").expect("eot")
            ))
        );
    }

    #[test]
    fn fixtures_are_deterministic_per_seed() {
        let first = llama4_text_model(1).expect("builds").to_bytes();
        assert_eq!(first, llama4_text_model(1).expect("builds").to_bytes());
        assert_ne!(first, llama4_text_model(2).expect("builds").to_bytes());
        let projector = llama4_mmproj(1, false).expect("builds").to_bytes();
        assert_eq!(
            projector,
            llama4_mmproj(1, false).expect("builds").to_bytes()
        );
    }

    #[test]
    fn weights_look_like_small_normal_noise() {
        let values = Weights::new(3).normal_values(&[100_000]);
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        let variance = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        assert!(mean.abs() < 0.001, "mean {mean}");
        assert!(
            (variance.sqrt() - 0.02).abs() < 0.001,
            "std {}",
            variance.sqrt()
        );
    }

    #[test]
    fn mmproj_is_a_llama4_projector_and_the_crash_variant_differs_only_in_position_type() {
        let good =
            parse_bytes(&llama4_mmproj(5, false).expect("builds").to_bytes()).expect("valid");
        let bad = parse_bytes(&llama4_mmproj(5, true).expect("builds").to_bytes()).expect("valid");
        let info = summarize(&good).expect("summary");
        let projector = info.projector.as_ref().expect("is mmproj");
        assert_eq!(projector.projector_type.as_deref(), Some("llama4"));
        assert!(projector.has_vision_encoder);
        assert_eq!(info.architecture.as_deref(), Some("clip"));
        assert_eq!(
            good.tensor("v.patch_embd.weight").expect("patch").dims,
            [588, 32]
        );
        assert_eq!(
            good.tensor("mm.model.mlp.1.weight").expect("mlp").dims,
            [128, 64]
        );
        let position = |file: &crate::GgufFile| {
            file.tensor("v.position_embd.weight")
                .expect("position")
                .clone()
        };
        assert_eq!(position(&good).ggml_type, GgmlType::F32);
        assert_eq!(position(&bad).ggml_type, GgmlType::F16);
        assert_eq!(position(&good).dims, [32, 17]);
        assert_eq!(position(&bad).dims, [32, 17]);
        assert_eq!(good.tensors().len(), bad.tensors().len());
    }

    #[test]
    fn fixture_files_are_written_to_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = dir.path().join("llama4.gguf");
        let projector = dir.path().join("mmproj.gguf");
        let crash = dir.path().join("mmproj-f16.gguf");
        write_llama4_text_model(&text, 9).expect("text written");
        write_llama4_mmproj(&projector, 9).expect("mmproj written");
        write_llama4_mmproj_f16_position_embedding(&crash, 9).expect("crash mmproj written");
        let text_info = crate::inspect(&text).expect("text valid");
        assert!(text_info.file_bytes > 1_000_000 && text_info.file_bytes < 2_000_000);
        assert!(crate::inspect(&projector).expect("valid").is_mmproj());
        assert!(crate::inspect(&crash).expect("valid").is_mmproj());
    }
}
