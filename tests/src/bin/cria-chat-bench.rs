//! Benchmark: does a follow-up in a long conversation cost only its new tokens?
//!
//! Runs a 20-turn conversation through the whole core (store, context assembly, the llama.cpp
//! worker) with a real model, then sends turn 21 and compares its time to first token with the
//! time to first token of the same message sent alone in a fresh conversation (whose prompt is
//! only that message). Issue 7's target: follow-up TTFT <= 1.1x the new turn alone.
//!
//! Usage: cria-chat-bench MODEL.gguf [TURNS]

use std::path::PathBuf;
use std::time::Instant;

use cria_core::{AppPaths, Cria, TurnEvent, TurnRequest};
use cria_engine::{CancelToken, EngineHandle, SupervisorOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: cria-chat-bench MODEL.gguf [TURNS]"))?,
    );
    let turns: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(20);
    // `RUST_LOG=cria_engine=debug` (with `CRIA_LOG=cria_engine=debug` for the worker) shows the
    // worker's per-request timings: rendering, tokenizing, prefill.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(model, turns))
}

struct Measured {
    ttft_ms: u32,
    prompt_tokens: u32,
    reused_tokens: u32,
}

async fn turn(
    cria: &Cria,
    conversation: Option<cria_core::ConversationId>,
    text: &str,
) -> anyhow::Result<(cria_core::ConversationId, Measured)> {
    let mut summary = None;
    let started = cria
        .send(
            TurnRequest {
                conversation,
                text: text.into(),
                ..TurnRequest::default()
            },
            CancelToken::default(),
            |event| {
                if let TurnEvent::Summary(s) = event {
                    summary = Some(s);
                }
            },
        )
        .await?;
    let stats = summary.ok_or_else(|| anyhow::anyhow!("no summary"))?.stats;
    Ok((
        started.conversation_id,
        Measured {
            ttft_ms: stats.ttft_ms.unwrap_or_default(),
            prompt_tokens: stats.prompt_tokens.unwrap_or_default(),
            reused_tokens: stats.reused_tokens.unwrap_or_default(),
        },
    ))
}

async fn run(model: PathBuf, turns: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let worker = std::env::current_exe()?.with_file_name("cria-worker-host");
    let handle = EngineHandle::new(SupervisorOptions::program(worker));
    let cria =
        Cria::open_with_engine_handle(AppPaths::in_dir(dir.path().join("data")), handle.clone())?;
    let imported = cria.import_model(model).await?;
    cria.select_model(imported.id).await?;
    let mut settings = cria.chat_settings().await?;
    settings.temperature = 0.0;
    settings.auto_title = false;
    settings.max_reply_tokens = Some(48);
    cria.set_chat_settings(settings).await?;

    let started = Instant::now();
    let mut conversation = None;
    for index in 0..turns {
        let text = format!(
            "Turn {index}: tell me one short fact about the number {index} and about rivers."
        );
        let (id, _) = turn(&cria, conversation, &text).await?;
        conversation = Some(id);
    }
    let setup_s = started.elapsed().as_secs_f64();
    let new_message = "Now summarise in one sentence what we talked about, please, with care.";
    // Median of three rounds, alternating so that a busy machine hurts both sides alike. The
    // engine caches one conversation: before each later round, one unmeasured turn in the long
    // conversation brings its cache back (as a user returning to it would).
    let mut follow_ups = Vec::new();
    let mut alones = Vec::new();
    let mut colds = Vec::new();
    let mut last = None;
    for round in 0..3 {
        if round > 0 {
            // The cache holds the other conversation: this turn prefills the whole history.
            let (_, cold) =
                turn(&cria, conversation, "One more fact about rivers, please.").await?;
            colds.push(cold.ttft_ms);
        }
        let (_, follow_up) = turn(&cria, conversation, new_message).await?;
        let (_, alone) = turn(&cria, None, new_message).await?;
        follow_ups.push(follow_up.ttft_ms);
        alones.push(alone.ttft_ms);
        last = Some((follow_up, alone));
    }
    follow_ups.sort_unstable();
    alones.sort_unstable();
    let (follow_up, alone) = last.ok_or_else(|| anyhow::anyhow!("no rounds"))?;
    println!("conversation: {turns} turns built in {setup_s:.1} s");
    println!(
        "follow-up:  prompt {} positions, {} reused, TTFT median {} ms ({follow_ups:?})",
        follow_up.prompt_tokens, follow_up.reused_tokens, follow_ups[1]
    );
    println!(
        "alone:      prompt {} positions, {} reused, TTFT median {} ms ({alones:?})",
        alone.prompt_tokens, alone.reused_tokens, alones[1]
    );
    println!("cold:       the whole history prefilled, TTFT {colds:?} ms");
    println!(
        "ratio follow-up / alone: {:.2}",
        f64::from(follow_ups[1]) / f64::from(alones[1].max(1))
    );
    handle.shutdown().await;
    Ok(())
}
