//! Logs go to a daily-rotated file in the app's log folder (a week kept) and, in development
//! builds, to stderr. `CRIA_LOG` sets the filter (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const LOG_FILES_KEPT: usize = 7;

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file writer.
pub fn init(log_dir: &Path) -> Option<WorkerGuard> {
    let filter = || EnvFilter::try_from_env("CRIA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr_layer = cfg!(debug_assertions).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    let (file_layer, guard) = match RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("cria")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(log_dir)
    {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        Err(error) => {
            eprintln!("Cria: cannot write logs to {}: {error}", log_dir.display());
            (None, None)
        }
    };
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    guard
}

use tracing_subscriber::Layer as _;
