//! The replicated state machine: openraft's view of the store.
//!
//! Owns the bridge between committed log entries and
//! [`tocsin_store::Store::apply_batch`], and the snapshot files. Data and
//! the applied log position are written in one SQLite transaction; the
//! metadata openraft needs (last applied log id, membership) travels in
//! that transaction as an opaque string the store keeps for us.
//!
//! Snapshots are consistent copies of the state database (`VACUUM INTO`),
//! kept as files under `snapshots/` with a `current.json` naming the
//! newest. At start, a state database older than the current snapshot (a
//! power cut after the log was purged) is first restored from it, so the
//! state never needs entries the log no longer has.
//!
//! It must never read the clock or the environment while applying
//! (invariant 2); timing is only measured for metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant as StdInstant;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
};
use serde::{Deserialize, Serialize};
use tocsin_store::{Reader, Store, revision_of};
use tokio::sync::Mutex;

use crate::metrics::ClusterMetrics;
use crate::types::{
    Entry, LogId, NodeId, NodeInfo, Response, StorageError, StoredMembership, TypeConfig,
};

/// What openraft needs to know about the applied state, stored with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AppliedMeta {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

impl AppliedMeta {
    fn decode(raw: Option<String>) -> Result<AppliedMeta, String> {
        match raw {
            None => Ok(AppliedMeta::default()),
            Some(raw) => serde_json::from_str(&raw).map_err(|e| e.to_string()),
        }
    }
}

/// The snapshot files of one node.
#[derive(Clone)]
struct SnapshotFiles {
    dir: PathBuf,
    /// Serialises "make this the current snapshot" between the builder and
    /// an install.
    switch: Arc<Mutex<()>>,
}

#[derive(Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMeta<NodeId, NodeInfo>,
    file: String,
}

fn write_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn snapshot_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::read_state_machine(AnyError::error(e.to_string())).into()
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the
/// new content: temporary file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl SnapshotFiles {
    fn current_path(&self) -> PathBuf {
        self.dir.join("current.json")
    }

    fn read_current(&self) -> Result<Option<CurrentSnapshot>, String> {
        match std::fs::read(self.current_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Makes `file` (already in `dir`, fsynced) the current snapshot and
    /// removes the older ones.
    fn make_current(
        &self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        file: &str,
    ) -> Result<(), String> {
        let current = CurrentSnapshot {
            meta: meta.clone(),
            file: file.to_owned(),
        };
        let bytes = serde_json::to_vec(&current).map_err(|e| e.to_string())?;
        write_atomically(&self.current_path(), &bytes).map_err(|e| e.to_string())?;
        self.remove_all_but(file);
        Ok(())
    }

    fn remove_all_but(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("snapshot-") && name != keep {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The state machine handed to openraft.
pub struct StateMachine {
    /// Only the applying task uses it; the mutex makes the machine `Sync`
    /// as openraft requires, and is never contended.
    store: std::sync::Mutex<Store>,
    applied: AppliedMeta,
    snapshots: SnapshotFiles,
    metrics: ClusterMetrics,
}

impl StateMachine {
    /// Opens the state database and reconciles it with the current snapshot.
    pub(crate) fn open(data_dir: &Path, metrics: ClusterMetrics) -> Result<StateMachine, String> {
        let snapshots = SnapshotFiles {
            dir: data_dir.join("snapshots"),
            switch: Arc::new(Mutex::new(())),
        };
        std::fs::create_dir_all(&snapshots.dir)
            .map_err(|e| format!("{}: {e}", snapshots.dir.display()))?;
        let mut store = Store::open(&data_dir.join("state.db")).map_err(|e| e.to_string())?;
        let mut applied = AppliedMeta::decode(store.raft_meta().map_err(|e| e.to_string())?)?;
        if let Some(current) = snapshots.read_current()? {
            let snapshot_is_newer = current.meta.last_log_id > applied.last_applied;
            if snapshot_is_newer {
                tracing::warn!(
                    snapshot = ?current.meta.last_log_id,
                    applied = ?applied.last_applied,
                    "state database is older than the current snapshot; restoring it from the snapshot"
                );
                store
                    .import_snapshot(&snapshots.dir.join(&current.file))
                    .map_err(|e| e.to_string())?;
                applied = AppliedMeta::decode(store.raft_meta().map_err(|e| e.to_string())?)?;
            }
        }
        Ok(StateMachine {
            store: std::sync::Mutex::new(store),
            applied,
            snapshots,
            metrics,
        })
    }

    /// A reader of the state this machine writes.
    pub(crate) fn reader(&self) -> Reader {
        self.store().reader()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply_entries(&mut self, entries: &[Entry]) -> Result<Vec<Response>, StorageError> {
        let mut meta = self.applied.clone();
        for entry in entries {
            meta.last_applied = Some(entry.log_id);
            if let EntryPayload::Membership(membership) = &entry.payload {
                meta.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
        }
        let meta_json = serde_json::to_string(&meta).map_err(write_err)?;
        let mut items = Vec::new();
        let mut per_entry = Vec::with_capacity(entries.len());
        for entry in entries {
            let commands = commands_of(entry)?;
            per_entry.push(commands.len());
            for (position, command) in commands.iter().enumerate() {
                items.push((revision_of(entry.log_id.index, position), command));
            }
        }
        let mut outcomes = self
            .store()
            .apply_batch(items, &meta_json)
            .map_err(write_err)?
            .into_iter();
        self.metrics.commands_applied.inc_by(outcomes.len() as u64);
        if let Some(last) = meta.last_applied {
            self.metrics.applied_index.set(last.index as i64);
        }
        self.applied = meta;
        Ok(per_entry
            .into_iter()
            .map(|count| Response(outcomes.by_ref().take(count).collect()))
            .collect())
    }
}

/// The commands an entry carries; none for blank and membership entries.
fn commands_of(entry: &Entry) -> Result<&[tocsin_store::Command], StorageError> {
    match &entry.payload {
        EntryPayload::Normal(envelope) => {
            envelope.check_format().map_err(|e| {
                StorageError::from(StorageIOError::apply(
                    entry.log_id,
                    AnyError::error(e.to_string()),
                ))
            })?;
            Ok(&envelope.commands)
        }
        EntryPayload::Blank | EntryPayload::Membership(_) => Ok(&[]),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let started = StdInstant::now();
        let responses = tokio::task::block_in_place(|| self.apply_entries(&entries))?;
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            reader: self.store().reader(),
            files: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshots.dir.join("incoming.db");
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .await
            .map_err(snapshot_err)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        snapshot.sync_all().await.map_err(snapshot_err)?;
        drop(snapshot);
        let _switch = self.snapshots.switch.lock().await;
        let incoming = self.snapshots.dir.join("incoming.db");
        let file = format!("snapshot-{}.db", meta.snapshot_id);
        let path = self.snapshots.dir.join(&file);
        std::fs::rename(&incoming, &path).map_err(snapshot_err)?;
        sync_dir(&path).map_err(snapshot_err)?;
        tokio::task::block_in_place(|| self.store().import_snapshot(&path))
            .map_err(snapshot_err)?;
        let applied = AppliedMeta {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let meta_json = serde_json::to_string(&applied).map_err(write_err)?;
        self.store()
            .apply_batch(std::iter::empty(), &meta_json)
            .map_err(write_err)?;
        self.applied = applied;
        self.snapshots
            .make_current(meta, &file)
            .map_err(snapshot_err)?;
        tracing::info!(last_log_id = ?meta.last_log_id, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(current) = self.snapshots.read_current().map_err(read_err)? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.snapshots.dir.join(&current.file))
            .await
            .map_err(read_err)?;
        Ok(Some(Snapshot {
            meta: current.meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Builds snapshots from a consistent read of the state database, beside
/// the applying task.
pub struct SnapshotBuilder {
    reader: Reader,
    files: SnapshotFiles,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _switch = self.files.switch.lock().await;
        let building = self.files.dir.join("building.db");
        let _ = std::fs::remove_file(&building);
        let reader = self.reader.clone();
        let target = building.clone();
        let raw_meta = tokio::task::spawn_blocking(move || reader.export_snapshot(&target))
            .await
            .map_err(snapshot_err)?
            .map_err(snapshot_err)?;
        let applied = AppliedMeta::decode(raw_meta).map_err(snapshot_err)?;
        let snapshot_id = match applied.last_applied {
            Some(id) => format!("{}-{}", id.leader_id.term, id.index),
            None => "0-0".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        };
        let file = format!("snapshot-{}.db", meta.snapshot_id);
        let path = self.files.dir.join(&file);
        std::fs::File::open(&building)
            .and_then(|f| f.sync_all())
            .map_err(snapshot_err)?;
        std::fs::rename(&building, &path).map_err(snapshot_err)?;
        self.files
            .make_current(&meta, &file)
            .map_err(snapshot_err)?;
        let handle = tokio::fs::File::open(&path).await.map_err(snapshot_err)?;
        tracing::info!(last_log_id = ?meta.last_log_id, "built a snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(handle),
        })
    }
}
