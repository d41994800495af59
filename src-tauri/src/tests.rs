//! Shell tests: the wiring the compiler cannot check (bindings, permissions, IPC shapes), driven
//! through Tauri's mock runtime with a real core on a temporary data folder.

use std::path::PathBuf;
use std::sync::Arc;

use cria_core::{AppPaths, Cria};
use cria_engine::ScriptedEngine;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn app() -> (
    tempfile::TempDir,
    App<MockRuntime>,
    WebviewWindow<MockRuntime>,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(ScriptedEngine::echo(std::time::Duration::ZERO));
    let cria = Cria::open_with_engine(AppPaths::in_dir(dir.path().join("data")), engine).unwrap();
    let app = crate::configure(mock_builder(), cria)
        .build(tauri::generate_context!())
        .expect("the app builds on the mock runtime");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    (dir, app, window)
}

fn invoke(window: &WebviewWindow<MockRuntime>, command: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: command.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        // The app's own origin: the capability grants commands to local content only.
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

#[test]
fn a_fresh_data_folder_lists_no_conversations() {
    let (_dir, _app, window) = app();
    assert_eq!(
        invoke(&window, "list_conversations", json!({})),
        Ok(json!([]))
    );
}

#[test]
fn errors_cross_the_boundary_as_kind_and_message() {
    let (_dir, _app, window) = app();
    let error = invoke(
        &window,
        "get_conversation_messages",
        json!({ "conversationId": 42 }),
    )
    .expect_err("an unknown conversation is an error");
    assert_eq!(error["kind"], "NOT_FOUND");
    assert!(error["message"].as_str().unwrap().contains("42"), "{error}");
}

#[test]
fn stopping_a_reply_that_is_not_running_says_so() {
    let (_dir, _app, window) = app();
    assert_eq!(
        invoke(&window, "stop_reply", json!({ "replyMessageId": 7 })),
        Ok(json!(false))
    );
}

#[test]
fn every_command_is_registered_and_granted() {
    let capability: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir().join("capabilities/main.json")).unwrap(),
    )
    .unwrap();
    let granted: Vec<&str> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (_dir, _app, window) = app();
    for command in crate::COMMANDS {
        let permission = format!("allow-{}", command.replace('_', "-"));
        assert!(
            granted.contains(&permission.as_str()),
            "{command} has no grant in main.json"
        );
        // An unregistered or ungranted command answers "not found" / "not allowed"; a usable one
        // answers with its own result or a deserialisation error for the empty arguments.
        if let Err(error) = invoke(&window, command, json!({})) {
            let text = error.to_string();
            assert!(
                !text.contains("not found"),
                "{command} is not registered: {text}"
            );
        }
    }
    // Besides the app's own commands, the window may only listen to events (the native file
    // drop arrives as one).
    const CORE_PERMISSIONS: &[&str] = &["core:event:allow-listen", "core:event:allow-unlisten"];
    for permission in &granted {
        if permission.starts_with("core:") {
            assert!(
                CORE_PERMISSIONS.contains(permission),
                "unexpected core permission {permission}"
            );
            continue;
        }
        let command = permission.trim_start_matches("allow-").replace('-', "_");
        assert!(
            crate::COMMANDS.contains(&command.as_str()),
            "{permission} grants an unknown command"
        );
    }
}

#[test]
fn typescript_bindings_are_current() {
    let path = manifest_dir().join("../ui/src/ipc/bindings.ts");
    let generated = crate::ipc::typescript_bindings();
    if std::env::var_os("CRIA_UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "ui/src/ipc/bindings.ts is out of date with the Rust DTOs; regenerate it with \
         `CRIA_UPDATE_BINDINGS=1 cargo test -p cria-app typescript_bindings`"
    );
}

#[test]
fn conversations_can_be_managed_searched_and_exported() {
    let (dir, app, window) = app();
    // A turn through the scripted engine creates a conversation with searchable text.
    let cria = tauri::Manager::state::<Cria>(&app).inner().clone();
    let started = tauri::async_runtime::block_on(cria.send_message(
        None,
        "날씨 알려줘".into(),
        cria_engine::CancelToken::default(),
        |_| {},
    ))
    .expect("the turn runs");
    let conversation_id = started.conversation_id.0;
    let id = json!({ "conversationId": conversation_id });

    invoke(
        &window,
        "rename_conversation",
        json!({ "conversationId": conversation_id, "title": "Weather" }),
    )
    .unwrap();
    invoke(
        &window,
        "set_conversation_pinned",
        json!({ "conversationId": conversation_id, "pinned": true }),
    )
    .unwrap();
    let listed = invoke(&window, "list_conversations", json!({})).unwrap();
    assert_eq!(listed[0]["title"], "Weather");
    assert_eq!(listed[0]["pinned"], true);

    let hits = invoke(&window, "search", json!({ "query": "날씨" })).unwrap();
    let hit = &hits.as_array().unwrap()[0];
    assert_eq!(hit["kind"], "message");
    assert_eq!(hit["conversationId"], conversation_id);
    let highlighted: Vec<&str> = hit["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|part| part["highlighted"] == true)
        .filter_map(|part| part["text"].as_str())
        .collect();
    assert!(
        highlighted.iter().any(|text| text.contains("날씨")),
        "{hit}"
    );

    let path = invoke(
        &window,
        "export_conversation",
        json!({ "conversationId": conversation_id, "format": "markdown" }),
    )
    .unwrap();
    let path = PathBuf::from(path.as_str().unwrap());
    assert!(path.starts_with(dir.path().join("data").join("exports")));
    assert!(
        std::fs::read_to_string(path)
            .unwrap()
            .contains("날씨 알려줘")
    );

    invoke(
        &window,
        "set_conversation_archived",
        json!({ "conversationId": conversation_id, "archived": true }),
    )
    .unwrap();
    assert_eq!(
        invoke(&window, "list_conversations", json!({})),
        Ok(json!([]))
    );
    invoke(
        &window,
        "set_conversation_archived",
        json!({ "conversationId": conversation_id, "archived": false }),
    )
    .unwrap();
    invoke(&window, "delete_conversation", id.clone()).unwrap();
    assert_eq!(
        invoke(&window, "list_conversations", json!({})),
        Ok(json!([]))
    );
    assert_eq!(
        invoke(&window, "get_conversation_messages", id).unwrap_err()["kind"],
        "NOT_FOUND"
    );
}

#[test]
fn a_finished_reply_carries_its_generation_stats() {
    let (_dir, app, window) = app();
    let cria = tauri::Manager::state::<Cria>(&app).inner().clone();
    let started = tauri::async_runtime::block_on(cria.send_message(
        None,
        "count these four words".into(),
        cria_engine::CancelToken::default(),
        |_| {},
    ))
    .expect("the turn runs");
    let messages = invoke(
        &window,
        "get_conversation_messages",
        json!({ "conversationId": started.conversation_id.0 }),
    )
    .unwrap();
    let [user, reply] = messages.as_array().unwrap().as_slice() else {
        panic!("one user message and one reply: {messages}");
    };
    assert_eq!(
        user["stats"],
        Value::Null,
        "the user's own message has no stats"
    );
    assert_eq!(reply["status"], "complete");
    // The scripted engine streams one piece per word, and counts each as a token.
    let pieces = reply["content"]
        .as_str()
        .unwrap()
        .split_inclusive(char::is_whitespace)
        .count();
    assert_eq!(reply["stats"]["completionTokens"], json!(pieces), "{reply}");
    assert!(reply["stats"]["ttftMs"].is_u64(), "{reply}");
}

#[test]
fn the_theme_is_remembered_and_the_data_folder_is_shown() {
    let (dir, _app, window) = app();
    assert_eq!(invoke(&window, "get_theme", json!({})), Ok(json!("system")));
    invoke(&window, "set_theme", json!({ "theme": "dark" })).unwrap();
    assert_eq!(invoke(&window, "get_theme", json!({})), Ok(json!("dark")));
    assert!(invoke(&window, "set_theme", json!({ "theme": "purple" })).is_err());
    let info = invoke(&window, "app_info", json!({})).unwrap();
    assert_eq!(
        info["dataDir"],
        dir.path().join("data").display().to_string()
    );
}

#[test]
fn only_https_and_mailto_links_reach_the_system_opener() {
    let (_dir, _app, window) = app();
    for url in [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "smb://host/share",
        "http://example.org",
        "data:text/html,x",
    ] {
        let error = invoke(&window, "open_external_url", json!({ "url": url }))
            .expect_err("refused before any process starts");
        assert_eq!(error["kind"], "INVALID_INPUT", "{url}: {error}");
    }
}

#[test]
fn branches_show_in_the_view_and_the_arrows_switch_them() {
    let (_dir, app, window) = app();
    let cria = tauri::Manager::state::<Cria>(&app).inner().clone();
    let started = tauri::async_runtime::block_on(cria.send_message(
        None,
        "first question".into(),
        cria_engine::CancelToken::default(),
        |_| {},
    ))
    .expect("the turn runs");
    let again = tauri::async_runtime::block_on(cria.regenerate(
        started.reply_message_id,
        cria_engine::CancelToken::default(),
        |_| {},
    ))
    .expect("the regeneration runs");
    let id = json!({ "conversationId": started.conversation_id.0 });

    let view = invoke(&window, "get_conversation_view", id.clone()).unwrap();
    let [user, reply] = view.as_array().unwrap().as_slice() else {
        panic!("one user message and one reply: {view}");
    };
    assert_eq!(user["message"]["role"], "user");
    assert_eq!(user["siblingCount"], 1);
    assert_eq!(reply["message"]["id"], again.reply_message_id.0);
    assert_eq!(
        (reply["siblingIndex"].clone(), reply["siblingCount"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(reply["attachments"], json!([]));
    assert!(
        reply["notices"].is_array() && reply["citations"].is_array(),
        "{reply}"
    );

    invoke(
        &window,
        "switch_branch",
        json!({ "messageId": started.reply_message_id.0 }),
    )
    .unwrap();
    let view = invoke(&window, "get_conversation_view", id).unwrap();
    assert_eq!(view[1]["message"]["id"], started.reply_message_id.0);
    assert_eq!(view[1]["siblingIndex"], 0);
}

#[test]
fn engine_settings_round_trip_and_bad_values_are_refused() {
    let (_dir, _app, window) = app();
    let automatic = json!({ "contextSize": null, "threads": null, "gpuLayers": null });
    assert_eq!(
        invoke(&window, "get_engine_settings", json!({})),
        Ok(automatic.clone())
    );
    let chosen = json!({ "contextSize": 8192, "threads": 2, "gpuLayers": 0 });
    invoke(
        &window,
        "set_engine_settings",
        json!({ "settings": chosen }),
    )
    .unwrap();
    assert_eq!(
        invoke(&window, "get_engine_settings", json!({})),
        Ok(chosen.clone())
    );
    let bad = json!({ "contextSize": 100, "threads": null, "gpuLayers": null });
    let error = invoke(&window, "set_engine_settings", json!({ "settings": bad })).unwrap_err();
    assert_eq!(error["kind"], "INVALID_INPUT");
    assert!(
        error["message"].as_str().unwrap().contains("context size"),
        "{error}"
    );
    assert_eq!(
        invoke(&window, "get_engine_settings", json!({})),
        Ok(chosen)
    );
    // Without an engine that lists devices, the list is empty rather than an error.
    assert!(
        invoke(&window, "list_devices", json!({}))
            .unwrap()
            .is_array()
    );
}

#[test]
fn chat_settings_round_trip_and_bad_values_are_refused() {
    let (_dir, _app, window) = app();
    let defaults = invoke(&window, "get_chat_settings", json!({})).unwrap();
    assert_eq!(defaults["autoTitle"], true);
    assert!((defaults["temperature"].as_f64().unwrap() - 0.6).abs() < 1e-6);
    assert!((defaults["topP"].as_f64().unwrap() - 0.9).abs() < 1e-6);

    let mut chosen = defaults.clone();
    chosen["systemPrompt"] = json!("Answer briefly.");
    chosen["maxReplyTokens"] = json!(128);
    chosen["autoTitle"] = json!(false);
    invoke(&window, "set_chat_settings", json!({ "settings": chosen })).unwrap();
    assert_eq!(
        invoke(&window, "get_chat_settings", json!({})),
        Ok(chosen.clone())
    );

    let mut bad = chosen.clone();
    bad["topP"] = json!(1.5);
    let error = invoke(&window, "set_chat_settings", json!({ "settings": bad })).unwrap_err();
    assert_eq!(error["kind"], "INVALID_INPUT");
    assert!(
        error["message"].as_str().unwrap().contains("top-p"),
        "{error}"
    );
    let mut unknown_model = chosen.clone();
    unknown_model["fastProfile"] = json!("not-in-the-library");
    assert_eq!(
        invoke(
            &window,
            "set_chat_settings",
            json!({ "settings": unknown_model })
        )
        .unwrap_err()["kind"],
        "INVALID_INPUT"
    );
    assert_eq!(
        invoke(&window, "get_chat_settings", json!({})),
        Ok(chosen),
        "unchanged"
    );
}

#[test]
fn a_pinned_conversation_lists_its_pin() {
    let (_dir, app, window) = app();
    let cria = tauri::Manager::state::<Cria>(&app).inner().clone();
    let started = tauri::async_runtime::block_on(cria.send_message(
        None,
        "hello".into(),
        cria_engine::CancelToken::default(),
        |_| {},
    ))
    .expect("the turn runs");
    let conversation_id = started.conversation_id.0;
    assert_eq!(
        invoke(&window, "list_conversations", json!({})).unwrap()[0]["modelPin"],
        Value::Null
    );
    for pin in [
        json!({ "kind": "vision" }),
        json!({ "kind": "model", "modelId": "scout-q4" }),
    ] {
        invoke(
            &window,
            "pin_conversation",
            json!({ "conversationId": conversation_id, "pin": pin }),
        )
        .unwrap();
        assert_eq!(
            invoke(&window, "list_conversations", json!({})).unwrap()[0]["modelPin"],
            pin
        );
    }
    invoke(
        &window,
        "pin_conversation",
        json!({ "conversationId": conversation_id, "pin": null }),
    )
    .unwrap();
    assert_eq!(
        invoke(&window, "list_conversations", json!({})).unwrap()[0]["modelPin"],
        Value::Null
    );
}

#[test]
fn unknown_attachments_have_no_thumbnail_or_preview() {
    let (_dir, _app, window) = app();
    for (command, args) in [
        ("get_attachment_thumbnail", json!({ "attachmentId": 9 })),
        (
            "get_page_preview",
            json!({ "attachmentId": 9, "pageNumber": 1 }),
        ),
    ] {
        let error = invoke(&window, command, args).unwrap_err();
        assert_eq!(error["kind"], "NOT_FOUND", "{command}: {error}");
    }
}

#[test]
fn previews_refuse_what_cannot_be_attached_as_invalid_input() {
    let (dir, _app, window) = app();
    for path in [
        String::new(),
        dir.path().display().to_string(),
        "https://example.test/picture.png".to_string(),
    ] {
        let args = json!({ "path": path, "previewId": 3, "onProgress": "__CHANNEL__:7" });
        let error = invoke(&window, "preview_attachment", args).unwrap_err();
        assert_eq!(error["kind"], "INVALID_INPUT", "{path:?}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Finished previews leave nothing behind to cancel.
    assert_eq!(
        invoke(
            &window,
            "cancel_attachment_preview",
            json!({ "previewId": 3 })
        ),
        Ok(json!(false))
    );
}

#[test]
fn pasted_attachments_are_bounded_and_checked_before_anything_is_stored() {
    use crate::ipc::{AttachmentArgDto, MAX_PASTED_BYTES};
    use cria_core::AttachmentInput;

    let pasted = |bytes_base64: String| AttachmentArgDto::Pasted {
        name: "screenshot.png".into(),
        bytes_base64,
    };
    let small = AttachmentInput::try_from(pasted("aGVsbG8=".into())).unwrap();
    assert_eq!(
        small,
        AttachmentInput::Bytes {
            name: "screenshot.png".into(),
            bytes: b"hello".to_vec()
        }
    );
    let not_base64 = AttachmentInput::try_from(pasted("not base64!".into())).unwrap_err();
    assert!(
        not_base64.message.contains("screenshot.png"),
        "{not_base64}"
    );
    let too_big = "A".repeat((MAX_PASTED_BYTES / 3 + 2) * 4);
    let error = AttachmentInput::try_from(pasted(too_big)).unwrap_err();
    assert!(error.message.contains("32 MiB"), "{error}");
    assert!(AttachmentInput::try_from(AttachmentArgDto::Path("  ".into())).is_err());
    assert_eq!(
        AttachmentInput::try_from(AttachmentArgDto::Path("/tmp/report.pdf".into())).unwrap(),
        AttachmentInput::Path("/tmp/report.pdf".into())
    );
    // Through the command: a bad paste fails the send before a conversation exists.
    let (_dir, _app, window) = app();
    let error = invoke(
        &window,
        "send_message",
        json!({
            "conversationId": null,
            "text": "look",
            "attachments": [{ "name": "x.png", "bytesBase64": "%%%" }],
            "onEvent": "__CHANNEL__:7",
        }),
    )
    .unwrap_err();
    assert_eq!(error["kind"], "INVALID_INPUT", "{error}");
    assert_eq!(
        invoke(&window, "list_conversations", json!({})),
        Ok(json!([]))
    );
}

#[test]
fn thumbnails_cross_as_data_urls_of_their_own_format() {
    let png = crate::ipc::image_data_url(&[0x89, b'P', b'N', b'G']);
    assert!(png.starts_with("data:image/png;base64,"), "{png}");
    let jpeg = crate::ipc::image_data_url(&[0xFF, 0xD8, 0xFF, 0xE0]);
    assert!(jpeg.starts_with("data:image/jpeg;base64,/9j/"), "{jpeg}");
}

#[test]
fn the_catalog_lists_entries_with_a_verdict_and_cancelling_nothing_says_so() {
    let (_dir, _app, window) = app();
    let entries = invoke(&window, "list_catalog", json!({})).unwrap();
    let entries = entries.as_array().unwrap();
    assert!(!entries.is_empty());
    for entry in entries {
        assert!(!entry["id"].as_str().unwrap().is_empty(), "{entry}");
        assert!(entry["sizeBytes"].as_u64().unwrap() > 0, "{entry}");
        assert!(!entry["verdict"].as_str().unwrap().is_empty(), "{entry}");
        assert!(
            !entry["verdictReason"].as_str().unwrap().is_empty(),
            "{entry}"
        );
        assert_eq!(entry["downloaded"], false, "{entry}");
    }
    assert!(entries.iter().any(|entry| entry["vision"] == true));
    let cancelled = invoke(&window, "cancel_download", json!({ "id": "not-running" })).unwrap();
    assert_eq!(cancelled, json!(false));
}

#[test]
fn model_load_progress_reaches_the_window_as_a_fraction_then_null() {
    use tauri::Listener;
    let (_dir, app, _window) = app();
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    app.listen(crate::MODEL_LOAD_PROGRESS_EVENT, move |event| {
        let _ = sender.send(event.payload().to_string());
    });
    let (progress, follower) = tokio::sync::watch::channel(None);
    crate::forward_model_load_progress(app.handle().clone(), follower);
    let next = || {
        receiver
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the event arrives")
    };
    progress.send_replace(Some(0.25));
    assert_eq!(next(), "0.25");
    progress.send_replace(None);
    assert_eq!(next(), "null");
}
