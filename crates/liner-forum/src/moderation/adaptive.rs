//! Adaptive slow mode: a room whose chat runs faster than people can read (a release
//! day) switches slow mode on by itself, with a visible notice, and off again once it
//! has calmed down.
//!
//! The rule, with the defaults (each a flag, see [`AdaptiveSettings`]):
//! - **on** when the room's log gained [`AdaptiveSettings::messages`] rows (1,000) within
//!   [`AdaptiveSettings::window_secs`] (10 s), i.e. 100 lines a second sustained — twice
//!   the referee's release-day load of 50 a second, so that benchmark measures delivery,
//!   not the brake; slow mode is then [`AdaptiveSettings::slow_mode_secs`] (10 s);
//! - **off** once it has been on for [`AdaptiveSettings::hold_secs`] (60 s) and the last
//!   window held fewer than half that many rows;
//! - a moderator's choice wins: a moderator who sets slow mode (on or off) makes it
//!   theirs, and the rule leaves the room alone for [`MODERATOR_CHOICE_HOLDS`].
//!
//! Both switches are ordinary sequenced `slowmode` events (`automatic: true`), so every
//! member sees them in order and `since` replays them. Counting costs one indexed point
//! read, not a scan: seq is dense, so "N rows within the window" is "the row N − 1 seqs
//! back was sent within the window". Rows count whatever their kind (events are rare).
//! The check runs on every (threshold ÷ 64)th seq — every 15th line by default — so the
//! switch comes at most that many lines late, for a 64th of the reads. It runs after a
//! chat line is stored and acknowledged, outside the room's append transaction, so it
//! never lengthens the room's write lock; every replica may check, and the switch is a
//! conditional update in the append transaction (`Effect::AutoSlowModeOn`/`Off`), so
//! racing replicas store one event, not two.
//! The calm check is a loop on every replica over the (few) rooms the rule slowed.

use std::time::Duration;

use liner_shared::now_millis;
use tokio_util::sync::CancellationToken;

use crate::chat::hub::Event;
use crate::error::Result;
use crate::rooms::model::EventKind;
use crate::rooms::store::{self, Appended, Effect, NewMessage, StoredMessage};
use crate::state::AppState;

/// After a moderator sets slow mode, the rule does not switch it for this long.
pub const MODERATOR_CHOICE_HOLDS: Duration = Duration::from_secs(600);
/// The author of the rule's events, as their frames show it.
pub const RULE_USER_ID: &str = "liner";
pub const RULE_USERNAME: &str = "Liner";
/// `target_id` of a `slowmode` event the rule stored.
pub const AUTOMATIC: &str = "automatic";
/// How many times per threshold's worth of seqs the switch-on check runs.
const CHECKS_PER_THRESHOLD: u32 = 64;

const DEFAULT_MESSAGES: u32 = 1000;
const DEFAULT_WINDOW_SECS: u64 = 10;
const DEFAULT_SLOW_MODE_SECS: u64 = 10;
const DEFAULT_HOLD_SECS: u64 = 60;

/// The thresholds of the rule (see the module doc).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AdaptiveSettings {
    /// Rows of a room's log within the window that switch slow mode on by itself (0: never).
    #[arg(long = "auto-slow-mode-messages", env = "LINER_FORUM_AUTO_SLOW_MODE_MESSAGES", default_value_t = DEFAULT_MESSAGES,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub messages: u32,
    /// The window those rows are counted over, in seconds.
    #[arg(long = "auto-slow-mode-window-secs", env = "LINER_FORUM_AUTO_SLOW_MODE_WINDOW_SECS", default_value_t = DEFAULT_WINDOW_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub window_secs: u64,
    /// The slow mode it switches on: one message per member per this many seconds.
    #[arg(long = "auto-slow-mode-secs", env = "LINER_FORUM_AUTO_SLOW_MODE_SECS", default_value_t = DEFAULT_SLOW_MODE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub slow_mode_secs: u64,
    /// Seconds it stays on at least, before the calm check may switch it off.
    #[arg(long = "auto-slow-mode-hold-secs", env = "LINER_FORUM_AUTO_SLOW_MODE_HOLD_SECS", default_value_t = DEFAULT_HOLD_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub hold_secs: u64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        Self {
            messages: DEFAULT_MESSAGES,
            window_secs: DEFAULT_WINDOW_SECS,
            slow_mode_secs: DEFAULT_SLOW_MODE_SECS,
            hold_secs: DEFAULT_HOLD_SECS,
        }
    }
}

impl AdaptiveSettings {
    /// The rule switched off entirely.
    pub fn off() -> Self {
        Self { messages: 0, ..Self::default() }
    }
    fn window_ms(&self) -> i64 {
        (self.window_secs * 1000) as i64
    }
    /// Whether `rows` rows ending at `last_seq` were all appended within the window:
    /// true when the row `rows − 1` seqs back was sent after `now − window`.
    async fn busy(&self, state: &AppState, room_id: &str, last_seq: i64, rows: i64, now: i64) -> Result<bool> {
        let first = last_seq - rows + 1;
        if rows < 1 || first < 1 {
            return Ok(false);
        }
        let sent_at = store::sent_at_of(&state.db, room_id, first).await?;
        Ok(sent_at.is_some_and(|t| t > now - self.window_ms()))
    }
}

/// After a chat line was stored while the room's slow mode was off: switches it on
/// when the room is busy. Errors are logged, never the sender's problem.
pub async fn after_message(state: &AppState, message: &StoredMessage, slow_mode_secs: i64) {
    let rule = &state.chat.adaptive;
    if rule.messages == 0 || slow_mode_secs > 0 || message.kind != EventKind::Message {
        return;
    }
    // A check on every 1/64th of the threshold's seqs is enough (see the module doc).
    let every = i64::from((rule.messages / CHECKS_PER_THRESHOLD).max(1));
    if message.seq % every != 0 {
        return;
    }
    let now = now_millis();
    match rule.busy(state, &message.room_id, message.seq, i64::from(rule.messages), now).await {
        Ok(true) => {
            let effect = Effect::AutoSlowModeOn {
                secs: rule.slow_mode_secs as i64,
                moderator_before: now - MODERATOR_CHOICE_HOLDS.as_millis() as i64,
            };
            switch(state, &message.room_id, rule.slow_mode_secs as i64, effect).await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, room_id = %message.room_id, "adaptive slow mode: check failed"),
    }
}

/// Every half window (at least a second), switches off the rule's slow mode in rooms
/// that have calmed down; until `shutdown`.
pub async fn calm_loop(state: AppState, shutdown: CancellationToken) {
    let rule = state.chat.adaptive.clone();
    if rule.messages == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis((rule.window_ms() as u64 / 2).max(1000)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = calm_rooms(&state, &rule).await {
            tracing::warn!(error = %e, "adaptive slow mode: calm check failed");
        }
    }
}

async fn calm_rooms(state: &AppState, rule: &AdaptiveSettings) -> Result<()> {
    let now = now_millis();
    let held_since = now - (rule.hold_secs * 1000) as i64;
    let calm_below = i64::from(rule.messages / 2).max(1);
    for (room_id, last_seq, since) in store::auto_slowed_rooms(&state.db).await? {
        if since > held_since || rule.busy(state, &room_id, last_seq, calm_below, now).await? {
            continue;
        }
        switch(state, &room_id, 0, Effect::AutoSlowModeOff).await;
    }
    Ok(())
}

/// Stores the rule's `slowmode` event and fans it out (nothing when another replica or
/// a moderator got there first).
async fn switch(state: &AppState, room_id: &str, seconds: i64, effect: Effect<'_>) {
    let event = NewMessage {
        room_id,
        kind: EventKind::SlowMode,
        user_id: RULE_USER_ID,
        username: RULE_USERNAME,
        target_id: Some(AUTOMATIC),
        amount: Some(seconds),
        moderator: true,
        effect,
        ..NewMessage::default()
    };
    match store::append(&state.db, &state.writes, event).await {
        Ok(Appended::Stored { message, .. }) => {
            tracing::info!(%room_id, seconds, seq = message.seq, "adaptive slow mode switched");
            metrics::counter!("forum_auto_slow_mode_switches_total", "to" => if seconds > 0 { "on" } else { "off" })
                .increment(1);
            state.fanout.publish(room_id, Event::stored(&message)).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, %room_id, "adaptive slow mode: switch not stored"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        rule: AdaptiveSettings,
    }

    #[test]
    fn the_flags_defaults_are_the_default() {
        assert_eq!(Cli::parse_from(["liner"]).rule, AdaptiveSettings::default());
    }

    #[test]
    fn zero_messages_switches_the_rule_off() {
        let cli = Cli::parse_from(["liner", "--auto-slow-mode-messages", "0"]);
        assert_eq!(cli.rule, AdaptiveSettings::off());
        assert!(Cli::try_parse_from(["liner", "--auto-slow-mode-window-secs", "0"]).is_err());
    }
}
