//! The store on a disk that loses power (lifeboat-powercut): whatever a commit
//! acknowledged survives the cut, starting from a disk without the store's directory.
//!
//! Needs /dev/fuse and fusermount3 (Debian's fuse3; scripts/test installs it).

use std::path::Path;

use lifeboat_powercut::{PowerCut, Tear};
use lifeboat_store::io::{create_dir_all_durable, write_file_durable};
use lifeboat_store::*;

/// One power-cut disk at a time: the tests run one after the other, so that none
/// waits on another's file-system threads (the archive indexer runs at a lower
/// priority and starved behind them once).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Disk {
    backing: tempfile::TempDir,
    mountpoint: tempfile::TempDir,
    fs: Option<PowerCut>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Disk {
    fn new() -> Disk {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let backing = tempfile::tempdir().unwrap();
        let mountpoint = tempfile::tempdir().unwrap();
        let fs = PowerCut::mount(backing.path(), mountpoint.path()).unwrap();
        Disk {
            backing,
            mountpoint,
            fs: Some(fs),
            _turn: turn,
        }
    }

    fn at(&self, path: &str) -> std::path::PathBuf {
        self.mountpoint.path().join(path)
    }

    /// Cuts the power, then mounts what survived.
    fn cut(&mut self, tear: Tear) {
        let mut fs = self.fs.take().unwrap();
        fs.cut(tear);
        fs.unmount().unwrap();
        self.fs = Some(PowerCut::mount(self.backing.path(), self.mountpoint.path()).unwrap());
    }
}

fn put_domain(store: &Store, name: &str) {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: name.into(),
        upstream: "127.0.0.1:2526".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    store.commit(batch).unwrap();
}

fn domains(store: &Store) -> Vec<String> {
    store.read(|s| s.domains().map(|d| d.name.clone()).collect())
}

/// The first start on an empty disk: the store directory and its parents are new. A
/// commit acknowledged before the cut is there after it.
#[test]
fn a_new_store_survives_a_power_cut() {
    let mut disk = Disk::new();
    let dir = disk.at("var/lib/lifeboat/store");
    let store = Store::open(&dir, Options::default()).unwrap();
    put_domain(&store, "example.test");
    disk.fs.as_mut().unwrap().cut(Tear::None);
    // Closing after the cut writes nothing more (every write fails).
    drop(store);
    let fs = disk.fs.take().unwrap();
    fs.unmount().unwrap();
    disk.fs = Some(PowerCut::mount(disk.backing.path(), disk.mountpoint.path()).unwrap());
    let store = Store::open(&dir, Options::default()).unwrap();
    assert_eq!(domains(&store), vec!["example.test".to_string()]);
}

#[test]
fn directories_created_durably_survive_a_power_cut() {
    let mut disk = Disk::new();
    create_dir_all_durable(&disk.at("a/b/c")).unwrap();
    // Exists already: still fine, and its entry is synced again.
    create_dir_all_durable(&disk.at("a/b/c")).unwrap();
    disk.cut(Tear::None);
    assert!(disk.at("a/b/c").is_dir());
}

#[test]
fn a_file_written_durably_is_whole_after_a_power_cut() {
    let mut disk = Disk::new();
    let path = disk.at("token");
    write_file_durable(&path, b"first", 0o600).unwrap();
    disk.cut(Tear::Random { seed: 7 });
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    write_file_durable(&path, b"second", 0o600).unwrap();
    disk.cut(Tear::Random { seed: 8 });
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert!(!Path::new(&disk.at("token.tmp")).exists());
}

/// The archive index's commits are durable once it reports them: after a cut it
/// resumes where it said it was, instead of a commit earlier.
#[test]
fn the_archive_index_keeps_what_it_reported_across_a_power_cut() {
    let mut disk = Disk::new();
    let dir = disk.at("data/store");
    let index_dir = disk.at("data/archive-index");
    let store = Store::open(&dir, Options::default()).unwrap();
    let mut batch = Batch::new();
    for n in 0..20 {
        let body =
            batch.put_body(format!("Subject: note {n}\r\n\r\nquarterly figures\r\n").into_bytes());
        batch.push(Op::Archive(NewArchiveEntry {
            body,
            direction: Direction::In,
            mail_from: "sender@remote.test".into(),
            rcpt_to: vec!["alice@example.test".into()],
            date: 1_700_000_000,
            headers: HeaderFields {
                subject: format!("note {n}"),
                ..Default::default()
            },
        }));
    }
    store.commit(batch).unwrap();
    let newest = store.read(|s| s.archive().next_back().map_or(0, |e| e.id.0));
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert!(index.wait_current(std::time::Duration::from_secs(300)));
    assert_eq!(index.indexed(), newest);
    disk.fs.as_mut().unwrap().cut(Tear::None);
    drop(index);
    drop(store);
    let fs = disk.fs.take().unwrap();
    fs.unmount().unwrap();
    disk.fs = Some(PowerCut::mount(disk.backing.path(), disk.mountpoint.path()).unwrap());
    // The commit on disk names the newest entry (read before the indexer could
    // catch up again).
    let meta = std::fs::read_to_string(index_dir.join("meta.json")).unwrap();
    assert!(
        meta.contains(&format!("\"payload\": \"{newest} ")),
        "the index lost its last commit: {meta}"
    );
    let store = Store::open(&dir, Options::default()).unwrap();
    let index = ArchiveIndex::open(&index_dir, store.clone()).unwrap();
    assert_eq!(index.indexed(), newest);
    index.stop();
}
