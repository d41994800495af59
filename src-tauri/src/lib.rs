//! Cria's desktop shell: wiring only. It opens the core, registers commands, and starts the
//! window. Everything a command does lives in `cria-core`.
//!
//! Architecture Invariant: this is the only crate that depends on Tauri.

mod command_names;
mod commands;
pub mod error;
pub mod ipc;
mod logging;
mod opener;

use std::time::Instant;

use cria_core::{AppPaths, Cria};
use tauri::webview::PageLoadEvent;
use tauri::{Builder, Runtime};

pub use command_names::COMMANDS;

/// Adds Cria's state and commands to a builder of any runtime, so tests can drive the same
/// commands through Tauri's mock runtime (`tauri::test::mock_builder`).
pub fn configure<R: Runtime>(builder: Builder<R>, cria: Cria) -> Builder<R> {
    builder
        .manage(cria)
        .manage(commands::Downloads::default())
        .manage(commands::Previews::default())
        .invoke_handler(tauri::generate_handler![
            commands::list_conversations,
            commands::get_conversation_messages,
            commands::send_message,
            commands::stop_reply,
            commands::regenerate,
            commands::edit_message,
            commands::continue_reply,
            commands::switch_branch,
            commands::get_conversation_view,
            commands::preview_attachment,
            commands::cancel_attachment_preview,
            commands::get_attachment_thumbnail,
            commands::get_page_preview,
            commands::get_chat_settings,
            commands::set_chat_settings,
            commands::pin_conversation,
            commands::list_models,
            commands::import_model,
            commands::select_model,
            commands::remove_model,
            commands::get_loaded_model,
            commands::get_engine_settings,
            commands::set_engine_settings,
            commands::list_devices,
            commands::rename_conversation,
            commands::set_conversation_pinned,
            commands::set_conversation_archived,
            commands::delete_conversation,
            commands::search,
            commands::export_conversation,
            commands::get_theme,
            commands::set_theme,
            commands::app_info,
            commands::open_external_url,
            commands::list_catalog,
            commands::download_model,
            commands::cancel_download,
        ])
}

/// Starts the desktop app. Failures before the window exists are logged and shown on stderr.
pub fn run() {
    // Start-up figures go to the log (time since this point, right after `main` starts), so a
    // slow start on a user's machine can be told apart: our data, the window, or the page.
    let launched = Instant::now();
    let paths = match AppPaths::from_env() {
        Ok(paths) => paths,
        Err(error) => fail_to_start(&error),
    };
    if let Err(error) = paths.create_private_dirs() {
        fail_to_start(&error);
    }
    let _log_guard = logging::init(paths.log_dir());
    tracing::info!(data_dir = %paths.data_dir().display(), "starting Cria");
    let cria = match Cria::open(paths) {
        Ok(cria) => cria,
        Err(error) => fail_to_start(&error),
    };
    tracing::info!(elapsed = ?launched.elapsed(), "start-up: data folder open");
    let load_progress = cria.model_load_progress();
    let builder = configure(tauri::Builder::default(), cria)
        .setup(move |app| {
            tracing::info!(elapsed = ?launched.elapsed(), "start-up: window created");
            if let Some(progress) = load_progress {
                forward_model_load_progress(app.handle().clone(), progress);
            }
            Ok(())
        })
        .on_page_load(move |_webview, payload| {
            if payload.event() == PageLoadEvent::Finished {
                tracing::info!(elapsed = ?launched.elapsed(), "start-up: page loaded");
            }
        });
    if let Err(error) = builder.run(tauri::generate_context!()) {
        fail_to_start(&error);
    }
}

/// The event the window follows model loads by: the fraction of the weights read, or null
/// when no load runs. Every load sends it (chosen in the models panel, started by a reply,
/// reloading after a crash), so the window needs no per-command channel for it.
pub const MODEL_LOAD_PROGRESS_EVENT: &str = "model-load-progress";

fn forward_model_load_progress<R: Runtime>(
    app: tauri::AppHandle<R>,
    mut progress: tokio::sync::watch::Receiver<Option<f32>>,
) {
    tauri::async_runtime::spawn(async move {
        while progress.changed().await.is_ok() {
            let fraction = *progress.borrow_and_update();
            if let Err(error) = tauri::Emitter::emit(&app, MODEL_LOAD_PROGRESS_EVENT, fraction) {
                tracing::warn!(%error, "cannot tell the window how the model load goes");
            }
        }
    });
}

fn fail_to_start(error: &dyn std::fmt::Display) -> ! {
    tracing::error!(%error, "Cria could not start");
    eprintln!("Cria could not start: {error}");
    std::process::exit(1);
}

#[cfg(test)]
mod tests;
