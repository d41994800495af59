//! What this computer has, as far as this crate can see without a GPU backend.
//!
//! Contract: [`host_memory`] reads the OS's memory figures (Linux `/proc/meminfo`; `None`
//! elsewhere or when unreadable) and [`machine`] combines them with the GPUs the engine's
//! backends report, so the planner sees the same devices llama.cpp will use.

use crate::planner::{GpuDevice, Machine};

/// System memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMemory {
    pub total: u64,
    pub available: u64,
}

/// Total and available RAM, or `None` when the OS does not tell us this way.
pub fn host_memory() -> Option<HostMemory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<HostMemory> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        kib.checked_mul(1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:").unwrap_or(total).min(total);
    (total > 0).then_some(HostMemory { total, available })
}

/// A machine for the planner from this host's memory and the backends' GPUs. With unknown
/// memory (not Linux) the caller must fill `ram_total` itself; 0 makes every plan "does not fit".
pub fn machine(gpus: Vec<GpuDevice>, unified_memory: bool) -> Machine {
    let memory = host_memory();
    Machine {
        ram_total: memory.map_or(0, |memory| memory.total),
        ram_available: memory.map(|memory| memory.available),
        gpus,
        unified_memory,
        ram_bandwidth_gbps: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let text = "MemTotal:       16318412 kB\nMemFree:  1 kB\nMemAvailable:    8159206 kB\n";
        let memory = parse_meminfo(text).unwrap();
        assert_eq!(memory.total, 16_318_412 * 1024);
        assert_eq!(memory.available, 8_159_206 * 1024);
        assert_eq!(parse_meminfo("garbage"), None);
        assert_eq!(parse_meminfo("MemTotal: x kB"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_linux_host_reports_memory() {
        let memory = host_memory().unwrap();
        assert!(memory.total > 0 && memory.available <= memory.total);
        let machine = machine(Vec::new(), false);
        assert_eq!(machine.ram_total, memory.total);
    }
}
