//! A process for the store's crash tests: it writes into a database and prints, after each
//! commit, what is now durable, so a test can SIGKILL it at any moment and check the promises.
//!
//! Usage:
//!   cria-store-harness stream <db> <seed>    stream a reply; `ready <conversation> <message>`,
//!                                            `ack <bytes>` after each commit, `checkpoint` /
//!                                            `checkpointed` around WAL checkpoints, `done`
//!   cria-store-harness migrate <db>          open (and so migrate) the database; `done`
//!   cria-store-harness import <db> <json>    import an export file; `done <conversation>`

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use cria_store::{GenerationStats, MessageStatus, Role, Store, StreamPolicy};
use cria_tests::store_crash::{STREAM_PIECES, SplitMix64, stream_piece};

fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn stream(db: &Path, seed: u64) -> anyhow::Result<()> {
    let store = Store::open(db)?;
    let conversation = store.create_conversation("crash test")?;
    let user = store.append_message(
        conversation.id,
        None,
        Role::User,
        "stream something",
        MessageStatus::Complete,
    )?;
    let reply = store.append_message(
        conversation.id,
        Some(user.id),
        Role::Assistant,
        "",
        MessageStatus::Streaming,
    )?;
    say(&format!("ready {} {}", conversation.id.0, reply.id.0))?;
    let mut rng = SplitMix64::new(seed);
    let policy = StreamPolicy {
        max_pieces: 1 + rng.below(4) as usize,
        max_interval: std::time::Duration::from_secs(3600),
        max_bytes: 1 << 20,
    };
    let checkpoint_every = 20 + rng.below(20);
    let mut writer = store.stream_reply(reply.id, policy);
    let mut commits = 0u64;
    for index in 0..STREAM_PIECES {
        if writer.push(&stream_piece(seed, index))? {
            commits += 1;
            say(&format!("ack {}", writer.committed_bytes()))?;
            if commits.is_multiple_of(checkpoint_every) {
                say("checkpoint")?;
                store.checkpoint()?;
                say("checkpointed")?;
            }
        }
    }
    writer.finish(MessageStatus::Complete, None, &GenerationStats::default())?;
    say("done")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["stream", db, seed] => stream(Path::new(db), seed.parse().context("seed")?),
        ["migrate", db] => {
            Store::open(Path::new(db))?;
            say("done")
        }
        ["import", db, json] => {
            let store = Store::open(Path::new(db))?;
            say("opened")?;
            let file = std::fs::File::open(json).context("opening the export")?;
            let id = store.import_json(std::io::BufReader::new(file))?;
            say(&format!("done {}", id.0))
        }
        _ => bail!(
            "usage: cria-store-harness stream <db> <seed> | migrate <db> | import <db> <json>"
        ),
    }
}
