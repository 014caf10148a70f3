//! A request body that fails when its client sends nothing for too long
//! ([`IdleBody`]): what keeps a client that announces a body and never sends it from
//! holding one of the server's connection slots, and a handler, forever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::stall::Silence;

/// The error of a body whose client went silent.
#[derive(Debug)]
pub(crate) struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nothing of the request body came in {:?}", self.0)
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether reading a body failed because its client went silent.
pub(crate) fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `inner`, failing with [`BodyTimedOut`] when no part of it comes for `idle`
/// while it is read (the time between reads is not counted against the client).
pub(crate) struct IdleBody<B> {
    inner: B,
    silence: Silence,
}

impl<B> IdleBody<B> {
    pub(crate) fn new(inner: B, idle: Duration) -> IdleBody<B> {
        IdleBody {
            inner,
            silence: Silence::new(idle),
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.silence.moved();
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => this
                .silence
                .poll_expired(cx)
                .map(|()| Some(Err(BodyTimedOut(this.silence.limit()).into()))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::BodyExt;

    /// A body whose parts come from a channel.
    struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for Channel {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|part| part.map(|part| Ok(Frame::data(part))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_times_out_and_a_slow_one_does_not() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
        let mut body = IdleBody::new(Channel(receiver), Duration::from_secs(30));
        // Parts 20 s apart: each within the idle time.
        let feeder = tokio::spawn(async move {
            for part in ["a", "b", "c"] {
                tokio::time::sleep(Duration::from_secs(20)).await;
                sender.send(Bytes::from(part)).await.unwrap();
            }
            // Then nothing, without ending.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(sender);
        });
        let mut got = Vec::new();
        let error = loop {
            match body.frame().await {
                Some(Ok(frame)) => got.extend_from_slice(&frame.into_data().unwrap()),
                Some(Err(error)) => break error,
                None => panic!("the body ended"),
            }
        };
        assert_eq!(got, b"abc");
        assert!(error.to_string().contains("30s"), "{error}");
        feeder.abort();
    }
}
