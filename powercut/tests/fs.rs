//! The power-cut file system through a real mount: per operation, what a cut keeps and
//! what it loses, with and without the fsync that makes it durable.
//!
//! Needs /dev/fuse and fusermount3 (Debian's fuse3; scripts/test installs it).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use lifeboat_powercut::{CutReport, PowerCut, Tear};

/// A backing directory and a mount of it.
struct Disk {
    backing: tempfile::TempDir,
    mountpoint: tempfile::TempDir,
    fs: Option<PowerCut>,
}

impl Disk {
    /// A disk holding `files` (relative path, contents), all durable.
    fn with(files: &[(&str, &[u8])]) -> Disk {
        let backing = tempfile::tempdir().unwrap();
        for (name, data) in files {
            let path = backing.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }
        let mountpoint = tempfile::tempdir().unwrap();
        let fs = PowerCut::mount(backing.path(), mountpoint.path()).unwrap();
        Disk {
            backing,
            mountpoint,
            fs: Some(fs),
        }
    }

    fn empty() -> Disk {
        Disk::with(&[])
    }

    /// A path on the mounted file system.
    fn at(&self, name: &str) -> PathBuf {
        self.mountpoint.path().join(name)
    }

    /// Cuts the power and unmounts; returns what was lost.
    fn cut(&mut self, tear: Tear) -> CutReport {
        let mut fs = self.fs.take().expect("mounted");
        let report = fs.cut(tear);
        fs.unmount().unwrap();
        report
    }

    /// Cuts the power, then mounts what survived.
    fn cut_and_remount(&mut self) -> CutReport {
        let report = self.cut(Tear::None);
        self.fs = Some(PowerCut::mount(self.backing.path(), self.mountpoint.path()).unwrap());
        report
    }

    /// The files and directories that survived, with contents (directories end in /).
    fn survivors(&self) -> Vec<(String, Vec<u8>)> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                let name = path.strip_prefix(root).unwrap().display().to_string();
                if entry.file_type().unwrap().is_dir() {
                    out.push((format!("{name}/"), Vec::new()));
                    walk(root, &path, out);
                } else {
                    out.push((name, fs::read(&path).unwrap()));
                }
            }
        }
        assert!(
            self.fs.is_none(),
            "look at the backing directory after a cut"
        );
        let mut out = Vec::new();
        walk(self.backing.path(), self.backing.path(), &mut out);
        out
    }
}

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn files(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect()
}

#[test]
fn a_synced_file_in_a_synced_directory_survives() {
    let mut disk = Disk::empty();
    let mut f = File::create(disk.at("f")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_data().unwrap();
    drop(f);
    sync_dir(&disk.at(""));
    let report = disk.cut(Tear::None);
    assert_eq!(report, CutReport::default());
    assert_eq!(disk.survivors(), files(&[("f", b"durable")]));
}

#[test]
fn a_write_not_synced_is_lost() {
    let mut disk = Disk::with(&[("f", b"old")]);
    let f = OpenOptions::new().write(true).open(disk.at("f")).unwrap();
    f.write_all_at(b"new and longer", 0).unwrap();
    drop(f);
    // The running machine sees it.
    assert_eq!(fs::read(disk.at("f")).unwrap(), b"new and longer");
    let report = disk.cut(Tear::None);
    assert_eq!(report.files_with_unsynced_data, 1);
    assert_eq!(report.unsynced_bytes_lost, 14);
    assert_eq!(disk.survivors(), files(&[("f", b"old")]));
}

#[test]
fn fdatasync_keeps_the_writes_before_it_only() {
    let mut disk = Disk::with(&[("f", b"")]);
    let f = OpenOptions::new().write(true).open(disk.at("f")).unwrap();
    f.write_all_at(b"one ", 0).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b"two", 4).unwrap();
    drop(f);
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[("f", b"one ")]));
}

#[test]
fn a_new_file_synced_without_its_directory_is_lost() {
    let mut disk = Disk::empty();
    let mut f = File::create(disk.at("f")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    let report = disk.cut(Tear::None);
    assert_eq!(report.unsynced_names, vec!["/f (new)".to_string()]);
    assert_eq!(disk.survivors(), files(&[]));
}

#[test]
fn a_new_name_synced_without_its_file_survives_empty() {
    let mut disk = Disk::empty();
    let mut f = File::create(disk.at("f")).unwrap();
    f.write_all(b"data").unwrap();
    drop(f);
    sync_dir(&disk.at(""));
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[("f", b"")]));
}

#[test]
fn a_truncation_needs_an_fsync() {
    let mut disk = Disk::with(&[("kept", b"0123456789"), ("lost", b"0123456789")]);
    let kept = OpenOptions::new()
        .write(true)
        .open(disk.at("kept"))
        .unwrap();
    kept.set_len(4).unwrap();
    kept.sync_data().unwrap();
    let lost = OpenOptions::new()
        .write(true)
        .open(disk.at("lost"))
        .unwrap();
    lost.set_len(4).unwrap();
    drop((kept, lost));
    disk.cut(Tear::None);
    assert_eq!(
        disk.survivors(),
        files(&[("kept", b"0123"), ("lost", b"0123456789")])
    );
}

#[test]
fn a_rename_needs_an_fsync_of_the_directory() {
    let mut disk = Disk::with(&[("a", b"A"), ("b", b"B")]);
    fs::rename(disk.at("a"), disk.at("a2")).unwrap();
    disk.cut_and_remount();
    fs::rename(disk.at("b"), disk.at("b2")).unwrap();
    sync_dir(&disk.at(""));
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[("a", b"A"), ("b2", b"B")]));
}

/// The checkpoint pattern: write a temporary file, sync it, rename it over the old one,
/// sync the directory. Each step missing leaves the old file.
#[test]
fn replacing_a_file_by_rename_survives_only_with_both_syncs() {
    for (sync_file, sync_directory, expected) in [
        (false, false, &b"old"[..]),
        (true, false, b"old"),
        (false, true, b""),
        (true, true, b"new"),
    ] {
        let mut disk = Disk::with(&[("checkpoint", b"old")]);
        let mut f = File::create(disk.at("checkpoint.tmp")).unwrap();
        f.write_all(b"new").unwrap();
        if sync_file {
            f.sync_data().unwrap();
        }
        drop(f);
        fs::rename(disk.at("checkpoint.tmp"), disk.at("checkpoint")).unwrap();
        if sync_directory {
            sync_dir(&disk.at(""));
        }
        disk.cut(Tear::None);
        assert_eq!(
            disk.survivors(),
            files(&[("checkpoint", expected)]),
            "file synced: {sync_file}, directory synced: {sync_directory}"
        );
    }
}

#[test]
fn an_unlink_needs_an_fsync_of_the_directory() {
    let mut disk = Disk::with(&[("a", b"A"), ("b", b"B")]);
    fs::remove_file(disk.at("a")).unwrap();
    assert!(!disk.at("a").exists());
    disk.cut_and_remount();
    assert_eq!(
        fs::read(disk.at("a")).unwrap(),
        b"A",
        "the unlink was undone"
    );
    fs::remove_file(disk.at("b")).unwrap();
    sync_dir(&disk.at(""));
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[("a", b"A")]));
}

#[test]
fn an_unlinked_file_keeps_its_synced_bytes_while_its_name_is_durable() {
    let mut disk = Disk::with(&[("f", b"old")]);
    let f = OpenOptions::new().write(true).open(disk.at("f")).unwrap();
    f.write_all_at(b"new", 0).unwrap();
    f.sync_data().unwrap();
    fs::remove_file(disk.at("f")).unwrap();
    drop(f);
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[("f", b"new")]));
}

/// `mkdir -p` and files written and synced inside: nothing survives until every new
/// directory's entry is synced in its parent.
#[test]
fn new_directories_need_an_fsync_of_their_parents() {
    let write_synced = |path: &Path| {
        let mut f = File::create(path).unwrap();
        f.write_all(b"mail").unwrap();
        f.sync_data().unwrap();
    };
    // Only the innermost directory synced: everything is lost.
    let mut disk = Disk::empty();
    fs::create_dir_all(disk.at("srv/data/store")).unwrap();
    write_synced(&disk.at("srv/data/store/seg"));
    sync_dir(&disk.at("srv/data/store"));
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[]));

    // One parent missed (srv/data, for store): everything below it is lost.
    let mut disk = Disk::empty();
    fs::create_dir_all(disk.at("srv/data/store")).unwrap();
    write_synced(&disk.at("srv/data/store/seg"));
    for dir in ["srv/data/store", "srv", ""] {
        sync_dir(&disk.at(dir));
    }
    disk.cut(Tear::None);
    assert_eq!(
        disk.survivors(),
        files(&[("srv/", b""), ("srv/data/", b"")])
    );

    // Every parent synced: all of it survives.
    let mut disk = Disk::empty();
    fs::create_dir_all(disk.at("srv/data/store")).unwrap();
    write_synced(&disk.at("srv/data/store/seg"));
    for dir in ["srv/data/store", "srv/data", "srv", ""] {
        sync_dir(&disk.at(dir));
    }
    disk.cut(Tear::None);
    assert_eq!(
        disk.survivors(),
        files(&[
            ("srv/", b""),
            ("srv/data/", b""),
            ("srv/data/store/", b""),
            ("srv/data/store/seg", b"mail"),
        ])
    );
}

#[test]
fn removing_a_directory_needs_an_fsync_of_its_parent() {
    let mut disk = Disk::with(&[("d/f", b"x")]);
    fs::remove_file(disk.at("d/f")).unwrap();
    sync_dir(&disk.at("d"));
    fs::remove_dir(disk.at("d")).unwrap();
    disk.cut_and_remount();
    assert!(disk.at("d").is_dir(), "the rmdir was undone");
    assert!(!disk.at("d/f").exists(), "the synced unlink inside was not");
    fs::remove_dir(disk.at("d")).unwrap();
    sync_dir(&disk.at(""));
    disk.cut(Tear::None);
    assert_eq!(disk.survivors(), files(&[]));
}

/// The store reads segments through memory maps: a map of a file on this file system
/// sees what was written, before and after the map was made, and after a remap.
#[test]
#[allow(unsafe_code)]
fn memory_maps_see_the_written_bytes() {
    let disk = Disk::empty();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(disk.at("seg"))
        .unwrap();
    f.write_all_at(&[1u8; 10_000], 0).unwrap();
    // SAFETY: the file is not truncated while the map lives.
    let map = unsafe { memmap2::Mmap::map(&f).unwrap() };
    assert_eq!(map.len(), 10_000);
    assert!(map.iter().all(|b| *b == 1));
    // A write inside the mapped range shows through the existing map.
    f.write_all_at(&[2u8; 100], 5_000).unwrap();
    assert_eq!(&map[5_000..5_100], &[2u8; 100][..]);
    assert_eq!(map[4_999], 1);
    // An append needs a new map, which sees it.
    f.write_all_at(&[3u8; 70_000], 10_000).unwrap();
    // SAFETY: as above.
    let bigger = unsafe { memmap2::Mmap::map(&f).unwrap() };
    assert_eq!(bigger.len(), 80_000);
    assert!(bigger[10_000..].iter().all(|b| *b == 3));
    assert_eq!(&bigger[5_000..5_100], &[2u8; 100][..]);
    // And so does a map from another open of the file.
    let other = File::open(disk.at("seg")).unwrap();
    // SAFETY: as above.
    let again = unsafe { memmap2::Mmap::map(&other).unwrap() };
    assert_eq!(&again[..], &bigger[..]);
}

/// A torn cut keeps, per file, a prefix of what was written since its last sync: whole
/// writes in order, then part of the next one, maybe followed by one garbage byte.
#[test]
fn a_torn_cut_keeps_a_prefix_of_the_unsynced_writes() {
    let records: [&[u8]; 3] = [b"<record one>", b"<record two>", b"<record three>"];
    let full: Vec<u8> = records.concat();
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..12 {
        let mut disk = Disk::with(&[("log", b"")]);
        let f = OpenOptions::new().write(true).open(disk.at("log")).unwrap();
        let mut offset = 0;
        for record in records {
            f.write_all_at(record, offset).unwrap();
            offset += record.len() as u64;
        }
        drop(f);
        let report = disk.cut(Tear::Random { seed });
        let survivors = disk.survivors();
        let data = &survivors[0].1;
        let good = data.iter().zip(&full).take_while(|(a, b)| a == b).count();
        assert!(
            good == data.len() || good + 1 == data.len(),
            "seed {seed}: {:?}",
            String::from_utf8_lossy(data)
        );
        assert!(report.torn_writes <= 1, "{report:?}");
        lengths.insert(data.len());
    }
    assert!(
        lengths.len() > 3,
        "seeds should tear at different places: {lengths:?}"
    );
}

#[test]
fn after_the_cut_every_operation_fails() {
    let mut disk = Disk::with(&[("f", b"data")]);
    let f = OpenOptions::new().write(true).open(disk.at("f")).unwrap();
    disk.fs.as_mut().unwrap().cut(Tear::None);
    let err = f.write_all_at(b"more", 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(File::create(disk.at("g")).is_err());
    drop(f);
    disk.fs.take().unwrap().unmount().unwrap();
    assert_eq!(disk.survivors(), files(&[("f", b"data")]));
}

/// A cut armed on a write strikes right after that write: it is in the page cache,
/// the fsync after it fails, and the cut loses it.
#[test]
fn an_armed_cut_strikes_after_the_chosen_write() {
    let mut disk = Disk::with(&[("log", b"synced;")]);
    let f = OpenOptions::new().write(true).open(disk.at("log")).unwrap();
    disk.fs.as_mut().unwrap().cut_at_write(2, Tear::None);
    f.write_all_at(b"one;", 7).unwrap();
    assert!(!disk.fs.as_ref().unwrap().has_cut());
    f.write_all_at(b"two;", 11).unwrap();
    assert!(disk.fs.as_ref().unwrap().has_cut());
    assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
    drop(f);
    let report = disk.cut(Tear::None);
    assert_eq!(report.unsynced_bytes_lost, 8, "{report:?}");
    assert_eq!(disk.survivors(), files(&[("log", b"synced;")]));
}

#[test]
fn a_clean_unmount_keeps_everything() {
    let mut disk = Disk::empty();
    fs::create_dir_all(disk.at("a/b")).unwrap();
    fs::write(disk.at("a/b/f"), b"unsynced").unwrap();
    disk.fs.take().unwrap().unmount().unwrap();
    assert_eq!(
        disk.survivors(),
        files(&[("a/", b""), ("a/b/", b""), ("a/b/f", b"unsynced")])
    );
}
