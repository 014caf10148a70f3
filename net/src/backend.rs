//! I/O backend selection.
//!
//! Two backends run the same code: `io_uring` (tokio-uring: completion-based, owned
//! buffers) and epoll (a tokio current-thread runtime: readiness-based). `io_uring` is
//! often unavailable: old kernels, `kernel.io_uring_disabled`, or container seccomp
//! profiles that refuse `io_uring_setup`. `auto` therefore probes it with a real
//! runtime and a loopback round trip, and falls back to epoll with the reason recorded
//! so the caller can log why.
//!
//! Invariant: a [`BackendChoice`] for [`Backend::Uring`] is only produced after the
//! probe built a tokio-uring runtime and moved bytes through it on this machine.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use crate::error::StartError;

/// How long the `io_uring` probe may take before `io_uring` is declared unusable. A
/// working ring answers a loopback round trip in microseconds; a ring that hangs (e.g.
/// `io_uring_enter` blocked after `io_uring_setup` was allowed) must not stall startup.
pub const URING_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Submission queue entries per thread's ring. Each connection has at most one read
/// and one write in flight, so this bounds submissions per tick, not connections.
pub const URING_ENTRIES: u32 = 256;

/// The `server.io` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    /// `io_uring` when it works here, epoll otherwise.
    #[default]
    Auto,
    /// `io_uring` or a startup error.
    Uring,
    /// epoll.
    Epoll,
}

impl FromStr for IoMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(IoMode::Auto),
            "uring" => Ok(IoMode::Uring),
            "epoll" => Ok(IoMode::Epoll),
            other => Err(format!(
                "invalid io mode {other:?}: expected auto, uring or epoll"
            )),
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoMode::Auto => "auto",
            IoMode::Uring => "uring",
            IoMode::Epoll => "epoll",
        })
    }
}

/// The backend actually running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// tokio-uring.
    Uring,
    /// tokio current-thread runtime (epoll).
    Epoll,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Uring => "io_uring",
            Backend::Epoll => "epoll",
        })
    }
}

/// The outcome of backend selection, for the startup log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    /// The mode that was asked for.
    pub requested: IoMode,
    /// The backend chosen.
    pub backend: Backend,
    /// Why `io_uring` was not used, when `auto` fell back to epoll.
    pub uring_unavailable: Option<String>,
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (io = {})", self.backend, self.requested)?;
        if let Some(reason) = &self.uring_unavailable {
            write!(f, "; io_uring unavailable: {reason}")?;
        }
        Ok(())
    }
}

/// Resolves `mode` to a backend, probing `io_uring` unless epoll is forced.
pub fn select_backend(mode: IoMode) -> Result<BackendChoice, StartError> {
    select_backend_with(mode, probe_uring)
}

/// [`select_backend`] with the probe supplied, so the fallback logic can be tested on
/// machines where `io_uring` works.
fn select_backend_with(
    mode: IoMode,
    probe_uring: impl FnOnce() -> Result<(), String>,
) -> Result<BackendChoice, StartError> {
    match mode {
        IoMode::Epoll => Ok(BackendChoice {
            requested: mode,
            backend: Backend::Epoll,
            uring_unavailable: None,
        }),
        IoMode::Uring => match probe_uring() {
            Ok(()) => Ok(BackendChoice {
                requested: mode,
                backend: Backend::Uring,
                uring_unavailable: None,
            }),
            Err(reason) => Err(StartError::UringUnavailable { reason }),
        },
        IoMode::Auto => Ok(match probe_uring() {
            Ok(()) => BackendChoice {
                requested: mode,
                backend: Backend::Uring,
                uring_unavailable: None,
            },
            Err(reason) => BackendChoice {
                requested: mode,
                backend: Backend::Epoll,
                uring_unavailable: Some(reason),
            },
        }),
    }
}

/// Checks that `io_uring` works here: builds a tokio-uring runtime and does a TCP
/// connect, write and read through it over loopback. Returns the reason on failure.
///
/// Runs on its own thread because building a runtime inside another runtime panics,
/// and so that a panic or a hang in the ring is contained and reported as a reason.
pub fn probe_uring() -> Result<(), String> {
    let (sender, receiver) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("lifeboat-uring-probe".into())
        .spawn(move || {
            // A panic inside tokio-uring (it `expect`s on some driver failures) must
            // become a reason, not abort startup.
            let result = std::panic::catch_unwind(probe_uring_on_this_thread)
                .unwrap_or_else(|_| Err("io_uring probe panicked".to_string()));
            let _ = sender.send(result);
        });
    if let Err(error) = spawned {
        return Err(format!("cannot start the probe thread: {error}"));
    }
    match receiver.recv_timeout(URING_PROBE_TIMEOUT) {
        Ok(result) => result,
        Err(_) => Err(format!(
            "io_uring probe did not finish within {} ms",
            URING_PROBE_TIMEOUT.as_millis()
        )),
    }
}

fn probe_uring_on_this_thread() -> Result<(), String> {
    let runtime = tokio_uring::Runtime::new(tokio_uring::builder().entries(URING_ENTRIES))
        .map_err(|error| format!("cannot create an io_uring instance: {error}"))?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("probe cannot bind loopback: {error}"))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|error| format!("probe listener: {error}"))?;
    runtime.block_on(async move {
        let stream = tokio_uring::net::TcpStream::connect(addr)
            .await
            .map_err(|error| format!("io_uring connect failed: {error}"))?;
        // The connection is established, so accept returns at once from the backlog.
        let (mut peer, _) = listener
            .accept()
            .map_err(|error| format!("probe accept: {error}"))?;
        peer.write_all(b"p")
            .map_err(|error| format!("probe write: {error}"))?;
        let (read, buf) = stream.read(Vec::with_capacity(1)).await;
        match read {
            Ok(1) if buf == b"p" => {}
            Ok(n) => return Err(format!("io_uring read returned {n} bytes")),
            Err(error) => return Err(format!("io_uring read failed: {error}")),
        }
        let (written, _) = stream.write(b"q".to_vec()).submit().await;
        written.map_err(|error| format!("io_uring write failed: {error}"))?;
        let mut byte = [0u8; 1];
        peer.read_exact(&mut byte)
            .map_err(|error| format!("probe read: {error}"))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_mode_parses_the_config_values() {
        let cases = [
            ("auto", Ok(IoMode::Auto)),
            ("uring", Ok(IoMode::Uring)),
            ("epoll", Ok(IoMode::Epoll)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<IoMode>(), expected);
            assert_eq!(text.parse::<IoMode>().unwrap().to_string(), text);
        }
        assert!("io_uring".parse::<IoMode>().is_err());
        assert!("".parse::<IoMode>().is_err());
    }

    #[test]
    fn epoll_is_chosen_without_probing() {
        let choice = select_backend(IoMode::Epoll).unwrap();
        assert_eq!(choice.backend, Backend::Epoll);
        assert_eq!(choice.uring_unavailable, None);
    }

    #[test]
    fn unavailable_uring_falls_back_under_auto_and_fails_when_forced() {
        let blocked = || Err("io_uring_setup: Operation not permitted".to_string());
        let choice = select_backend_with(IoMode::Auto, blocked).unwrap();
        assert_eq!(choice.backend, Backend::Epoll);
        assert_eq!(
            choice.to_string(),
            "epoll (io = auto); io_uring unavailable: io_uring_setup: Operation not permitted"
        );
        match select_backend_with(IoMode::Uring, blocked) {
            Err(StartError::UringUnavailable { reason }) => {
                assert!(reason.contains("not permitted"))
            }
            other => panic!("expected UringUnavailable, got {other:?}"),
        }
        let working = || Ok(());
        let choice = select_backend_with(IoMode::Auto, working).unwrap();
        assert_eq!(choice.backend, Backend::Uring);
        assert_eq!(choice.to_string(), "io_uring (io = auto)");
        let choice = select_backend_with(IoMode::Epoll, || panic!("epoll must not probe")).unwrap();
        assert_eq!(choice.backend, Backend::Epoll);
    }

    #[test]
    fn auto_picks_a_backend_and_explains_a_fallback() {
        let choice = select_backend(IoMode::Auto).unwrap();
        match choice.backend {
            Backend::Uring => assert_eq!(choice.uring_unavailable, None),
            Backend::Epoll => assert!(choice.uring_unavailable.is_some()),
        }
        // The probe and the selection agree.
        assert_eq!(probe_uring().is_ok(), choice.backend == Backend::Uring);
        println!("auto selected {choice}");
    }
}
