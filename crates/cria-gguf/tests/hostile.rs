//! Crafted bad GGUF files, in the categories of llama.cpp's `tests/test-gguf.cpp` and the GGUF
//! advisories (CVE-2025-53630, CVE-2026-27940, CVE-2026-33298, Ollama CVE-2026-7482, llama.cpp
//! #19003, the gguf-py 43-byte file). Each must be refused with the right typed error, quickly,
//! and without allocating more than a few MiB.
//!
//! The allocation bound is measured by a counting global allocator. Its counter is per thread, so
//! tests running in parallel do not disturb each other's figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use cria_gguf::{GgmlType, GgufError, GgufWriter, Value, fixture, parse_bytes, read_file};

struct CountingAllocator;

thread_local! {
    static ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition is a
// thread-local counter of const-initialised `Cell`s, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(bytes: usize) {
    // `try_with`: the slot may already be gone while a thread is being torn down.
    let _ = ALLOCATED_BYTES.try_with(|total| total.set(total.get() + bytes as u64));
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocated_bytes() -> u64 {
    ALLOCATED_BYTES.with(Cell::get)
}

const MAX_TIME: Duration = Duration::from_millis(100);
/// Everything the reader allocates for one hostile file, summed (not just the peak).
const MAX_ALLOCATED: u64 = 4 << 20;

/// Parses `bytes`, asserting the time and allocation bounds, and returns the refusal.
fn refused(bytes: &[u8]) -> GgufError {
    let before = allocated_bytes();
    let start = Instant::now();
    let result = parse_bytes(bytes);
    let elapsed = start.elapsed();
    let allocated = allocated_bytes() - before;
    let error = match result {
        Ok(_) => panic!("a hostile file of {} bytes was accepted", bytes.len()),
        Err(error) => error,
    };
    assert!(elapsed < MAX_TIME, "took {elapsed:?} to refuse: {error}");
    assert!(
        allocated < MAX_ALLOCATED,
        "allocated {allocated} bytes to refuse: {error}"
    );
    error
}

/// A small valid file: a few keys of different types and two F32 tensors (no trailing padding).
fn small_model() -> GgufWriter {
    let mut writer = GgufWriter::new();
    writer
        .add("general.architecture", "llama")
        .add("general.name", "tiny")
        .add("general.alignment", 32u32)
        .add("llama.block_count", 1u32)
        .add("tokenizer.ggml.add_bos_token", true)
        .add(
            "tokenizer.ggml.tokens",
            vec!["a".to_owned(), "b".to_owned()],
        )
        .add("tokenizer.ggml.scores", vec![0.5f32, 0.25]);
    writer
        .add_f32_tensor("first.weight", &[8], &[1.0; 8])
        .expect("valid tensor");
    writer
        .add_f32_tensor("second.weight", &[8, 2], &[2.0; 16])
        .expect("valid tensor");
    writer
}

fn small_model_bytes() -> Vec<u8> {
    small_model().to_bytes()
}

fn find(bytes: &[u8], needle: &str) -> usize {
    bytes
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} not in the file"))
}

/// Offset of the value-type field of `key`; the value follows 4 bytes later.
fn value_type_at(bytes: &[u8], key: &str) -> usize {
    find(bytes, key) + key.len()
}

struct TensorFields {
    n_dims: usize,
    dims: usize,
    ggml_type: usize,
    offset: usize,
}

fn tensor_fields(bytes: &[u8], name: &str) -> TensorFields {
    let n_dims = find(bytes, name) + name.len();
    let count = u32::from_le_bytes(bytes[n_dims..n_dims + 4].try_into().expect("4 bytes")) as usize;
    let dims = n_dims + 4;
    let ggml_type = dims + 8 * count;
    TensorFields {
        n_dims,
        dims,
        ggml_type,
        offset: ggml_type + 4,
    }
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn the_allocation_counter_sees_the_reader_allocate() {
    // Guards the bound above: a counter stuck at zero would pass every hostile case.
    let bytes = fixture::llama4_text_model(1).expect("fixture").to_bytes();
    let before = allocated_bytes();
    let file = parse_bytes(&bytes).expect("valid");
    let allocated = allocated_bytes() - before;
    let token_bytes: usize = fixture::llama4_vocabulary().iter().map(String::len).sum();
    assert!(
        allocated as usize > token_bytes,
        "only {allocated} bytes counted"
    );
    drop(file);
}

#[test]
fn the_small_model_itself_is_valid() {
    let file = parse_bytes(&small_model_bytes()).expect("valid");
    assert_eq!(file.tensors().len(), 2);
    assert_eq!(file.metadata().len(), 7);
}

#[test]
fn huge_dimensions_are_refused() {
    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "second.weight");
    // Above ggml's signed 64-bit range.
    put_u64(&mut bytes, fields.dims, 1 << 63);
    assert!(matches!(
        refused(&bytes),
        GgufError::BadDimension { ref name, index: 0, .. } if name == "second.weight"
    ));

    // Each dimension fine, the element count overflows.
    let mut bytes = small_model_bytes();
    put_u64(&mut bytes, fields.dims, 1 << 40);
    put_u64(&mut bytes, fields.dims + 8, 1 << 40);
    assert!(matches!(
        refused(&bytes),
        GgufError::SizeOverflow {
            what: "element count",
            ..
        }
    ));
}

#[test]
fn byte_size_overflow_is_refused() {
    // 2^62 F32 elements fit in i64 but need 2^64 bytes.
    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "second.weight");
    put_u64(&mut bytes, fields.dims, 1 << 31);
    put_u64(&mut bytes, fields.dims + 8, 1 << 31);
    assert!(matches!(
        refused(&bytes),
        GgufError::SizeOverflow {
            what: "byte size",
            ..
        }
    ));
}

#[test]
fn two_tensors_whose_sizes_overflow_the_data_section_are_refused() {
    // Two I8 tensors of 0x7FFF_FFFF_FFFF_FFC0 bytes each: their sum wraps in 64 bits.
    let mut bytes = small_model_bytes();
    let huge = 0x7FFF_FFFF_FFFF_FFC0u64;
    for (name, offset) in [("first.weight", 0), ("second.weight", huge)] {
        let fields = tensor_fields(&bytes, name);
        put_u32(&mut bytes, fields.n_dims, 1);
        // Shrinking to one dimension shifts the later fields: rebuild the entry in place.
        let mut entry = Vec::new();
        entry.extend_from_slice(&huge.to_le_bytes());
        entry.extend_from_slice(&GgmlType::I8.id().to_le_bytes());
        entry.extend_from_slice(&offset.to_le_bytes());
        let old_len = fields.offset + 8 - fields.dims;
        bytes.splice(fields.dims..fields.dims + old_len, entry);
    }
    let error = refused(&bytes);
    assert!(
        matches!(error, GgufError::TensorOutOfBounds { .. }),
        "{error}"
    );
}

#[test]
fn bad_alignment_values_are_refused() {
    for alignment in [0u32, 3, 48, 1 << 30, 1 << 31] {
        let mut bytes = small_model_bytes();
        let at = value_type_at(&bytes, "general.alignment") + 4;
        put_u32(&mut bytes, at, alignment);
        let error = refused(&bytes);
        assert!(
            matches!(error, GgufError::BadAlignment { alignment: found, .. } if found == u64::from(alignment)),
            "alignment {alignment}: {error}"
        );
    }
}

#[test]
fn alignment_of_the_wrong_type_is_refused() {
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "general.alignment");
    // Same width, different type: i32 and f32.
    for value_type in [5u32, 6] {
        put_u32(&mut bytes, at, value_type);
        assert!(matches!(
            refused(&bytes),
            GgufError::AlignmentWrongType { .. }
        ));
    }
}

#[test]
fn tensor_offsets_inconsistent_with_the_alignment_are_refused() {
    // Laid out for 32-byte alignment (second tensor at 32), then declared as 64.
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "general.alignment") + 4;
    put_u32(&mut bytes, at, 64);
    assert!(matches!(
        refused(&bytes),
        GgufError::MisalignedTensor { ref name, data_offset: 32, alignment: 64 } if name == "second.weight"
    ));

    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "second.weight");
    put_u64(&mut bytes, fields.offset, 33);
    assert!(matches!(
        refused(&bytes),
        GgufError::MisalignedTensor { .. }
    ));
}

#[test]
fn tensor_offsets_past_the_end_of_the_file_are_refused() {
    for offset in [1 << 20, 1 << 40, 1 << 63, u64::MAX - 31] {
        let mut bytes = small_model_bytes();
        let fields = tensor_fields(&bytes, "second.weight");
        put_u64(&mut bytes, fields.offset, offset);
        let error = refused(&bytes);
        assert!(
            matches!(error, GgufError::TensorOutOfBounds { ref name, .. } if name == "second.weight"),
            "offset {offset}: {error}"
        );
    }
}

#[test]
fn overlapping_tensors_are_refused() {
    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "second.weight");
    put_u64(&mut bytes, fields.offset, 0);
    assert!(matches!(
        refused(&bytes),
        GgufError::TensorsOverlap { ref first, ref second, .. }
            if first == "first.weight" && second == "second.weight"
    ));
}

#[test]
fn tensors_out_of_table_order_are_refused() {
    // Both in bounds and aligned, but swapped: llama.cpp requires table order, so must we.
    let mut bytes = small_model_bytes();
    let first = tensor_fields(&bytes, "first.weight");
    let second = tensor_fields(&bytes, "second.weight");
    put_u64(&mut bytes, first.offset, 64);
    put_u64(&mut bytes, second.offset, 0);
    assert!(matches!(
        refused(&bytes),
        GgufError::UnexpectedTensorOffset { ref name, found: 64, expected: 0 } if name == "first.weight"
    ));
}

#[test]
fn huge_string_lengths_are_refused_before_allocating() {
    for len in [1u64 << 63, (1 << 30) - 1, u64::MAX, 5] {
        let mut bytes = small_model_bytes();
        // The value of general.name is a string: its length follows the type.
        let at = value_type_at(&bytes, "general.name") + 4;
        put_u64(&mut bytes, at, len);
        if len == 5 {
            // A lie that still fits: the next fields are then read from the wrong place.
            refused(&bytes);
            continue;
        }
        assert!(matches!(
            refused(&bytes),
            GgufError::CountTooLarge { what: "string length", count, .. } if count == len
        ));
    }
    // A key's own length.
    let mut bytes = small_model_bytes();
    let at = find(&bytes, "general.name") - 8;
    put_u64(&mut bytes, at, 1 << 63);
    assert!(matches!(
        refused(&bytes),
        GgufError::CountTooLarge {
            what: "string length",
            ..
        }
    ));
}

#[test]
fn huge_array_counts_are_refused_before_allocating() {
    for (key, count) in [
        ("tokenizer.ggml.tokens", 1u64 << 62),
        ("tokenizer.ggml.tokens", 1 << 30),
        ("tokenizer.ggml.scores", 1 << 62),
        ("tokenizer.ggml.scores", u64::MAX),
    ] {
        let mut bytes = small_model_bytes();
        // type (4) + element type (4), then the count.
        let at = value_type_at(&bytes, key) + 8;
        put_u64(&mut bytes, at, count);
        let error = refused(&bytes);
        assert!(
            matches!(
                error,
                GgufError::CountTooLarge {
                    what: "array length",
                    ..
                }
            ),
            "{key}: {error}"
        );
    }
}

#[test]
fn a_49_byte_file_declaring_an_array_of_two_to_the_63_is_refused() {
    // Like gguf-py's 43-byte crasher. Header with 0 tensors and 1 key; key "a"; type array of u8; count 2^63.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.push(b'a');
    bytes.extend_from_slice(&9u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(1u64 << 63).to_le_bytes());
    assert_eq!(bytes.len(), 49);
    assert!(matches!(
        refused(&bytes),
        GgufError::CountTooLarge {
            what: "array length",
            ..
        }
    ));
}

#[test]
fn huge_key_and_tensor_counts_are_refused() {
    for (at, what) in [(8usize, "tensor count"), (16, "key/value count")] {
        for count in [1u64 << 63, u64::MAX, 1 << 32] {
            let mut bytes = small_model_bytes();
            put_u64(&mut bytes, at, count);
            let error = refused(&bytes);
            assert!(
                matches!(error, GgufError::CountTooLarge { what: found, offset, .. } if found == what && offset == at as u64),
                "{what} {count}: {error}"
            );
        }
    }
}

#[test]
fn unknown_tensor_types_are_refused() {
    for type_id in [4u32, 5, 31, 33, 36, 38, 43, 1000, u32::MAX] {
        let mut bytes = small_model_bytes();
        let fields = tensor_fields(&bytes, "first.weight");
        put_u32(&mut bytes, fields.ggml_type, type_id);
        assert!(matches!(
            refused(&bytes),
            GgufError::UnknownTensorType { type_id: found, .. } if found == type_id
        ));
    }
}

#[test]
fn rows_that_are_not_whole_quantization_blocks_are_refused() {
    // first.weight has 8 elements per row; Q4_K blocks hold 256.
    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "first.weight");
    put_u32(&mut bytes, fields.ggml_type, GgmlType::Q4K.id());
    assert!(matches!(
        refused(&bytes),
        GgufError::RowNotWholeBlocks {
            row: 8,
            block_size: 256,
            ..
        }
    ));
}

#[test]
fn duplicate_keys_and_tensors_are_refused() {
    let mut writer = small_model();
    writer.add("general.name", "again");
    assert!(matches!(
        refused(&writer.to_bytes()),
        GgufError::DuplicateKey { ref key, .. } if key == "general.name"
    ));

    let mut writer = small_model();
    writer
        .add_f32_tensor("first.weight", &[8], &[0.0; 8])
        .expect("valid tensor");
    assert!(matches!(
        refused(&writer.to_bytes()),
        GgufError::DuplicateTensor { ref name, .. } if name == "first.weight"
    ));
}

#[test]
fn malformed_values_are_refused() {
    // Unknown value type.
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "llama.block_count");
    put_u32(&mut bytes, at, 13);
    assert!(matches!(
        refused(&bytes),
        GgufError::UnknownValueType { type_id: 13, .. }
    ));

    // Array of arrays.
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "tokenizer.ggml.scores") + 4;
    put_u32(&mut bytes, at, 9);
    assert!(matches!(refused(&bytes), GgufError::NestedArray { .. }));

    // A bool that is neither 0 nor 1.
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "tokenizer.ggml.add_bos_token") + 4;
    bytes[at] = 7;
    assert!(matches!(
        refused(&bytes),
        GgufError::InvalidBool { byte: 7, .. }
    ));
}

#[test]
fn malformed_tensor_entries_are_refused() {
    let mut bytes = small_model_bytes();
    let fields = tensor_fields(&bytes, "first.weight");
    put_u32(&mut bytes, fields.n_dims, 5);
    assert!(matches!(
        refused(&bytes),
        GgufError::TooManyDimensions { n_dims: 5, .. }
    ));

    let mut writer = GgufWriter::new();
    writer
        .add_f32_tensor("x".repeat(64), &[8], &[0.0; 8])
        .expect("the writer does not judge names");
    assert!(matches!(
        refused(&writer.to_bytes()),
        GgufError::TensorNameTooLong { len: 64, .. }
    ));
}

#[test]
fn wrong_magic_and_versions_are_refused() {
    let mut bytes = small_model_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    assert!(matches!(refused(&bytes), GgufError::BadMagic { .. }));
    assert!(matches!(
        refused(b"PK\x03\x04 a zip file"),
        GgufError::BadMagic { .. }
    ));
    // Version 1 (32-bit counts), a future version, and a big-endian version 3.
    for version in [1u32, 4, 3 << 24] {
        let mut bytes = small_model_bytes();
        put_u32(&mut bytes, 4, version);
        assert!(matches!(
            refused(&bytes),
            GgufError::UnsupportedVersion { version: found } if found == version
        ));
    }
}

#[test]
fn every_truncation_of_a_small_model_is_refused() {
    let bytes = small_model_bytes();
    parse_bytes(&bytes).expect("the whole file is valid");
    for len in 0..bytes.len() {
        refused(&bytes[..len]);
    }
}

#[test]
fn truncations_of_the_llama4_fixtures_are_refused() {
    for bytes in [
        fixture::llama4_text_model(11).expect("fixture").to_bytes(),
        fixture::llama4_mmproj(11, false)
            .expect("fixture")
            .to_bytes(),
    ] {
        let header_end =
            usize::try_from(parse_bytes(&bytes).expect("valid").data_offset()).expect("small file");
        // Every cut inside the header, then a sample through the data.
        let every = 0..header_end + 64;
        let sampled = (header_end + 64..bytes.len()).step_by(4099);
        for len in every.chain(sampled) {
            refused(&bytes[..len]);
        }
    }
}

#[test]
fn hostile_files_on_disk_are_refused_the_same_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hostile.gguf");
    let mut bytes = small_model_bytes();
    put_u64(&mut bytes, 16, 1 << 63);
    std::fs::write(&path, &bytes).expect("written");
    let before = allocated_bytes();
    let error = read_file(&path).expect_err("refused");
    assert!(allocated_bytes() - before < MAX_ALLOCATED);
    assert!(matches!(error, GgufError::CountTooLarge { .. }));
    let error = cria_gguf::inspect(&dir.path().join("missing.gguf")).expect_err("no file");
    assert!(matches!(error, GgufError::Io(_)));
}

#[test]
fn error_messages_say_what_failed_and_where() {
    let mut bytes = small_model_bytes();
    let at = value_type_at(&bytes, "general.name") + 4;
    put_u64(&mut bytes, at, 1 << 63);
    let message = refused(&bytes).to_string();
    assert!(message.contains("string length"), "{message}");
    assert!(message.contains(&format!("byte {at}")), "{message}");
    assert!(message.contains(&(1u64 << 63).to_string()), "{message}");
}

#[test]
fn a_wrongly_typed_known_key_is_reported_by_the_summary() {
    let mut writer = small_model();
    writer.add("llama.context_length", "long");
    let file = parse_bytes(&writer.to_bytes()).expect("structurally valid");
    let error = cria_gguf::summarize(&file).expect_err("wrong type");
    assert!(matches!(
        error,
        GgufError::WrongKeyType { ref key, found: cria_gguf::ValueType::String, .. } if key == "llama.context_length"
    ));
    assert!(matches!(
        file.get("llama.context_length"),
        Some(Value::String(_))
    ));
}
