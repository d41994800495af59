//! The engine end to end: real worker processes running llama.cpp on the tiny random-weight
//! Llama 4 fixture (text + vision, written by `cria-gguf` at test time) and, when present,
//! Gemma 3 270M. Tests assert counts and behaviour, never speeds.
//!
//! Tests in this module run one at a time (a shared lock): each starts llama.cpp with several
//! threads, and the cancellation test measures latency.

use cria_tests::gemma_model;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cria_engine::{
    CancelToken, ChatMessage, ChatRole, CrashKind, Engine, EngineError, EngineHandle, FinishReason,
    GenerateEvent, GenerateOutcome, GenerateRequest, ImageInput, LoadOptions, Sampling,
    SupervisorOptions,
};
use tokio::sync::mpsc;

pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) model: PathBuf,
    pub(crate) mmproj: PathBuf,
    mmproj_f16_position: PathBuf,
}

pub(crate) fn llama4_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("llama4-tiny.gguf");
    let mmproj = dir.path().join("llama4-tiny-mmproj.gguf");
    let mmproj_f16_position = dir.path().join("llama4-tiny-mmproj-f16pos.gguf");
    cria_gguf::fixture::write_llama4_text_model(&model, 7).expect("write text model");
    cria_gguf::fixture::write_llama4_mmproj(&mmproj, 7).expect("write mmproj");
    cria_gguf::fixture::write_llama4_mmproj_f16_position_embedding(&mmproj_f16_position, 7)
        .expect("write f16 mmproj");
    Fixture {
        _dir: dir,
        model,
        mmproj,
        mmproj_f16_position,
    }
}

pub(crate) fn handle(allow_test_abort: bool) -> EngineHandle {
    let mut options = SupervisorOptions::program(env!("CARGO_BIN_EXE_cria-worker-host"));
    options.allow_test_abort = allow_test_abort;
    EngineHandle::new(options)
}

pub(crate) fn load_options(model: &Path, mmproj: Option<&Path>, n_ctx: u32) -> LoadOptions {
    LoadOptions {
        n_ctx: Some(n_ctx),
        threads: Some(2),
        mmproj_path: mmproj.map(Path::to_path_buf),
        ..LoadOptions::new(model)
    }
}

pub(crate) fn user(text: &str) -> ChatMessage {
    ChatMessage::text(ChatRole::User, text)
}

pub(crate) fn greedy(messages: Vec<ChatMessage>, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        sampling: Sampling::GREEDY,
        ..GenerateRequest::new(messages, max_tokens)
    }
}

/// Runs a generation and collects its streamed text.
pub(crate) async fn run(
    engine: &EngineHandle,
    request: GenerateRequest,
) -> (String, Result<GenerateOutcome, EngineError>) {
    run_with_cancel(engine, request, CancelToken::default()).await
}

async fn run_with_cancel(
    engine: &EngineHandle,
    request: GenerateRequest,
    cancel: CancelToken,
) -> (String, Result<GenerateOutcome, EngineError>) {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let result = engine.generate(request, sender, cancel).await;
    let mut text = String::new();
    while let Ok(event) = receiver.try_recv() {
        if let GenerateEvent::Token(piece) = event {
            text.push_str(&piece);
        }
    }
    (text, result)
}

/// Deterministic pixels (a gradient with some structure) of the given size.
pub(crate) fn picture(width: u32, height: u32, salt: u8) -> ImageInput {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            rgb.push((x % 256) as u8 ^ salt);
            rgb.push((y % 256) as u8);
            rgb.push(((x + y) % 256) as u8);
        }
    }
    ImageInput::from_rgb(width, height, rgb).expect("valid image")
}

/// About `n` tokens of text for the fixture's byte-level vocabulary (one token per byte,
/// except a few merges).
fn long_text(n_bytes: usize) -> String {
    "the quick brown fox jumps over a lazy dog; "
        .chars()
        .cycle()
        .take(n_bytes)
        .collect()
}

#[tokio::test]
async fn llama4_generates_through_the_real_llama4_path_deterministically() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    let info = engine
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load the tiny llama4");
    assert_eq!(info.architecture, "llama4");
    assert_eq!(info.chat_template, "model");
    assert_eq!(info.n_ctx, 2048);

    let mut request = greedy(vec![user("Hello there")], 12);
    request.ignore_eos = true;
    let (first_text, first) = run(&engine, request.clone()).await;
    let first = first.expect("generation");
    assert_eq!(first.generated_tokens, 12);
    assert_eq!(first.finish_reason, FinishReason::Length);
    assert!(first.prompt_tokens > 5, "{first:?}");
    assert_eq!(
        first.prefilled_tokens + first.reused_tokens,
        first.prompt_tokens
    );

    // A fresh worker gives the same greedy text.
    let other = handle(false);
    other
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load again");
    let (second_text, second) = run(&other, request).await;
    assert_eq!(second.expect("generation").generated_tokens, 12);
    assert_eq!(first_text, second_text);
    engine.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn a_model_load_reports_its_progress_and_then_that_no_load_runs() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    let mut progress = engine.load_progress();
    assert_eq!(*progress.borrow_and_update(), None, "no load yet");
    let collector = tokio::spawn(async move {
        let mut seen = Vec::new();
        while progress.changed().await.is_ok() {
            let value = *progress.borrow_and_update();
            seen.push(value);
            if seen.len() > 1 && value.is_none() {
                break;
            }
        }
        seen
    });
    engine
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load the tiny llama4");
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), collector)
        .await
        .expect("the load's end is reported")
        .unwrap();
    assert_eq!(seen.last(), Some(&None), "{seen:?}");
    let fractions: Vec<f32> = seen.iter().flatten().copied().collect();
    assert!(
        fractions.iter().any(|fraction| *fraction > 0.0),
        "the worker reported progress: {seen:?}"
    );
    assert!(
        fractions.windows(2).all(|pair| pair[0] <= pair[1])
            && fractions
                .iter()
                .all(|fraction| (0.0..=1.0).contains(fraction)),
        "{fractions:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn the_rendered_llama4_prompt_matches_the_snapshot() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, Some(&fixture.mmproj), 2048))
        .await
        .expect("load");
    let mut question = user("What is in <__media__> this picture?");
    question.images.push(picture(4, 4, 0));
    let prompt = engine
        .render_prompt(vec![
            ChatMessage::text(ChatRole::System, "Be brief."),
            question,
            ChatMessage::text(ChatRole::Assistant, "A gradient."),
            user("Thanks!"),
        ])
        .await
        .expect("render");
    // llama.cpp's Llama 4 template leaves `<|begin_of_text|>` to the tokenizer (BOS).
    assert_eq!(
        prompt,
        "<|header_start|>system<|header_end|>\n\nBe brief.<|eot|>\
         <|header_start|>user<|header_end|>\n\n<__media__>\nWhat is in  this picture?<|eot|>\
         <|header_start|>assistant<|header_end|>\n\nA gradient.<|eot|>\
         <|header_start|>user<|header_end|>\n\nThanks!<|eot|>\
         <|header_start|>assistant<|header_end|>\n\n"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn images_of_every_shape_go_through_the_llama4_projector_or_are_rejected() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, Some(&fixture.mmproj), 4096))
        .await
        .expect("load with projector");
    let (_, text_only) = run(&engine, greedy(vec![user("Describe it.")], 1)).await;
    let text_only = text_only.expect("text-only generation");

    for (width, height) in [
        (1, 1),
        (2, 2),
        (56, 56),
        (400, 800),
        (800, 400),
        (1, 4096),
        (4096, 1),
    ] {
        let mut message = user("Describe it.");
        message.images.push(picture(width, height, 1));
        let (_, result) = run(&engine, greedy(vec![message], 1)).await;
        match result {
            Ok(outcome) => {
                eprintln!(
                    "{width}x{height}: {} prompt positions",
                    outcome.prompt_tokens
                );
                assert_eq!(outcome.images_encoded, 1, "{width}x{height}: {outcome:?}");
                assert!(
                    outcome.prompt_tokens > text_only.prompt_tokens,
                    "{width}x{height}: the image added no positions: {outcome:?}"
                );
            }
            Err(EngineError::ImageRejected { index, reason }) => {
                eprintln!("{width}x{height}: rejected: {reason}");
                assert_eq!(index, 0);
                assert!(!reason.is_empty());
            }
            Err(other) => panic!("{width}x{height}: unexpected error {other}"),
        }
    }
    // The worker survived all of them.
    assert_eq!(engine.workers_started().await, 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_prompt_crossing_the_8192_token_chunk_boundary_is_processed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, None, 10240))
        .await
        .expect("load");
    let mut progress = Vec::new();
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let outcome = engine
        .generate(
            greedy(vec![user(&long_text(10_500))], 2),
            sender,
            CancelToken::default(),
        )
        .await
        .expect("long prompt");
    while let Ok(event) = receiver.try_recv() {
        if let GenerateEvent::PrefillProgress { done, total } = event {
            progress.push((done, total));
        }
    }
    assert!(outcome.prompt_tokens > 8192, "{outcome:?}");
    assert_eq!(outcome.prefilled_tokens, outcome.prompt_tokens);
    assert!(progress.len() > 2, "prefill reported progress {progress:?}");
    assert!(progress.windows(2).all(|pair| pair[0].0 < pair[1].0));
    assert_eq!(
        progress.last().copied(),
        Some((outcome.prompt_tokens, outcome.prompt_tokens))
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn a_follow_up_prefills_only_its_new_tokens_and_reuses_the_image() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, Some(&fixture.mmproj), 4096))
        .await
        .expect("load");
    let mut question = user("What is this?");
    question.images.push(picture(120, 80, 3));
    let (_, first) = run(&engine, greedy(vec![question.clone()], 6)).await;
    let first = first.expect("first turn");
    assert_eq!(first.images_encoded, 1);
    assert_eq!(first.images_prepared, 1);
    assert_eq!(first.reused_tokens, 0);
    assert_eq!(first.prefilled_tokens, first.prompt_tokens);

    // The app stores the reply as text; whatever it says, the first prompt is a prefix.
    let second_request = greedy(
        vec![
            question,
            ChatMessage::text(ChatRole::Assistant, "It is a small picture."),
            user("And what colour is it?"),
        ],
        4,
    );
    let (_, second) = run(&engine, second_request.clone()).await;
    let second = second.expect("second turn");
    assert_eq!(second.images_encoded, 0, "the image was encoded again");
    assert_eq!(
        second.images_prepared, 0,
        "the cached image was prepared (resized, normalised) again"
    );
    assert_eq!(
        second.reused_tokens, first.prompt_tokens,
        "the whole first prompt is reused: {first:?} then {second:?}"
    );
    assert_eq!(
        second.prefilled_tokens,
        second.prompt_tokens - first.prompt_tokens,
        "only the new turn's tokens are prefilled"
    );

    // Asking the very same thing again processes a single position (for fresh logits).
    let (_, again) = run(&engine, second_request).await;
    let again = again.expect("repeat");
    assert_eq!(again.prefilled_tokens, 1, "{again:?}");
    assert_eq!(again.images_encoded, 0);

    // A prompt that differs before the image cannot reuse it: prepared and encoded again,
    // and the answer is what a fresh engine gives.
    let mut changed = user("What is this, please?");
    changed.images.push(picture(120, 80, 3));
    let request = greedy(
        vec![
            user("Hi"),
            ChatMessage::text(ChatRole::Assistant, "Hello."),
            changed,
        ],
        6,
    );
    let (changed_text, changed_outcome) = run(&engine, request.clone()).await;
    let changed_outcome = changed_outcome.expect("changed prompt");
    assert_eq!(
        (
            changed_outcome.images_prepared,
            changed_outcome.images_encoded
        ),
        (1, 1)
    );
    let fresh = handle(false);
    fresh
        .load(load_options(&fixture.model, Some(&fixture.mmproj), 4096))
        .await
        .expect("load");
    let (fresh_text, _) = run(&fresh, request).await;
    assert_eq!(changed_text, fresh_text);
    engine.shutdown().await;
    fresh.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_long_prefill_returns_quickly_and_the_engine_stays_usable() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, None, 10240))
        .await
        .expect("load");
    let cancel = CancelToken::default();
    let request = greedy(vec![user(&long_text(9000))], 4);
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
            Instant::now()
        })
    };
    let (_, result) = run_with_cancel(&engine, request, cancel).await;
    let returned = Instant::now();
    let cancelled_at = canceller.await.expect("canceller");
    let outcome = result.expect("a cancelled generation is not an error");
    assert_eq!(outcome.finish_reason, FinishReason::Cancelled);
    assert!(
        outcome.prefilled_tokens < outcome.prompt_tokens,
        "{outcome:?}"
    );
    let latency = returned.duration_since(cancelled_at);
    eprintln!(
        "cancel latency {latency:?} after {} of {} positions",
        outcome.prefilled_tokens, outcome.prompt_tokens
    );
    assert!(
        latency < Duration::from_millis(500),
        "cancel took {latency:?}"
    );

    let (_, next) = run(&engine, greedy(vec![user("Short question")], 2)).await;
    next.expect("the next request works");
    assert_eq!(engine.workers_started().await, 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_worker_that_aborts_mid_stream_is_reported_and_replaced() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(true);
    engine
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load");
    let mut request = greedy(vec![user("Tell me a story")], 400);
    request.ignore_eos = true;
    engine.inject_test_abort();
    let (streamed, result) = run(&engine, request.clone()).await;
    match result {
        Err(EngineError::Crashed {
            kind,
            partial_text,
            stderr_tail,
        }) => {
            assert_eq!(kind, CrashKind::Assertion, "{stderr_tail}");
            assert_eq!(partial_text, streamed);
            assert!(!partial_text.is_empty(), "no text before the abort");
            assert!(stderr_tail.contains("abort"), "{stderr_tail}");
        }
        other => panic!("expected a crash report, got {other:?}"),
    }
    request.max_tokens = 3;
    let (_, next) = run(&engine, request).await;
    assert_eq!(next.expect("fresh worker").generated_tokens, 3);
    assert_eq!(engine.workers_started().await, 2);
    engine.shutdown().await;
}

#[tokio::test]
async fn the_test_abort_is_refused_unless_enabled() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load");
    let mut request = greedy(vec![user("Tell me a story")], 40);
    request.ignore_eos = true;
    engine.inject_test_abort();
    let (_, result) = run(&engine, request).await;
    assert_eq!(result.expect("no abort").generated_tokens, 40);
    assert_eq!(engine.workers_started().await, 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_projector_that_makes_llama_cpp_abort_is_survived() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    // The file is valid GGUF, so it passes validation; llama.cpp aborts when encoding.
    engine
        .load(load_options(
            &fixture.model,
            Some(&fixture.mmproj_f16_position),
            4096,
        ))
        .await
        .expect("load");
    let mut message = user("What is this?");
    message.images.push(picture(56, 56, 9));
    let (_, result) = run(&engine, greedy(vec![message], 2)).await;
    match result {
        Err(EngineError::Crashed {
            kind, stderr_tail, ..
        }) => assert!(
            matches!(kind, CrashKind::Assertion | CrashKind::UnsupportedModel),
            "{kind}: {stderr_tail}"
        ),
        other => panic!("expected a crash report, got {other:?}"),
    }
    let (_, next) = run(&engine, greedy(vec![user("Just text")], 2)).await;
    next.expect("text still works on a fresh worker");
    assert_eq!(engine.workers_started().await, 2);
    engine.shutdown().await;
}

#[tokio::test]
async fn without_a_context_size_one_is_chosen_from_memory_and_explained() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    let info = engine
        .load(LoadOptions {
            threads: Some(2),
            gpu_layers: Some(0),
            ..LoadOptions::new(&fixture.model)
        })
        .await
        .expect("load with the default context");
    // The fixture advertises 16384 tokens; its KV cache is a few MiB, so unless the machine
    // is nearly out of memory the whole training length up to the 32768 ceiling is chosen.
    assert_eq!(info.n_ctx_train, 16384);
    assert!([2048, 4096, 8192, 16384].contains(&info.n_ctx), "{info:?}");
    assert!(
        info.n_ctx_reason
            .starts_with(&format!("{} tokens", info.n_ctx)),
        "{info:?}"
    );
    assert!(info.n_ctx_reason.contains("RAM"), "{info:?}");
    if !info.n_ctx_reason.contains("smallest default") {
        assert_eq!(info.n_ctx, 16384, "{info:?}");
    }
    // The context created has that size: a longer prompt is refused against it (before any
    // decoding, so this stays fast), a short one is answered.
    let (_, overflow) = run(
        &engine,
        greedy(vec![user(&long_text(info.n_ctx as usize * 2))], 2),
    )
    .await;
    match overflow {
        Err(EngineError::ContextOverflow { n_ctx, .. }) => assert_eq!(n_ctx, info.n_ctx),
        other => panic!("expected a context overflow, got {other:?}"),
    }
    let (_, fine) = run(&engine, greedy(vec![user("hi")], 2)).await;
    fine.expect("a short prompt");

    let chosen = engine
        .load(load_options(&fixture.model, None, 3000))
        .await
        .expect("load with a chosen context");
    assert_eq!(chosen.n_ctx, 3000);
    assert!(chosen.n_ctx_reason.contains("settings"), "{chosen:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_typed_errors_before_any_decoding() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);

    let not_a_model = fixture.model.with_file_name("notes.gguf");
    std::fs::write(&not_a_model, b"just some text").expect("write");
    let error = engine
        .load(LoadOptions::new(&not_a_model))
        .await
        .expect_err("not a model");
    assert!(
        matches!(error, EngineError::InvalidModelFile { .. }),
        "{error}"
    );
    let (_, unloaded) = run(&engine, greedy(vec![user("hi")], 2)).await;
    assert!(
        matches!(unloaded, Err(EngineError::NoModelLoaded)),
        "{unloaded:?}"
    );

    engine
        .load(load_options(&fixture.model, None, 256))
        .await
        .expect("load");
    let (_, overflow) = run(&engine, greedy(vec![user(&long_text(2000))], 2)).await;
    match overflow {
        Err(EngineError::ContextOverflow {
            prompt_tokens,
            n_ctx,
        }) => {
            assert_eq!(n_ctx, 256);
            assert!(prompt_tokens > 256);
        }
        other => panic!("expected a context overflow, got {other:?}"),
    }
    let mut with_image = user("What is this?");
    with_image.images.push(picture(8, 8, 0));
    let (_, no_projector) = run(&engine, greedy(vec![with_image], 2)).await;
    assert!(
        matches!(no_projector, Err(EngineError::NoVisionProjector)),
        "{no_projector:?}"
    );
    let (_, fine) = run(&engine, greedy(vec![user("hi")], 2)).await;
    fine.expect("the engine still works");

    let devices = engine.devices().await.expect("devices");
    assert!(
        devices.iter().any(|device| device.kind == "cpu"),
        "{devices:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn gemma3_without_a_chat_template_answers_deterministically_and_honours_stop_strings() {
    let Some(model) = gemma_model() else {
        return;
    };
    let _serial = ONE_AT_A_TIME.lock().await;
    let engine = handle(false);
    let info = engine
        .load(load_options(&model, None, 1024))
        .await
        .expect("load gemma3");
    assert_eq!(info.architecture, "gemma3");
    assert_eq!(
        info.chat_template, "gemma",
        "the GGUF has no template of its own"
    );
    let prompt = engine
        .render_prompt(vec![user("Hi")])
        .await
        .expect("render");
    assert!(
        prompt.contains("<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"),
        "{prompt:?}"
    );

    let request = greedy(vec![user("Name three colours of the rainbow.")], 24);
    let (first, outcome) = run(&engine, request.clone()).await;
    let outcome = outcome.expect("generation");
    assert!(!first.trim().is_empty(), "empty reply: {outcome:?}");
    let (second, _) = run(&engine, request.clone()).await;
    assert_eq!(first, second, "greedy output must not change");

    // Stop in the middle of the known reply: the text before it, and nothing of the stop.
    let chars: Vec<char> = first.chars().collect();
    if chars.len() >= 6 {
        let cut = chars.len() / 2;
        let stop: String = chars[cut..cut + 2].iter().collect();
        let expected_end = first.find(&stop).expect("the stop string is in the text");
        let mut stopped = request;
        stopped.stop = vec![stop.clone()];
        let (text, outcome) = run(&engine, stopped).await;
        let outcome = outcome.expect("stopped generation");
        assert_eq!(outcome.finish_reason, FinishReason::StopString);
        assert_eq!(text, first[..expected_end], "stop {stop:?}");
    }
    engine.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_worker_that_cannot_start_or_speaks_garbage_is_a_clear_error() {
    // `true` exits at once; `echo` prints its arguments instead of a ready frame.
    for program in ["/bin/true", "/bin/echo", "/nonexistent/cria-worker"] {
        let engine = EngineHandle::new(SupervisorOptions::program(program));
        let error = engine.devices().await.expect_err("not a worker");
        assert!(
            matches!(error, EngineError::WorkerStart(_)),
            "{program}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_caller_that_stops_waiting_does_not_confuse_the_next_request() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let fixture = llama4_fixture();
    let engine = handle(false);
    engine
        .load(load_options(&fixture.model, None, 2048))
        .await
        .expect("load");
    let mut long = greedy(vec![user("Tell me a long story")], 1500);
    long.ignore_eos = true;
    let (sender, _receiver) = mpsc::unbounded_channel();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        engine.generate(long, sender, CancelToken::default()),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the long generation should still be running"
    );

    let mut short = greedy(vec![user("Short")], 3);
    short.ignore_eos = true;
    let (text, next) = run(&engine, short).await;
    let next = next.expect("the next request works");
    assert_eq!(next.generated_tokens, 3);
    assert_eq!(next.finish_reason, FinishReason::Length);
    assert!(
        text.chars().count() <= 3 * 4,
        "stale tokens leaked in: {text:?}"
    );
    assert_eq!(engine.workers_started().await, 1, "drained, not restarted");
    engine.shutdown().await;
}
