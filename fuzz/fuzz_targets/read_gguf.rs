//! Feeds arbitrary bytes to the GGUF reader. It must never panic, and whatever it accepts must be
//! self-consistent: every tensor inside the file, aligned, and summarisable without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = cria_gguf::parse_bytes(data) else {
        return;
    };
    let alignment = u64::from(file.alignment());
    for tensor in file.tensors() {
        let end = tensor.file_offset.checked_add(tensor.n_bytes);
        assert!(end.is_some_and(|end| end <= data.len() as u64));
        assert_eq!(tensor.file_offset % alignment, 0);
    }
    if let Ok(info) = cria_gguf::summarize(&file) {
        assert!(info.tensor_bytes <= data.len() as u64);
        assert_eq!(
            info.expert_tensor_bytes + info.non_expert_tensor_bytes,
            info.tensor_bytes
        );
    }
});
