//! The message a session receives: in memory until the server finds its memory
//! budget spent (`limits.message_memory_max`) and spills it
//! ([`super::Session::spill_message`]); from then on the decoded bytes gather in a
//! small buffer that is written to the spill file whenever it reaches
//! [`SPILL_WRITE_BYTES`].

use std::io;

use lifeboat_store::{MessageData, Spill};

/// How many decoded bytes a spilled message gathers before they are written out.
pub const SPILL_WRITE_BYTES: usize = 64 * 1024;

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) enum MessageBuf {
    /// Nothing (a message refused or not started).
    #[default]
    Empty,
    /// All of it, in memory.
    Memory(Vec<u8>),
    /// In a file, but for the last bytes.
    Spilled {
        spill: Spill,
        pending: Vec<u8>,
        /// The first write that failed: the message is refused at its end.
        failed: Option<io::Error>,
    },
}

impl MessageBuf {
    /// Bytes held in memory.
    pub(super) fn memory_bytes(&self) -> usize {
        match self {
            MessageBuf::Empty => 0,
            MessageBuf::Memory(bytes) => bytes.len(),
            MessageBuf::Spilled { pending, .. } => pending.len(),
        }
    }

    /// Whether it goes to a spill file.
    pub(super) fn is_spilled(&self) -> bool {
        matches!(self, MessageBuf::Spilled { .. })
    }

    /// Where the next decoded bytes go; call [`MessageBuf::settle`] after adding.
    pub(super) fn tail(&mut self) -> &mut Vec<u8> {
        if let MessageBuf::Empty = self {
            *self = MessageBuf::Memory(Vec::new());
        }
        match self {
            MessageBuf::Memory(bytes) => bytes,
            MessageBuf::Spilled { pending, .. } => pending,
            MessageBuf::Empty => unreachable!("set above"),
        }
    }

    /// Appends `bytes`.
    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.tail().extend_from_slice(bytes);
        self.settle();
    }

    /// Writes out what a spilled message has gathered, once it is enough.
    pub(super) fn settle(&mut self) {
        if let MessageBuf::Spilled { pending, .. } = self {
            if pending.len() >= SPILL_WRITE_BYTES {
                self.write_pending();
            }
        }
    }

    fn write_pending(&mut self) {
        if let MessageBuf::Spilled {
            spill,
            pending,
            failed,
        } = self
        {
            if failed.is_none() {
                if let Err(e) = spill.append(pending) {
                    *failed = Some(e);
                }
            }
            pending.clear();
        }
    }

    /// Moves what is in memory to `spill`; later bytes go there too.
    pub(super) fn spill(&mut self, mut spill: Spill) -> io::Result<()> {
        let held = match std::mem::take(self) {
            MessageBuf::Spilled { .. } => {
                debug_assert!(false, "a message spilled twice");
                return Ok(());
            }
            MessageBuf::Empty => Vec::new(),
            MessageBuf::Memory(bytes) => bytes,
        };
        spill.append(&held)?;
        *self = MessageBuf::Spilled {
            spill,
            pending: Vec::with_capacity(SPILL_WRITE_BYTES),
            failed: None,
        };
        Ok(())
    }

    /// The whole message; an error when a write to its spill file failed.
    pub(super) fn finish(mut self) -> io::Result<MessageData> {
        self.write_pending();
        match self {
            MessageBuf::Empty => Ok(MessageData::default()),
            MessageBuf::Memory(bytes) => Ok(bytes.into()),
            MessageBuf::Spilled {
                failed: Some(e), ..
            } => Err(e),
            MessageBuf::Spilled { spill, .. } => Ok(spill.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_spilled_midway_keeps_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = MessageBuf::default();
        buf.extend(b"Received: x\r\n");
        assert_eq!(buf.memory_bytes(), 13);
        buf.spill(Spill::create_in(dir.path()).unwrap()).unwrap();
        assert_eq!(buf.memory_bytes(), 0);
        let mut want = b"Received: x\r\n".to_vec();
        for i in 0..200u32 {
            let line = format!("line {i} {}\r\n", "y".repeat(i as usize * 7));
            buf.tail().extend_from_slice(line.as_bytes());
            buf.settle();
            want.extend_from_slice(line.as_bytes());
            assert!(buf.memory_bytes() < SPILL_WRITE_BYTES);
        }
        let data = buf.finish().unwrap();
        assert!(data.is_spilled());
        assert_eq!(data.into_vec().unwrap(), want);
    }

    /// DATA and BDAT messages spilled midway (the server's budget spent after their
    /// first bytes) reach the accept whole, from the spill file.
    #[test]
    fn messages_spilled_midway_are_delivered_whole() {
        use super::super::check::config;
        use super::super::{Effect, Session};

        let dir = tempfile::tempdir().unwrap();
        for (first, rest) in [
            (
                &b"DATA\r\nSubject: s\r\n\r\n0123"[..],
                &b"456789\r\nabcde\r\n.\r\n"[..],
            ),
            (
                b"BDAT 15\r\nSubject: s\r\n\r\n0",
                b"BDAT 18 LAST\r\n123456789\r\nabcde\r\n",
            ),
        ] {
            let mut session = Session::new(config(false, false), false);
            let mut out = Vec::new();
            let mut feed = |session: &mut Session, input: &[u8]| {
                let mut buffer = input.to_vec();
                loop {
                    let progress = session.receive(&buffer, 1_700_000_000, &mut out);
                    buffer.drain(..progress.consumed);
                    match progress.effect {
                        Effect::NeedInput => return None,
                        Effect::CheckRecipient(_) => session.recipient_checked(Ok(()), &mut out),
                        Effect::Accept(delivery) => return Some(delivery),
                        other => panic!("{other:?}"),
                    }
                }
            };
            feed(
                &mut session,
                b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n",
            );
            assert!(feed(&mut session, first).is_none());
            assert!(session.message_bytes() > 0 && !session.message_spilled());
            session
                .spill_message(Spill::create_in(dir.path()).unwrap())
                .unwrap();
            assert!(session.message_spilled());
            let delivery = feed(&mut session, rest).expect("accepted");
            assert!(delivery.message.is_spilled());
            let message = delivery.message.into_vec().unwrap();
            assert!(message.starts_with(b"Received: "), "{message:?}");
            assert!(
                message.ends_with(b"\r\nSubject: s\r\n\r\n0123456789\r\nabcde\r\n"),
                "{}",
                String::from_utf8_lossy(&message)
            );
        }
    }

    /// A message refused midway (the budget spent and no spill file to be had) is
    /// read to its end and answered with the reason's temporary failure: `451 4.3.0`
    /// for memory, `452 4.3.1` for a full disk; the session goes on.
    #[test]
    fn messages_refused_midway_get_the_reasons_reply() {
        use super::super::check::config;
        use super::super::{Effect, Session};
        use crate::parse::DataError;

        for (why, expected) in [
            (DataError::Busy, "451 4.3.0"),
            (DataError::NoSpace, "452 4.3.1"),
        ] {
            for (first, rest) in [
                (
                    &b"DATA\r\nSubject: s\r\n\r\n0123"[..],
                    &b"456789\r\n.\r\nNOOP\r\n"[..],
                ),
                (
                    b"BDAT 15\r\nSubject: s\r\n\r\n0",
                    b"BDAT 11 LAST\r\n123456789\r\nNOOP\r\n",
                ),
            ] {
                let mut session = Session::new(config(false, false), false);
                let mut out = Vec::new();
                let feed = |session: &mut Session, input: &[u8], out: &mut Vec<u8>| {
                    let mut buffer = input.to_vec();
                    loop {
                        let progress = session.receive(&buffer, 1_700_000_000, out);
                        buffer.drain(..progress.consumed);
                        match progress.effect {
                            Effect::NeedInput => return,
                            Effect::CheckRecipient(_) => session.recipient_checked(Ok(()), out),
                            other => panic!("{other:?}"),
                        }
                    }
                };
                feed(
                    &mut session,
                    b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\n",
                    &mut out,
                );
                feed(&mut session, first, &mut out);
                session.refuse_message(why);
                out.clear();
                feed(&mut session, rest, &mut out);
                let replies = String::from_utf8_lossy(&out);
                let codes: Vec<&str> = replies.lines().map(|l| &l[..l.len().min(9)]).collect();
                assert_eq!(codes.last(), Some(&"250 2.0.0"), "{replies}");
                assert!(codes.contains(&expected), "{why:?}: {replies}");
                assert_eq!(session.message_bytes(), 0);
            }
        }
    }
}
