//! GPU offload, end to end through real worker processes.
//!
//! The first test runs in every build: asking for GPU layers where no GPU is usable (a CPU-only
//! build, or a GPU backend that found no device) runs on the CPU and says why.
//!
//! The others need a Vulkan build and a Vulkan device; they run only with
//! `CRIA_TEST_VULKAN=1` (`scripts/test-vulkan.sh` builds with `--features cria-cli/vulkan` and
//! runs them on Mesa's lavapipe, a CPU Vulkan driver, so no GPU is needed) and otherwise say
//! that they are skipped. They check that what the engine reports about offload is what
//! llama.cpp did: the layers and weight bytes come from llama.cpp's own load report, and a
//! refused offload falls back to the CPU with a reason.

use std::path::Path;

use cria_engine::{
    EngineHandle, FinishReason, LoadOptions, ModelInfo, SupervisorOptions, gpu_backends_built,
};
use cria_tests::gemma_model;

use crate::engine::{
    ONE_AT_A_TIME, greedy, handle, llama4_fixture, load_options, picture, run, user,
};

const GEMMA_PROMPT: &str = "Name three colours of the rainbow.";
/// Short: on lavapipe (CPU Vulkan) a token takes seconds once its pipelines are compiled.
const GEMMA_TOKENS: u32 = 8;

fn is_gpu(kind: &str) -> bool {
    kind == "gpu" || kind == "igpu"
}

/// Whether the Vulkan tests run; `false` (with a note) unless `CRIA_TEST_VULKAN=1`.
fn vulkan_tests_enabled(test: &str) -> bool {
    if std::env::var("CRIA_TEST_VULKAN").as_deref() != Ok("1") {
        eprintln!(
            "skipping {test}: set CRIA_TEST_VULKAN=1 in a Vulkan build (scripts/test-vulkan.sh)"
        );
        return false;
    }
    assert!(
        gpu_backends_built().contains(&"Vulkan"),
        "CRIA_TEST_VULKAN=1 but this test binary was built without Vulkan (build with \
         --features cria-cli/vulkan, as scripts/test-vulkan.sh does)"
    );
    true
}

/// A worker for the Vulkan tests. `CRIA_TEST_VULKAN_DEVICES` becomes the worker's
/// `GGML_VK_VISIBLE_DEVICES` (lavapipe needs `0`: ggml skips CPU-type devices otherwise); it is
/// not set for cargo itself because llama-cpp-sys-2 rebuilds llama.cpp when a `GGML_*`
/// variable changes.
fn vulkan_handle(extra_env: &[(&str, &str)]) -> EngineHandle {
    let mut options = SupervisorOptions::program(env!("CARGO_BIN_EXE_cria-worker-host"));
    if let Ok(devices) = std::env::var("CRIA_TEST_VULKAN_DEVICES") {
        options
            .env
            .push(("GGML_VK_VISIBLE_DEVICES".into(), devices.into()));
    }
    for (key, value) in extra_env {
        options.env.push(((*key).into(), (*value).into()));
    }
    EngineHandle::new(options)
}

fn with_gpu_layers(model: &Path, gpu_layers: Option<u32>) -> LoadOptions {
    LoadOptions {
        gpu_layers,
        ..load_options(model, None, 1024)
    }
}

/// Everything on the CPU, by the engine's own account.
fn assert_on_cpu(info: &ModelInfo) {
    assert_eq!(info.gpu_layers, 0, "{info:?}");
    assert_eq!(info.gpu_weight_bytes, 0, "{info:?}");
    assert!(info.gpu_devices.is_empty(), "{info:?}");
}

/// All layers on a Vulkan device, by llama.cpp's own report.
fn assert_fully_offloaded(info: &ModelInfo) {
    assert!(info.offloadable_layers > 1, "{info:?}");
    assert_eq!(info.gpu_layers, info.offloadable_layers, "{info:?}");
    assert!(info.gpu_weight_bytes > 0, "{info:?}");
    assert!(
        info.gpu_devices
            .iter()
            .any(|device| device.starts_with("Vulkan")),
        "{info:?}"
    );
    assert_eq!(info.cpu_fallback_reason, None, "{info:?}");
}

#[tokio::test]
async fn asking_for_gpu_layers_without_a_usable_gpu_runs_on_the_cpu_and_says_why() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    let devices = engine.devices().await.expect("devices");
    if devices.iter().any(|device| is_gpu(&device.kind)) {
        // The Vulkan tests below cover machines where a GPU is usable.
        eprintln!("skipping: this build sees a GPU ({devices:?})");
        engine.shutdown().await;
        return;
    }
    let info = engine
        .load(with_gpu_layers(&fixture.model, Some(8)))
        .await
        .expect("the model loads on the CPU");
    assert_on_cpu(&info);
    let reason = info.cpu_fallback_reason.clone().expect("a fallback reason");
    assert!(reason.contains("8 GPU layers"), "{reason}");
    assert!(reason.contains("running on the CPU"), "{reason}");
    if gpu_backends_built().is_empty() {
        assert!(reason.contains("no GPU backend"), "{reason}");
    } else {
        assert!(reason.contains("found no usable GPU"), "{reason}");
    }
    let (_, outcome) = run(&engine, greedy(vec![user("hi")], 2)).await;
    assert_eq!(outcome.expect("generation on the CPU").generated_tokens, 2);

    // Not asking for offload is not a fallback: nothing to explain.
    let quiet = engine
        .load(with_gpu_layers(&fixture.model, None))
        .await
        .expect("load");
    assert_on_cpu(&quiet);
    assert_eq!(quiet.cpu_fallback_reason, None, "{quiet:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn vulkan_device_is_listed_with_its_memory() {
    if !vulkan_tests_enabled("vulkan_device_is_listed_with_its_memory") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let engine = vulkan_handle(&[]);
    let devices = engine.devices().await.expect("devices");
    engine.shutdown().await;
    let vulkan = devices
        .iter()
        .find(|device| device.backend == "Vulkan" && is_gpu(&device.kind))
        .unwrap_or_else(|| {
            panic!("no Vulkan device in {devices:?} (lavapipe needs GGML_VK_VISIBLE_DEVICES=0)")
        });
    assert!(vulkan.memory_total_bytes > 0, "{vulkan:?}");
    assert!(
        vulkan.memory_free_bytes <= vulkan.memory_total_bytes,
        "{vulkan:?}"
    );
    assert!(!vulkan.description.is_empty(), "{vulkan:?}");
}

/// Greedy gemma output with the given offload; the text and the load report.
async fn gemma_reply(
    engine: &EngineHandle,
    model: &Path,
    gpu_layers: Option<u32>,
) -> (String, ModelInfo) {
    let info = engine
        .load(with_gpu_layers(model, gpu_layers))
        .await
        .expect("load gemma");
    let (text, outcome) = run(engine, greedy(vec![user(GEMMA_PROMPT)], GEMMA_TOKENS)).await;
    let outcome = outcome.expect("gemma generation");
    assert!(
        matches!(
            outcome.finish_reason,
            FinishReason::Length | FinishReason::Stop
        ),
        "{outcome:?}"
    );
    assert!(!text.trim().is_empty(), "empty reply with {info:?}");
    (text, info)
}

/// Greedy output on Vulkan starts like the CPU's. Exact equality is not expected: lavapipe's
/// shaders sum in a different order than the CPU kernels, and where the top two logits are
/// within rounding of each other greedy picks differ (measured: gemma's 8-token reply agreed
/// on its first 7 tokens, then the CPU chose " staan" and Vulkan " mendatang", both junk tokens
/// after the model echoed the prompt). So the first half of the reply must agree.
fn assert_same_start(on_gpu: &str, on_cpu: &str) {
    let common = on_gpu
        .chars()
        .zip(on_cpu.chars())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        common * 2 >= on_cpu.chars().count(),
        "greedy output on Vulkan {on_gpu:?} departs early from the CPU's {on_cpu:?}"
    );
}

#[tokio::test]
async fn gemma_on_vulkan_reports_its_layers_and_answers_like_the_cpu() {
    if !vulkan_tests_enabled("gemma_on_vulkan_reports_its_layers_and_answers_like_the_cpu") {
        return;
    }
    let Some(model) = gemma_model() else {
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let engine = vulkan_handle(&[]);

    let (on_gpu, full) = gemma_reply(&engine, &model, None).await;
    assert_fully_offloaded(&full);

    // Part of the model: llama.cpp places the last layers (and the output layer) on the GPU,
    // so fewer weight bytes go there.
    let (_, partial) = gemma_reply(&engine, &model, Some(5)).await;
    assert_eq!(partial.gpu_layers, 5, "{partial:?}");
    assert!(partial.gpu_weight_bytes > 0, "{partial:?}");
    assert!(
        partial.gpu_weight_bytes < full.gpu_weight_bytes,
        "{partial:?} vs {full:?}"
    );

    let (on_cpu, cpu) = gemma_reply(&engine, &model, Some(0)).await;
    assert_on_cpu(&cpu);
    assert_eq!(
        cpu.cpu_fallback_reason, None,
        "layers 0 were asked for: {cpu:?}"
    );
    assert_same_start(&on_gpu, &on_cpu);
    engine.shutdown().await;
}

#[tokio::test]
async fn llama4_fixture_runs_text_and_an_image_on_vulkan() {
    if !vulkan_tests_enabled("llama4_fixture_runs_text_and_an_image_on_vulkan") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    // Known to fail on lavapipe: the worker dies (SIGSEGV) in the fixture's first decodes with
    // its repeating layers offloaded, intermittently (2 of 2 runs with FP16 on, 1 of 3 with
    // GGML_VK_DISABLE_F16=1; gemma, and the fixture's output layer alone, run fine). The
    // supervisor reports the crash and restarts; the cause is in ggml-vulkan or lavapipe and
    // needs a real GPU to tell apart. The test stays strict so a working driver passes it.
    let engine = vulkan_handle(&[]);
    let info = engine
        .load(load_options(&fixture.model, Some(&fixture.mmproj), 1024))
        .await
        .expect("load the Llama 4 fixture with its projector");
    assert_eq!(info.architecture, "llama4");
    assert!(info.vision, "{info:?}");
    assert_fully_offloaded(&info);

    // A fixed number of tokens: the random-weight fixture may pick its end-of-turn token.
    let fixed = |request: cria_engine::GenerateRequest| cria_engine::GenerateRequest {
        ignore_eos: true,
        ..request
    };
    let (_, text) = run(&engine, fixed(greedy(vec![user("hello there")], 6))).await;
    assert_eq!(text.expect("text on Vulkan").generated_tokens, 6);
    let mut with_image = user("What is in the picture?");
    with_image.images.push(picture(56, 56, 3));
    let (_, image) = run(&engine, fixed(greedy(vec![with_image], 4))).await;
    let image = image.expect("an image through the projector on Vulkan");
    assert_eq!(image.images_encoded, 1, "{image:?}");
    assert_eq!(image.generated_tokens, 4, "{image:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_refused_vulkan_offload_falls_back_to_the_cpu_and_says_why() {
    if !vulkan_tests_enabled("a_refused_vulkan_offload_falls_back_to_the_cpu_and_says_why") {
        return;
    }
    let Some(model) = gemma_model() else {
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    // ggml-vulkan refuses any device buffer above this size, as a device short of memory would.
    let engine = vulkan_handle(&[("GGML_VK_FORCE_MAX_BUFFER_SIZE", "1048576")]);
    let (refused_text, refused) = gemma_reply(&engine, &model, None).await;
    assert_on_cpu(&refused);
    let reason = refused
        .cpu_fallback_reason
        .clone()
        .expect("the fallback is explained");
    // Which allocation is refused first depends on llama.cpp's buffer sizes: on lavapipe the
    // weights were split into small buffers and loaded, then the KV cache was refused, so the
    // whole model moved back to the CPU ("the GPU could not hold the model's context").
    assert!(
        reason.contains("onto Vulkan0 failed") || reason.contains("GPU could not hold"),
        "{reason}"
    );
    assert!(reason.contains("running on the CPU"), "{reason}");
    engine.shutdown().await;

    let cpu_engine = handle(false);
    let (cpu_text, _) = gemma_reply(&cpu_engine, &model, Some(0)).await;
    cpu_engine.shutdown().await;
    assert_eq!(
        refused_text, cpu_text,
        "the fallback runs the same model on the CPU"
    );
}
