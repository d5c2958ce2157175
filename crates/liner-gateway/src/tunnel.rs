//! A WebSocket tunnel: the client's and the upstream's upgraded connections spliced
//! byte for byte; frames are not re-parsed.
//!
//! Each direction is copied on its own until its reader ends, then the other side's
//! writer is shut down; the tunnel ends when both have. `copy_bidirectional` would end
//! both at the first error in either, which loses the last frames of a close: when the
//! forum refuses an oversized frame it sends its 1009 close frame and closes, the
//! client→forum direction then fails on write while the close frame is still on its
//! way forum→client. Here that direction still delivers it.

use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Buffer per direction. Every open tunnel keeps both, idle or not; chat frames are
/// small (at most 16 KiB, usually a few hundred bytes), so 2 KiB costs no extra reads
/// for them where tokio's default (8 KiB) would cost 12 KiB more per connection.
const BUFFER_BYTES: usize = 2 * 1024;

/// How long the other direction may go on once one has ended (a peer that vanished
/// without a FIN must not keep a tunnel open).
const LINGER: Duration = Duration::from_secs(5);

/// Copies both ways until both directions have ended (the second within `LINGER`).
pub async fn splice(client: Upgraded, upstream: Upgraded) {
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let up = copy_then_shutdown(client_read, upstream_write);
    let down = copy_then_shutdown(upstream_read, client_write);
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut up => { let _ = tokio::time::timeout(LINGER, down).await; }
        () = &mut down => { let _ = tokio::time::timeout(LINGER, up).await; }
    }
}

async fn copy_then_shutdown(from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let mut from = BufReader::with_capacity(BUFFER_BYTES, from);
    if let Err(e) = tokio::io::copy_buf(&mut from, &mut to).await {
        tracing::debug!(error = %e, "tunnel direction ended");
    }
    let _ = to.shutdown().await;
}
