//! The fit planner: given what a model is made of and what the machine has, decide where every
//! byte goes and say in plain words whether it will run, how much context it gets and how fast.
//!
//! Contract: [`plan`] is pure arithmetic (no I/O) and total: every input gives a [`FitPlan`],
//! never NaN, never a zero or negative figure for a non-empty model. The memory a model needs
//! never shrinks as the context grows, and for mixture-of-experts models the hybrid placement
//! keeps the routed expert tensors in CPU RAM and everything else on the GPU (what llama.cpp does
//! with tensor buffer overrides such as `-ot exps=CPU` or `--n-cpu-moe N`).
//!
//! The estimates follow how llama.cpp allocates: weights as stored in the GGUF, an f16 KV cache
//! (Llama 4's chunked-attention layers keep only `window + ubatch` cells, the full-attention
//! layers keep the whole context), compute buffers that grow with the micro-batch, the
//! vocabulary and the attention mask, and a fixed reserve per GPU for the driver. The speed
//! range assumes token generation is limited by memory bandwidth: each token reads the
//! non-expert weights plus the chosen experts' share once, at 35–75 % of the peak bandwidth.

use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// The micro-batch llama.cpp uses by default; compute buffers scale with it.
pub const UBATCH: u64 = 512;
/// Contexts below this are not worth offering: a system prompt and one long question fill it.
pub const MIN_USEFUL_CONTEXT: u32 = 4096;
/// Contexts above this are not offered by default even when memory allows: the KV cache of the
/// full-attention layers grows linearly and long prompts take minutes to prefill on a desktop.
pub const MAX_DEFAULT_CONTEXT: u32 = 131_072;
/// Kept free on every GPU for the driver, the CUDA/Vulkan context and fragmentation.
pub const GPU_RESERVE_BYTES: u64 = 512 * MIB;
/// Bytes per KV element: llama.cpp's default f16 cache.
const KV_ELEMENT_BYTES: u64 = 2;
/// Fraction of peak memory bandwidth token generation reaches (low, high).
const BANDWIDTH_EFFICIENCY: (f64, f64) = (0.35, 0.75);
/// Assumed bandwidths (GB/s) when the machine profile does not say.
const DEFAULT_RAM_BANDWIDTH_GBPS: f64 = 50.0;
const DEFAULT_GPU_BANDWIDTH_GBPS: f64 = 300.0;
const DEFAULT_UNIFIED_BANDWIDTH_GBPS: f64 = 200.0;

/// How the model's attention layers keep their KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttentionLayout {
    /// Every layer attends to the whole context.
    Full,
    /// Llama 4: most layers attend within a chunk of `window` tokens; every
    /// `full_attention_every`-th layer attends to everything.
    Chunked {
        window: u32,
        full_attention_every: u32,
    },
}

/// What the planner needs to know about a model. Built from the catalog (sizes estimated) or
/// from a GGUF's metadata (sizes measured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    pub name: String,
    pub architecture: String,
    /// Bytes of all weights as stored (all split parts together).
    pub weight_bytes: u64,
    /// Bytes of the routed expert tensors (`ffn_*_exps`), part of `weight_bytes`; 0 if dense.
    pub expert_bytes: u64,
    pub layers: u32,
    /// Layers holding routed experts (all layers for Scout, every other one for Maverick).
    pub moe_layers: u32,
    pub embedding: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub vocab: u32,
    /// Context length the model was trained for.
    pub context_length: u32,
    pub experts: u32,
    pub experts_used: u32,
    pub attention: AttentionLayout,
    /// Size of the vision projector (mmproj) if it will be loaded, else 0.
    pub mmproj_bytes: u64,
    /// True when the byte split comes from published sizes rather than the file's tensors.
    pub estimated: bool,
}

impl ModelFacts {
    pub fn is_moe(&self) -> bool {
        self.experts > 1 && self.expert_bytes > 0 && self.moe_layers > 0
    }

    fn non_expert_bytes(&self) -> u64 {
        self.weight_bytes.saturating_sub(self.expert_bytes)
    }

    fn expert_bytes_per_moe_layer(&self) -> u64 {
        if self.is_moe() {
            self.expert_bytes.div_ceil(u64::from(self.moe_layers))
        } else {
            0
        }
    }

    /// KV bytes one layer stores per token (K and V, f16).
    fn kv_bytes_per_token_per_layer(&self) -> u64 {
        2 * u64::from(self.kv_heads.max(1)) * u64::from(self.head_dim.max(1)) * KV_ELEMENT_BYTES
    }
}

/// The KV cache, compute buffers and weights a context needs, device-independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryNeeds {
    pub weights: u64,
    pub kv_cache: u64,
    pub compute: u64,
    pub mmproj: u64,
}

impl MemoryNeeds {
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.compute + self.mmproj
    }
}

/// KV cache bytes for `context` tokens, honouring chunked attention.
pub fn kv_cache_bytes(facts: &ModelFacts, context: u32) -> u64 {
    let per_layer_token = facts.kv_bytes_per_token_per_layer();
    let context = u64::from(context.max(1));
    let layers = u64::from(facts.layers.max(1));
    match facts.attention {
        AttentionLayout::Full => layers * context * per_layer_token,
        AttentionLayout::Chunked {
            window,
            full_attention_every,
        } => {
            let full_layers = layers / u64::from(full_attention_every.max(1));
            let chunked_layers = layers - full_layers;
            // llama.cpp's iSWA cache keeps the window plus one micro-batch for chunked layers.
            let chunked_cells = context.min(u64::from(window) + UBATCH);
            (full_layers * context + chunked_layers * chunked_cells) * per_layer_token
        }
    }
}

/// Compute buffer bytes for one backend running the graph at `context`: logits and
/// activations of one micro-batch plus the attention mask (flash attention assumed).
pub fn compute_buffer_bytes(facts: &ModelFacts, context: u32) -> u64 {
    let activations = UBATCH * (u64::from(facts.vocab) + 8 * u64::from(facts.embedding)) * 4;
    let mask = UBATCH * u64::from(context.max(1)) * 2;
    activations + mask + 128 * MIB
}

/// Everything the model needs at `context`, wherever it ends up.
pub fn memory_needs(facts: &ModelFacts, context: u32) -> MemoryNeeds {
    MemoryNeeds {
        weights: facts.weight_bytes,
        kv_cache: kv_cache_bytes(facts, context),
        compute: compute_buffer_bytes(facts, context),
        mmproj: facts.mmproj_bytes,
    }
}

/// One GPU (or other accelerator) as the backend reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    pub name: String,
    pub vram_total: u64,
    /// Free memory as the backend reports it now; the total is used when unknown.
    pub vram_free: Option<u64>,
    pub bandwidth_gbps: Option<f64>,
}

/// The machine the model would run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub ram_total: u64,
    /// Memory the OS reports available now; the total less a reserve is used when unknown.
    pub ram_available: Option<u64>,
    pub gpus: Vec<GpuDevice>,
    /// CPU and GPU share one memory (Apple silicon, AMD APUs).
    pub unified_memory: bool,
    pub ram_bandwidth_gbps: Option<f64>,
}

impl Machine {
    /// RAM the model may use: what is available, less a reserve for the OS and Cria itself
    /// (the larger of 3 GiB and 10 % of RAM).
    fn ram_budget(&self) -> u64 {
        let reserve = (3 * GIB).max(self.ram_total / 10);
        let by_total = self.ram_total.saturating_sub(reserve);
        match self.ram_available {
            Some(available) => by_total.min(available.saturating_sub(GIB)),
            None => by_total,
        }
    }

    fn gpu_budget(device: &GpuDevice) -> u64 {
        device
            .vram_free
            .unwrap_or(device.vram_total)
            .min(device.vram_total)
            .saturating_sub(GPU_RESERVE_BYTES)
    }

    /// On unified memory the GPU may wire only part of RAM (macOS allows about 75 % on large
    /// machines, two thirds on small ones).
    fn unified_gpu_budget(&self) -> u64 {
        let share = if self.ram_total > 36 * GIB {
            0.75
        } else {
            0.66
        };
        let limit = (self.ram_total as f64 * share) as u64;
        limit.min(self.ram_budget())
    }
}

/// What the user may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ContextRequest {
    /// The largest context that keeps the best placement (capped at [`MAX_DEFAULT_CONTEXT`]).
    #[default]
    Largest,
    /// Exactly this many tokens (capped at the model's trained length).
    Exactly(u32),
}

/// The overall answer, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    FitsOnGpu,
    Hybrid,
    CpuOnly,
    DoesNotFit,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::FitsOnGpu => "fits on GPU",
            Verdict::Hybrid => "hybrid GPU + CPU",
            Verdict::CpuOnly => "CPU only",
            Verdict::DoesNotFit => "does not fit",
        }
    }
}

/// How the weights are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Placement {
    /// Everything on the GPU(s) (or in unified memory).
    AllOnGpu,
    /// MoE: non-expert weights, KV and compute on the GPU; the routed experts of
    /// `cpu_moe_layers` layers in CPU RAM (llama.cpp `--n-cpu-moe`), the others on the GPU.
    ExpertsOnCpu { cpu_moe_layers: u32 },
    /// Whole layers split: the first `gpu_layers` on the GPU (llama.cpp `-ngl`).
    LayerSplit { gpu_layers: u32 },
    /// Everything in CPU RAM.
    CpuOnly,
    /// Nothing placed: it does not fit.
    Nowhere,
}

/// Memory planned on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceUse {
    pub device: String,
    pub weights: u64,
    /// Routed expert bytes among `weights`.
    pub expert_weights: u64,
    pub kv_cache: u64,
    pub compute: u64,
    pub mmproj: u64,
    pub budget: u64,
}

impl DeviceUse {
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.compute + self.mmproj
    }

    fn empty(device: &str, budget: u64) -> Self {
        Self {
            device: device.to_owned(),
            weights: 0,
            expert_weights: 0,
            kv_cache: 0,
            compute: 0,
            mmproj: 0,
            budget,
        }
    }
}

/// Expected generation speed in tokens per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpeedRange {
    pub low_tokens_per_s: f64,
    pub high_tokens_per_s: f64,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitPlan {
    pub verdict: Verdict,
    pub placement: Placement,
    /// Context tokens planned (0 when it does not fit).
    pub context: u32,
    /// The reason in plain words.
    pub reason: String,
    pub gpus: Vec<DeviceUse>,
    pub cpu: DeviceUse,
    pub speed: Option<SpeedRange>,
    pub assumptions: Vec<String>,
}

/// Plans `facts` on `machine`.
pub fn plan(facts: &ModelFacts, machine: &Machine, request: ContextRequest) -> FitPlan {
    let contexts = candidate_contexts(facts, request);
    let tiers: &[Tier] = if machine.unified_memory {
        &[Tier::Unified, Tier::Cpu]
    } else if machine.gpus.iter().any(|gpu| Machine::gpu_budget(gpu) > 0) {
        &[Tier::Gpu, Tier::Hybrid, Tier::Cpu]
    } else {
        &[Tier::Cpu]
    };
    for tier in tiers {
        for &context in &contexts {
            if let Some(plan) = try_tier(*tier, facts, machine, context) {
                return plan;
            }
        }
    }
    does_not_fit(
        facts,
        machine,
        contexts.last().copied().unwrap_or(MIN_USEFUL_CONTEXT),
    )
}

#[derive(Debug, Clone, Copy)]
enum Tier {
    Gpu,
    Hybrid,
    Cpu,
    Unified,
}

/// Contexts to try, largest first.
fn candidate_contexts(facts: &ModelFacts, request: ContextRequest) -> Vec<u32> {
    let trained = facts.context_length.max(1);
    match request {
        ContextRequest::Exactly(tokens) => vec![tokens.clamp(1, trained)],
        ContextRequest::Largest => {
            let top = trained.min(MAX_DEFAULT_CONTEXT);
            let floor = MIN_USEFUL_CONTEXT.min(top);
            let mut contexts = vec![top];
            let mut next = top.next_power_of_two() / 2;
            while next >= floor {
                if next < top {
                    contexts.push(next);
                }
                next /= 2;
            }
            contexts
        }
    }
}

fn try_tier(tier: Tier, facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    match tier {
        Tier::Gpu => plan_all_on_gpu(facts, machine, context),
        Tier::Hybrid => {
            if facts.is_moe() {
                plan_experts_on_cpu(facts, machine, context)
                    .or_else(|| plan_layer_split(facts, machine, context))
            } else {
                plan_layer_split(facts, machine, context)
            }
        }
        Tier::Cpu => plan_cpu_only(facts, machine, context),
        Tier::Unified => plan_unified(facts, machine, context),
    }
}

fn gpu_budgets(machine: &Machine) -> Vec<(String, u64, f64)> {
    machine
        .gpus
        .iter()
        .map(|gpu| {
            (
                gpu.name.clone(),
                Machine::gpu_budget(gpu),
                gpu.bandwidth_gbps.unwrap_or(DEFAULT_GPU_BANDWIDTH_GBPS),
            )
        })
        .filter(|(_, budget, _)| *budget > 0)
        .collect()
}

/// Spreads `weights`, `experts` (part of weights) and `kv` over the GPUs in proportion to their
/// budgets, as llama.cpp's default tensor split does; each GPU gets its own compute buffer and
/// the first one the projector. None if any device overflows.
fn spread_on_gpus(
    machine: &Machine,
    weights: u64,
    experts: u64,
    kv: u64,
    compute: u64,
    mmproj: u64,
) -> Option<Vec<DeviceUse>> {
    let budgets = gpu_budgets(machine);
    let total_budget: u64 = budgets.iter().map(|(_, budget, _)| budget).sum();
    if total_budget == 0 {
        return None;
    }
    let mut uses = Vec::with_capacity(budgets.len());
    let (mut weights_left, mut experts_left, mut kv_left) = (weights, experts, kv);
    for (index, (name, budget, _)) in budgets.iter().enumerate() {
        let last = index + 1 == budgets.len();
        let share = |amount: u64| -> u64 {
            ((amount as u128 * u128::from(*budget)) / u128::from(total_budget)) as u64
        };
        let (device_weights, device_experts, device_kv) = if last {
            (weights_left, experts_left, kv_left)
        } else {
            (share(weights), share(experts), share(kv))
        };
        weights_left -= device_weights;
        experts_left -= device_experts;
        kv_left -= device_kv;
        let mut device = DeviceUse::empty(name, *budget);
        device.weights = device_weights;
        device.expert_weights = device_experts;
        device.kv_cache = device_kv;
        device.compute = compute;
        device.mmproj = if index == 0 { mmproj } else { 0 };
        if device.total() > device.budget {
            return None;
        }
        uses.push(device);
    }
    Some(uses)
}

fn cpu_use(machine: &Machine) -> DeviceUse {
    DeviceUse::empty("CPU RAM", machine.ram_budget())
}

/// Host-side buffers llama.cpp keeps even when the GPU does the work (staging, small graph).
fn host_overhead(facts: &ModelFacts) -> u64 {
    256 * MIB + u64::from(facts.embedding) * UBATCH * 4
}

fn plan_all_on_gpu(facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    let needs = memory_needs(facts, context);
    let gpus = spread_on_gpus(
        machine,
        needs.weights,
        facts.expert_bytes,
        needs.kv_cache,
        needs.compute,
        needs.mmproj,
    )?;
    let mut cpu = cpu_use(machine);
    cpu.compute = host_overhead(facts);
    if cpu.total() > cpu.budget {
        return None;
    }
    let reason = format!(
        "All weights ({}), the KV cache for {} tokens ({}) and compute buffers fit in GPU memory ({} usable).",
        human_bytes(needs.weights),
        context,
        human_bytes(needs.kv_cache),
        human_bytes(gpus.iter().map(|gpu| gpu.budget).sum()),
    );
    Some(finish(
        facts,
        machine,
        Verdict::FitsOnGpu,
        Placement::AllOnGpu,
        context,
        reason,
        gpus,
        cpu,
    ))
}

/// MoE hybrid: everything but the routed experts on the GPU, then as many MoE layers' experts
/// as still fit; the remaining layers' experts stay in RAM.
fn plan_experts_on_cpu(facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    let needs = memory_needs(facts, context);
    let non_expert = facts.non_expert_bytes();
    let per_layer = facts.expert_bytes_per_moe_layer();
    let gpu_budget: u64 = gpu_budgets(machine)
        .iter()
        .map(|(_, budget, _)| budget)
        .sum();
    let gpu_count = gpu_budgets(machine).len() as u64;
    let fixed_gpu = non_expert + needs.kv_cache + needs.compute * gpu_count + needs.mmproj;

    if fixed_gpu > gpu_budget {
        return None;
    }
    // Start from what the summed budgets allow, then step down until every device fits (the
    // first GPU also holds the projector, so proportional shares can overflow it).
    let estimate = ((gpu_budget - fixed_gpu) / per_layer.max(1)).min(u64::from(facts.moe_layers));
    let mut gpu_moe_layers = u32::try_from(estimate).unwrap_or(facts.moe_layers);
    let gpus = loop {
        let experts_on_gpu = (per_layer * u64::from(gpu_moe_layers)).min(facts.expert_bytes);
        if let Some(gpus) = spread_on_gpus(
            machine,
            non_expert + experts_on_gpu,
            experts_on_gpu,
            needs.kv_cache,
            needs.compute,
            needs.mmproj,
        ) {
            break gpus;
        }
        gpu_moe_layers = gpu_moe_layers.checked_sub(1)?;
    };
    let cpu_moe_layers = facts.moe_layers - gpu_moe_layers;
    if cpu_moe_layers == 0 {
        // Everything fits on the GPU after all; the all-on-GPU tier covers that.
        return None;
    }
    let experts_on_gpu = (per_layer * u64::from(gpu_moe_layers)).min(facts.expert_bytes);
    let experts_on_cpu = facts.expert_bytes - experts_on_gpu;
    let mut cpu = cpu_use(machine);
    cpu.weights = experts_on_cpu;
    cpu.expert_weights = experts_on_cpu;
    cpu.compute = host_overhead(facts) + compute_buffer_bytes(facts, context) / 4;
    if cpu.total() > cpu.budget {
        return None;
    }
    let reason = format!(
        "The whole model ({}) is larger than GPU memory ({} usable), but it is a mixture of experts: attention, shared weights and the KV cache for {} tokens go on the GPU and the routed experts of {} of {} MoE layers ({}) stay in CPU RAM, where each token reads only {} of the {} experts of a layer.",
        human_bytes(facts.weight_bytes),
        human_bytes(gpu_budget),
        context,
        cpu_moe_layers,
        facts.moe_layers,
        human_bytes(experts_on_cpu),
        facts.experts_used,
        facts.experts,
    );
    Some(finish(
        facts,
        machine,
        Verdict::Hybrid,
        Placement::ExpertsOnCpu { cpu_moe_layers },
        context,
        reason,
        gpus,
        cpu,
    ))
}

/// Dense (or MoE whose non-expert part is too big for the GPU): whole layers on the GPU, the rest
/// on the CPU, the KV cache following its layer.
fn plan_layer_split(facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    let needs = memory_needs(facts, context);
    let layers = u64::from(facts.layers.max(1));
    // Token embeddings and the output head are about one layer's worth and stay on the CPU side
    // of the split in the worst case.
    let per_layer_weights = facts.weight_bytes / (layers + 1);
    let per_layer_experts = facts.expert_bytes / layers;
    let per_layer_kv = needs.kv_cache.div_ceil(layers);
    let gpu_count = gpu_budgets(machine).len() as u64;
    let gpu_budget: u64 = gpu_budgets(machine)
        .iter()
        .map(|(_, budget, _)| budget)
        .sum();
    let fixed_gpu = needs.compute * gpu_count + needs.mmproj;
    if fixed_gpu >= gpu_budget {
        return None;
    }
    let per_layer_total = (per_layer_weights + per_layer_kv).max(1);
    let mut gpu_layers = ((gpu_budget - fixed_gpu) / per_layer_total).min(layers - 1);
    let (gpus, gpu_weights, gpu_experts, gpu_kv) = loop {
        if gpu_layers == 0 {
            return None;
        }
        let gpu_weights = per_layer_weights * gpu_layers;
        let gpu_experts = per_layer_experts * gpu_layers;
        let gpu_kv = per_layer_kv * gpu_layers;
        if let Some(gpus) = spread_on_gpus(
            machine,
            gpu_weights,
            gpu_experts,
            gpu_kv,
            needs.compute,
            needs.mmproj,
        ) {
            break (gpus, gpu_weights, gpu_experts, gpu_kv);
        }
        gpu_layers -= 1;
    };
    let mut cpu = cpu_use(machine);
    cpu.weights = facts.weight_bytes - gpu_weights;
    cpu.expert_weights = facts.expert_bytes - gpu_experts.min(facts.expert_bytes);
    cpu.kv_cache = needs.kv_cache.saturating_sub(gpu_kv);
    cpu.compute = compute_buffer_bytes(facts, context) / 2 + host_overhead(facts);
    if cpu.total() > cpu.budget {
        return None;
    }
    let gpu_layers = u32::try_from(gpu_layers).unwrap_or(facts.layers);
    let reason = format!(
        "The model ({}) is larger than GPU memory ({} usable): {} of {} layers run on the GPU and the rest on the CPU, with the KV cache for {} tokens split the same way.",
        human_bytes(facts.weight_bytes),
        human_bytes(gpu_budget),
        gpu_layers,
        facts.layers,
        context,
    );
    Some(finish(
        facts,
        machine,
        Verdict::Hybrid,
        Placement::LayerSplit { gpu_layers },
        context,
        reason,
        gpus,
        cpu,
    ))
}

fn plan_cpu_only(facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    let needs = memory_needs(facts, context);
    let mut cpu = cpu_use(machine);
    cpu.weights = needs.weights;
    cpu.expert_weights = facts.expert_bytes;
    cpu.kv_cache = needs.kv_cache;
    cpu.compute = needs.compute + host_overhead(facts);
    cpu.mmproj = needs.mmproj;
    if cpu.total() > cpu.budget {
        return None;
    }
    let why_not_gpu = if machine.unified_memory {
        format!(
            "it exceeds the share of unified memory the GPU may use ({})",
            human_bytes(machine.unified_gpu_budget())
        )
    } else if gpu_budgets(machine).is_empty() {
        "no usable GPU was found".to_owned()
    } else {
        "too little of it fits in GPU memory to help".to_owned()
    };
    let reason = format!(
        "The model ({}) and the KV cache for {} tokens ({}) fit in CPU RAM ({} usable); {}, so it runs on the CPU only.",
        human_bytes(needs.weights),
        context,
        human_bytes(needs.kv_cache),
        human_bytes(cpu.budget),
        why_not_gpu,
    );
    Some(finish(
        facts,
        machine,
        Verdict::CpuOnly,
        Placement::CpuOnly,
        context,
        reason,
        Vec::new(),
        cpu,
    ))
}

fn plan_unified(facts: &ModelFacts, machine: &Machine, context: u32) -> Option<FitPlan> {
    let needs = memory_needs(facts, context);
    let budget = machine.unified_gpu_budget();
    let mut gpu = DeviceUse::empty("GPU (unified memory)", budget);
    gpu.weights = needs.weights;
    gpu.expert_weights = facts.expert_bytes;
    gpu.kv_cache = needs.kv_cache;
    gpu.compute = needs.compute;
    gpu.mmproj = needs.mmproj;
    if gpu.total() > budget {
        return None;
    }
    let mut cpu = cpu_use(machine);
    cpu.compute = host_overhead(facts);
    let reason = format!(
        "Weights ({}), the KV cache for {} tokens ({}) and compute buffers fit in the {} of unified memory the GPU may use.",
        human_bytes(needs.weights),
        context,
        human_bytes(needs.kv_cache),
        human_bytes(budget),
    );
    Some(finish(
        facts,
        machine,
        Verdict::FitsOnGpu,
        Placement::AllOnGpu,
        context,
        reason,
        vec![gpu],
        cpu,
    ))
}

fn does_not_fit(facts: &ModelFacts, machine: &Machine, context: u32) -> FitPlan {
    let needs = memory_needs(facts, context);
    let gpu_total: u64 = if machine.unified_memory {
        machine.unified_gpu_budget()
    } else {
        gpu_budgets(machine)
            .iter()
            .map(|(_, budget, _)| budget)
            .sum()
    };
    let ram = machine.ram_budget();
    let have = if machine.unified_memory {
        ram
    } else {
        ram + gpu_total
    };
    let needed = needs.total() + host_overhead(facts);
    let reason = format!(
        "Even at {} tokens of context the model needs about {} ({} of weights, {} of KV cache, projector and buffers), but this machine has {} {} usable ({} RAM{}). Choose a smaller quantization or a smaller model.",
        context,
        human_bytes(needed),
        human_bytes(needs.weights),
        human_bytes(needed - needs.weights),
        // Totals can round to the same figure while the parts still do not fit a device each.
        if have >= needed { "at most" } else { "about" },
        human_bytes(have),
        human_bytes(ram),
        if machine.unified_memory || gpu_total == 0 {
            String::new()
        } else {
            format!(" + {} GPU", human_bytes(gpu_total))
        },
    );
    FitPlan {
        verdict: Verdict::DoesNotFit,
        placement: Placement::Nowhere,
        context: 0,
        reason,
        gpus: Vec::new(),
        cpu: cpu_use(machine),
        speed: None,
        assumptions: assumptions(facts, machine),
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    facts: &ModelFacts,
    machine: &Machine,
    verdict: Verdict,
    placement: Placement,
    context: u32,
    reason: String,
    gpus: Vec<DeviceUse>,
    cpu: DeviceUse,
) -> FitPlan {
    let speed = estimate_speed(facts, machine, &gpus, &cpu);
    FitPlan {
        verdict,
        placement,
        context,
        reason,
        gpus,
        cpu,
        speed: Some(speed),
        assumptions: assumptions(facts, machine),
    }
}

/// Seconds per token = bytes read on each device / its bandwidth; the KV cache is read half full
/// on average.
fn estimate_speed(
    facts: &ModelFacts,
    machine: &Machine,
    gpus: &[DeviceUse],
    cpu: &DeviceUse,
) -> SpeedRange {
    let active_fraction_of_experts = if facts.is_moe() {
        f64::from(facts.experts_used.max(1)) / f64::from(facts.experts)
    } else {
        1.0
    };
    let bytes_read = |device: &DeviceUse| -> f64 {
        let dense = device.weights.saturating_sub(device.expert_weights) as f64;
        let experts = device.expert_weights as f64 * active_fraction_of_experts;
        dense + experts + device.kv_cache as f64 / 2.0
    };
    let ram_bandwidth = if machine.unified_memory {
        machine
            .ram_bandwidth_gbps
            .unwrap_or(DEFAULT_UNIFIED_BANDWIDTH_GBPS)
    } else {
        machine
            .ram_bandwidth_gbps
            .unwrap_or(DEFAULT_RAM_BANDWIDTH_GBPS)
    };
    let mut seconds = bytes_read(cpu) / (ram_bandwidth.max(1.0) * 1e9);
    for device in gpus {
        let bandwidth = if machine.unified_memory {
            ram_bandwidth
        } else {
            machine
                .gpus
                .iter()
                .find(|gpu| gpu.name == device.device)
                .and_then(|gpu| gpu.bandwidth_gbps)
                .unwrap_or(DEFAULT_GPU_BANDWIDTH_GBPS)
        };
        seconds += bytes_read(device) / (bandwidth.max(1.0) * 1e9);
    }
    // A floor keeps the estimate finite for tiny models: per-token overheads (kernel launches,
    // sampling) dominate below about a millisecond.
    let seconds = seconds.max(1e-3);
    SpeedRange {
        low_tokens_per_s: round1(BANDWIDTH_EFFICIENCY.0 / seconds),
        high_tokens_per_s: round1(BANDWIDTH_EFFICIENCY.1 / seconds),
    }
}

fn round1(value: f64) -> f64 {
    ((value * 10.0).round() / 10.0).max(0.1)
}

fn assumptions(facts: &ModelFacts, machine: &Machine) -> Vec<String> {
    let mut list = vec![
        "f16 KV cache, flash attention, micro-batch 512".to_owned(),
        format!(
            "{} kept free per GPU for the driver",
            human_bytes(GPU_RESERVE_BYTES)
        ),
        "RAM budget: available memory less max(3 GiB, 10 %) for the system".to_owned(),
        format!(
            "speed from memory bandwidth at {:.0}-{:.0} % of peak",
            BANDWIDTH_EFFICIENCY.0 * 100.0,
            BANDWIDTH_EFFICIENCY.1 * 100.0
        ),
    ];
    if let AttentionLayout::Chunked {
        window,
        full_attention_every,
    } = facts.attention
    {
        list.push(format!(
            "chunked attention: {} of every {full_attention_every} layers keep only {window} + 512 tokens of KV",
            full_attention_every.saturating_sub(1)
        ));
    }
    if facts.estimated {
        list.push("expert/non-expert byte split estimated from parameter counts".to_owned());
    }
    if machine.ram_bandwidth_gbps.is_none() {
        list.push(format!(
            "RAM bandwidth assumed {:.0} GB/s",
            if machine.unified_memory {
                DEFAULT_UNIFIED_BANDWIDTH_GBPS
            } else {
                DEFAULT_RAM_BANDWIDTH_GBPS
            }
        ));
    }
    if !machine.unified_memory && machine.gpus.iter().any(|gpu| gpu.bandwidth_gbps.is_none()) {
        list.push(format!(
            "GPU bandwidth assumed {DEFAULT_GPU_BANDWIDTH_GBPS:.0} GB/s"
        ));
    }
    list
}

/// Bytes in binary units with one decimal, e.g. "23.5 GiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A short multi-line rendering for logs, the CLI and snapshot tests.
pub fn render(plan: &FitPlan) -> String {
    let mut out = format!("verdict: {} ({:?})\n", plan.verdict.label(), plan.placement);
    out.push_str(&format!("context: {}\n", plan.context));
    out.push_str(&format!("reason: {}\n", plan.reason));
    for gpu in &plan.gpus {
        out.push_str(&format!(
            "{}: {} of {} (weights {}, experts {}, kv {}, compute {}, mmproj {})\n",
            gpu.device,
            human_bytes(gpu.total()),
            human_bytes(gpu.budget),
            human_bytes(gpu.weights),
            human_bytes(gpu.expert_weights),
            human_bytes(gpu.kv_cache),
            human_bytes(gpu.compute),
            human_bytes(gpu.mmproj),
        ));
    }
    let cpu = &plan.cpu;
    out.push_str(&format!(
        "{}: {} of {} (weights {}, experts {}, kv {})\n",
        cpu.device,
        human_bytes(cpu.total()),
        human_bytes(cpu.budget),
        human_bytes(cpu.weights),
        human_bytes(cpu.expert_weights),
        human_bytes(cpu.kv_cache),
    ));
    match plan.speed {
        Some(speed) => out.push_str(&format!(
            "speed: {:.1}-{:.1} tokens/s\n",
            speed.low_tokens_per_s, speed.high_tokens_per_s
        )),
        None => out.push_str("speed: -\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GB: u64 = 1_000_000_000;

    fn gpu(name: &str, vram: u64, bandwidth: f64) -> GpuDevice {
        GpuDevice {
            name: name.to_owned(),
            vram_total: vram,
            vram_free: None,
            bandwidth_gbps: Some(bandwidth),
        }
    }

    /// The machine profiles the issue names.
    fn profiles() -> Vec<(&'static str, Machine)> {
        vec![
            (
                "gpu24_ram64",
                Machine {
                    ram_total: 64 * GIB,
                    ram_available: None,
                    gpus: vec![gpu("24 GB GPU", 24 * GIB, 936.0)],
                    unified_memory: false,
                    ram_bandwidth_gbps: Some(60.0),
                },
            ),
            (
                "gpu12_ram32",
                Machine {
                    ram_total: 32 * GIB,
                    ram_available: None,
                    gpus: vec![gpu("12 GB GPU", 12 * GIB, 360.0)],
                    unified_memory: false,
                    ram_bandwidth_gbps: Some(50.0),
                },
            ),
            (
                "cpu_ram128",
                Machine {
                    ram_total: 128 * GIB,
                    ram_available: None,
                    gpus: Vec::new(),
                    unified_memory: false,
                    ram_bandwidth_gbps: Some(80.0),
                },
            ),
            (
                "unified64",
                Machine {
                    ram_total: 64 * GIB,
                    ram_available: None,
                    gpus: Vec::new(),
                    unified_memory: true,
                    ram_bandwidth_gbps: Some(400.0),
                },
            ),
        ]
    }

    #[test]
    fn llama4_catalog_verdicts_per_machine() {
        let catalog = crate::catalog::Catalog::bundled().unwrap();
        for (profile, machine) in profiles() {
            let mut report = String::new();
            for variant in catalog
                .variants
                .iter()
                .filter(|variant| variant.model.starts_with("llama-4"))
            {
                let facts = catalog
                    .facts(&variant.id, variant.mmproj.is_some())
                    .unwrap();
                let plan = plan(&facts, &machine, ContextRequest::Largest);
                report.push_str(&format!("## {}\n{}\n", variant.id, render(&plan)));
            }
            insta::assert_snapshot!(profile, report);
        }
    }

    #[test]
    fn scout_iq1_on_a_24gb_gpu_keeps_experts_in_ram() {
        let catalog = crate::catalog::Catalog::bundled().unwrap();
        let facts = catalog.facts("llama-4-scout-ud-iq1-s", false).unwrap();
        let machine = &profiles()[0].1;
        let plan = plan(&facts, machine, ContextRequest::Largest);
        assert_eq!(plan.verdict, Verdict::Hybrid, "{}", render(&plan));
        assert!(matches!(plan.placement, Placement::ExpertsOnCpu { .. }));
        assert_eq!(plan.context, MAX_DEFAULT_CONTEXT);
        // Generation is bounded by the experts read from RAM: single-digit to tens of tokens/s.
        let speed = plan.speed.unwrap();
        assert!(
            speed.low_tokens_per_s > 1.0 && speed.high_tokens_per_s < 100.0,
            "{speed:?}"
        );
    }

    #[test]
    fn chunked_attention_keeps_kv_small() {
        let catalog = crate::catalog::Catalog::bundled().unwrap();
        let mut facts = catalog.facts("llama-4-scout-ud-iq1-s", false).unwrap();
        let chunked = kv_cache_bytes(&facts, 131_072);
        facts.attention = AttentionLayout::Full;
        let full = kv_cache_bytes(&facts, 131_072);
        // 12 of 48 layers keep the whole context: about a quarter plus the windows.
        assert!(chunked * 3 < full, "chunked {chunked} vs full {full}");
        assert_eq!(full, 48 * 131_072 * 2 * 8 * 128 * 2);
    }

    #[test]
    fn a_small_model_fits_any_gpu_and_a_giant_fits_nothing() {
        let catalog = crate::catalog::Catalog::bundled().unwrap();
        let small = catalog
            .facts("llama-3-2-1b-instruct-q4-k-m", false)
            .unwrap();
        let giant = catalog.facts("llama-4-maverick-ud-q4-k-xl", false).unwrap();
        for (_, machine) in profiles() {
            let plan_small = plan(&small, &machine, ContextRequest::Largest);
            assert_ne!(plan_small.verdict, Verdict::DoesNotFit);
            let plan_giant = plan(&giant, &machine, ContextRequest::Largest);
            assert_eq!(
                plan_giant.verdict,
                Verdict::DoesNotFit,
                "{}",
                render(&plan_giant)
            );
            assert!(
                plan_giant.reason.contains("smaller"),
                "{}",
                plan_giant.reason
            );
            assert!(plan_giant.speed.is_none());
        }
    }

    fn arb_facts() -> impl Strategy<Value = ModelFacts> {
        (
            (
                1u32..=96,
                64u32..=8192,
                1u32..=64,
                1000u32..=260_000,
                512u32..=2_000_000,
            ),
            (
                1u64..=400 * GB,
                0.0f64..0.97,
                prop_oneof![Just(0u32), 2u32..=160],
                1u32..=8,
            ),
            (any::<bool>(), 0u64..=3 * GB),
        )
            .prop_map(
                |(
                    (layers, embedding, heads, vocab, context),
                    (weights, share, experts, used),
                    (chunked, mmproj),
                )| {
                    let moe = experts > 1;
                    let kv_heads = (heads / 4).max(1);
                    ModelFacts {
                        name: "arbitrary".to_owned(),
                        architecture: "llama4".to_owned(),
                        weight_bytes: weights,
                        expert_bytes: if moe {
                            (weights as f64 * share) as u64
                        } else {
                            0
                        },
                        layers,
                        moe_layers: if moe { layers.div_ceil(2) } else { 0 },
                        embedding,
                        heads,
                        kv_heads,
                        head_dim: (embedding / heads).max(1),
                        vocab,
                        context_length: context,
                        experts: if moe { experts } else { 0 },
                        experts_used: if moe { used.min(experts) } else { 0 },
                        attention: if chunked {
                            AttentionLayout::Chunked {
                                window: 8192,
                                full_attention_every: 4,
                            }
                        } else {
                            AttentionLayout::Full
                        },
                        mmproj_bytes: mmproj,
                        estimated: false,
                    }
                },
            )
    }

    fn arb_machine() -> impl Strategy<Value = Machine> {
        (
            1u64..=1024,
            proptest::collection::vec((1u64..=192, proptest::option::of(0u64..=192)), 0..=3),
            any::<bool>(),
            proptest::option::of(5.0f64..800.0),
        )
            .prop_map(|(ram_gib, gpus, unified, bandwidth)| Machine {
                ram_total: ram_gib * GIB,
                ram_available: None,
                gpus: if unified {
                    Vec::new()
                } else {
                    gpus.into_iter()
                        .enumerate()
                        .map(|(index, (total, free))| GpuDevice {
                            name: format!("gpu{index}"),
                            vram_total: total * GIB,
                            vram_free: free.map(|free| free.min(total) * GIB),
                            bandwidth_gbps: None,
                        })
                        .collect()
                },
                unified_memory: unified,
                ram_bandwidth_gbps: bandwidth,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn plans_are_sane(facts in arb_facts(), machine in arb_machine()) {
            let plan = plan(&facts, &machine, ContextRequest::Largest);
            prop_assert!(!plan.reason.is_empty());
            if plan.verdict == Verdict::DoesNotFit {
                prop_assert!(plan.speed.is_none());
                return Ok(());
            }
            prop_assert!(plan.context > 0 && plan.context <= facts.context_length);
            let speed = plan.speed.expect("a plan that fits has a speed");
            prop_assert!(speed.low_tokens_per_s.is_finite() && speed.low_tokens_per_s > 0.0);
            prop_assert!(speed.high_tokens_per_s >= speed.low_tokens_per_s);
            for device in plan.gpus.iter().chain(std::iter::once(&plan.cpu)) {
                prop_assert!(device.total() <= device.budget, "{} over budget", device.device);
                prop_assert!(device.expert_weights <= device.weights);
            }
            let placed: u64 = plan.gpus.iter().map(|gpu| gpu.weights).sum::<u64>() + plan.cpu.weights;
            prop_assert_eq!(placed, facts.weight_bytes, "every weight byte placed once");
        }

        #[test]
        fn memory_grows_with_context(facts in arb_facts(), a in 1u32..2_000_000, b in 1u32..2_000_000) {
            let (small, large) = (a.min(b), a.max(b));
            let needs_small = memory_needs(&facts, small);
            let needs_large = memory_needs(&facts, large);
            prop_assert!(needs_small.total() > 0);
            prop_assert!(needs_small.kv_cache <= needs_large.kv_cache);
            prop_assert!(needs_small.total() <= needs_large.total());
        }

        #[test]
        fn verdict_never_improves_with_more_context(
            facts in arb_facts(),
            machine in arb_machine(),
            a in 1u32..300_000,
            b in 1u32..300_000,
        ) {
            let (small, large) = (a.min(b), a.max(b));
            let at_small = plan(&facts, &machine, ContextRequest::Exactly(small));
            let at_large = plan(&facts, &machine, ContextRequest::Exactly(large));
            prop_assert!(at_small.verdict <= at_large.verdict,
                "{:?} at {} but {:?} at {}", at_small.verdict, small, at_large.verdict, large);
        }

        #[test]
        fn moe_hybrid_keeps_only_experts_on_cpu(facts in arb_facts(), machine in arb_machine()) {
            let plan = plan(&facts, &machine, ContextRequest::Largest);
            if let Placement::ExpertsOnCpu { cpu_moe_layers } = plan.placement {
                prop_assert!(facts.is_moe());
                prop_assert!(cpu_moe_layers >= 1 && cpu_moe_layers <= facts.moe_layers);
                prop_assert!(plan.cpu.weights > 0);
                prop_assert_eq!(plan.cpu.weights, plan.cpu.expert_weights, "only experts in RAM");
                let dense_on_gpu: u64 =
                    plan.gpus.iter().map(|gpu| gpu.weights - gpu.expert_weights).sum();
                prop_assert_eq!(dense_on_gpu, facts.weight_bytes - facts.expert_bytes);
                prop_assert_eq!(plan.cpu.kv_cache, 0, "the KV cache stays on the GPU");
            }
        }
    }
}
