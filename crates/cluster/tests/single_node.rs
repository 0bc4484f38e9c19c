//! A cluster of one: the embedded default, on the same code path as three.

use std::time::Duration;

use tocsin_calendar::Instant;
use tocsin_cluster::{Cluster, ClusterConfig, ClusterMetrics, NodeInfo};
use tocsin_store::{Command, CreateUser, Outcome};

fn config(dir: &std::path::Path) -> ClusterConfig {
    ClusterConfig::single_node(
        dir.to_owned(),
        NodeInfo {
            raft_addr: "127.0.0.1:1".into(),
            api_url: "http://127.0.0.1:1".into(),
        },
    )
}

async fn start(dir: &std::path::Path) -> (Cluster, ClusterMetrics) {
    let metrics = ClusterMetrics::default();
    let cluster = Cluster::start(config(dir), metrics.clone())
        .await
        .expect("start");
    wait_for_leadership(&cluster).await;
    (cluster, metrics)
}

async fn wait_for_leadership(cluster: &Cluster) {
    let mut leadership = cluster.leadership();
    tokio::time::timeout(
        Duration::from_secs(10),
        leadership.wait_for(|leading| *leading),
    )
    .await
    .expect("became leader in time")
    .expect("leadership watch open");
}

fn create_user(name: &str) -> Command {
    Command::CreateUser(CreateUser {
        name: name.into(),
        password_hash: "h".into(),
        display_name: None,
        addresses: vec![],
        default_calendar: None,
        at: Instant::from_millis(1),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_command_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = start(dir.path()).await;
    let outcome = cluster.propose(create_user("alice")).await.unwrap();
    assert!(matches!(outcome, Outcome::Applied { created: true, .. }));
    let digest = cluster.reader().read(|q| q.digest()).unwrap();
    cluster.shutdown().await;
    drop(cluster);

    let (cluster, _) = start(dir.path()).await;
    let alice = cluster.reader().read(|q| q.principal("alice")).unwrap();
    assert!(alice.is_some());
    assert_eq!(cluster.reader().read(|q| q.digest()).unwrap(), digest);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, metrics) = start(dir.path()).await;
    let flushes_before = metrics.log_flushes.get();
    const PROPOSERS: usize = 64;
    const EACH: usize = 10;
    let mut tasks = Vec::new();
    for p in 0..PROPOSERS {
        let cluster = cluster.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let outcome = cluster
                    .propose(create_user(&format!("u{p}-{i}")))
                    .await
                    .unwrap();
                assert!(matches!(outcome, Outcome::Applied { .. }));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let commands = (PROPOSERS * EACH) as u64;
    let flushes = metrics.log_flushes.get() - flushes_before;
    let counts = cluster.reader().read(|q| q.counts()).unwrap();
    assert_eq!(counts.users, commands);
    eprintln!("{flushes} log flushes for {commands} commands");
    assert!(
        flushes < commands,
        "{flushes} fsyncs for {commands} commands: no group commit"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_after_a_snapshot_and_purge_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = start(dir.path()).await;
    for i in 0..20 {
        cluster
            .propose(create_user(&format!("before{i}")))
            .await
            .unwrap();
    }
    cluster.trigger_snapshot().await.unwrap();
    let mut waited = 0;
    while cluster.status().await.purged_index.is_none() && waited < 100 {
        // Purging follows the snapshot asynchronously.
        cluster
            .propose(create_user(&format!("filler{waited}")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert!(dir.path().join("snapshots/current.json").exists());
    cluster.propose(create_user("after")).await.unwrap();
    let digest = cluster.reader().read(|q| q.digest()).unwrap();
    cluster.shutdown().await;
    drop(cluster);

    let (cluster, _) = start(dir.path()).await;
    assert_eq!(cluster.reader().read(|q| q.digest()).unwrap(), digest);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_another_cluster_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Built by hand rather than by a first run, so no connection of that
    // run can still be closing (and checkpointing) while we compare.
    std::fs::write(
        dir.path().join("node.json"),
        r#"{"cluster":"tocsin","node_id":1}"#,
    )
    .unwrap();
    drop(tocsin_store::Store::open(&dir.path().join("state.db")).unwrap());
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let before = listing(dir.path());
    let mut other = config(dir.path());
    other.cluster = "elsewhere".into();
    let err = Cluster::start(other, ClusterMetrics::default())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("belongs to cluster"), "{err}");
    assert_eq!(listing(dir.path()), before);
}
