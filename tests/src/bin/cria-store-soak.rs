//! The store's soak test and benchmark (not part of `cargo test`). Run in release:
//!
//!   cargo build --release -p cria-tests --bins
//!   target/release/cria-store-soak kill <runs>   kill -9 while streaming, <runs> seeds
//!   target/release/cria-store-soak bench         search, listing and commit latencies
//!
//! It finds `cria-store-harness` next to its own executable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cria_store::{DocumentPage, MessageStatus, NewChunk, Role, Store, StreamPolicy};
use cria_tests::store_crash::{SplitMix64, kill_while_streaming};

fn harness_path() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me
        .with_file_name("cria-store-harness")
        .with_extension(std::env::consts::EXE_EXTENSION);
    anyhow::ensure!(
        path.exists(),
        "{} not found; build the bins first",
        path.display()
    );
    Ok(path)
}

fn kill_soak(runs: u64) -> anyhow::Result<()> {
    let harness = harness_path()?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (mut checkpoint_kills, mut finished, mut no_reply, mut acks) = (0, 0, 0, 0usize);
    let mut max_unacked = 0u64;
    for seed in 0..runs {
        let run = kill_while_streaming(&harness, dir.path(), 1000 + seed)
            .with_context(|| format!("seed {}", 1000 + seed))?;
        checkpoint_kills += usize::from(run.during_checkpoint);
        finished += usize::from(run.finished);
        no_reply += usize::from(run.acks == 0);
        acks += run.acks;
        max_unacked = max_unacked.max(run.stored_bytes.saturating_sub(run.acked_bytes));
        // Keep the disk use of a long soak flat.
        std::fs::remove_dir_all(dir.path().join(format!("run-{}", 1000 + seed))).ok();
    }
    println!(
        "kill -9 soak: {runs} runs passed in {:.1} s; {checkpoint_kills} killed inside a \
         checkpoint, {no_reply} before the first ack, {finished} finished before the kill; \
         {acks} acks checked; at most {max_unacked} bytes committed past the last ack",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// p50/p95/p99/max of durations, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n={})",
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

const VOCABULARY: &[&str] = &[
    "llama",
    "model",
    "context",
    "window",
    "token",
    "memory",
    "graph",
    "paris",
    "vector",
    "kernel",
    "thread",
    "rust",
    "python",
    "garden",
    "recipe",
    "travel",
    "budget",
    "weather",
    "기호를",
    "회의는",
    "데이터",
    "서울",
    "학교에서",
    "北京",
    "東京",
    "大学",
    "文書",
    "invoice",
    "contract",
    "summary",
    "meeting",
    "quantum",
    "battery",
    "camera",
    "guitar",
    "history",
];

fn sentence(rng: &mut SplitMix64, words: usize) -> String {
    let mut text = String::new();
    for _ in 0..words {
        // One word in eight is a topic word; the rest spread over a large vocabulary, as in
        // real text.
        if rng.below(8) == 0 {
            text.push_str(VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize]);
            text.push(' ');
        } else {
            text.push_str(&format!("w{} ", rng.below(20_000)));
        }
    }
    text
}

fn bench() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.sqlite3"))?;
    let mut rng = SplitMix64::new(42);
    let setup = Instant::now();
    // 10k conversations x 10 messages, written through the schema's triggers in big batches.
    for batch in 0..100 {
        store.with_tx(|tx| {
            let mut insert_conversation = tx.prepare(
                "INSERT INTO conversations (title, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?2)",
            )?;
            let mut insert_message = tx.prepare(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, \
                 created_at_ms) VALUES (?1, ?2, ?3, ?4, 'complete', ?5)",
            )?;
            for c in 0..100 {
                let n = batch * 100 + c;
                insert_conversation.execute((format!("conversation {n}"), 1_700_000_000_000i64 + n))?;
                let conversation = tx.last_insert_rowid();
                let mut parent: Option<i64> = None;
                for m in 0..10 {
                    let role = if m % 2 == 0 { "user" } else { "assistant" };
                    let words = if m % 2 == 0 { 24 } else { 120 };
                    insert_message.execute((conversation, parent, role, sentence(&mut rng, words), n))?;
                    parent = Some(tx.last_insert_rowid());
                }
            }
            Ok(())
        })?;
    }
    // 10k document chunks: 100 documents of 100 chunks.
    let conversation = store.create_conversation("documents")?;
    let holder = store.append_message(
        conversation.id,
        None,
        Role::User,
        "docs",
        MessageStatus::Complete,
    )?;
    for d in 0..100 {
        let meta = cria_store::AttachmentMeta {
            original_name: format!("doc{d}.pdf"),
            mime: "application/pdf".into(),
            kind: cria_store::AttachmentKind::Document,
        };
        let attachment =
            store.add_attachment(holder.id, &meta, format!("document {d}").as_bytes())?;
        let chunks: Vec<NewChunk> = (0..100)
            .map(|c| NewChunk {
                page_number: 1 + c / 10,
                line_start: 1 + (c % 10) * 20,
                line_end: 20 + (c % 10) * 20,
                text: sentence(&mut rng, 150),
            })
            .collect();
        let pages: Vec<DocumentPage> = (1..=10)
            .map(|p| DocumentPage {
                page_number: p,
                text: format!("page {p}"),
                text_layer_usable: true,
            })
            .collect();
        store.put_document(&attachment.sha256, &pages, &chunks)?;
    }
    store.checkpoint()?;
    println!(
        "setup: 100k messages, 10k chunks in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // Three kinds of query: a topic word (in ~1 of 5 messages), two topic words, and a rare
    // word (a handful of messages).
    for (kind, label) in [
        (0, "one topic word"),
        (1, "two topic words"),
        (2, "one rare word"),
    ] {
        let mut samples = Vec::new();
        let mut hits_total = 0;
        for _ in 0..150 {
            let query = match kind {
                0 => VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize].to_string(),
                1 => format!(
                    "{} {}",
                    VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize],
                    VOCABULARY[rng.below(VOCABULARY.len() as u64) as usize]
                ),
                _ => format!("w{}", rng.below(20_000)),
            };
            let started = Instant::now();
            let hits = store.search(&query, 20)?;
            samples.push(started.elapsed());
            hits_total += hits.len();
        }
        println!(
            "search {label} (messages + chunks, top 20, {hits_total} hits): {}",
            percentiles(samples)
        );
    }

    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let page = store.list_conversations(50, 0)?;
        samples.push(started.elapsed());
        anyhow::ensure!(page.len() == 50);
    }
    println!(
        "list first page of 50 (10k conversations): {}",
        percentiles(samples)
    );
    let mut samples = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let all = store.list_conversations(20_000, 0)?;
        samples.push(started.elapsed());
        anyhow::ensure!(all.len() > 10_000);
    }
    println!("list all 10k conversations: {}", percentiles(samples));

    // Replies of 4096 tokens (128 batches of 32), as long answers are: a batch rewrites the
    // row, so its cost grows with the length of the reply.
    let batch: String = (0..32).map(|i| format!("tok{i} ")).collect();
    let mut samples = Vec::new();
    let mut reply = holder.clone();
    for n in 0..2048 {
        if n % 128 == 0 {
            if n > 0 {
                store.finalize_message(reply.id, MessageStatus::Complete, None)?;
            }
            reply = store.append_message(
                conversation.id,
                Some(holder.id),
                Role::Assistant,
                "",
                MessageStatus::Streaming,
            )?;
        }
        let started = Instant::now();
        store.append_text(reply.id, &batch)?;
        samples.push(started.elapsed());
    }
    println!(
        "streaming batch commit (32 tokens into replies of up to 4096, WAL, NORMAL): {}",
        percentiles(samples)
    );
    let mut writer = store.stream_reply(reply.id, StreamPolicy::default());
    writer.push("end")?;
    let started = Instant::now();
    writer.finish(MessageStatus::Complete, None, &Default::default())?;
    println!(
        "finish (synchronous=FULL) once: {:.3} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["kill", runs] => kill_soak(runs.parse().context("runs")?),
        ["bench"] => bench(),
        _ => bail!("usage: cria-store-soak kill <runs> | bench"),
    }
}
