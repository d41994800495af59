//! Crash tests of the store: a harness process (`cria-store-harness`) writes into a database
//! and prints what it has committed; these helpers SIGKILL it at chosen moments and check what
//! a fresh open finds. Shared by the integration tests (a few dozen runs) and the soak binary
//! (hundreds).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cria_store::{MessageId, MessageStatus, Store};

/// Pieces the harness streams before it finishes on its own.
pub const STREAM_PIECES: usize = 3000;

/// A small deterministic generator (SplitMix64): reproducible runs without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

const WORDS: &[&str] = &[
    "the",
    "llama",
    "reply",
    "기호를",
    "회의는",
    "北京",
    "東京",
    "🦙",
    "token",
    "stream",
    "é",
    "batch",
    "\n",
    "```rust",
    "fn",
    "main()",
    "데이터",
    "checkpoint",
    "WAL",
];

/// Piece `index` of the stream for `seed`: words in several scripts, some multi-byte.
pub fn stream_piece(seed: u64, index: usize) -> String {
    let mut rng = SplitMix64::new(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let word = WORDS[rng.below(WORDS.len() as u64) as usize];
    format!("{word} ")
}

/// The whole stream for `seed`.
pub fn full_stream(seed: u64) -> String {
    (0..STREAM_PIECES).map(|i| stream_piece(seed, i)).collect()
}

/// When to kill the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillAt {
    /// This long after spawning it (0: at once, before it has done anything).
    After(Duration),
    /// Right after it prints its `n`-th line starting with this word.
    Line(&'static str, usize),
}

/// What a killed harness printed before it died.
#[derive(Debug, Default)]
pub struct Printed {
    pub lines: Vec<String>,
}

impl Printed {
    /// The words after `prefix` on the first line starting with it.
    pub fn find(&self, prefix: &str) -> Option<Vec<String>> {
        self.lines.iter().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(prefix)).then(|| words.map(str::to_string).collect())
        })
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.lines
            .iter()
            .filter(|line| line.split_whitespace().next() == Some(prefix))
            .count()
    }

    /// The number after the last `ack`: committed bytes the harness knew were durable.
    pub fn last_ack(&self) -> u64 {
        self.lines
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("ack ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Runs the harness with `args`, kills it with SIGKILL at `kill`, returns its output up to then.
pub fn run_and_kill(harness: &Path, args: &[&str], kill: KillAt) -> anyhow::Result<Printed> {
    let mut child: Child = Command::new(harness)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", harness.display()))?;
    let stdout = child.stdout.take().context("harness stdout")?;
    let (sender, receiver) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut printed = Printed::default();
    // Every run ends within this bound even if the harness hangs.
    let deadline = Duration::from_secs(60);
    match kill {
        KillAt::After(delay) => {
            while started.elapsed() < delay {
                let left = delay.saturating_sub(started.elapsed());
                match receiver.recv_timeout(left) {
                    Ok(line) => printed.lines.push(line),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        KillAt::Line(word, nth) => {
            let mut seen = 0;
            while seen < nth && started.elapsed() < deadline {
                match receiver.recv_timeout(Duration::from_millis(100)) {
                    Ok(line) => {
                        if line.split_whitespace().next() == Some(word) {
                            seen += 1;
                        }
                        printed.lines.push(line);
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
    }
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no rollback runs.
    let _ = child.kill();
    child.wait().context("waiting for the killed harness")?;
    reader.join().ok();
    // Lines written before the kill were in the pipe; they still count as acknowledged.
    printed.lines.extend(receiver.try_iter());
    Ok(printed)
}

/// Runs the harness to completion (for timing and fixtures).
pub fn run_to_end(harness: &Path, args: &[&str]) -> anyhow::Result<Printed> {
    let output = Command::new(harness)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", harness.display()))?;
    ensure!(
        output.status.success(),
        "harness {args:?} failed: {}",
        output.status
    );
    Ok(Printed {
        lines: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    })
}

/// What one kill-while-streaming run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRun {
    pub acks: usize,
    pub acked_bytes: u64,
    pub stored_bytes: u64,
    pub during_checkpoint: bool,
    pub finished: bool,
}

/// The kill plan for run `seed`: every fifth at ~0 ms, every fifth during a checkpoint, the
/// rest at a random moment while the reply streams.
pub fn kill_plan(seed: u64) -> KillAt {
    let mut rng = SplitMix64::new(seed ^ 0xC0FFEE);
    match seed % 5 {
        0 => KillAt::After(Duration::ZERO),
        1 => KillAt::Line("checkpoint", 1 + rng.below(3) as usize),
        _ => KillAt::After(Duration::from_millis(1 + rng.below(120))),
    }
}

/// One run: stream into a fresh database under `dir`, SIGKILL, reopen, check everything the
/// store promises after a crash.
pub fn kill_while_streaming(harness: &Path, dir: &Path, seed: u64) -> anyhow::Result<StreamRun> {
    let db: PathBuf = dir.join(format!("run-{seed}")).join("cria.sqlite3");
    let kill = kill_plan(seed);
    let printed = run_and_kill(
        harness,
        &["stream", &db.to_string_lossy(), &seed.to_string()],
        kill,
    )?;
    let acked_bytes = printed.last_ack();
    let finished = printed.count("done") > 0;
    let run = StreamRun {
        acks: printed.count("ack"),
        acked_bytes,
        stored_bytes: 0,
        during_checkpoint: matches!(kill, KillAt::Line("checkpoint", _))
            && printed.count("checkpointed") < printed.count("checkpoint"),
        finished,
    };
    if !db.exists() {
        ensure!(run.acks == 0, "acknowledged commits but no database file");
        return Ok(run);
    }
    let store = Store::open(&db).context("reopening after the kill")?;
    let report = store.check_integrity()?;
    ensure!(
        report.integrity == ["ok"],
        "integrity_check: {:?}",
        report.integrity
    );
    ensure!(
        report.foreign_key_violations == 0,
        "{} foreign key violations",
        report.foreign_key_violations
    );
    let Some(ready) = printed.find("ready") else {
        ensure!(run.acks == 0, "acks before ready");
        // Killed before the reply existed for sure: whatever is there must be consistent.
        for conversation in store.list_conversations(10, 0)? {
            for message in store.all_messages(conversation.id)? {
                ensure!(
                    message.status != MessageStatus::Streaming,
                    "still streaming after open"
                );
            }
        }
        return Ok(run);
    };
    let message_id: i64 = ready
        .get(1)
        .and_then(|id| id.parse().ok())
        .context("ready line without a message id")?;
    let message = store.get_message(MessageId(message_id))?;
    let expected = full_stream(seed);
    ensure!(
        expected.starts_with(&message.content),
        "the stored reply is not a prefix of the stream ({} bytes stored)",
        message.content.len()
    );
    ensure!(
        message.content.len() as u64 >= acked_bytes,
        "lost acknowledged text: {} bytes stored, {acked_bytes} acknowledged",
        message.content.len()
    );
    let want = if finished {
        MessageStatus::Complete
    } else {
        MessageStatus::Interrupted
    };
    if message.status != want {
        bail!(
            "status {:?} after the kill, expected {want:?}",
            message.status
        );
    }
    Ok(StreamRun {
        stored_bytes: message.content.len() as u64,
        ..run
    })
}
