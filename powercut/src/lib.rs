//! A test file system that behaves like a disk losing power.
//!
//! [`PowerCut::mount`] mounts (with FUSE, through `fusermount3`) a file system holding
//! a copy of a directory, the *backing* directory. What programs write to it is kept in
//! memory: a write, truncation, creation, rename or removal becomes durable only when
//! the file (for bytes) or the directory holding the name (for names) is `fsync`'d or
//! `fdatasync`'d. [`PowerCut::cut`] is the power cut: from then on every operation
//! fails with `EIO`, and [`PowerCut::unmount`] writes to the backing directory only
//! what was durable at the cut (with [`Tear::Random`], per file also a prefix of what
//! was written after its last sync, the last write of it torn at a random byte). Mount
//! the backing directory again to see what a restarted machine finds.
//!
//! This is POSIX's promise taken literally: a file's new name survives only when its
//! directory was synced, a file's bytes only when the file was. Real file systems
//! often keep more (ext4 commits renames in order, and an `fsync` commits everything
//! before it); a program correct here is correct on them.
//!
//! Files are served in page-cache mode so that programs can map them (see `fuse.rs`);
//! only regular files and directories exist (no links, no special files).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fuser::{BackgroundSession, MountOption, SessionACL};
use parking_lot::Mutex;

mod fuse;
mod model;

pub use model::{CutReport, Tear};
use model::{Image, Model};

/// A mounted power-cut file system. Dropping it unmounts it (as [`PowerCut::unmount`]
/// does, errors ignored).
pub struct PowerCut {
    backing: PathBuf,
    mountpoint: PathBuf,
    state: Arc<Mutex<fuse::State>>,
    session: Option<BackgroundSession>,
}

impl std::fmt::Debug for PowerCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerCut")
            .field("backing", &self.backing)
            .field("mountpoint", &self.mountpoint)
            .field("cut", &self.has_cut())
            .finish()
    }
}

impl PowerCut {
    /// Mounts at `mountpoint` (an existing empty directory) a file system holding what
    /// `backing` holds, all of it durable. `backing` is not touched until unmount.
    ///
    /// The mount goes through `fusermount3` (Debian's `fuse3`) with `auto_unmount`
    /// where it is allowed, so that it goes away even if this process dies.
    pub fn mount(backing: impl AsRef<Path>, mountpoint: impl AsRef<Path>) -> io::Result<PowerCut> {
        let backing = backing.as_ref().to_path_buf();
        let mountpoint = mountpoint.as_ref().to_path_buf();
        let image = read_image(&backing)?;
        let meta = std::fs::metadata(&backing)?;
        let state = Arc::new(Mutex::new(fuse::State::new(Model::from_image(
            &image,
            meta.uid(),
            meta.gid(),
        ))));
        let session = mount_session(state.clone(), &mountpoint)?;
        Ok(PowerCut {
            backing,
            mountpoint,
            state,
            session: Some(session),
        })
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The directory it was loaded from and is written back to.
    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Cuts the power: what is durable now is all that will be written back, and every
    /// later operation fails with `EIO`. After an earlier cut (or an armed one that
    /// struck) it changes nothing and returns that cut's report.
    pub fn cut(&mut self, tear: Tear) -> CutReport {
        self.state.lock().cut(tear)
    }

    /// Arms a cut to strike right after the `writes`th write from now (1: the next)
    /// has reached the file system: a cut in the middle of a commit, between its write
    /// and its fsync. [`PowerCut::has_cut`] tells when it struck.
    pub fn cut_at_write(&mut self, writes: u64, tear: Tear) {
        let mut state = self.state.lock();
        if !state.is_cut() {
            state.armed = Some((writes.max(1), tear));
        }
    }

    /// Whether the power is cut.
    pub fn has_cut(&self) -> bool {
        self.state.lock().is_cut()
    }

    /// Unmounts, then replaces the backing directory's contents with what survived the
    /// cut, or (without a cut) with everything, as a clean shutdown would leave it.
    /// Programs using the file system must have closed their files.
    pub fn unmount(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let image = {
            let mut state = self.state.lock();
            let image = match state.cut.take() {
                Some((image, _)) => image,
                None => state.model.current_image(),
            };
            // Nothing is served after this point, whatever unmounting says.
            let nothing = Image::Dir {
                entries: BTreeMap::new(),
                perm: 0,
            };
            state.cut = Some((nothing, CutReport::default()));
            image
        };
        let unmounted = unmount(&self.mountpoint, session);
        write_image(&self.backing, &image)?;
        unmounted
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// How long the FUSE session may take to end after the unmount.
const SESSION_END_WAIT: Duration = Duration::from_secs(10);

/// Detaches the mount (lazily, so a file still open cannot keep it in place) and waits
/// for the session to end. `auto_unmount` only acts once this process is gone, so the
/// unmount is done here.
fn unmount(mountpoint: &Path, session: BackgroundSession) -> io::Result<()> {
    let output = Command::new("fusermount3")
        .args(["-u", "-z", "-q", "--"])
        .arg(mountpoint)
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "fusermount3 -u {}: {}",
            mountpoint.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // The session ends when the kernel closes the connection: at once, unless a file
    // is still open. Then it is left to end when that file is closed.
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(session.join());
    });
    match ended.recv_timeout(SESSION_END_WAIT) {
        Ok(result) => result,
        Err(_) => Err(io::Error::other(format!(
            "{} was detached, but a file on it is still open",
            mountpoint.display()
        ))),
    }
}

fn mount_session(
    state: Arc<Mutex<fuse::State>>,
    mountpoint: &Path,
) -> io::Result<BackgroundSession> {
    let options = |auto_unmount: bool| {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".into()),
            MountOption::Subtype("powercut".into()),
        ];
        if auto_unmount {
            config.mount_options.push(MountOption::AutoUnmount);
            config.acl = SessionACL::RootAndOwner;
        }
        config.n_threads = Some(1);
        config
    };
    let fs = || fuse::PowerCutFs {
        state: state.clone(),
    };
    match fuser::spawn_mount(fs(), mountpoint, &options(true)) {
        Ok(session) => Ok(session),
        // `allow_root` (which auto_unmount needs) is refused to users without
        // `user_allow_other` in /etc/fuse.conf: mount without it.
        Err(_) => fuser::spawn_mount(fs(), mountpoint, &options(false)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "mounting the power-cut file system at {} (needs /dev/fuse and fusermount3, Debian's fuse3): {e}",
                    mountpoint.display()
                ),
            )
        }),
    }
}

fn read_image(path: &Path) -> io::Result<Image> {
    let meta = std::fs::symlink_metadata(path)?;
    let perm = (meta.permissions().mode() & 0o7777) as u16;
    if meta.is_dir() {
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            entries.insert(entry.file_name(), read_image(&entry.path())?);
        }
        Ok(Image::Dir { entries, perm })
    } else if meta.is_file() {
        Ok(Image::File {
            data: std::fs::read(path)?,
            perm,
        })
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: only files and directories can be mounted",
                path.display()
            ),
        ))
    }
}

/// Makes directory `path` hold exactly `image` (a directory).
fn write_image(path: &Path, image: &Image) -> io::Result<()> {
    let Image::Dir { entries, perm } = image else {
        return Err(io::Error::other("the root of an image is a directory"));
    };
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    write_entries(path, entries)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(u32::from(*perm)))
}

fn write_entries(dir: &Path, entries: &BTreeMap<OsString, Image>) -> io::Result<()> {
    for (name, image) in entries {
        let path = dir.join(name);
        match image {
            Image::File { data, perm } => {
                std::fs::write(&path, data)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(u32::from(*perm)))?;
            }
            Image::Dir { entries, perm } => {
                std::fs::create_dir(&path)?;
                write_entries(&path, entries)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(u32::from(*perm)))?;
            }
        }
    }
    Ok(())
}
