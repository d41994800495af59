//! The context size used when the caller does not choose one, from the KV cache's cost and the
//! memory free on the device that holds it.
//!
//! Contract: [`choose_context_size`] returns the largest `4096·2^k` tokens that is at most
//! `min(n_ctx_train, 32768)` and whose KV cache fits in a third of the memory free after the
//! weights; when none fits, 2048 (or the training length when that is smaller). The training
//! length alone is never the default: Llama 4 advertises up to 10M tokens, far beyond any
//! desktop. A model whose training length is unknown (0) is capped at 8192. The third leaves
//! room for the compute buffers, the vision projector, other programs and the conversation
//! growing; the chosen size is reported with its reason so users see why.

use serde::{Deserialize, Serialize};

/// Largest default context: longer ones are there for users who ask (the settings).
pub const MAX_DEFAULT_N_CTX: u32 = 32_768;
/// Smallest default context, even when memory looks short (the load may still succeed).
pub const MIN_DEFAULT_N_CTX: u32 = 2048;
/// The first candidate; candidates double from here.
const FIRST_CANDIDATE: u32 = 4096;
/// Cap for a model that does not say how long it was trained.
const UNKNOWN_TRAIN_CAP: u32 = 8192;
/// Cells llama.cpp rounds a windowed cache up to.
const CELL_PADDING: u64 = 256;

/// How much KV cache a model needs per token of context, read from its GGUF hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCacheGeometry {
    /// Layers whose cache holds every position of the context.
    pub full_layers: u32,
    /// Layers with a sliding window or chunked attention: their cache holds at most
    /// `window_cells` positions, whatever the context size.
    pub windowed_layers: u32,
    /// Cells a windowed layer keeps (llama.cpp: the window plus one micro-batch, padded to 256).
    pub window_cells: u32,
    /// Bytes one position costs in one layer: K and V over all KV heads.
    pub bytes_per_token_per_layer: u64,
}

impl KvCacheGeometry {
    /// The geometry of a model whose layers all attend to the whole context.
    pub fn uniform(layers: u32, kv_heads: u32, key_dim: u32, value_dim: u32) -> Self {
        KvCacheGeometry {
            full_layers: layers,
            windowed_layers: 0,
            window_cells: 0,
            bytes_per_token_per_layer: kv_bytes_per_token_per_layer(kv_heads, key_dim, value_dim),
        }
    }

    /// The geometry of a model with windowed layers. `pattern` is GGUF's sliding-window pattern:
    /// in each group of `pattern` layers the last attends fully, the others through a window
    /// of `window` tokens (llama.cpp's rule; 0 makes every layer windowed). With `keep_all`
    /// (llama.cpp's `swa_full`) windowed layers keep every position like full ones.
    /// `n_ubatch` is the micro-batch llama.cpp adds to a window.
    #[allow(clippy::too_many_arguments)]
    pub fn windowed(
        layers: u32,
        kv_heads: u32,
        key_dim: u32,
        value_dim: u32,
        pattern: u32,
        window: u32,
        n_ubatch: u32,
        keep_all: bool,
    ) -> Self {
        let full_layers = match pattern {
            0 => 0,
            pattern => layers / pattern,
        };
        let bytes = kv_bytes_per_token_per_layer(kv_heads, key_dim, value_dim);
        if keep_all || window == 0 {
            return KvCacheGeometry {
                full_layers: layers,
                windowed_layers: 0,
                window_cells: 0,
                bytes_per_token_per_layer: bytes,
            };
        }
        let cells = (u64::from(window) + u64::from(n_ubatch)).div_ceil(CELL_PADDING) * CELL_PADDING;
        KvCacheGeometry {
            full_layers,
            windowed_layers: layers - full_layers,
            window_cells: u32::try_from(cells).unwrap_or(u32::MAX),
            bytes_per_token_per_layer: bytes,
        }
    }

    /// Bytes of KV cache for a context of `n_ctx` tokens.
    pub fn cache_bytes(&self, n_ctx: u32) -> u64 {
        let n_ctx = u64::from(n_ctx);
        let full = u64::from(self.full_layers) * n_ctx;
        let windowed = u64::from(self.windowed_layers) * n_ctx.min(u64::from(self.window_cells));
        (full + windowed).saturating_mul(self.bytes_per_token_per_layer)
    }
}

/// K and V in F16 (llama.cpp's default cache type): two bytes per element.
fn kv_bytes_per_token_per_layer(kv_heads: u32, key_dim: u32, value_dim: u32) -> u64 {
    u64::from(kv_heads) * (u64::from(key_dim) + u64::from(value_dim)) * 2
}

/// Where the KV cache lives and how much memory is free there after the weights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeMemory {
    /// Bytes free on that device once the weights are loaded.
    pub bytes: u64,
    /// Names the device for the reason text, e.g. "RAM" or "GPU CUDA0".
    pub device: String,
}

/// The chosen context size and why, for [`crate::ModelInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSizeChoice {
    pub n_ctx: u32,
    pub reason: String,
}

/// Chooses the default context size (see the module contract). `free` is `None` when the free
/// memory could not be read; the ceiling is used then, as the previous default did.
pub fn choose_context_size(
    geometry: &KvCacheGeometry,
    n_ctx_train: u32,
    free: Option<&FreeMemory>,
) -> ContextSizeChoice {
    let ceiling = if n_ctx_train == 0 {
        UNKNOWN_TRAIN_CAP
    } else {
        n_ctx_train.min(MAX_DEFAULT_N_CTX)
    };
    let floor = if n_ctx_train == 0 {
        MIN_DEFAULT_N_CTX
    } else {
        n_ctx_train.min(MIN_DEFAULT_N_CTX)
    };
    // A model trained on fewer than 4096 tokens has one candidate: its training length.
    let mut candidates = Vec::new();
    let mut candidate = FIRST_CANDIDATE;
    while candidate <= ceiling {
        candidates.push(candidate);
        candidate = candidate.saturating_mul(2);
    }
    if candidates.is_empty() {
        candidates.push(ceiling);
    }
    let train_text = if n_ctx_train == 0 {
        "the model does not state its training length".to_string()
    } else {
        format!("trained on {n_ctx_train} tokens")
    };
    let Some(free) = free else {
        let n_ctx = *candidates.last().unwrap_or(&floor);
        return ContextSizeChoice {
            n_ctx,
            reason: format!(
                "{n_ctx} tokens: the ceiling for a default ({train_text}); free memory could not \
                 be read. KV cache {}.",
                format_bytes(geometry.cache_bytes(n_ctx))
            ),
        };
    };
    let budget = free.bytes / 3;
    let fitting = candidates
        .iter()
        .rev()
        .copied()
        .find(|&n_ctx| geometry.cache_bytes(n_ctx) <= budget);
    match fitting {
        Some(n_ctx) => {
            let limit = if Some(&n_ctx) == candidates.last() {
                format!(
                    "the most a default uses ({train_text}, default at most {MAX_DEFAULT_N_CTX})"
                )
            } else {
                format!(
                    "{} tokens would need {}",
                    n_ctx * 2,
                    format_bytes(geometry.cache_bytes(n_ctx * 2))
                )
            };
            ContextSizeChoice {
                n_ctx,
                reason: format!(
                    "{n_ctx} tokens: its KV cache ({}) fits in a third of the {} of {} free after \
                     the weights; {limit}.",
                    format_bytes(geometry.cache_bytes(n_ctx)),
                    format_bytes(free.bytes),
                    free.device
                ),
            }
        }
        None => ContextSizeChoice {
            n_ctx: floor,
            reason: format!(
                "{floor} tokens, the smallest default: only {} of {} is free after the weights and \
                 {} tokens would need {} of KV cache. Close other programs or choose a smaller \
                 model for longer conversations.",
                format_bytes(free.bytes),
                free.device,
                candidates[0],
                format_bytes(geometry.cache_bytes(candidates[0]))
            ),
        },
    }
}

/// `MemAvailable` from Linux's `/proc/meminfo` text, in bytes: the memory programs can get
/// without swapping (free pages plus reclaimable caches, such as a memory-mapped model file).
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

fn format_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const GIB: f64 = (1u64 << 30) as f64;
    let value = bytes as f64;
    if value >= GIB {
        format!("{:.1} GiB", value / GIB)
    } else {
        format!("{:.0} MiB", value / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn ram(bytes: u64) -> FreeMemory {
        FreeMemory {
            bytes,
            device: "RAM".into(),
        }
    }

    /// Llama 4 Scout's text model: 48 layers, 8 KV heads of 128, chunked attention (8192) in
    /// three of every four layers.
    fn scout(keep_all: bool) -> KvCacheGeometry {
        KvCacheGeometry::windowed(48, 8, 128, 128, 4, 8192, 512, keep_all)
    }

    /// gemma3 270M: 18 layers, one KV head of 256, a 512-token window in five of every six.
    fn gemma3_270m() -> KvCacheGeometry {
        KvCacheGeometry::windowed(18, 1, 256, 256, 6, 512, 512, false)
    }

    #[test]
    fn geometry_counts_full_and_windowed_layers_like_llama_cpp() {
        let geometry = scout(false);
        assert_eq!(geometry.full_layers, 12);
        assert_eq!(geometry.windowed_layers, 36);
        assert_eq!(geometry.window_cells, 8704);
        assert_eq!(geometry.bytes_per_token_per_layer, 8 * 256 * 2);
        // Below the window every layer grows with the context; above it only the full ones.
        assert_eq!(geometry.cache_bytes(4096), 48 * 4096 * 4096);
        assert_eq!(geometry.cache_bytes(32768), (12 * 32768 + 36 * 8704) * 4096);
        let kept = scout(true);
        assert_eq!((kept.full_layers, kept.windowed_layers), (48, 0));
        assert_eq!(kept.cache_bytes(32768), 48 * 32768 * 4096);
        let gemma = gemma3_270m();
        assert_eq!((gemma.full_layers, gemma.windowed_layers), (3, 15));
        assert_eq!(gemma.window_cells, 1024);
    }

    #[test]
    fn pattern_zero_makes_every_layer_windowed_and_one_none() {
        let all = KvCacheGeometry::windowed(10, 2, 64, 64, 0, 1024, 512, false);
        assert_eq!((all.full_layers, all.windowed_layers), (0, 10));
        let none = KvCacheGeometry::windowed(10, 2, 64, 64, 1, 1024, 512, false);
        assert_eq!((none.full_layers, none.windowed_layers), (10, 0));
    }

    #[test]
    fn table_of_models_and_free_memory() {
        // (geometry, n_ctx_train, free bytes, expected n_ctx)
        let llama3_8b = KvCacheGeometry::uniform(32, 8, 128, 128); // 128 KiB per token
        let cases = [
            // Scout keeping every chunked cell (as the worker runs it): 192 KiB per token.
            (scout(true), 10_485_760, 64 * GIB, 32768),
            (scout(true), 10_485_760, 12 * GIB, 16384),
            (scout(true), 10_485_760, 6 * GIB, 8192),
            (scout(true), 10_485_760, 3 * GIB, 4096),
            (scout(true), 10_485_760, 2 * GIB, 2048),
            (scout(true), 10_485_760, 0, 2048),
            // With the window capping three quarters of the layers longer contexts fit.
            (scout(false), 10_485_760, 6 * GIB, 16384),
            (scout(false), 10_485_760, 9 * GIB, 32768),
            // A dense 8B model: 4 GiB for 32K tokens.
            (llama3_8b, 131_072, 13 * GIB, 32768),
            (llama3_8b, 131_072, 11 * GIB, 16384),
            (llama3_8b, 131_072, 1536 * MIB, 4096),
            (llama3_8b, 131_072, 1535 * MIB, 2048),
            // The training length caps the choice, and short ones are used as they are.
            (llama3_8b, 8192, 64 * GIB, 8192),
            (llama3_8b, 6000, 64 * GIB, 4096),
            (llama3_8b, 3000, 64 * GIB, 3000),
            (llama3_8b, 1024, 0, 1024),
            // Unknown training length: at most 8192.
            (llama3_8b, 0, 64 * GIB, 8192),
            (llama3_8b, 0, 0, 2048),
            // A tiny model fits the ceiling almost anywhere.
            (gemma3_270m(), 32768, 512 * MIB, 32768),
        ];
        for (geometry, n_ctx_train, free, expected) in cases {
            let choice = choose_context_size(&geometry, n_ctx_train, Some(&ram(free)));
            assert_eq!(
                choice.n_ctx, expected,
                "{geometry:?}, trained {n_ctx_train}, free {free}: {}",
                choice.reason
            );
            assert!(n_ctx_train == 0 || choice.n_ctx <= n_ctx_train.max(MIN_DEFAULT_N_CTX));
        }
    }

    #[test]
    fn the_chosen_cache_fits_in_a_third_and_the_next_does_not() {
        let geometry = scout(true);
        for gib in [3u64, 5, 7, 9, 13, 17, 25, 40, 100] {
            let free = gib * GIB;
            let n_ctx = choose_context_size(&geometry, 10_485_760, Some(&ram(free))).n_ctx;
            assert!(
                geometry.cache_bytes(n_ctx) <= free / 3,
                "{gib} GiB -> {n_ctx}"
            );
            if n_ctx < MAX_DEFAULT_N_CTX {
                assert!(
                    geometry.cache_bytes(n_ctx * 2) > free / 3,
                    "{gib} GiB -> {n_ctx}"
                );
            }
        }
    }

    #[test]
    fn mem_available_is_read_from_meminfo() {
        let meminfo = "MemTotal:       16315836 kB\nMemFree:          812344 kB\n\
                       MemAvailable:    9876543 kB\nBuffers:          123456 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(9_876_543 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 100 kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: lots kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: 5 MB\n"), None);
    }

    #[test]
    fn unknown_free_memory_uses_the_ceiling() {
        let choice = choose_context_size(&scout(true), 10_485_760, None);
        assert_eq!(choice.n_ctx, 32768);
        assert!(
            choice.reason.contains("could not be read"),
            "{}",
            choice.reason
        );
        assert_eq!(choose_context_size(&scout(true), 16384, None).n_ctx, 16384);
    }

    #[test]
    fn reasons_name_the_device_and_the_figures() {
        let gpu = FreeMemory {
            bytes: 12 * GIB,
            device: "GPU CUDA0".into(),
        };
        let choice = choose_context_size(&scout(true), 10_485_760, Some(&gpu));
        assert_eq!(choice.n_ctx, 16384);
        assert!(choice.reason.contains("GPU CUDA0"), "{}", choice.reason);
        assert!(choice.reason.contains("3.0 GiB"), "{}", choice.reason);
        assert!(
            choice.reason.contains("32768 tokens would need 6.0 GiB"),
            "{}",
            choice.reason
        );
        let short = choose_context_size(&scout(true), 10_485_760, Some(&ram(GIB)));
        assert!(
            short.reason.contains("smallest default"),
            "{}",
            short.reason
        );
        let ceiling = choose_context_size(&scout(true), 10_485_760, Some(&ram(64 * GIB)));
        assert!(
            ceiling.reason.contains("at most 32768"),
            "{}",
            ceiling.reason
        );
    }
}
