//! Edits, deletions, mutes, kicks, slow mode, reports and typing (issue 12): on the
//! embedded mode (SQLite, one replica) and on PostgreSQL + Redis with two replicas, the
//! members spread over both. Every edit and moderation action is a sequenced room
//! event: it reaches every member in seq order with the messages, with no gap, and a
//! replay with `since` reproduces it.

mod common;

use common::*;
use serde_json::{Value, json};

/// Frame types that carry a room seq (besides `ack`, which names one).
const SEQUENCED: [&str; 7] = ["message", "edit", "delete", "mute", "unmute", "kick", "slowmode"];

/// The next frame that carries a room seq (presence and typing skipped).
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let v = next_json(ws).await;
        if SEQUENCED.contains(&v["type"].as_str().unwrap_or_default()) {
            return v;
        }
    }
}

/// The next `n` sequenced frames; asserts their seqs follow `after` without a gap.
async fn events(ws: &mut Ws, after: i64, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let v = next_event(ws).await;
        assert_eq!(v["seq"].as_i64(), Some(after + 1 + i as i64), "seq order, no gap: {v}");
        out.push(v);
    }
    out
}

fn edit(room_id: &str, message_id: &str, text: &str, cid: &str) -> Value {
    json!({"type": "edit", "roomId": room_id, "messageId": message_id, "message": text, "clientMsgId": cid})
}

async fn rest(method: reqwest::Method, url: String, user: &User, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url).bearer_auth(&user.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A room of alice's with alice on the first replica and bob on the last, both joined.
struct Scene {
    _review: Review,
    backing: Backing,
    forums: Vec<Forum>,
    alice: User,
    bob: User,
    carol: User,
    room: String,
    a: Ws,
    b: Ws,
}

async fn scene(mode: Mode) -> Scene {
    scene_with(mode, liner_forum::moderation::adaptive::AdaptiveSettings::default()).await
}

async fn scene_with(mode: Mode, adaptive: liner_forum::moderation::adaptive::AdaptiveSettings) -> Scene {
    let review = start_review().await;
    // 40 frames back to back in one test; the limiter itself is abuse.rs's.
    let tweak = |s: &mut liner_forum::Settings| {
        s.rate_burst = 100;
        s.adaptive = adaptive.clone();
    };
    let (backing, forums) = start_forums(&review, mode, tweak).await;
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let carol = register(&review, "carol").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "genre", "genreId": "jazz"})).await;
    let room = room["id"].as_str().expect("room id").to_owned();
    let mut a = connect(&forums[0], &alice, &room, None).await;
    wait_joined(&mut a, &alice).await;
    let mut b = connect(forums.last().expect("a replica"), &bob, &room, None).await;
    wait_joined(&mut b, &bob).await;
    Scene { _review: review, backing, forums, alice, bob, carol, room, a, b }
}

/// The forum's own database, to age a message past its edit window.
async fn forum_db(s: &Scene) -> liner_shared::db::Db {
    let url = liner_shared::config::database_url_or(
        s.backing.database_url.as_ref().map(|u| u.parse().expect("url")).as_ref(),
        &s.forums[0].dir.path().join("forum"),
        liner_forum::SQLITE_FILE,
    )
    .expect("database url");
    liner_shared::db::Db::connect(&url, 2, liner_forum::MIGRATIONS, liner_shared::config::MigrationMode::Verify)
        .await
        .expect("forum database")
}

/// The author edits; every member on every replica gets the `edit` event in seq order
/// (20 messages and 20 edits sent back to back); history shows the latest text and
/// `editedAt`; a replay from 0 gives the messages with their latest text, then the edits,
/// in order; only the author may edit, only for 15 minutes.
async fn edits_are_sequenced_events(mode: Mode) {
    let mut s = scene(mode).await;
    for i in 0..20 {
        send_json(&mut s.a, chat(&s.room, &format!("draft {i}"), Some(&format!("m{i}")))).await;
    }
    let sent = events(&mut s.b, 0, 20).await;
    assert_eq!(events(&mut s.a, 0, 20).await, sent, "the author gets the same frames");
    for (i, m) in sent.iter().enumerate() {
        let text = format!("final {i}");
        send_json(&mut s.a, edit(&s.room, m["id"].as_str().unwrap(), &text, &format!("e{i}"))).await;
    }
    for reader in [&mut s.a, &mut s.b] {
        let got = events(reader, 20, 20).await;
        for (i, e) in got.iter().enumerate() {
            assert_eq!(e["type"], "edit", "{e}");
            assert_eq!(e["messageId"], sent[i]["id"], "{e}");
            assert_eq!(e["message"], format!("final {i}"));
            assert_eq!(e["userId"], s.alice.id.as_str());
            assert!(e["sentAt"].as_str().unwrap().ends_with('Z'));
        }
    }
    let first = sent[0]["id"].as_str().unwrap().to_owned();

    // Someone else's message, or a message past its window: refused, nothing stored.
    let answer = send_and_answer(&mut s.b, edit(&s.room, &first, "mine now", "b1")).await;
    assert_eq!(answer["code"], "not_author", "{answer}");
    let answer = send_and_answer(&mut s.a, edit(&s.room, "no-such-id", "x", "a1")).await;
    assert_eq!(answer["code"], "message_not_found", "{answer}");
    let db = forum_db(&s).await;
    sqlx::query("UPDATE messages SET sent_at = sent_at - 960000 WHERE id = $1")
        .bind(&first)
        .execute(&db.pool)
        .await
        .unwrap();
    let answer = send_and_answer(&mut s.a, edit(&s.room, &first, "too late", "a2")).await;
    assert_eq!(answer["code"], "edit_window_closed", "{answer}");
    // A retried edit gets the same ack.
    let second = sent[1]["id"].as_str().unwrap();
    let again = send_and_answer(&mut s.a, edit(&s.room, second, "final 1", "e1")).await;
    assert_eq!((again["type"].as_str(), again["seq"].as_i64()), (Some("ack"), Some(22)), "{again}");

    let history = full_history(&s.forums[0], &s.room).await;
    assert_eq!(history.len(), 20, "events are not history lines");
    for (i, m) in history.iter().enumerate() {
        assert_eq!(m["message"], format!("final {i}"));
        assert!(m["editedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
        assert_eq!(m["deleted"], false);
    }

    let mut c = connect(s.forums.last().unwrap(), &s.carol, &s.room, Some(0)).await;
    let replay = events(&mut c, 0, 40).await;
    for (i, m) in replay[..20].iter().enumerate() {
        assert_eq!((m["type"].as_str(), m["message"].as_str()), (Some("message"), Some(format!("final {i}").as_str())));
    }
    assert!(replay[20..].iter().all(|e| e["type"] == "edit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_sequenced_events_sqlite() {
    edits_are_sequenced_events(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_sequenced_events_two_replicas() {
    edits_are_sequenced_events(Mode::Replicated).await;
}

/// The creator deletes bob's message and bob deletes his own: every member gets the
/// `delete` events live in order; history and a replay show tombstones (no text left,
/// not even in an earlier edit); a member who is neither author nor moderator gets 403.
async fn deletes_become_tombstones(mode: Mode) {
    let mut s = scene(mode).await;
    for (i, text) in ["spam", "fine", "typo"].iter().enumerate() {
        let ack = send_and_answer(&mut s.b, chat(&s.room, text, Some(&format!("b{i}")))).await;
        assert_eq!(ack["type"], "ack");
    }
    let msgs = events(&mut s.a, 0, 3).await;
    let id = |i: usize| msgs[i]["id"].as_str().unwrap().to_owned();
    let ack = send_and_answer(&mut s.b, edit(&s.room, &id(0), "spam, edited", "e0")).await;
    assert_eq!(ack["seq"], 4);
    let msg_url = |i: usize| s.forums[0].api(&format!("/rooms/{}/messages/{}", s.room, id(i)));

    let (status, body) = rest(reqwest::Method::DELETE, msg_url(2), &s.carol, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("not_moderator")));
    assert_eq!(rest(reqwest::Method::DELETE, msg_url(0), &s.alice, None).await.0, 204);
    assert_eq!(rest(reqwest::Method::DELETE, msg_url(2), &s.bob, None).await.0, 204);
    assert_eq!(rest(reqwest::Method::DELETE, msg_url(2), &s.bob, None).await.0, 204, "deleting twice: a no-op");
    let missing = s.forums[0].api(&format!("/rooms/{}/messages/nope", s.room));
    assert_eq!(rest(reqwest::Method::DELETE, missing, &s.alice, None).await.0, 404);

    for reader in [&mut s.a, &mut s.b] {
        let got = events(reader, 3, 3).await;
        assert_eq!(got[0]["type"], "edit");
        assert_eq!((got[1]["type"].as_str(), got[1]["messageId"].as_str()), (Some("delete"), Some(id(0).as_str())));
        assert_eq!(got[1]["userId"], s.alice.id.as_str());
        assert_eq!((got[2]["type"].as_str(), got[2]["messageId"].as_str()), (Some("delete"), Some(id(2).as_str())));
    }
    let history = full_history(s.forums.last().unwrap(), &s.room).await;
    let shown: Vec<(bool, &str)> =
        history.iter().map(|m| (m["deleted"].as_bool().unwrap(), m["message"].as_str().unwrap())).collect();
    assert_eq!(shown, [(true, ""), (false, "fine"), (true, "")]);

    let mut c = connect(&s.forums[0], &s.carol, &s.room, Some(0)).await;
    let replay = events(&mut c, 0, 6).await;
    assert_eq!((replay[0]["deleted"].as_bool(), replay[0]["message"].as_str()), (Some(true), Some("")));
    assert_eq!(replay[3]["type"], "edit");
    assert_eq!(replay[3]["message"], "", "a deleted message's edits keep no text");
    assert_eq!((replay[4]["type"].as_str(), replay[5]["type"].as_str()), (Some("delete"), Some("delete")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_become_tombstones_sqlite() {
    deletes_become_tombstones(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_become_tombstones_two_replicas() {
    deletes_become_tombstones(Mode::Replicated).await;
}

/// Slow mode holds members (not moderators) to one message per N seconds; a muted member
/// cannot send or edit until unmuted; a kicked member's socket gets the `kick` frame and
/// closes with 4403 on the other replica, and may come back. Non-moderators get 403;
/// every action is an event that a replay from 0 reproduces in order.
async fn mute_kick_and_slow_mode(mode: Mode) {
    let mut s = scene(mode).await;
    let api = |path: &str| s.forums[0].api(&format!("/rooms/{}{path}", s.room));
    let (status, _) = rest(reqwest::Method::PUT, api("/slow-mode"), &s.bob, Some(json!({"seconds": 30}))).await;
    assert_eq!(status, 403);
    let (status, room) = rest(reqwest::Method::PUT, api("/slow-mode"), &s.alice, Some(json!({"seconds": 30}))).await;
    assert_eq!((status, room["slowModeSecs"].as_i64()), (200, Some(30)));
    let (status, _) = rest(reqwest::Method::PUT, api("/slow-mode"), &s.alice, Some(json!({"seconds": 3601}))).await;
    assert_eq!(status, 422);
    let slow = events(&mut s.b, 0, 1).await;
    assert_eq!((slow[0]["type"].as_str(), slow[0]["seconds"].as_i64()), (Some("slowmode"), Some(30)));

    assert_eq!(send_and_answer(&mut s.b, chat(&s.room, "one", Some("b1"))).await["type"], "ack");
    let held = send_and_answer(&mut s.b, chat(&s.room, "two", Some("b2"))).await;
    assert_eq!(held["code"], "slow_mode", "{held}");
    assert!(held["retryAfter"].as_u64().is_some_and(|s| (1..=30).contains(&s)), "{held}");
    for i in 0..3 {
        let ack = send_and_answer(&mut s.a, chat(&s.room, "mods are not slowed", Some(&format!("a{i}")))).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    assert_eq!(rest(reqwest::Method::PUT, api("/slow-mode"), &s.alice, Some(json!({"seconds": 0}))).await.0, 200);

    let mute_url = api(&format!("/mutes/{}", s.bob.id));
    let (status, mute) = rest(reqwest::Method::PUT, mute_url.clone(), &s.alice, Some(json!({"seconds": 600}))).await;
    assert_eq!(
        (status, mute["userId"].as_str(), mute["username"].as_str()),
        (200, Some(s.bob.id.as_str()), Some("bob"))
    );
    let self_mute =
        rest(reqwest::Method::PUT, api(&format!("/mutes/{}", s.alice.id)), &s.alice, Some(json!({"seconds": 60})));
    assert_eq!(self_mute.await.0, 422, "moderators cannot be muted");
    let ghost = rest(reqwest::Method::PUT, api("/mutes/no-such-user"), &s.alice, Some(json!({"seconds": 60})));
    assert_eq!(ghost.await.0, 404);
    assert_eq!(rest(reqwest::Method::PUT, mute_url.clone(), &s.carol, Some(json!({"seconds": 60}))).await.0, 403);
    let muted = send_and_answer(&mut s.b, chat(&s.room, "let me talk", Some("b3"))).await;
    assert_eq!(muted["code"], "muted", "{muted}");
    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &s.bob, None).await;
    assert_eq!(
        (state["moderator"].as_bool(), state["mutes"][0]["userId"].as_str()),
        (Some(false), Some(s.bob.id.as_str()))
    );
    assert_eq!(rest(reqwest::Method::DELETE, mute_url, &s.alice, None).await.0, 204);
    assert_eq!(send_and_answer(&mut s.b, chat(&s.room, "thanks", Some("b4"))).await["type"], "ack");

    assert_eq!(rest(reqwest::Method::POST, api("/kicks"), &s.bob, Some(json!({"userId": s.alice.id}))).await.0, 403);
    assert_eq!(rest(reqwest::Method::POST, api("/kicks"), &s.alice, Some(json!({"userId": s.bob.id}))).await.0, 204);
    let kick = loop {
        match next_frame(&mut s.b).await {
            Frame::Json(v) if v["type"] == "kick" => break v,
            Frame::Json(_) => continue,
            other => panic!("expected the kick frame first, got {other:?}"),
        }
    };
    assert_eq!(kick["target"]["userId"], s.bob.id.as_str());
    let closed = loop {
        match next_frame(&mut s.b).await {
            Frame::Json(_) => continue,
            other => break other,
        }
    };
    assert!(matches!(closed, Frame::Close(Some((4403, _)))), "{closed:?}");
    let last = kick["seq"].as_i64().unwrap();
    let mut back = connect(s.forums.last().unwrap(), &s.bob, &s.room, Some(last)).await;
    wait_joined(&mut back, &s.bob).await;
    assert_eq!(send_and_answer(&mut back, chat(&s.room, "back", Some("b5"))).await["type"], "ack");

    let mut c = connect(&s.forums[0], &s.carol, &s.room, Some(0)).await;
    let replay = events(&mut c, 0, last as usize + 1).await;
    let kinds: Vec<&str> = replay.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let expected = [
        "slowmode", "message", "message", "message", "message", "slowmode", "mute", "unmute", "message", "kick",
        "message",
    ];
    assert_eq!(kinds, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_kick_and_slow_mode_sqlite() {
    mute_kick_and_slow_mode(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_kick_and_slow_mode_two_replicas() {
    mute_kick_and_slow_mode(Mode::Replicated).await;
}

/// A quick rule for the tests: 6 rows within 5 s switch a 30 s slow mode on; it may
/// switch off after 1 s, once the last 5 s held fewer than 3 rows.
fn quick_rule() -> liner_forum::moderation::adaptive::AdaptiveSettings {
    liner_forum::moderation::adaptive::AdaptiveSettings {
        messages: 6,
        window_secs: 5,
        slow_mode_secs: 30,
        hold_secs: 1,
    }
}

/// Adaptive slow mode: a burst of 6 lines switches slow mode on by itself (one `slowmode`
/// event, `automatic`, on every replica, right after the line that crossed the
/// threshold), so the next line is refused; once the room is calm it switches off by
/// itself, once (both replicas check); the room's state and a replay from 0 show both.
async fn adaptive_slow_mode_switches_on_and_off(mode: Mode) {
    let mut s = scene_with(mode, quick_rule()).await;
    for i in 0..6 {
        assert_eq!(
            send_and_answer(&mut s.b, chat(&s.room, "release day!", Some(&format!("b{i}")))).await["type"],
            "ack"
        );
    }
    let burst = events(&mut s.a, 0, 7).await;
    let on = &burst[6];
    assert_eq!(
        (on["type"].as_str(), on["seconds"].as_i64(), on["automatic"].as_bool()),
        (Some("slowmode"), Some(30), Some(true)),
        "{on}"
    );
    assert_eq!(on["username"], "Liner");
    // Bob's own lines went by while he waited for his acks.
    assert_eq!(next_of_type(&mut s.b, "slowmode").await, *on, "the same event on the other replica");
    let held = send_and_answer(&mut s.b, chat(&s.room, "one more", Some("b6"))).await;
    assert_eq!(held["code"], "slow_mode", "{held}");
    let api = |path: &str| s.forums.last().unwrap().api(&format!("/rooms/{}{path}", s.room));
    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &s.bob, None).await;
    assert_eq!((state["slowModeSecs"].as_i64(), state["slowModeAutomatic"].as_bool()), (Some(30), Some(true)));

    for reader in [&mut s.a, &mut s.b] {
        let off = events(reader, 7, 1).await;
        assert_eq!(
            (off[0]["type"].as_str(), off[0]["seconds"].as_i64(), off[0]["automatic"].as_bool()),
            (Some("slowmode"), Some(0), Some(true)),
            "{}",
            off[0]
        );
    }
    assert_eq!(send_and_answer(&mut s.b, chat(&s.room, "calm again", Some("b7"))).await["type"], "ack");
    let after = events(&mut s.a, 8, 1).await;
    assert_eq!(
        (after[0]["type"].as_str(), after[0]["message"].as_str()),
        (Some("message"), Some("calm again")),
        "one switch off, not one per replica"
    );
    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &s.bob, None).await;
    assert_eq!((state["slowModeSecs"].as_i64(), state["slowModeAutomatic"].as_bool()), (Some(0), Some(false)));

    let mut c = connect(&s.forums[0], &s.carol, &s.room, Some(0)).await;
    let replay = events(&mut c, 0, 9).await;
    let kinds: Vec<(&str, Option<bool>)> =
        replay.iter().map(|e| (e["type"].as_str().unwrap(), e["automatic"].as_bool())).collect();
    let mut expected = vec![("message", None); 6];
    expected.extend([("slowmode", Some(true)), ("slowmode", Some(true)), ("message", None)]);
    assert_eq!(kinds, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_slow_mode_switches_on_and_off_sqlite() {
    adaptive_slow_mode_switches_on_and_off(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_slow_mode_switches_on_and_off_two_replicas() {
    adaptive_slow_mode_switches_on_and_off(Mode::Replicated).await;
}

/// A moderator's choice wins: after the rule switched slow mode on, the moderator sets
/// it off (an event that is not `automatic`), and the next burst leaves it off; a
/// moderator who sets slow mode keeps it (the calm check does not switch it off).
async fn a_moderators_choice_wins_over_adaptive_slow_mode(mode: Mode) {
    let mut s = scene_with(mode, quick_rule()).await;
    for i in 0..6 {
        send_and_answer(&mut s.b, chat(&s.room, "burst", Some(&format!("b{i}")))).await;
    }
    let on = events(&mut s.a, 0, 7).await;
    assert_eq!(on[6]["automatic"], true, "{}", on[6]);
    let api = |path: &str| s.forums[0].api(&format!("/rooms/{}{path}", s.room));
    let (status, room) = rest(reqwest::Method::PUT, api("/slow-mode"), &s.alice, Some(json!({"seconds": 0}))).await;
    assert_eq!(
        (status, room["slowModeSecs"].as_i64(), room["slowModeAutomatic"].as_bool()),
        (200, Some(0), Some(false))
    );
    let off = events(&mut s.a, 7, 1).await;
    assert_eq!((off[0]["seconds"].as_i64(), off[0]["automatic"].as_bool()), (Some(0), Some(false)), "{}", off[0]);
    for i in 6..13 {
        let ack = send_and_answer(&mut s.b, chat(&s.room, "burst again", Some(&format!("b{i}")))).await;
        assert_eq!(ack["type"], "ack", "the moderator switched it off: {ack}");
    }
    let burst = events(&mut s.a, 8, 7).await;
    assert!(burst.iter().all(|e| e["type"] == "message"), "no automatic switch: {burst:?}");

    let (status, _) = rest(reqwest::Method::PUT, api("/slow-mode"), &s.alice, Some(json!({"seconds": 5}))).await;
    assert_eq!(status, 200);
    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &s.bob, None).await;
    assert_eq!((state["slowModeSecs"].as_i64(), state["slowModeAutomatic"].as_bool()), (Some(5), Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderators_choice_wins_over_adaptive_slow_mode_sqlite() {
    a_moderators_choice_wins_over_adaptive_slow_mode(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderators_choice_wins_over_adaptive_slow_mode_postgres() {
    a_moderators_choice_wins_over_adaptive_slow_mode(Mode::Replicated).await;
}

/// Reports: once per user per message (409 + existingId), not one's own (403), a reason
/// of 1–500 characters (422); moderators list open ones with the message and resolve
/// them, others get 403; moderation writes are rate limited (429 + Retry-After).
async fn reports_and_limits(mode: Mode) {
    let mut s = scene(mode).await;
    let ack = send_and_answer(&mut s.a, chat(&s.room, "a hot take", Some("a1"))).await;
    let message = ack["id"].as_str().unwrap().to_owned();
    let api = |path: &str| s.forums[0].api(&format!("/rooms/{}{path}", s.room));
    let report_url = api(&format!("/messages/{message}/reports"));
    let (status, report) =
        rest(reqwest::Method::POST, report_url.clone(), &s.bob, Some(json!({"reason": " rude "}))).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!((report["status"].as_str(), report["reason"].as_str()), (Some("open"), Some("rude")));
    assert_eq!(report["message"]["message"], "a hot take");
    let (status, again) = rest(reqwest::Method::POST, report_url.clone(), &s.bob, Some(json!({"reason": "x"}))).await;
    assert_eq!((status, again["error"]["existingId"].as_str()), (409, report["id"].as_str()));
    assert_eq!(rest(reqwest::Method::POST, report_url.clone(), &s.alice, Some(json!({"reason": "x"}))).await.0, 403);
    assert_eq!(rest(reqwest::Method::POST, report_url.clone(), &s.carol, Some(json!({"reason": "  "}))).await.0, 422);
    let long = "x".repeat(501);
    assert_eq!(rest(reqwest::Method::POST, report_url, &s.carol, Some(json!({"reason": long}))).await.0, 422);

    assert_eq!(rest(reqwest::Method::GET, api("/reports"), &s.bob, None).await.0, 403);
    let (status, open) = rest(reqwest::Method::GET, api("/reports?status=open"), &s.alice, None).await;
    assert_eq!((status, open.as_array().map(Vec::len)), (200, Some(1)));
    let resolve = api(&format!("/reports/{}/resolve", report["id"].as_str().unwrap()));
    let (status, done) = rest(reqwest::Method::POST, resolve, &s.alice, None).await;
    assert_eq!(
        (status, done["status"].as_str(), done["resolvedBy"].as_str()),
        (200, Some("resolved"), Some(s.alice.id.as_str()))
    );
    let (_, open) = rest(reqwest::Method::GET, api("/reports"), &s.alice, None).await;
    assert_eq!(open.as_array().map(Vec::len), Some(0));
    let (_, resolved) = rest(reqwest::Method::GET, api("/reports?status=resolved"), &s.alice, None).await;
    assert_eq!(resolved.as_array().map(Vec::len), Some(1));
    assert_eq!(rest(reqwest::Method::GET, api("/reports?status=maybe"), &s.alice, None).await.0, 400);

    let mut limited = None;
    for i in 0..60 {
        let res = reqwest::Client::new()
            .put(api("/slow-mode"))
            .bearer_auth(&s.alice.token)
            .json(&json!({"seconds": i % 2}))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            limited = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            break;
        }
    }
    assert!(limited.is_some_and(|secs| secs.parse::<u64>().is_ok()), "429 with Retry-After within 60 writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_limits_sqlite() {
    reports_and_limits(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_and_limits_postgres() {
    reports_and_limits(Mode::Replicated).await;
}

/// The next frame that is not `presence` (who comes and goes is not what a test waits for).
async fn next_but_presence(ws: &mut Ws) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] != "presence" {
            return v;
        }
    }
}

/// Typing reaches the other members (across replicas) at most once per 3 s per member
/// — not per connection: two tabs of one person on one replica typing at once pass one
/// frame — never the typist, and is neither stored nor replayed.
async fn typing_is_forwarded_throttled_and_not_stored(mode: Mode) {
    let mut s = scene(mode).await;
    // Bob's second tab, on the replica of his first.
    let mut b2 = connect(s.forums.last().expect("a replica"), &s.bob, &s.room, None).await;
    wait_joined(&mut b2, &s.bob).await;
    for _ in 0..5 {
        send_json(&mut s.b, json!({"type": "typing", "roomId": s.room})).await;
        send_json(&mut b2, json!({"type": "typing", "roomId": s.room})).await;
    }
    // A connection handles its frames in order: these answers come after its typing.
    let bad = send_and_answer(&mut b2, json!({"type": "shout", "roomId": s.room, "clientMsgId": "x2"})).await;
    assert_eq!(bad["code"], "bad_frame");
    let ack = send_and_answer(&mut s.b, chat(&s.room, "done typing", Some("b1"))).await;
    assert_eq!(ack["type"], "ack", "typing frames are not answered, the message after them is");
    let typing = next_of_type(&mut s.a, "typing").await;
    assert_eq!((typing["userId"].as_str(), typing["username"].as_str()), (Some(s.bob.id.as_str()), Some("bob")));
    assert_eq!(typing["roomId"], s.room.as_str());
    let after = next_but_presence(&mut s.a).await;
    assert_eq!(after["type"], "message", "one typing frame for ten sent at once from two connections: {after}");
    let own = next_event(&mut s.b).await;
    assert_eq!(own["type"], "message", "the typist does not get their own typing frame");
    let bad = send_and_answer(&mut s.b, json!({"type": "shout", "roomId": s.room, "clientMsgId": "x"})).await;
    assert_eq!(bad["code"], "bad_frame");

    assert_eq!(full_history(&s.forums[0], &s.room).await.len(), 1);
    let mut c = connect(&s.forums[0], &s.carol, &s.room, Some(0)).await;
    assert_eq!(next_event(&mut c).await["seq"], 1);
    send_json(&mut c, chat(&s.room, "ping", Some("c1"))).await;
    let next = next_but_presence(&mut c).await;
    assert_eq!(next["type"], "ack", "nothing but the message was replayed: {next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_forwarded_throttled_and_not_stored_sqlite() {
    typing_is_forwarded_throttled_and_not_stored(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_is_forwarded_throttled_and_not_stored_two_replicas() {
    typing_is_forwarded_throttled_and_not_stored(Mode::Replicated).await;
}

/// An admin named in `--forum-admins` by username (any case) moderates every room: the
/// moderation state says so, and they delete and mute in a room they did not create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_named_in_config_moderate_every_room() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Embedded, |s| s.admin_users = vec!["DAVE".into()]).await;
    let (alice, bob, dave) =
        (register(&review, "alice").await, register(&review, "bob").await, register(&review, "dave").await);
    let room = create_room(&forums[0], &alice, json!({"roomType": "genre", "genreId": "dub"})).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let mut b = connect(&forums[0], &bob, &room, None).await;
    wait_joined(&mut b, &bob).await;
    let ack = send_and_answer(&mut b, chat(&room, "off topic", Some("b1"))).await;
    let api = |path: &str| forums[0].api(&format!("/rooms/{room}{path}"));

    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &dave, None).await;
    assert_eq!(state["moderator"], true, "{state}");
    let (_, state) = rest(reqwest::Method::GET, api("/moderation"), &bob, None).await;
    assert_eq!(state["moderator"], false, "{state}");
    let url = api(&format!("/messages/{}", ack["id"].as_str().unwrap()));
    assert_eq!(rest(reqwest::Method::DELETE, url, &dave, None).await.0, 204);
    let deleted = next_of_type(&mut b, "delete").await;
    assert_eq!((deleted["userId"].as_str(), deleted["username"].as_str()), (Some(dave.id.as_str()), Some("dave")));
    let mute = rest(reqwest::Method::PUT, api(&format!("/mutes/{}", bob.id)), &dave, Some(json!({"seconds": 5})));
    assert_eq!(mute.await.0, 200);
    let mute_admin =
        rest(reqwest::Method::PUT, api(&format!("/mutes/{}", dave.id)), &alice, Some(json!({"seconds": 5})));
    assert_eq!(mute_admin.await.0, 422, "admins cannot be muted either");
}
