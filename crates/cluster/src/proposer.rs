//! Group commit: concurrent proposals share one log entry, one fsync.
//!
//! Owns the queue between [`crate::Cluster::propose`] and openraft. One
//! task drains whatever proposals are waiting into one [`Envelope`] (up to
//! named bounds on count and bytes) and writes it as one raft entry; while
//! that entry is being made durable the next batch accumulates. Replies go
//! back to each proposer with its own outcome.
//!
//! openraft 0.9 waits for every append to be flushed before it takes the
//! next one, so batching must happen above it; this is that place. It
//! must never reorder commands within a batch or drop a reply: every
//! proposal is answered, with an outcome or an error.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use tocsin_store::{Command, ENVELOPE_COMMANDS_MAX, Envelope, Outcome};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::ProposeError;
use crate::types::Raft;

/// Proposals waiting for a batch; `propose` waits when it is full.
pub(crate) const PROPOSALS_QUEUED_MAX: usize = 4096;
/// Commands in one log entry.
const BATCH_COMMANDS_MAX: usize = 512;
/// Approximate bytes of commands in one log entry; a single larger
/// command still goes, alone.
const BATCH_BYTES_MAX: usize = 4 << 20;
/// Log entries written but not yet applied: one being flushed, one
/// queued behind it, so the queue never waits for the state machine.
const WRITES_IN_FLIGHT_MAX: usize = 2;

type Reply = oneshot::Sender<Result<Outcome, ProposeError>>;

/// One command and where its answer goes.
pub(crate) struct Proposal {
    pub(crate) command: Command,
    pub(crate) reply: Reply,
}

/// Starts the batching task; proposals go into the returned sender.
pub(crate) fn start(raft: Raft) -> mpsc::Sender<Proposal> {
    let (tx, rx) = mpsc::channel(PROPOSALS_QUEUED_MAX);
    tokio::spawn(run(raft, rx));
    tx
}

/// The size a command adds to an entry, roughly: its texts dominate.
fn weight(command: &Command) -> usize {
    match command {
        Command::PutObject(put) => put.ical.len() + 512,
        Command::Noop { padding } => padding.len() + 64,
        _ => 512,
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Proposal>) {
    let slots = Arc::new(Semaphore::new(WRITES_IN_FLIGHT_MAX));
    let mut carried: Option<Proposal> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => break,
            },
        };
        let (batch, overflow) = collect_batch(first, &mut rx);
        carried = overflow;
        let raft = raft.clone();
        tokio::spawn(async move {
            write_batch(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Takes `first` and whatever else is waiting, within the bounds; returns
/// the batch and the proposal that did not fit, if any.
fn collect_batch(
    first: Proposal,
    rx: &mut mpsc::Receiver<Proposal>,
) -> (Vec<Proposal>, Option<Proposal>) {
    let commands_max = BATCH_COMMANDS_MAX.min(ENVELOPE_COMMANDS_MAX);
    let mut bytes = weight(&first.command);
    let mut batch = vec![first];
    while batch.len() < commands_max {
        let Ok(next) = rx.try_recv() else {
            break;
        };
        let next_bytes = weight(&next.command);
        if bytes + next_bytes > BATCH_BYTES_MAX {
            return (batch, Some(next));
        }
        bytes += next_bytes;
        batch.push(next);
    }
    (batch, None)
}

async fn write_batch(raft: &Raft, batch: Vec<Proposal>) {
    let (commands, replies): (Vec<Command>, Vec<Reply>) =
        batch.into_iter().map(|p| (p.command, p.reply)).unzip();
    let count = commands.len();
    let result = raft.client_write(Envelope::new(commands)).await;
    match result {
        Ok(response) if response.data.0.len() == count => {
            for (reply, outcome) in replies.into_iter().zip(response.data.0) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Ok(response) => {
            let error = ProposeError::Unavailable(format!(
                "{} outcomes for {count} commands",
                response.data.0.len()
            ));
            answer_all(replies, error);
        }
        Err(e) => answer_all(replies, propose_error(e)),
    }
}

fn answer_all(replies: Vec<Reply>, error: ProposeError) {
    for reply in replies {
        let _ = reply.send(Err(error.clone()));
    }
}

fn propose_error(
    e: RaftError<crate::NodeId, ClientWriteError<crate::NodeId, crate::NodeInfo>>,
) -> ProposeError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ProposeError::NotLeader {
                leader: forward.leader_id.zip(forward.leader_node),
            }
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ProposeError::Unavailable(e.to_string())
        }
        RaftError::Fatal(fatal) => ProposeError::Unavailable(fatal.to_string()),
    }
}
