//! One try of a request on one instance and what it ended with.
//!
//! [`Outcome`] is the single vocabulary of the request path's `classify` phase: the
//! breaker reads it (failure or not, trip at once or count), the metrics label it, and
//! the retry policy decides from it whether another instance may be tried.

use std::borrow::Cow;

use http::{Method, StatusCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The instance answered (the head arrived), with this status.
    Answered(StatusCode),
    /// No connection could be made: nothing was sent.
    ConnectFailed,
    /// The connection closed or was reset before an answer started: the instance may
    /// or may not have received the request.
    BrokeBeforeAnswer,
    /// Any other failure of the exchange.
    Failed,
    /// No answer's head within the route's timeout.
    TimedOut,
}

/// Why a request is tried again on another instance (the `reason` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    Connect,
    Broken,
    Unavailable,
}

impl RetryReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Broken => "broken",
            Self::Unavailable => "503",
        }
    }
}

impl Outcome {
    /// Counts against the instance in its breaker: no answer, or a 5xx one.
    pub fn is_failure(self) -> bool {
        match self {
            Self::Answered(status) => status.is_server_error(),
            _ => true,
        }
    }

    /// Trips the breaker at once: the instance is most likely gone.
    pub fn is_connect_failure(self) -> bool {
        self == Self::ConnectFailed
    }

    /// The `status` label of `gateway_upstream_requests_total`.
    pub fn label(self) -> Cow<'static, str> {
        match self {
            Self::Answered(status) => Cow::Owned(status.as_str().to_owned()),
            Self::ConnectFailed => Cow::Borrowed("connect_error"),
            Self::BrokeBeforeAnswer | Self::Failed => Cow::Borrowed("error"),
            Self::TimedOut => Cow::Borrowed("timeout"),
        }
    }

    /// Whether another instance may be tried, by what this try did: only when the
    /// request cannot have taken effect (nothing was sent), or has no effect to
    /// duplicate (a safe method that broke or was answered 503). A timeout is never
    /// retried: the instance may still be working on it, and the client has waited
    /// long enough. The retry budget and the attempt cap are checked by the caller.
    pub fn retry_reason(self, method: &Method) -> Option<RetryReason> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        match self {
            Self::ConnectFailed => Some(RetryReason::Connect),
            Self::BrokeBeforeAnswer if safe => Some(RetryReason::Broken),
            Self::Answered(StatusCode::SERVICE_UNAVAILABLE) if safe => Some(RetryReason::Unavailable),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_retried_only_when_nothing_was_sent() {
        let post = Method::POST;
        assert_eq!(Outcome::ConnectFailed.retry_reason(&post), Some(RetryReason::Connect));
        for outcome in [
            Outcome::BrokeBeforeAnswer,
            Outcome::Answered(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::TimedOut,
            Outcome::Failed,
        ] {
            assert_eq!(outcome.retry_reason(&post), None, "{outcome:?}");
        }
    }

    #[test]
    fn reads_are_retried_after_a_break_or_a_503_but_never_a_timeout() {
        let get = Method::GET;
        assert_eq!(Outcome::BrokeBeforeAnswer.retry_reason(&get), Some(RetryReason::Broken));
        assert_eq!(
            Outcome::Answered(StatusCode::SERVICE_UNAVAILABLE).retry_reason(&get),
            Some(RetryReason::Unavailable)
        );
        assert_eq!(Outcome::TimedOut.retry_reason(&get), None);
        assert_eq!(Outcome::Answered(StatusCode::INTERNAL_SERVER_ERROR).retry_reason(&get), None);
    }

    #[test]
    fn failures_for_the_breaker_are_5xx_and_no_answer() {
        assert!(!Outcome::Answered(StatusCode::NOT_FOUND).is_failure());
        assert!(Outcome::Answered(StatusCode::BAD_GATEWAY).is_failure());
        assert!(Outcome::TimedOut.is_failure());
        assert!(Outcome::ConnectFailed.is_connect_failure());
        assert_eq!(Outcome::Answered(StatusCode::OK).label(), "200");
    }
}
