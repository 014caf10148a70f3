//! The file system as the running machine sees it, and as its disk would keep it.
//!
//! Every inode has two states: `current`, what reads return, and `durable`, what a
//! power cut leaves. Writes and truncations change `current` only and are remembered,
//! in order, as pending; `fsync`/`fdatasync` of the file replays them onto `durable`.
//! Directories likewise: creating, renaming and removing names changes `entries`, and
//! only `fsync` of the directory copies them to `durable_entries`.
//!
//! Invariants:
//! - After a cut, what survives is the tree reachable from the root through durable
//!   entries only; a file's surviving bytes are its durable bytes, plus (when the cut
//!   tears) a prefix of its pending operations, the last of them possibly cut short.
//! - An inode lives while a current entry, a durable entry, the kernel (lookups) or an
//!   open handle refers to it: an unlinked file whose name is still durable keeps its
//!   durable bytes.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

/// The root's inode number (FUSE's).
pub const ROOT: u64 = 1;
/// Nesting beyond which a durable tree is not followed (a guard against cycles that
/// partial directory syncs could leave).
const DEPTH_MAX: usize = 256;

/// An error number for the kernel.
pub type Errno = i32;

/// A change to a file's bytes not yet made durable.
#[derive(Debug, Clone)]
pub enum Pending {
    /// `data` written at `offset`.
    Write { offset: u64, data: Vec<u8> },
    /// The file truncated or extended to `len`.
    SetLen(u64),
}

#[derive(Debug, Default)]
pub struct FileBody {
    pub current: Vec<u8>,
    pub durable: Vec<u8>,
    pub pending: Vec<Pending>,
}

#[derive(Debug, Default)]
pub struct DirBody {
    pub entries: BTreeMap<OsString, u64>,
    pub durable_entries: BTreeMap<OsString, u64>,
}

#[derive(Debug)]
pub enum Body {
    File(FileBody),
    Dir(DirBody),
}

#[derive(Debug)]
pub struct Node {
    pub body: Body,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    /// Current entries naming this inode.
    links: u32,
    /// Durable entries naming this inode.
    durable_links: u32,
    /// Lookups the kernel holds (FUSE's nlookup).
    lookups: u64,
    /// Open handles.
    opens: u32,
}

impl Node {
    fn new(body: Body, perm: u16, uid: u32, gid: u32) -> Node {
        let now = SystemTime::now();
        Node {
            body,
            perm,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
            links: 0,
            durable_links: 0,
            lookups: 0,
            opens: 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.current.len() as u64,
            Body::Dir(d) => d.entries.len() as u64,
        }
    }

    /// Hard links, as `stat` reports them.
    pub fn nlink(&self) -> u32 {
        match &self.body {
            Body::File(_) => self.links,
            Body::Dir(d) => 2 + d.entries.len() as u32,
        }
    }
}

/// A tree as it is on disk: what a cut leaves, or what a mount starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A regular file.
    File { data: Vec<u8>, perm: u16 },
    /// A directory.
    Dir {
        entries: BTreeMap<OsString, Image>,
        perm: u16,
    },
}

/// How the bytes written since a file's last sync fare in a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// All of them are lost.
    None,
    /// Per file, a prefix of them reaches the disk in order and the write after it is
    /// cut at a random byte, sometimes followed by a garbage byte; `seed` picks where.
    Random { seed: u64 },
}

/// What a cut threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose pending changes were dropped (wholly or partly).
    pub files_with_unsynced_data: usize,
    /// Bytes written and not synced that did not survive (torn prefixes excluded).
    pub unsynced_bytes_lost: u64,
    /// Writes cut short at a byte.
    pub torn_writes: usize,
    /// Names created, replaced or removed and not synced (paths as they are now,
    /// with what happened to them): changes lost.
    pub unsynced_names: Vec<String>,
}

/// A small deterministic generator (xorshift64*), so a seed replays a cut exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

fn apply(bytes: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { offset, data } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

/// The whole file system, current and durable.
#[derive(Debug)]
pub struct Model {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Open handle -> inode.
    handles: HashMap<u64, u64>,
    next_handle: u64,
}

impl Model {
    /// A file system holding `image` (a directory), all of it durable.
    pub fn from_image(image: &Image, uid: u32, gid: u32) -> Model {
        let mut model = Model {
            nodes: HashMap::new(),
            next_ino: ROOT,
            handles: HashMap::new(),
            next_handle: 1,
        };
        let root = model.load(image, uid, gid);
        debug_assert_eq!(root, ROOT);
        let node = model.nodes.get_mut(&ROOT).expect("root was just made");
        node.links = 1;
        node.durable_links = 1;
        model
    }

    fn load(&mut self, image: &Image, uid: u32, gid: u32) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        match image {
            Image::File { data, perm } => {
                let body = Body::File(FileBody {
                    current: data.clone(),
                    durable: data.clone(),
                    pending: Vec::new(),
                });
                self.nodes.insert(ino, Node::new(body, *perm, uid, gid));
            }
            Image::Dir { entries, perm } => {
                self.nodes.insert(
                    ino,
                    Node::new(Body::Dir(DirBody::default()), *perm, uid, gid),
                );
                for (name, child) in entries {
                    let child_ino = self.load(child, uid, gid);
                    let node = self.nodes.get_mut(&child_ino).expect("just loaded");
                    node.links += 1;
                    node.durable_links += 1;
                    let Body::Dir(dir) = &mut self.node_mut(ino).expect("just made").body else {
                        unreachable!("made as a directory");
                    };
                    dir.entries.insert(name.clone(), child_ino);
                    dir.durable_entries.insert(name.clone(), child_ino);
                }
            }
        }
        ino
    }

    pub fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    pub fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&DirBody, Errno> {
        match &self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileBody, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Drops an inode nothing refers to any more.
    fn collect(&mut self, ino: u64) {
        if ino == ROOT {
            return;
        }
        let unused = self.nodes.get(&ino).is_some_and(|n| {
            n.links == 0 && n.durable_links == 0 && n.lookups == 0 && n.opens == 0
        });
        if !unused {
            return;
        }
        let node = self.nodes.remove(&ino).expect("checked above");
        if let Body::Dir(dir) = node.body {
            // A directory is removed only when empty, but its durable entries may
            // still name inodes.
            for child in dir.durable_entries.values() {
                if let Some(c) = self.nodes.get_mut(child) {
                    c.durable_links -= 1;
                }
                self.collect(*child);
            }
        }
    }

    /// The inode `name` in `parent` names, counted as a kernel lookup.
    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        self.node_mut(ino)?.lookups += 1;
        Ok(ino)
    }

    /// The kernel forgets `n` lookups of `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.collect(ino);
    }

    /// Creates `name` in `parent` (a file, or a directory when `dir`), counted as a
    /// lookup.
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        dir: bool,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<u64, Errno> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = if dir {
            Body::Dir(DirBody::default())
        } else {
            Body::File(FileBody::default())
        };
        let mut node = Node::new(body, perm, uid, gid);
        node.links = 1;
        node.lookups = 1;
        self.nodes.insert(ino, node);
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.touch_dir(parent);
        Ok(ino)
    }

    fn touch_dir(&mut self, ino: u64) {
        if let Ok(node) = self.node_mut(ino) {
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
    }

    /// Removes `name` from `parent`: a file (`dir` false) or an empty directory.
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        let node = self.node(ino)?;
        match (&node.body, dir) {
            (Body::Dir(_), false) => return Err(libc::EISDIR),
            (Body::File(_), true) => return Err(libc::ENOTDIR),
            (Body::Dir(d), true) if !d.entries.is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.touch_dir(parent);
        let node = self.node_mut(ino)?;
        node.links -= 1;
        node.ctime = SystemTime::now();
        self.collect(ino);
        Ok(())
    }

    /// Renames `name` in `parent` to `new_name` in `new_parent`, replacing what is
    /// there unless `no_replace`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        self.dir(new_parent)?;
        if self.node(ino)?.is_dir() && self.is_ancestor(ino, new_parent) {
            return Err(libc::EINVAL);
        }
        let replaced = self.dir(new_parent)?.entries.get(new_name).copied();
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            let (moving_dir, old_node) = (self.node(ino)?.is_dir(), self.node(old)?);
            match (&old_node.body, moving_dir) {
                (Body::Dir(d), true) if !d.entries.is_empty() => return Err(libc::ENOTEMPTY),
                (Body::Dir(_), false) => return Err(libc::EISDIR),
                (Body::File(_), true) => return Err(libc::ENOTDIR),
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), ino);
        self.touch_dir(parent);
        self.touch_dir(new_parent);
        if let Some(old) = replaced {
            self.node_mut(old)?.links -= 1;
            self.collect(old);
        }
        Ok(())
    }

    /// Whether `ancestor` is `ino` or one of its parents (by current entries).
    fn is_ancestor(&self, ancestor: u64, ino: u64) -> bool {
        if ancestor == ino {
            return true;
        }
        // Parents are not stored: search from the root.
        fn path_to(model: &Model, from: u64, to: u64, path: &mut Vec<u64>, depth: usize) -> bool {
            path.push(from);
            if from == to {
                return true;
            }
            if depth < DEPTH_MAX {
                if let Ok(dir) = model.dir(from) {
                    for child in dir.entries.values() {
                        if path_to(model, *child, to, path, depth + 1) {
                            return true;
                        }
                    }
                }
            }
            path.pop();
            false
        }
        let mut path = Vec::new();
        path_to(self, ROOT, ino, &mut path, 0) && path.contains(&ancestor)
    }

    /// Entries of directory `ino`, in order.
    pub fn entries(&self, ino: u64) -> Result<Vec<(OsString, u64, bool)>, Errno> {
        Ok(self
            .dir(ino)?
            .entries
            .iter()
            .map(|(name, child)| {
                let is_dir = self.nodes.get(child).is_some_and(|n| n.is_dir());
                (name.clone(), *child, is_dir)
            })
            .collect())
    }

    /// Opens `ino`; returns the handle.
    pub fn open(&mut self, ino: u64) -> Result<u64, Errno> {
        self.node_mut(ino)?.opens += 1;
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, ino);
        Ok(handle)
    }

    /// Closes a handle.
    pub fn release(&mut self, handle: u64) {
        if let Some(ino) = self.handles.remove(&handle) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.opens = node.opens.saturating_sub(1);
            }
            self.collect(ino);
        }
    }

    /// Up to `size` bytes of file `ino` from `offset`.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        match &self.node(ino)?.body {
            Body::File(f) => {
                let start = (offset as usize).min(f.current.len());
                let end = (start + size as usize).min(f.current.len());
                Ok(&f.current[start..end])
            }
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Writes `data` at `offset` of file `ino` (not durable until synced).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let op = Pending::Write {
            offset,
            data: data.to_vec(),
        };
        let file = self.file_mut(ino)?;
        apply(&mut file.current, &op);
        file.pending.push(op);
        let node = self.node_mut(ino)?;
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// Truncates or extends file `ino` (not durable until synced).
    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        let op = Pending::SetLen(len);
        let file = self.file_mut(ino)?;
        apply(&mut file.current, &op);
        file.pending.push(op);
        let node = self.node_mut(ino)?;
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its bytes become durable. Of a directory: its
    /// entries do (the entries' own contents only as far as they were synced).
    pub fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        match &mut node.body {
            Body::File(file) => {
                // Replaying the pending changes costs what was written, not the file.
                for op in file.pending.drain(..) {
                    apply(&mut file.durable, &op);
                }
                debug_assert_eq!(file.durable, file.current);
                Ok(())
            }
            Body::Dir(dir) => {
                let before = std::mem::replace(&mut dir.durable_entries, dir.entries.clone());
                let after: Vec<u64> = dir.durable_entries.values().copied().collect();
                for child in &after {
                    if let Some(c) = self.nodes.get_mut(child) {
                        c.durable_links += 1;
                    }
                }
                for child in before.values() {
                    if let Some(c) = self.nodes.get_mut(child) {
                        c.durable_links -= 1;
                    }
                    self.collect(*child);
                }
                Ok(())
            }
        }
    }

    /// Everything as it is now: what a clean shutdown leaves.
    pub fn current_image(&self) -> Image {
        self.image_of(ROOT, false, &mut |_, f| f.current.clone(), 0)
    }

    /// What a power cut leaves, and what it lost.
    pub fn cut_image(&self, tear: Tear) -> (Image, CutReport) {
        let mut report = CutReport::default();
        let mut rng = match tear {
            Tear::None => None,
            Tear::Random { seed } => Some(Rng::new(seed)),
        };
        self.unsynced_names(ROOT, "", &mut report.unsynced_names, 0);
        let image = self.image_of(
            ROOT,
            true,
            &mut |_, file| {
                let mut bytes = file.durable.clone();
                if file.pending.is_empty() {
                    return bytes;
                }
                report.files_with_unsynced_data += 1;
                let kept = match &mut rng {
                    None => 0,
                    Some(rng) => rng.upto(file.pending.len() as u64) as usize,
                };
                for op in &file.pending[..kept] {
                    apply(&mut bytes, op);
                }
                let mut lost: u64 = file.pending[kept..]
                    .iter()
                    .map(|op| match op {
                        Pending::Write { data, .. } => data.len() as u64,
                        Pending::SetLen(_) => 0,
                    })
                    .sum();
                if let (Some(rng), Some(Pending::Write { offset, data })) =
                    (&mut rng, file.pending.get(kept))
                {
                    let keep = rng.upto(data.len() as u64) as usize;
                    let mut torn = data[..keep].to_vec();
                    if keep < data.len() && rng.next() % 2 == 0 {
                        torn.push(data[keep] ^ (rng.next() as u8 | 1));
                    }
                    lost -= keep as u64;
                    apply(
                        &mut bytes,
                        &Pending::Write {
                            offset: *offset,
                            data: torn,
                        },
                    );
                    report.torn_writes += 1;
                }
                report.unsynced_bytes_lost += lost;
                bytes
            },
            0,
        );
        (image, report)
    }

    /// Names under directory `ino` (at `path`) whose changes are not durable.
    fn unsynced_names(&self, ino: u64, path: &str, out: &mut Vec<String>, depth: usize) {
        let Ok(dir) = self.dir(ino) else {
            return;
        };
        for (name, child) in &dir.entries {
            let full = format!("{path}/{}", name.to_string_lossy());
            match dir.durable_entries.get(name) {
                None => out.push(format!("{full} (new)")),
                Some(old) if old != child => out.push(format!("{full} (replaced)")),
                Some(_) => {}
            }
            if depth < DEPTH_MAX {
                self.unsynced_names(*child, &full, out, depth + 1);
            }
        }
        for name in dir.durable_entries.keys() {
            if !dir.entries.contains_key(name) {
                out.push(format!("{path}/{} (removed)", name.to_string_lossy()));
            }
        }
    }

    fn image_of(
        &self,
        ino: u64,
        durable: bool,
        file_bytes: &mut dyn FnMut(u64, &FileBody) -> Vec<u8>,
        depth: usize,
    ) -> Image {
        let Some(node) = self.nodes.get(&ino) else {
            return Image::Dir {
                entries: BTreeMap::new(),
                perm: 0o755,
            };
        };
        match &node.body {
            Body::File(file) => Image::File {
                data: file_bytes(ino, file),
                perm: node.perm,
            },
            Body::Dir(dir) => {
                let names = if durable {
                    &dir.durable_entries
                } else {
                    &dir.entries
                };
                let mut entries = BTreeMap::new();
                if depth < DEPTH_MAX {
                    for (name, child) in names {
                        if self.nodes.contains_key(child) {
                            entries.insert(
                                name.clone(),
                                self.image_of(*child, durable, file_bytes, depth + 1),
                            );
                        }
                    }
                }
                Image::Dir {
                    entries,
                    perm: node.perm,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Model {
        Model::from_image(
            &Image::Dir {
                entries: BTreeMap::new(),
                perm: 0o755,
            },
            0,
            0,
        )
    }

    fn file(data: &[u8]) -> Image {
        Image::File {
            data: data.to_vec(),
            perm: 0o644,
        }
    }

    fn dir(entries: &[(&str, Image)]) -> Image {
        Image::Dir {
            entries: entries
                .iter()
                .map(|(n, i)| (OsString::from(n), i.clone()))
                .collect(),
            perm: 0o755,
        }
    }

    #[test]
    fn a_loaded_image_is_durable_as_it_is() {
        let image = dir(&[("a", file(b"abc")), ("d", dir(&[("b", file(b"x"))]))]);
        let model = Model::from_image(&image, 0, 0);
        assert_eq!(model.cut_image(Tear::None).0, image);
        assert_eq!(model.current_image(), image);
    }

    #[test]
    fn an_unlinked_file_keeps_its_durable_name_until_the_directory_is_synced() {
        let mut m = empty();
        let f = m.create(ROOT, OsStr::new("f"), false, 0o644, 0, 0).unwrap();
        m.write(f, 0, b"data").unwrap();
        m.sync(f).unwrap();
        m.sync(ROOT).unwrap();
        m.forget(f, 1);
        m.remove(ROOT, OsStr::new("f"), false).unwrap();
        assert_eq!(m.cut_image(Tear::None).0, dir(&[("f", file(b"data"))]));
        m.sync(ROOT).unwrap();
        assert_eq!(m.cut_image(Tear::None).0, dir(&[]));
        assert!(m.nodes.len() == 1, "the unlinked inode is collected");
    }

    #[test]
    fn a_torn_cut_keeps_a_prefix_of_the_pending_writes() {
        for seed in 0..200 {
            let mut m = empty();
            let f = m.create(ROOT, OsStr::new("f"), false, 0o644, 0, 0).unwrap();
            m.write(f, 0, b"head").unwrap();
            m.sync(f).unwrap();
            m.sync(ROOT).unwrap();
            m.write(f, 4, b"-one").unwrap();
            m.write(f, 8, b"-two").unwrap();
            let (image, report) = m.cut_image(Tear::Random { seed });
            let Image::Dir { entries, .. } = image else {
                panic!("root is a directory")
            };
            let Some(Image::File { data, .. }) = entries.get(OsStr::new("f")) else {
                panic!("f survives")
            };
            assert!(data.starts_with(b"head"), "{data:?}");
            let full = b"head-one-two";
            // Every byte but a possible last garbage one is a prefix of the full write.
            let good = data
                .iter()
                .zip(full.iter())
                .take_while(|(a, b)| a == b)
                .count();
            assert!(good >= data.len() - 1, "seed {seed}: {data:?}");
            assert!(data.len() <= full.len(), "seed {seed}: {data:?}");
            assert_eq!(report.files_with_unsynced_data, 1);
        }
    }
}
