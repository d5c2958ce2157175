//! The deadline for a request's head, kept per connection by the listener rather than
//! by hyper.
//!
//! hyper's `header_read_timeout` arms a timer for every head a kept-alive connection
//! waits for: a boxed sleep, inserted into the timer wheel and removed again once the
//! head has arrived, on every request. Switching it off made the gateway 1.08× faster
//! in one A/B run; this replacement measured within the noise of the build before it
//! (docs/BENCHMARKS.md, issue 7, stop 22). Here a request marks its connection busy when hyper
//! hands it over (its head has arrived) and idle again when its answer's body is
//! dropped (written out, or abandoned); the connection's one timer ([`HeadDeadline`],
//! in `drive`) wakes at the deadline and either closes a connection that has waited
//! that long for a head or sleeps until the next deadline. One timer per connection,
//! reset at most once per timeout, instead of one per request.
//!
//! The bound is the same: the time from the moment a connection is ready for a head
//! (accepted, or its previous answer written) until the head has arrived. A connection
//! that sends nothing, or a head byte by byte, is closed at the deadline, before its
//! first request as between two kept-alive ones. Used on the public listener (HTTP/1.1
//! only); the internal ones serve HTTP/2 as well and keep hyper's timer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// One connection's requests in flight, and since when it has had none.
pub struct HeadDeadline {
    timeout: Duration,
    start: Instant,
    busy: AtomicUsize,
    /// Nanoseconds from `start` to the end of the last request.
    idle_since: AtomicU64,
}

impl HeadDeadline {
    pub fn new(timeout: Duration) -> Arc<Self> {
        Arc::new(Self { timeout, start: Instant::now(), busy: AtomicUsize::new(0), idle_since: AtomicU64::new(0) })
    }

    /// When to look again, or `None`: the connection has waited for a head past the
    /// deadline and is to be closed.
    pub fn next_check(&self) -> Option<Instant> {
        let now = Instant::now();
        if self.busy.load(Ordering::Acquire) > 0 {
            return Some(now + self.timeout);
        }
        let deadline = self.start + Duration::from_nanos(self.idle_since.load(Ordering::Relaxed)) + self.timeout;
        (deadline > now).then_some(deadline)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// A request in flight on its connection, until dropped.
struct Busy(Arc<HeadDeadline>);

impl Drop for Busy {
    fn drop(&mut self) {
        let elapsed = self.0.start.elapsed().as_nanos().try_into().unwrap_or(u64::MAX);
        self.0.idle_since.store(elapsed, Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::Release);
    }
}

/// A connection's service, with each request marked busy until its answer's body is
/// dropped.
pub struct Watched<S> {
    inner: S,
    deadline: Arc<HeadDeadline>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, deadline: Arc<HeadDeadline>) -> Self {
        Self { inner, deadline }
    }
}

impl<S, R, B> hyper::service::Service<R> for Watched<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<WatchedBody<B>>;
    type Error = S::Error;
    type Future = WatchedAnswer<S::Future>;

    fn call(&self, req: R) -> Self::Future {
        let busy = Some(self.deadline.begin());
        WatchedAnswer { answer: self.inner.call(req), busy }
    }
}

pin_project_lite::pin_project! {
    /// The service's answer; its body takes the busy mark along.
    pub struct WatchedAnswer<F> {
        #[pin]
        answer: F,
        busy: Option<Busy>,
    }
}

impl<F, B, E> Future for WatchedAnswer<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<WatchedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        let busy = this.busy.take();
        Poll::Ready(answer.map(|res| res.map(|body| WatchedBody { body, _busy: busy })))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body; dropping it ends the request's busy mark.
    pub struct WatchedBody<B> {
        #[pin]
        body: B,
        _busy: Option<Busy>,
    }
}

impl<B: Body> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_last_answer_and_not_while_one_is_in_flight() {
        let deadline = HeadDeadline::new(Duration::from_secs(10));
        assert_eq!(deadline.next_check(), Some(Instant::now() + Duration::from_secs(10)), "from the accept");
        tokio::time::advance(Duration::from_secs(4)).await;
        let busy = deadline.begin();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(deadline.next_check(), Some(Instant::now() + Duration::from_secs(10)), "busy: never overdue");
        drop(busy);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(deadline.next_check(), Some(Instant::now() + Duration::from_secs(1)), "10 s after the answer");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(deadline.next_check(), None, "waited a whole timeout for a head");
    }
}
