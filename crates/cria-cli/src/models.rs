//! `cria models …`: the model library and the fit planner.
//!
//! Contract: import, remove and choosing the active model go through the core, so the app sees
//! the same library and the same active model. `pull` downloads a catalog entry with the
//! library's downloader (resume from a `.part` file, size and sha256 verified, the file
//! appears under its final name only when verified); Ctrl-C keeps the partial file and exits
//! 130. `inspect` reads a GGUF header without the data folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use cria_core::{Cria, FitReport, FitSource, ModelSummary};
use cria_models::download::{CancelToken as DownloadCancel, DownloadEvent};
use cria_models::planner::{FitPlan, Placement};

use crate::error::{CliError, CliResult};
use crate::print_json;
use crate::term::{Output, human_bytes, printable};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List the library with each model's fit verdict for this machine; * marks the active one.
    ///
    /// Example: cria models list --json
    List {
        /// Print the models as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a local GGUF to the library where it lies (validated; a vision projector next to
    /// it is paired automatically).
    ///
    /// Example: cria models import ~/models/Llama-4-Scout-17B-16E-Instruct-UD-IQ1_S.gguf
    Import { file: PathBuf },
    /// Remove a model from the library (a file imported in place stays where it is).
    ///
    /// Example: cria models remove llama-4-scout-17b-16e-instruct-ud-iq1-s
    Remove { id: String },
    /// Make a library model the active one: the next message loads it (as the app's picker does).
    ///
    /// Example: cria models use llama-4-scout-17b-16e-instruct-ud-iq1-s
    Use { id: String },
    /// Whether a model fits this machine (GPU, GPU + CPU, CPU or not at all), with the
    /// suggested context and offload and the reason.
    ///
    /// NAME is a catalog entry (see `cria models catalog`), a library model id or a GGUF file.
    ///
    /// Example: cria models fit llama-4-scout-ud-q2-k-xl
    Fit {
        name: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a catalog entry into the library: resumable, size and sha256 verified.
    ///
    /// Ctrl-C keeps the partial download; running the command again resumes it.
    ///
    /// Example: cria models pull llama-4-scout-ud-iq1-s
    Pull {
        name: String,
        /// Skip the vision projector (mmproj) even when the entry has one.
        #[arg(long)]
        no_vision: bool,
    },
    /// List the catalog: the models `cria models pull` can download.
    ///
    /// Example: cria models catalog
    Catalog {
        /// Print the catalog entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a GGUF file and show what it holds, without loading it.
    ///
    /// Exits with status 1 and the reason when the file is damaged or not a GGUF model.
    ///
    /// Example: cria models inspect models/gemma-3-270m-q4_k_m.gguf --json
    Inspect {
        file: PathBuf,
        /// Print the full summary, every tensor included, as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cria: &Cria, command: ModelsCommand, output: Output) -> CliResult<()> {
    match command {
        ModelsCommand::List { json } => list(cria, json).await,
        ModelsCommand::Import { file } => {
            let model = cria.import_model(file).await?;
            let vision = if model.vision {
                "vision projector paired"
            } else {
                "text only (no vision projector next to it)"
            };
            println!("{}", model.id);
            output.note(&format!(
                "imported {} ({}, {}); {vision}",
                printable(&model.name, false),
                human_bytes(model.size_bytes),
                model.quantization
            ));
            Ok(())
        }
        ModelsCommand::Remove { id } => {
            cria.remove_model(id.clone()).await?;
            output.note(&format!("removed {id}"));
            Ok(())
        }
        ModelsCommand::Use { id } => {
            cria.set_active_model(id.clone()).await?;
            output.note(&format!("{id} is now the active model"));
            Ok(())
        }
        ModelsCommand::Fit { name, json } => {
            let report = cria.fit(&name).await?;
            if json {
                return print_json(&report);
            }
            print!("{}", describe_fit(&report));
            Ok(())
        }
        ModelsCommand::Pull { name, no_vision } => pull(cria, &name, !no_vision, output).await,
        ModelsCommand::Catalog { json } => {
            let entries = cria.catalog_entries()?;
            if json {
                return print_json(&entries);
            }
            let mut stdout = std::io::stdout().lock();
            for entry in entries {
                let vision = if entry.vision { "vision" } else { "text" };
                writeln!(
                    stdout,
                    "{:<36} {:>9}  {vision:<6}  {} {}",
                    entry.id,
                    human_bytes(entry.size_bytes),
                    entry.name,
                    entry.quantization
                )?;
            }
            Ok(())
        }
        ModelsCommand::Inspect { file, json } => inspect(&file, json),
    }
}

async fn list(cria: &Cria, json: bool) -> CliResult<()> {
    let models = cria.list_models().await?;
    if json {
        return print_json(&models);
    }
    let mut stdout = std::io::stdout().lock();
    for model in &models {
        writeln!(stdout, "{}", model_line(model))?;
    }
    Ok(())
}

/// `* id  name  size  quantization  vision  verdict`.
fn model_line(model: &ModelSummary) -> String {
    let active = if model.active { "*" } else { " " };
    let vision = if model.vision { "vision" } else { "text" };
    let verdict = if model.verdict.is_empty() {
        "fit unknown"
    } else {
        model.verdict.as_str()
    };
    format!(
        "{active} {:<40} {:>9}  {:<10} {vision:<6}  {verdict}  ({})",
        model.id,
        human_bytes(model.size_bytes),
        model.quantization,
        printable(&model.name, false)
    )
}

fn describe_fit(report: &FitReport) -> String {
    let plan: &FitPlan = &report.plan;
    let source = match &report.source {
        FitSource::Catalog { id } => format!("catalog entry {id} (published sizes: an estimate)"),
        FitSource::Library { id } => format!("library model {id}"),
        FitSource::File { path } => format!("file {}", path.display()),
    };
    let offload = match plan.placement {
        Placement::AllOnGpu => "all layers on the GPU".to_string(),
        Placement::ExpertsOnCpu { cpu_moe_layers } => format!(
            "non-expert weights on the GPU, the experts of {cpu_moe_layers} layers in RAM \
             (llama.cpp --n-cpu-moe {cpu_moe_layers})"
        ),
        Placement::LayerSplit { gpu_layers } => {
            format!("{gpu_layers} layers on the GPU, the rest on the CPU (-ngl {gpu_layers})")
        }
        Placement::CpuOnly => "everything on the CPU".to_string(),
        Placement::Nowhere => "-".to_string(),
    };
    let mut lines = vec![
        format!("model     {}", printable(&report.name, false)),
        format!("source    {source}"),
        format!("verdict   {}", report.verdict_label),
        format!("context   {} tokens", plan.context),
        format!("offload   {offload}"),
        format!("why       {}", plan.reason),
    ];
    for gpu in &plan.gpus {
        lines.push(format!(
            "gpu       {}: {} of {}",
            gpu.device,
            cria_models::planner::human_bytes(gpu.total()),
            cria_models::planner::human_bytes(gpu.budget)
        ));
    }
    lines.push(format!(
        "ram       {} of {}",
        cria_models::planner::human_bytes(plan.cpu.total()),
        cria_models::planner::human_bytes(plan.cpu.budget)
    ));
    if let Some(speed) = plan.speed {
        lines.push(format!(
            "speed     {:.1}-{:.1} tokens/s (expected)",
            speed.low_tokens_per_s, speed.high_tokens_per_s
        ));
    }
    for assumption in &plan.assumptions {
        lines.push(format!("assumed   {assumption}"));
    }
    lines.push(String::new());
    lines.join("\n")
}

async fn pull(cria: &Cria, name: &str, with_vision: bool, output: Output) -> CliResult<()> {
    let cancel = DownloadCancel::new();
    let mut progress = output.progress();
    let mut on_event = |event: DownloadEvent| match event {
        DownloadEvent::Started {
            file_name,
            resume_from,
        } => {
            progress.clear();
            if resume_from > 0 {
                output.note(&format!(
                    "{file_name}: resuming at {}",
                    human_bytes(resume_from)
                ));
            } else {
                output.note(&format!("{file_name}: downloading"));
            }
        }
        DownloadEvent::Progress(step) => {
            let total = step
                .file_total
                .map_or_else(String::new, |total| format!(" of {}", human_bytes(total)));
            let eta = step
                .eta_seconds
                .map_or_else(String::new, |eta| format!(", {eta:.0} s left"));
            progress.show(
                &format!(
                    "[{}/{}] {} {}{total} at {}/s{eta}",
                    step.file_index + 1,
                    step.file_count,
                    step.file_name,
                    human_bytes(step.file_bytes),
                    human_bytes(step.bytes_per_second as u64)
                ),
                false,
            );
        }
        DownloadEvent::Restarted { file_name, reason } => {
            progress.clear();
            output.note(&format!("{file_name}: starting over ({reason})"));
        }
        DownloadEvent::Verified { file_name, sha256 } => {
            progress.clear();
            output.note(&format!("{file_name}: verified (sha256 {sha256})"));
        }
    };
    let download = cria.pull_model(name, with_vision, &cancel, &mut on_event);
    tokio::pin!(download);
    let model = tokio::select! {
        result = &mut download => result,
        _ = tokio::signal::ctrl_c() => {
            cancel.cancel();
            download.await
        }
    }?;
    println!("{}", model.id);
    output.note(&format!(
        "added {} to the library; make it the active model with: cria models use {}",
        model.name, model.id
    ));
    Ok(())
}

pub fn inspect(path: &Path, json: bool) -> CliResult<()> {
    let info = cria_gguf::inspect(path).map_err(|error| {
        CliError::user(format!(
            "{} is not a usable model file: {error}",
            path.display()
        ))
    })?;
    if json {
        return print_json(&info);
    }
    print!("{}", describe_model(path, &info));
    Ok(())
}

/// The human-readable summary: one `label  value` line per known fact.
fn describe_model(path: &Path, info: &cria_gguf::ModelInfo) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("file", path.display().to_string()),
        (
            "size",
            format!(
                "{} (GGUF v{})",
                human_bytes(info.file_bytes),
                info.gguf_version
            ),
        ),
    ];
    let mut optional = |label, value: Option<String>| {
        if let Some(value) = value {
            lines.push((label, value));
        }
    };
    optional("architecture", info.architecture.clone());
    optional("name", info.name.clone());
    optional("quantization", Some(info.quantization.clone()));
    optional("context length", info.context_length.map(|n| n.to_string()));
    optional("layers", info.block_count.map(|n| n.to_string()));
    optional("embedding", info.embedding_length.map(|n| n.to_string()));
    optional(
        "feed-forward",
        info.feed_forward_length.map(|n| n.to_string()),
    );
    optional(
        "heads",
        info.head_count.map(|heads| match info.head_count_kv {
            Some(kv) => format!("{heads} ({kv} key/value)"),
            None => heads.to_string(),
        }),
    );
    optional("head size", info.key_length.map(|n| n.to_string()));
    optional(
        "experts",
        info.expert_count.map(|experts| {
            let used = info
                .expert_used_count
                .map_or(String::new(), |n| format!(", {n} used"));
            let width = info
                .expert_feed_forward_length
                .map_or(String::new(), |n| format!(", feed-forward {n}"));
            let step = info
                .interleave_moe_layer_step
                .map_or(String::new(), |n| format!(", every {n} layers"));
            format!("{experts}{used}{width}{step}")
        }),
    );
    optional("sliding window", info.sliding_window.map(|n| n.to_string()));
    optional(
        "attention chunk",
        info.attention_chunk_size.map(|n| n.to_string()),
    );
    optional("vocabulary", info.vocab_size.map(|n| n.to_string()));
    optional(
        "tokenizer",
        info.tokenizer_model
            .as_ref()
            .map(|model| match &info.tokenizer_pre {
                Some(pre) => format!("{model} (pre {pre})"),
                None => model.clone(),
            }),
    );
    optional(
        "chat template",
        Some(match &info.chat_template {
            Some(template) => format!("yes ({} bytes)", template.len()),
            None => "none".to_owned(),
        }),
    );
    optional(
        "projector",
        info.projector.as_ref().map(|projector| {
            format!(
                "mmproj, type {}",
                projector.projector_type.as_deref().unwrap_or("unknown")
            )
        }),
    );
    optional(
        "split",
        info.split
            .as_ref()
            .map(|split| format!("file {} of {}", split.index + 1, split.count)),
    );
    optional(
        "tensors",
        Some(format!(
            "{} tensors, {} ({} in experts)",
            info.tensors.len(),
            human_bytes(info.tensor_bytes),
            human_bytes(info.expert_tensor_bytes)
        )),
    );
    let by_type: Vec<String> = info
        .bytes_by_type
        .iter()
        .map(|(name, bytes)| format!("{name} {}", human_bytes(*bytes)))
        .collect();
    optional("tensor types", Some(by_type.join(", ")));
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_summary_names_the_llama4_facts() {
        let bytes = cria_gguf::fixture::llama4_text_model(1)
            .expect("fixture builds")
            .to_bytes();
        let file = cria_gguf::parse_bytes(&bytes).expect("fixture is valid");
        let info = cria_gguf::summarize(&file).expect("fixture summarises");
        let text = describe_model(Path::new("llama4.gguf"), &info);
        let value_of = |label: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(label))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(value_of("architecture"), "llama4");
        assert_eq!(value_of("layers"), "4");
        assert_eq!(value_of("heads"), "4 (2 key/value)");
        assert_eq!(
            value_of("experts"),
            "4, 1 used, feed-forward 96, every 2 layers"
        );
        assert_eq!(value_of("attention chunk"), "8192");
        assert_eq!(value_of("tokenizer"), "gpt2 (pre llama4)");
        assert!(value_of("chat template").starts_with("yes ("), "{text}");
        assert_eq!(value_of("quantization"), "F32");
        assert!(!text.contains("projector"));
    }
}
