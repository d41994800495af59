//! The reader against real and generated model files, and the writer → reader round trip.

use std::path::{Path, PathBuf};

use cria_gguf::{Array, GgmlType, GgufWriter, Value, fixture, inspect, parse_bytes, read_file};
use proptest::prelude::*;

/// The real Gemma 3 270M file that `scripts/fetch-test-models.sh` caches. Absent outside CI: the
/// test is skipped with a notice; absent under CI: a failure.
fn gemma3_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/gemma-3-270m-q4_k_m.gguf");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI: run scripts/fetch-test-models.sh first",
        path.display()
    );
    eprintln!(
        "notice: skipping the Gemma 3 checks, {} is absent (run scripts/fetch-test-models.sh)",
        path.display()
    );
    None
}

#[test]
fn gemma3_270m_is_summarised_correctly() {
    let Some(path) = gemma3_path() else {
        return;
    };
    let info = inspect(&path).expect("the real model is valid");
    assert_eq!(info.architecture.as_deref(), Some("gemma3"));
    assert_eq!(info.block_count, Some(18));
    assert_eq!(info.vocab_size, Some(262_144));
    assert_eq!(info.chat_template, None);
    assert!(!info.has_chat_template());
    assert_eq!(info.file_bytes, 253_113_024);
    assert_eq!(info.quantization, "Q4_K_M");
    assert_eq!(info.file_type, Some(15));
    assert_eq!(info.context_length, Some(32_768));
    assert_eq!(info.embedding_length, Some(640));
    assert_eq!(info.head_count, Some(4));
    assert_eq!(info.head_count_kv, Some(1));
    assert_eq!((info.key_length, info.value_length), (Some(256), Some(256)));
    assert_eq!(info.sliding_window, Some(512));
    assert_eq!(info.attention_chunk_size, None);
    assert_eq!(info.expert_count, None);
    assert_eq!(info.expert_tensor_bytes, 0);
    assert_eq!(info.tokenizer_model.as_deref(), Some("llama"));
    assert!(info.projector.is_none());
    assert!(info.split.is_none());
    // Dense model: all tensor bytes are non-expert, and they fill the file after the header.
    assert_eq!(info.non_expert_tensor_bytes, info.tensor_bytes);
    assert!(info.tensor_bytes < info.file_bytes);
    assert!(info.tensor_bytes > info.file_bytes * 9 / 10);
    let summed: u64 = info.bytes_by_type.values().sum();
    assert_eq!(summed, info.tensor_bytes);
    let embedding = info
        .tensors
        .iter()
        .find(|tensor| tensor.name == "token_embd.weight")
        .expect("embedding");
    assert_eq!(embedding.dims, [640, 262_144]);
    assert_eq!(
        embedding.bytes,
        640 * 262_144 / embedding.ggml_type.block_size() * embedding.ggml_type.type_size()
    );
    let file = read_file(&path).expect("valid");
    assert_eq!(file.tensors().len(), info.tensors.len());
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 32);
}

#[test]
fn llama4_fixture_files_are_summarised_correctly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text_path = dir.path().join("llama4.gguf");
    let projector_path = dir.path().join("mmproj.gguf");
    fixture::write_llama4_text_model(&text_path, 42).expect("written");
    fixture::write_llama4_mmproj(&projector_path, 42).expect("written");

    let text = inspect(&text_path).expect("valid");
    assert_eq!(text.architecture.as_deref(), Some("llama4"));
    assert_eq!(text.expert_count, Some(fixture::TEXT_N_EXPERT));
    assert!(text.has_chat_template());
    assert!(!text.is_mmproj());
    // 3 expert tensors of 64×96×4 F32 in each of 2 MoE layers.
    assert_eq!(text.expert_tensor_bytes, 2 * 3 * 64 * 96 * 4 * 4);
    assert_eq!(
        text.expert_tensor_bytes + text.non_expert_tensor_bytes,
        text.tensor_bytes
    );
    assert!(
        text.tensors
            .iter()
            .filter(|tensor| tensor.is_expert)
            .all(|tensor| tensor.name.contains("_exps"))
    );

    let projector = inspect(&projector_path).expect("valid");
    assert!(projector.is_mmproj());
    let details = projector.projector.expect("projector facts");
    assert_eq!(details.projector_type.as_deref(), Some("llama4"));
    assert_eq!(details.image_size, Some(fixture::VISION_IMAGE_SIZE));
    assert_eq!(details.patch_size, Some(fixture::VISION_PATCH_SIZE));
    assert_eq!(details.projection_dim, Some(fixture::TEXT_N_EMBD));
    assert!(projector.file_bytes < 400_000);
}

/// Stands for the tensor data of a huge file: reading it at all is a failure.
struct NoDataReads;

impl std::io::Read for NoDataReads {
    fn read(&mut self, _buffer: &mut [u8]) -> std::io::Result<usize> {
        panic!("the reader went past the header into tensor data");
    }
}

#[test]
fn a_200_gb_model_is_summarised_from_its_header_alone() {
    // A header whose single tensor claims 200 GB, followed by data that must never be read.
    let mut writer = GgufWriter::new();
    writer.add("general.architecture", "llama4");
    writer
        .add_tensor(
            "blk.0.ffn_up_exps.weight",
            &[32, 1],
            GgmlType::I8,
            vec![0; 32],
        )
        .expect("tensor");
    let mut bytes = writer.to_bytes();
    let name_end = bytes
        .windows(24)
        .position(|window| window == b"blk.0.ffn_up_exps.weight")
        .expect("name")
        + 24;
    let second_dim = name_end + 4 + 8;
    let rows = 200_000_000_000u64 / 32;
    bytes[second_dim..second_dim + 8].copy_from_slice(&rows.to_le_bytes());
    let header = parse_bytes(&bytes).expect_err("too big for these bytes");
    assert!(matches!(
        header,
        cria_gguf::GgufError::TensorOutOfBounds { .. }
    ));

    let data_offset = bytes.len() - 32;
    let file_len = data_offset as u64 + 200_000_000_000;
    let reader = std::io::Read::chain(&bytes[..data_offset], NoDataReads);
    let file = cria_gguf::read_from(reader, file_len).expect("valid header");
    let info = cria_gguf::summarize(&file).expect("summary");
    assert_eq!(info.tensor_bytes, 200_000_000_000);
    assert_eq!(info.expert_tensor_bytes, 200_000_000_000);
    assert_eq!(info.file_bytes, file_len);
}

#[test]
fn split_files_report_their_place() {
    let mut writer = GgufWriter::new();
    writer
        .add("general.architecture", "llama4")
        .add("split.no", 1u16)
        .add("split.count", 3u16)
        .add("split.tensors.count", 500i32);
    let info =
        cria_gguf::summarize(&parse_bytes(&writer.to_bytes()).expect("valid")).expect("summary");
    let split = info.split.expect("split");
    assert_eq!(
        (split.index, split.count, split.tensors_count),
        (1, 3, Some(500))
    );
    assert_eq!(info.quantization, "unknown");
}

#[test]
fn version_2_files_read_like_version_3() {
    let mut writer = fixture::llama4_mmproj(3, false).expect("fixture");
    let v3 = parse_bytes(&writer.to_bytes()).expect("v3");
    writer.set_version(2);
    let v2 = parse_bytes(&writer.to_bytes()).expect("v2");
    assert_eq!(v2.version(), 2);
    assert_eq!(v2.metadata(), v3.metadata());
    assert_eq!(v2.tensors(), v3.tensors());
}

const ROUND_TRIP_TYPES: [GgmlType; 12] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
    GgmlType::Iq2Xxs,
    GgmlType::Iq4Xs,
    GgmlType::Mxfp4,
    GgmlType::Nvfp4,
    GgmlType::I8,
];

fn float32() -> impl Strategy<Value = f32> {
    -1.0e30f32..1.0e30f32
}

fn float64() -> impl Strategy<Value = f64> {
    -1.0e300f64..1.0e300f64
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn value() -> impl Strategy<Value = Value> {
    let small = 0..6usize;
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        float32().prop_map(Value::F32),
        any::<bool>().prop_map(Value::Bool),
        text().prop_map(Value::String),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        float64().prop_map(Value::F64),
        prop::collection::vec(any::<u8>(), small.clone()).prop_map(|v| Value::Array(Array::U8(v))),
        prop::collection::vec(any::<i16>(), small.clone())
            .prop_map(|v| Value::Array(Array::I16(v))),
        prop::collection::vec(any::<i32>(), small.clone())
            .prop_map(|v| Value::Array(Array::I32(v))),
        prop::collection::vec(float32(), small.clone()).prop_map(|v| Value::Array(Array::F32(v))),
        prop::collection::vec(any::<bool>(), small.clone())
            .prop_map(|v| Value::Array(Array::Bool(v))),
        prop::collection::vec(text(), small.clone()).prop_map(|v| Value::Array(Array::String(v))),
        prop::collection::vec(any::<u64>(), small.clone())
            .prop_map(|v| Value::Array(Array::U64(v))),
        prop::collection::vec(float64(), small).prop_map(|v| Value::Array(Array::F64(v))),
    ]
}

#[derive(Debug, Clone)]
struct TensorSpec {
    ggml_type: GgmlType,
    dims: Vec<u64>,
    fill: u8,
}

fn tensor() -> impl Strategy<Value = TensorSpec> {
    (
        0..ROUND_TRIP_TYPES.len(),
        1..=2u64,
        prop::collection::vec(1..=3u64, 0..=3),
        any::<u8>(),
    )
        .prop_map(|(type_index, blocks, outer, fill)| {
            let ggml_type = ROUND_TRIP_TYPES[type_index];
            let mut dims = vec![blocks * ggml_type.block_size()];
            dims.extend(outer);
            TensorSpec {
                ggml_type,
                dims,
                fill,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn writer_then_reader_preserves_every_key_and_tensor(
        version in 2..=3u32,
        alignment in prop::option::of(prop::sample::select(vec![1u32, 8, 16, 32, 64, 256, 4096])),
        entries in prop::collection::vec(("[a-z][a-z0-9_.]{0,20}", value()), 0..12),
        tensors in prop::collection::vec(tensor(), 0..6),
    ) {
        let mut writer = GgufWriter::new();
        writer.set_version(version);
        let mut expected_metadata = Vec::new();
        if let Some(alignment) = alignment {
            writer.add("general.alignment", alignment);
            expected_metadata.push(("general.alignment".to_owned(), Value::U32(alignment)));
        }
        for (index, (key, value)) in entries.into_iter().enumerate() {
            // The index keeps keys unique; the random part varies their length and bytes.
            let key = format!("k{index}.{key}");
            writer.add(key.clone(), value.clone());
            expected_metadata.push((key, value));
        }
        let mut expected_data = Vec::new();
        for (index, spec) in tensors.iter().enumerate() {
            let n_elements: u64 = spec.dims.iter().product();
            let n_bytes = spec.ggml_type.bytes_for(n_elements).expect("whole blocks");
            let data: Vec<u8> = (0..n_bytes).map(|i| spec.fill.wrapping_add(i as u8)).collect();
            writer
                .add_tensor(format!("blk.{index}.weight"), &spec.dims, spec.ggml_type, data.clone())
                .expect("consistent tensor");
            expected_data.push(data);
        }
        let bytes = writer.to_bytes();

        let file = parse_bytes(&bytes).expect("the writer's output is valid");
        prop_assert_eq!(file.version(), version);
        prop_assert_eq!(file.alignment(), alignment.unwrap_or(32));
        prop_assert_eq!(file.metadata(), &expected_metadata[..]);
        for (key, value) in &expected_metadata {
            prop_assert_eq!(file.get(key), Some(value));
        }
        prop_assert_eq!(file.tensors().len(), tensors.len());
        for (index, (tensor, spec)) in file.tensors().iter().zip(&tensors).enumerate() {
            prop_assert_eq!(&tensor.name, &format!("blk.{index}.weight"));
            prop_assert_eq!(&tensor.dims, &spec.dims);
            prop_assert_eq!(tensor.ggml_type, spec.ggml_type);
            prop_assert_eq!(tensor.file_offset % u64::from(file.alignment()), 0);
            let start = tensor.file_offset as usize;
            let data = &bytes[start..start + tensor.n_bytes as usize];
            prop_assert_eq!(data, &expected_data[index][..]);
        }
    }
}
