// Hide the console window on Windows release builds; the app logs to a file instead.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // The engine's worker is this executable re-run with a flag: it must start nothing else.
    if let Some(exit_code) = cria_core::worker_main_if_requested() {
        return exit_code;
    }
    #[cfg(target_os = "linux")]
    avoid_blank_webview();
    cria_app::run();
    std::process::ExitCode::SUCCESS
}

/// WebKitGTK's DMA-BUF renderer shows a blank window on many setups (virtual displays, some
/// NVIDIA drivers). The older path renders everywhere at a small cost; a user can still opt in
/// by setting the variable to 0.
#[cfg(target_os = "linux")]
fn avoid_blank_webview() {
    const VARIABLE: &str = "WEBKIT_DISABLE_DMABUF_RENDERER";
    if std::env::var_os(VARIABLE).is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists, so nothing can
        // read the environment concurrently.
        unsafe { std::env::set_var(VARIABLE, "1") };
    }
}
