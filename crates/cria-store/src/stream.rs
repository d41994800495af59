//! Writing a reply while it streams: pieces are buffered and committed in small batches.
//!
//! Contract: after [`ReplyStream::push`] returns `Ok(true)` or [`ReplyStream::flush`] returns
//! `Ok(())`, everything pushed so far is committed and survives a crash of the process (WAL with
//! `synchronous = NORMAL`); a power loss may lose the batches since the last checkpoint or
//! finish. [`ReplyStream::finish`] commits with `synchronous = FULL`. Batching keeps the
//! write rate bounded however fast tokens come; the time bound is checked when a piece
//! arrives (a stalled generator commits on its next piece or on `flush`).

use std::time::{Duration, Instant};

use crate::messages::{GenerationStats, Message, MessageId, MessageStatus};
use crate::{Result, Store};

/// When a batch is committed: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPolicy {
    pub max_pieces: usize,
    pub max_interval: Duration,
    pub max_bytes: usize,
}

impl Default for StreamPolicy {
    /// At most ~4 commits a second at 100+ tokens/s, and at most 250 ms of text at risk.
    fn default() -> Self {
        StreamPolicy {
            max_pieces: 32,
            max_interval: Duration::from_millis(250),
            max_bytes: 16 * 1024,
        }
    }
}

/// A streaming reply being written; see the module docs for what is durable when.
pub struct ReplyStream<'store> {
    store: &'store Store,
    id: MessageId,
    policy: StreamPolicy,
    pending: String,
    pending_pieces: usize,
    last_commit: Instant,
    committed_bytes: u64,
}

impl<'store> ReplyStream<'store> {
    pub(crate) fn new(store: &'store Store, id: MessageId, policy: StreamPolicy) -> Self {
        ReplyStream {
            store,
            id,
            policy,
            pending: String::new(),
            pending_pieces: 0,
            last_commit: Instant::now(),
            committed_bytes: 0,
        }
    }

    pub fn message_id(&self) -> MessageId {
        self.id
    }

    /// Bytes of text committed by this stream so far.
    pub fn committed_bytes(&self) -> u64 {
        self.committed_bytes
    }

    /// Adds a piece; returns `true` when this call committed a batch.
    pub fn push(&mut self, piece: &str) -> Result<bool> {
        self.pending.push_str(piece);
        self.pending_pieces += 1;
        let due = self.pending_pieces >= self.policy.max_pieces
            || self.pending.len() >= self.policy.max_bytes
            || self.last_commit.elapsed() >= self.policy.max_interval;
        if due {
            self.flush()?;
        }
        Ok(due)
    }

    /// Commits whatever is buffered (nothing to do if the buffer is empty).
    pub fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.store.append_text(self.id, &self.pending)?;
            self.committed_bytes += self.pending.len() as u64;
            self.pending.clear();
        }
        self.pending_pieces = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits the rest and ends the message with its final status and figures.
    pub fn finish(
        mut self,
        status: MessageStatus,
        error: Option<&str>,
        stats: &GenerationStats,
    ) -> Result<Message> {
        self.flush()?;
        self.store.finish_message(self.id, status, error, stats)?;
        self.store.get_message(self.id)
    }
}
