//! A connection whose writes fail when its client stops reading ([`Stalled`]): hyper
//! has no write timeout of its own, and a client that asks for a page and never
//! reads the answer would otherwise hold its connection (one of the server's slots)
//! for good.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A peer's silence, timed: from the first time it is found not to move (a poll
/// that is pending) to the next time it moves. Shared by [`Stalled`] and
/// [`crate::body::IdleBody`].
pub(crate) struct Silence {
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether the clock runs (the last poll found no progress).
    waiting: bool,
}

impl Silence {
    pub(crate) fn new(limit: Duration) -> Silence {
        Silence {
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// The peer moved: the clock stops.
    pub(crate) fn moved(&mut self) {
        self.waiting = false;
    }

    /// The peer did not move: `Ready` once it has not for `limit`, else `Pending`
    /// (with `cx` woken when it has).
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.waiting {
            self.waiting = true;
            let until = tokio::time::Instant::now() + self.limit;
            self.deadline.as_mut().reset(until);
        }
        self.deadline.as_mut().poll(cx)
    }

    /// What a poll of the peer gives, with the silence timed: `Pending` becomes the
    /// error `expired` once the peer has not moved for `limit`.
    pub(crate) fn watch<T, E>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<Result<T, E>>,
        expired: impl FnOnce(Duration) -> E,
    ) -> Poll<Result<T, E>> {
        match polled {
            Poll::Ready(result) => {
                self.moved();
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_expired(cx).map(|()| Err(expired(self.limit))),
        }
    }
}

/// `inner`, whose writes fail with [`io::ErrorKind::TimedOut`] once they have taken
/// nothing for `stall`.
pub(crate) struct Stalled<S> {
    inner: S,
    silence: Silence,
}

impl<S> Stalled<S> {
    pub(crate) fn new(inner: S, stall: Duration) -> Stalled<S> {
        Stalled {
            inner,
            silence: Silence::new(stall),
        }
    }
}

fn stalled(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client read nothing for {limit:?}"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.silence.watch(cx, polled, stalled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.silence.watch(cx, polled, stalled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.silence.watch(cx, polled, stalled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_does_not_take_fails_and_a_slow_one_does_not() {
        let (client, server) = tokio::io::duplex(1024);
        let mut server = Stalled::new(server, Duration::from_secs(30));
        let (mut client_read, _client_write) = tokio::io::split(client);
        // The client reads 1 KiB every 20 s: slow, but within the stall time.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let mut read = 0;
            while read < 4096 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                read += client_read.read(&mut buf).await.unwrap();
            }
            // Then it stops reading, connection open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(client_read);
        });
        server.write_all(&[b'x'; 4096]).await.unwrap();
        let error = server.write_all(&[b'y'; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("30s"), "{error}");
        reader.abort();
    }
}
