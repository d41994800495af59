// Declares the app's own commands so each one gets a permission (`allow-<command>`) that the
// capability file must grant explicitly: nothing is callable from the webview by default.
fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(cria_app_commands::COMMANDS)),
    )
    .expect("tauri build step failed");
}

#[path = "src/command_names.rs"]
mod cria_app_commands;
