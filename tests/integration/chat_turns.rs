//! A chat turn through the whole core on the real llama.cpp engine: import the tiny Llama 4
//! fixture into the library, load it, send messages, survive a crash, restart.

use std::path::{Path, PathBuf};

use cria_core::{AppPaths, Cria, MessageStatus, TurnEvent};
use cria_engine::CancelToken;
use cria_engine::{EngineHandle, SupervisorOptions};

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    model: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = cria_tests::write_llama4_pair(dir.path());
    Setup {
        data: dir.path().join("data"),
        model,
        _dir: dir,
    }
}

fn open(data: &Path, allow_test_abort: bool) -> (Cria, EngineHandle) {
    let mut options = SupervisorOptions::program(env!("CARGO_BIN_EXE_cria-worker-host"));
    options.allow_test_abort = allow_test_abort;
    let handle = EngineHandle::new(options);
    let cria = Cria::open_with_engine_handle(AppPaths::in_dir(data.to_path_buf()), handle.clone())
        .unwrap();
    (cria, handle)
}

/// Sends `text` and returns the streamed text and the final status and error.
async fn turn(
    cria: &Cria,
    conversation: Option<cria_core::ConversationId>,
    text: &str,
) -> (
    cria_core::TurnStarted,
    String,
    MessageStatus,
    Option<String>,
) {
    let mut streamed = String::new();
    let mut finished = None;
    let started = cria
        .send_message(
            conversation,
            text.into(),
            CancelToken::default(),
            |event| match event {
                TurnEvent::Token(piece) => streamed.push_str(&piece),
                TurnEvent::Finished { status, error } => finished = Some((status, error)),
                _ => {}
            },
        )
        .await
        .unwrap();
    let (status, error) = finished.expect("every turn ends with Finished");
    (started, streamed, status, error)
}

#[tokio::test]
async fn an_imported_model_answers_survives_a_crash_and_is_reloaded_after_a_restart() {
    let _serial = crate::engine::ONE_AT_A_TIME.lock().await;
    let setup = setup();
    let (cria, handle) = open(&setup.data, true);

    // Without a model the reply fails with a message saying what to do, and nothing is lost.
    let (_, _, status, error) = turn(&cria, None, "Anyone there?").await;
    assert_eq!(status, MessageStatus::Failed);
    assert!(error.unwrap().contains("No model is loaded"));

    let imported = cria.import_model(setup.model.clone()).await.unwrap();
    assert_eq!(imported.architecture, "llama4");
    assert!(imported.vision, "the mmproj beside the model is paired");
    assert!(!imported.active);
    let loaded = cria.select_model(imported.id.clone()).await.unwrap();
    assert!(loaded.vision);
    // Chosen from memory (at most 32768, never below 2048); the fixture's tiny KV cache lets
    // it use its whole 16384-token training length unless memory is nearly exhausted.
    assert!(
        [2048, 4096, 8192, 16384].contains(&loaded.context_size),
        "{}",
        loaded.context_size
    );
    let listed = cria.list_models().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].active);

    // Engine settings chosen by the user reload the model with them, and say so.
    let chosen = cria_core::EngineSettings {
        context_size: Some(2048),
        threads: Some(1),
        gpu_layers: None,
    };
    cria.set_engine_settings(chosen).await.unwrap();
    let reloaded = cria.loaded_model().await.unwrap().expect("still loaded");
    assert_eq!((reloaded.context_size, reloaded.threads), (2048, 1));
    assert!(!reloaded.context_reason.is_empty());
    cria.set_engine_settings(cria_core::EngineSettings::default())
        .await
        .unwrap();
    let automatic = cria.loaded_model().await.unwrap().expect("still loaded");
    assert_eq!(automatic.context_size, loaded.context_size);

    let (started, streamed, status, error) = turn(&cria, None, "Hello, Llama 4").await;
    assert_eq!((status, error), (MessageStatus::Complete, None));
    let messages = cria
        .conversation_messages(started.conversation_id)
        .await
        .unwrap();
    let reply = &messages[1];
    assert_eq!(
        reply.content, streamed,
        "the stored reply is what was streamed"
    );
    assert_eq!(reply.stats.model_id.as_deref(), Some(imported.id.as_str()));
    assert!(reply.stats.prompt_tokens.unwrap() > 0);

    // The worker aborts mid-reply: the reply keeps its text, marked interrupted with the reason.
    handle.inject_test_abort();
    let (crashed, streamed, status, error) =
        turn(&cria, Some(started.conversation_id), "Tell me more").await;
    assert_eq!(status, MessageStatus::Interrupted);
    assert!(error.unwrap().contains("stopped unexpectedly"));
    let messages = cria
        .conversation_messages(crashed.conversation_id)
        .await
        .unwrap();
    assert_eq!(messages.last().unwrap().content, streamed);
    assert!(!streamed.is_empty(), "the abort fires after some text");

    // The next message restarts the engine and reloads the model by itself.
    let (_, _, status, _) = turn(&cria, Some(started.conversation_id), "Still there?").await;
    assert_eq!(status, MessageStatus::Complete);
    handle.shutdown().await;
    drop(cria);

    // After a restart of the app, the remembered model is loaded for the first message, and
    // the caller hears that the reply waits for it (between `Started` and the first token).
    let (cria, handle) = open(&setup.data, false);
    let mut events = Vec::new();
    cria.send_message(
        Some(started.conversation_id),
        "Back again".into(),
        CancelToken::default(),
        |event| {
            events.push(match event {
                TurnEvent::Started(_) => "started".to_string(),
                TurnEvent::LoadingModel(model) => format!("loading {model}"),
                TurnEvent::Token(_) => "token".into(),
                TurnEvent::Finished { status, error } => format!("finished {status:?} {error:?}"),
                _ => "other".into(),
            })
        },
    )
    .await
    .unwrap();
    events.dedup();
    let loading = format!("loading {}", imported.id);
    let at = |name: &str| events.iter().position(|event| event.starts_with(name));
    assert!(
        at("started") < at(&loading) && at(&loading) < at("token"),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap(), "finished Complete None");
    // The next message finds it loaded.
    let mut loads = 0;
    cria.send_message(
        Some(started.conversation_id),
        "And again".into(),
        CancelToken::default(),
        |event| loads += usize::from(matches!(event, TurnEvent::LoadingModel(_))),
    )
    .await
    .unwrap();
    assert_eq!(loads, 0);
    let loaded = cria
        .loaded_model()
        .await
        .unwrap()
        .expect("loaded on demand");
    assert_eq!(loaded.id, imported.id);
    handle.shutdown().await;
}
