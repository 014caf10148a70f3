//! Message bytes on their way into the store: in memory, or spilled to a temporary
//! file when the process's budget for message bytes in memory
//! (`limits.message_memory_max`) cannot hold them.
//!
//! A [`Spill`] is an unlinked file in the spill directory (`data_dir/spill`): it has
//! no name while it is written (`O_TMPFILE`), so nothing of it outlives the process,
//! and the directory is emptied at start for systems where the file had a name for a
//! moment. It needs no sync: the commit copies its bytes into the log, whose sync
//! comes before any acknowledgement. The writer copies them in chunks of
//! [`COPY_CHUNK_BYTES`] with reads and writes, never through a mapping, so a spilled
//! message does not count in the process's resident memory while it is committed.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The size of the chunks a spilled message is copied into the log in.
pub const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of a message written to an unlinked temporary file.
#[derive(Debug)]
pub struct Spill {
    file: File,
    len: u64,
}

impl Spill {
    /// An empty spill in `dir`.
    pub fn create_in(dir: &Path) -> io::Result<Spill> {
        let file = tempfile::tempfile_in(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("creating a spill file in {}: {e}", dir.display()),
            )
        })?;
        Ok(Spill { file, len: 0 })
    }

    /// Appends `bytes`.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, mapped read-only: for what must read the whole message (a parser,
    /// a signer). The pages are the file's, which the kernel may drop and read again
    /// at any time, not the process's memory.
    pub fn map(&self) -> io::Result<memmap2::Mmap> {
        if self.len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty spill cannot be mapped",
            ));
        }
        // SAFETY: the file is unlinked and only this value holds it; it is only ever
        // appended to, which leaves the mapped range as it is.
        unsafe {
            memmap2::MmapOptions::new()
                .len(self.len as usize)
                .map(&self.file)
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Every byte, in memory (the cluster's log carries messages in its frames).
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0; self.len as usize];
        self.read_at(0, &mut bytes)?;
        Ok(bytes)
    }
}

/// The bytes of one message body given to [`crate::Batch::put_body`]: `head`, then what
/// was spilled, if anything.
#[derive(Debug, Default)]
pub struct MessageData {
    head: Vec<u8>,
    spill: Option<Spill>,
}

impl From<Vec<u8>> for MessageData {
    fn from(head: Vec<u8>) -> MessageData {
        MessageData { head, spill: None }
    }
}

impl From<Spill> for MessageData {
    fn from(spill: Spill) -> MessageData {
        MessageData {
            head: Vec::new(),
            spill: Some(spill),
        }
    }
}

impl MessageData {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.spill.as_ref().map_or(0, Spill::len)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.head.len() as u64
    }

    /// Whether part of it is in a spill file.
    pub fn is_spilled(&self) -> bool {
        self.spill.is_some()
    }

    /// Puts `bytes` in front (a header field added on the way in).
    pub fn prepend(&mut self, bytes: &[u8]) {
        self.head.splice(0..0, bytes.iter().copied());
    }

    /// Runs `f` over the whole message as one slice: the bytes themselves when they
    /// are in memory; a map of the spill file otherwise (with a copy only when
    /// something was prepended to a spill). An error only when the spill file
    /// cannot be mapped.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        match &self.spill {
            None => Ok(f(&self.head)),
            Some(spill) if spill.is_empty() => Ok(f(&self.head)),
            Some(spill) if self.head.is_empty() => Ok(f(&spill.map()?)),
            Some(spill) => {
                let mut all = self.head.clone();
                all.extend_from_slice(&spill.map()?);
                Ok(f(&all))
            }
        }
    }

    /// In memory, reading the spill file if there is one.
    pub fn into_vec(self) -> io::Result<Vec<u8>> {
        match self.spill {
            None => Ok(self.head),
            Some(spill) => {
                let mut all = self.head;
                all.extend_from_slice(&spill.read_all()?);
                Ok(all)
            }
        }
    }

    /// The in-memory part, and the spill.
    pub(crate) fn parts(&self) -> (&[u8], Option<&Spill>) {
        (&self.head, self.spill.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_reads_back_what_was_appended_with_its_head_in_front() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::create_in(dir.path()).unwrap();
        spill.append(b"Subject: s\r\n\r\n").unwrap();
        spill.append(b"body\r\n").unwrap();
        assert_eq!(spill.len(), 20);
        // Unlinked: nothing in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut data = MessageData::from(spill);
        assert!(data.is_spilled());
        data.with_bytes(|b| assert_eq!(b, b"Subject: s\r\n\r\nbody\r\n"))
            .unwrap();
        data.prepend(b"X-A: 1\r\n");
        assert_eq!(data.len(), 28);
        data.with_bytes(|b| assert_eq!(b, b"X-A: 1\r\nSubject: s\r\n\r\nbody\r\n"))
            .unwrap();
        assert_eq!(
            data.into_vec().unwrap(),
            b"X-A: 1\r\nSubject: s\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn a_spill_in_a_missing_directory_names_it() {
        let e = Spill::create_in(Path::new("/nonexistent/spill")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/spill"), "{e}");
    }
}
