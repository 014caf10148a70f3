//! File I/O behind a trait, so the engine runs unchanged over the real file system
//! and over [`SimFs`], an in-memory file system that injects faults.
//!
//! The engine needs only a handful of operations: create/open a file, positional
//! writes and reads, `fdatasync`, truncate, a read-only memory map, listing and removing
//! files, renaming, and syncing the directory. Keeping the surface this small is what
//! makes the fault model of [`SimFs`] complete: every way the engine touches the disk
//! goes through here.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A read-only view of a file's bytes (a memory map on the real file system).
pub type Map = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// An open file.
pub trait VFile: Send + Sync {
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Current length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Maps the file's current contents read-only.
    fn map(&self) -> io::Result<Map>;
    /// Whether a map shows what is written later to the bytes it covers (a shared
    /// memory map does; a copy does not).
    fn maps_show_writes(&self) -> bool;
    /// Asks for `len` bytes at `offset` to be written out soon, without waiting for
    /// it or promising it: a sync after it then finds less to do.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()>;
}

/// A directory holding the store's files.
pub trait Vfs: Send + Sync + 'static {
    /// Opens a file for reading and writing, creating it when `create` is set.
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VFile>>;
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Atomically renames a file, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, removals and renames in the directory durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// A human-readable location, for error messages.
    fn describe(&self, name: &str) -> String;
    /// Bytes the store may still write on the file system that holds the directory.
    fn free_bytes(&self) -> io::Result<u64>;
}

/// Whether `e` says the file system is full (`ENOSPC`) or the owner's quota is used
/// up (`EDQUOT`): a write that failed so wrote nothing the store relies on, and can be
/// tried again once there is room.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Removes file `name` of `fs` if it is there: what a crash left half made.
pub fn remove_leftover(fs: &dyn Vfs, name: &str) -> crate::Result<()> {
    let names = fs
        .list()
        .map_err(crate::Error::io("listing the store directory"))?;
    if names.iter().any(|n| n == name) {
        fs.remove(name)
            .map_err(crate::Error::io(format!("removing {}", fs.describe(name))))?;
    }
    Ok(())
}

/// Makes the names in directory `dir` durable (`fsync` of the directory).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Bytes an unprivileged process may still write on the file system that holds
/// `path` (`statvfs`: available blocks × fragment size).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string alive for the call, and `stat`
    // points to memory for one `statvfs`, which the call fills when it returns 0.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: filled, since the call returned 0.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Creates directory `path` and its missing parents durably: each directory created
/// is synced into its parent, so a power cut cannot take a directory (and all that
/// was made durable inside it) away after this returns. `path`'s own entry is synced
/// even when it exists, in case an earlier start made it and crashed before that.
pub fn create_dir_all_durable(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut ancestor = Some(path);
    while let Some(dir) = ancestor.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(dir);
                ancestor = dir.parent();
            }
            Err(e) => return Err(e),
        }
    }
    std::fs::create_dir_all(path)?;
    let parent = |dir: &Path| dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    // Outermost first: a parent's entry is durable before its child's is synced.
    for dir in missing.iter().rev() {
        sync_dir(&parent(dir))?;
    }
    if missing.is_empty() {
        sync_dir(&parent(path))?;
    }
    Ok(())
}

/// Replaces file `path` with `contents` atomically and durably: a temporary file
/// (created with `mode`) is written and synced, renamed over `path`, and the directory
/// synced. After a power cut, `path` holds either the old contents or all the new.
pub fn write_file_durable(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // A leftover of an interrupted earlier write.
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// The real file system: one directory.
#[derive(Debug, Clone)]
pub struct RealFs {
    dir: PathBuf,
}

impl RealFs {
    /// Uses `dir`, creating it (durably, with its parents) if needed.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<RealFs> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_all_durable(&dir)?;
        Ok(RealFs { dir })
    }
}

struct RealFile {
    file: std::fs::File,
}

impl VFile for RealFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(buf, offset)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn map(&self) -> io::Result<Map> {
        if self.size()? == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        // SAFETY: the store never writes through a map and never truncates a file
        // below a length that a live map covers while the map is in use: segments are
        // append-only, truncated only during recovery before any map of them exists,
        // and removed only after compaction moved every live record out of them.
        let map = unsafe { memmap2::Mmap::map(&self.file)? };
        Ok(Arc::new(map))
    }
    fn maps_show_writes(&self) -> bool {
        // A shared mapping of the page cache.
        true
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return Ok(());
        };
        // SAFETY: a plain system call on a file descriptor this file owns; it reads
        // no memory of this process.
        let r = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                offset,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Vfs for RealFs {
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VFile>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.dir.join(name))?;
        Ok(Box::new(RealFile { file }))
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn sync_dir(&self) -> io::Result<()> {
        sync_dir(&self.dir)
    }
    fn describe(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    fn free_bytes(&self) -> io::Result<u64> {
        free_bytes(&self.dir)
    }
}

/// What [`SimFs`] does to data that was written but not yet synced when it crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TornWrite {
    /// Unsynced bytes are lost.
    Drop,
    /// A prefix of the unsynced bytes survives (its length chosen by the seed).
    Prefix,
    /// A prefix survives and the byte after it is garbage (a sector half written).
    PrefixGarbage,
    /// Each 4 KiB page written since the last sync survives or not, whatever its
    /// place, and the file keeps its synced length or takes its new one: what a crash
    /// leaves when pages were being written out in no particular order.
    Pages,
}

#[derive(Default, Clone)]
struct SimFile {
    /// What a reader sees now.
    current: Vec<u8>,
    /// What survives a crash.
    durable: Vec<u8>,
}

#[derive(Default)]
struct SimState {
    files: BTreeMap<String, Arc<Mutex<SimFile>>>,
    /// The directory as it would be after a crash: name -> file.
    durable_dir: BTreeMap<String, Arc<Mutex<SimFile>>>,
    /// Operations performed so far; the crash point counts these.
    ops: u64,
    crash_at: Option<u64>,
    crashed: bool,
    fail_sync_at: Option<u64>,
    syncs: u64,
    /// Most bytes all files may hold together (`None`: no limit).
    capacity: Option<u64>,
}

impl SimState {
    /// Bytes all files hold now.
    fn used(&self) -> u64 {
        self.files
            .values()
            .map(|f| f.lock().current.len() as u64)
            .sum()
    }

    /// How many of `more` bytes fit (a removed file no longer counts, even while a
    /// handle of it is open).
    fn room(&self, more: u64) -> u64 {
        match self.capacity {
            None => more,
            Some(capacity) => more.min(capacity.saturating_sub(self.used())),
        }
    }
}

fn no_space_error() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// An in-memory file system that can fail `fsync`, tear writes and crash at any
/// operation. After [`SimFs::crash`], [`SimFs::recovered`] gives the file system as a
/// restarted machine would find it.
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

fn crashed_error() -> io::Error {
    io::Error::other("simulated crash: the machine is down")
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// Crash (every later operation fails) when the operation counter reaches `op`.
    pub fn crash_at(&self, op: u64) {
        self.state.lock().crash_at = Some(op);
    }

    /// Make the `n`th `sync_data` from now (0 = the next one) fail.
    pub fn fail_sync_at(&self, n: u64) {
        let mut state = self.state.lock();
        let at = state.syncs + n;
        state.fail_sync_at = Some(at);
    }

    /// Limits what all files hold together to `bytes` (`None`: no limit): a write or
    /// an extension past it writes what fits and fails with `ENOSPC`, as a full disk
    /// does.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().capacity = bytes;
    }

    /// Bytes all files hold together.
    pub fn used(&self) -> u64 {
        self.state.lock().used()
    }

    /// Files synced so far (`sync_data` calls, those that failed too).
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Operations performed so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Crashes now: every later operation fails.
    pub fn crash(&self) {
        self.state.lock().crashed = true;
    }

    /// Whether the simulated machine has crashed.
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// The file system a restart finds after a crash: only synced directory entries,
    /// and per file its synced bytes plus, depending on `torn`, part of what was
    /// written after the last sync. `seed` picks how much.
    pub fn recovered(&self, torn: TornWrite, seed: u64) -> SimFs {
        let state = self.state.lock();
        let mut next = SimState::default();
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next_rng = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (name, file) in &state.durable_dir {
            let file = file.lock();
            let mut bytes = file.durable.clone();
            let unsynced_tail = file.current.get(bytes.len()..).unwrap_or(&[]);
            if torn == TornWrite::Pages {
                bytes = surviving_pages(&file, &mut next_rng);
            } else if torn != TornWrite::Drop && !unsynced_tail.is_empty() {
                let rng = next_rng();
                let keep = (rng % (unsynced_tail.len() as u64 + 1)) as usize;
                bytes.extend_from_slice(&unsynced_tail[..keep]);
                if torn == TornWrite::PrefixGarbage && keep < unsynced_tail.len() {
                    bytes.push((rng >> 32) as u8 ^ unsynced_tail[keep] ^ 0x5A);
                }
            }
            let recovered = Arc::new(Mutex::new(SimFile {
                current: bytes.clone(),
                durable: bytes,
            }));
            next.files.insert(name.clone(), recovered.clone());
            next.durable_dir.insert(name.clone(), recovered);
        }
        SimFs {
            state: Arc::new(Mutex::new(next)),
        }
    }

    /// Flips one byte of a file, in place and durably (models media corruption).
    pub fn corrupt(&self, name: &str, offset: usize) {
        let state = self.state.lock();
        if let Some(file) = state.files.get(name) {
            let mut file = file.lock();
            if offset < file.current.len() {
                file.current[offset] ^= 0xFF;
            }
            if offset < file.durable.len() {
                file.durable[offset] ^= 0xFF;
            }
        }
    }

    /// A file's current length, if it exists.
    pub fn file_len(&self, name: &str) -> Option<usize> {
        let state = self.state.lock();
        state.files.get(name).map(|f| f.lock().current.len())
    }

    fn tick(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        if state.crashed {
            return Err(crashed_error());
        }
        state.ops += 1;
        if state.crash_at.is_some_and(|at| state.ops >= at) {
            state.crashed = true;
            return Err(crashed_error());
        }
        Ok(())
    }
}

/// What [`TornWrite::Pages`] leaves of `file`.
fn surviving_pages(file: &SimFile, rng: &mut impl FnMut() -> u64) -> Vec<u8> {
    const PAGE: usize = 4096;
    let len = if rng() & 1 == 0 {
        file.durable.len()
    } else {
        file.current.len()
    };
    let mut bytes = file.durable.clone();
    bytes.resize(len, 0);
    for start in (0..len).step_by(PAGE) {
        let end = (start + PAGE).min(len);
        let now = file.current.get(start..end.min(file.current.len()));
        if now.is_some_and(|now| now != &bytes[start..start + now.len()]) && rng() & 1 == 0 {
            let now = now.expect("checked");
            bytes[start..start + now.len()].copy_from_slice(now);
        }
    }
    bytes
}

struct SimHandle {
    fs: SimFs,
    file: Arc<Mutex<SimFile>>,
}

impl VFile for SimHandle {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.fs.tick()?;
        // Bytes past the end take room; a write that does not fit writes what does.
        let grows = {
            let len = self.file.lock().current.len() as u64;
            (offset + buf.len() as u64).saturating_sub(len.max(offset))
        };
        let fits = self.fs.state.lock().room(grows);
        let written = buf.len() - (grows - fits) as usize;
        let mut file = self.file.lock();
        let end = offset as usize + written;
        if file.current.len() < end {
            file.current.resize(end, 0);
        }
        file.current[offset as usize..end].copy_from_slice(&buf[..written]);
        if written < buf.len() {
            return Err(no_space_error());
        }
        Ok(())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let file = self.file.lock();
        let end = offset as usize + buf.len();
        if end > file.current.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&file.current[offset as usize..end]);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.lock().current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.tick()?;
        let grows = len.saturating_sub(self.file.lock().current.len() as u64);
        if self.fs.state.lock().room(grows) < grows {
            return Err(no_space_error());
        }
        let mut file = self.file.lock();
        file.current.resize(len as usize, 0);
        // A truncation that shortens the file is treated as durable at once: the
        // engine only shortens files during recovery and syncs right after.
        if file.durable.len() > len as usize {
            file.durable.truncate(len as usize);
        }
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.tick()?;
        {
            let mut state = self.fs.state.lock();
            let n = state.syncs;
            state.syncs += 1;
            if state.fail_sync_at == Some(n) {
                return Err(io::Error::other("simulated fsync failure (EIO)"));
            }
        }
        let mut file = self.file.lock();
        file.durable = file.current.clone();
        Ok(())
    }
    fn map(&self) -> io::Result<Map> {
        Ok(Arc::new(self.file.lock().current.clone()))
    }
    fn maps_show_writes(&self) -> bool {
        false
    }
    fn start_writeback(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

impl Vfs for SimFs {
    fn open(&self, name: &str, create: bool) -> io::Result<Box<dyn VFile>> {
        self.tick()?;
        let mut state = self.state.lock();
        let file = match state.files.get(name) {
            Some(file) => file.clone(),
            None if create => {
                let file = Arc::new(Mutex::new(SimFile::default()));
                state.files.insert(name.to_string(), file.clone());
                file
            }
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        drop(state);
        Ok(Box::new(SimHandle {
            fs: self.clone(),
            file,
        }))
    }
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.state.lock().files.keys().cloned().collect())
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.tick()?;
        self.state
            .lock()
            .files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.tick()?;
        let mut state = self.state.lock();
        let file = state
            .files
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        state.files.insert(to.to_string(), file);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.tick()?;
        let mut state = self.state.lock();
        state.durable_dir = state.files.clone();
        Ok(())
    }
    fn describe(&self, name: &str) -> String {
        format!("sim:{name}")
    }
    fn free_bytes(&self) -> io::Result<u64> {
        let state = self.state.lock();
        Ok(state
            .capacity
            .map_or(u64::MAX, |c| c.saturating_sub(state.used())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_reads_the_file_system_and_fails_for_a_missing_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        let e = free_bytes(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
