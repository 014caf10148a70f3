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

/// `inner`, whose writes fail with [`io::ErrorKind::TimedOut`] once they have taken
/// nothing for `stall`.
pub(crate) struct Stalled<S> {
    inner: S,
    stall: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether the last write found no room: the clock runs from then.
    waiting: bool,
}

impl<S> Stalled<S> {
    pub(crate) fn new(inner: S, stall: Duration) -> Stalled<S> {
        Stalled {
            inner,
            stall,
            deadline: Box::pin(tokio::time::sleep(stall)),
            waiting: false,
        }
    }

    /// After a write that found no room: `Pending`, or the error once it has waited
    /// `stall`.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.waiting {
            self.waiting = true;
            let until = tokio::time::Instant::now() + self.stall;
            self.deadline.as_mut().reset(until);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.stall),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
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
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(written) => {
                this.waiting = false;
                Poll::Ready(written)
            }
            Poll::Pending => this.wait(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(written) => {
                this.waiting = false;
                Poll::Ready(written)
            }
            Poll::Pending => this.wait(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(flushed) => {
                this.waiting = false;
                Poll::Ready(flushed)
            }
            Poll::Pending => this.wait(cx).map(Err),
        }
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
