//! Where a model's weights really went, in llama.cpp's own words, and which GPU backends this
//! build has.
//!
//! llama-cpp-2 exposes no per-device view of a loaded model, but llama.cpp states it while
//! loading: `load_tensors: offloaded 19/19 layers to GPU` and one `load_tensors: Vulkan0 model
//! buffer size = 153.25 MiB` line per weight buffer. The worker routes llama.cpp's log into
//! `tracing` anyway; [`OffloadWatch`] is a tracing layer that keeps those statements, so what the
//! app reports about offload (layers, bytes on the device) is what llama.cpp did, not what was
//! asked for. Contract: [`OffloadWatch::reset`] before a load, [`OffloadWatch::report`] after it;
//! the watch sees every event whatever the log filter is.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// The GPU backends compiled into this build (the CPU backend is always there).
pub fn gpu_backends_built() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "vulkan") {
        backends.push("Vulkan");
    }
    if cfg!(feature = "cuda") {
        backends.push("CUDA");
    }
    if cfg!(feature = "metal") {
        backends.push("Metal");
    }
    backends
}

/// What llama.cpp said about one model load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OffloadReport {
    /// `(offloaded, offloadable)` layers, from `offloaded N/M layers to GPU` (absent when
    /// llama.cpp has no GPU device, where it says nothing).
    pub layers: Option<(u32, u32)>,
    /// Weight buffers by llama.cpp's buffer name (`CPU_Mapped`, `CPU_REPACK`, `Vulkan0`,
    /// `Vulkan_Host`, `CUDA0`, ...) and size in bytes.
    pub buffers: Vec<(String, u64)>,
}

impl OffloadReport {
    /// Bytes of weights in device memory: buffers that are neither the CPU's nor host memory
    /// pinned for a device (`*_Host`).
    pub fn device_weight_bytes(&self) -> u64 {
        self.buffers
            .iter()
            .filter(|(name, _)| is_device_buffer(name))
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// The device buffers' names (`Vulkan0`, `CUDA1`, ...), in load order, without repeats.
    pub fn device_buffer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (name, _) in &self.buffers {
            if is_device_buffer(name) && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    /// Reads one llama.cpp log message into the report.
    fn observe(&mut self, message: &str) {
        if let Some(layers) = parse_offloaded_layers(message) {
            self.layers = Some(layers);
        } else if let Some(buffer) = parse_model_buffer(message) {
            self.buffers.push(buffer);
        }
    }
}

fn is_device_buffer(name: &str) -> bool {
    !name.starts_with("CPU") && !name.ends_with("_Host")
}

/// `... offloaded 19/19 layers to GPU` → `(19, 19)`.
fn parse_offloaded_layers(message: &str) -> Option<(u32, u32)> {
    let start = message.find("offloaded ")? + "offloaded ".len();
    let rest = &message[start..];
    let (counts, tail) = rest.split_once(' ')?;
    if !tail.trim_end().starts_with("layers to GPU") {
        return None;
    }
    let (done, total) = counts.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

/// `load_tensors:      Vulkan0 model buffer size =   153.25 MiB` → `("Vulkan0", bytes)`.
fn parse_model_buffer(message: &str) -> Option<(String, u64)> {
    let (before, after) = message.split_once(" model buffer size =")?;
    let name = before.split_whitespace().last()?.to_string();
    let mib: f64 = after.trim().strip_suffix("MiB")?.trim().parse().ok()?;
    if !mib.is_finite() || mib < 0.0 {
        return None;
    }
    Some((name, (mib * 1024.0 * 1024.0).round() as u64))
}

/// A tracing layer that keeps llama.cpp's statements about a model load.
#[derive(Clone, Default)]
pub struct OffloadWatch {
    report: Arc<Mutex<OffloadReport>>,
}

impl OffloadWatch {
    pub fn reset(&self) {
        *self.lock() = OffloadReport::default();
    }

    pub fn report(&self) -> OffloadReport {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffloadReport> {
        self.report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Collects an event's `message` field (llama-cpp-2 puts llama.cpp's text there).
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for OffloadWatch {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        let mut text = MessageText::default();
        event.record(&mut text);
        // Cheap filter first: most of llama.cpp's load log is metadata.
        if text.0.contains("offloaded ") || text.0.contains(" model buffer size =") {
            self.lock().observe(&text.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_offload_statements_are_read() {
        let mut report = OffloadReport::default();
        for line in [
            "load_tensors: loading model tensors, this can take a while... (mmap = true)",
            "load_tensors: offloading output layer to GPU",
            "load_tensors: offloading 17 repeating layers to GPU",
            "load_tensors: offloaded 18/19 layers to GPU",
            "load_tensors:   CPU_Mapped model buffer size =   100.50 MiB",
            "load_tensors:      Vulkan0 model buffer size =   153.25 MiB",
            "load_tensors:  Vulkan_Host model buffer size =     2.00 MiB",
        ] {
            report.observe(line);
        }
        assert_eq!(report.layers, Some((18, 19)));
        assert_eq!(report.buffers.len(), 3);
        assert_eq!(
            report.device_weight_bytes(),
            (153.25 * 1024.0 * 1024.0) as u64
        );
        assert_eq!(report.device_buffer_names(), vec!["Vulkan0".to_string()]);
    }

    #[test]
    fn unrelated_or_garbled_lines_are_ignored() {
        let mut report = OffloadReport::default();
        for line in [
            "offloaded many layers to GPU",
            "offloaded 3/x layers to GPU",
            "offloaded 3/4 tensors to GPU",
            "CUDA0 model buffer size = lots MiB",
            "CUDA0 model buffer size = -3 MiB",
            "print_info: file size = 241.41 MiB",
        ] {
            report.observe(line);
        }
        assert_eq!(report, OffloadReport::default());
    }

    #[test]
    fn a_cpu_only_load_has_no_device_bytes() {
        let mut report = OffloadReport::default();
        report.observe("load_tensors:   CPU_Mapped model buffer size =   241.41 MiB");
        report.observe("load_tensors:   CPU_REPACK model buffer size =    80.00 MiB");
        assert_eq!(report.layers, None);
        assert_eq!(report.device_weight_bytes(), 0);
        assert!(report.device_buffer_names().is_empty());
    }
}
