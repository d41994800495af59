//! Hands a checked URL to the operating system's opener. No opener plugin is granted to the
//! webview; only the `open_external_url` command calls this, after `checked_external_url`.

use std::process::{Command, Stdio};

/// Starts the platform's opener for `url` and returns once it started. The opener's exit is
/// collected on a background thread so no zombie process is left behind.
pub fn open(url: &str) -> std::io::Result<()> {
    let mut command = opener_command(url);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(target_os = "macos")]
fn opener_command(url: &str) -> Command {
    let mut command = Command::new("open");
    command.arg(url);
    command
}

#[cfg(target_os = "windows")]
fn opener_command(url: &str) -> Command {
    // Not `cmd /c start`: cmd would interpret `&` and `^` in the URL.
    let mut command = Command::new("rundll32");
    command.arg("url.dll,FileProtocolHandler").arg(url);
    command
}

#[cfg(not(any(target_os = "macos", target_os = "windows")))]
fn opener_command(url: &str) -> Command {
    let mut command = Command::new("xdg-open");
    command.arg(url);
    command
}
