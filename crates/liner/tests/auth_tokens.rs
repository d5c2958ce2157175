//! Missing, expired and forged tokens are all refused with 401 before any write.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, TestApp};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

liner_shared::on_both_backends!(forged_and_expired_tokens_are_refused);

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn sign(key: &EncodingKey, kid: &str, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

async fn forged_and_expired_tokens_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, _) = app.user("bob").await;
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    let public = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().expect("x")).expect("b64");

    // The real key, read from the data dir, to make tokens that are validly signed but bad.
    let pem = std::fs::read(app.data_dir.path().join("review-jwt-ed25519.pem")).expect("key file");
    let real = EncodingKey::from_ed_pem(&pem).expect("pem");
    let claims =
        |sub: &str, iat: i64, exp: i64, iss: &str| json!({"sub": sub, "name": "x", "iss": iss, "iat": iat, "exp": exp});

    let other_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let other = EncodingKey::from_ed_der(other_key.to_pkcs8_der().expect("der").as_bytes());

    let header_none = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&alice_id, now(), now() + 3600, "liner").to_string());
    let tampered = {
        let parts: Vec<&str> = alice.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(claims(&bob_id, now(), now() + 3600, "liner").to_string());
        format!("{}.{}.{}", parts[0], forged, parts[2])
    };

    let bad_tokens: Vec<(&str, String)> = vec![
        ("garbage", "not.a.jwt".into()),
        ("expired", sign(&real, &kid, Algorithm::EdDSA, &claims(&alice_id, now() - 7200, now() - 3600, "liner"))),
        ("wrong issuer", sign(&real, &kid, Algorithm::EdDSA, &claims(&alice_id, now(), now() + 3600, "evil"))),
        ("not valid before an hour from now (nbf)", {
            let mut early = claims(&alice_id, now(), now() + 7200, "liner");
            early["nbf"] = json!(now() + 3600);
            sign(&real, &kid, Algorithm::EdDSA, &early)
        }),
        ("wrong key", sign(&other, &kid, Algorithm::EdDSA, &claims(&alice_id, now(), now() + 3600, "liner"))),
        ("alg none", format!("{header_none}.{payload}.")),
        (
            "HS256 with the public key",
            sign(
                &EncodingKey::from_secret(&public),
                &kid,
                Algorithm::HS256,
                &claims(&alice_id, now(), now() + 3600, "liner"),
            ),
        ),
        (
            "HS256 with the JWKS text",
            sign(
                &EncodingKey::from_secret(jwks.to_string().as_bytes()),
                &kid,
                Algorithm::HS256,
                &claims(&alice_id, now(), now() + 3600, "liner"),
            ),
        ),
        ("tampered payload", tampered),
    ];
    for (what, token) in &bad_tokens {
        let r =
            app.post("/reviews", Some(token), json!({"albumId": "forged", "rating": 5.0, "reviewText": what})).await;
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.body);
        r.assert_error(401, "unauthorized");
    }
    let r = app.post("/reviews", None, json!({"albumId": "forged", "rating": 5.0, "reviewText": ""})).await;
    r.assert_error(401, "unauthorized");
    let r = app
        .http
        .post(format!("{}/reviews", app.base))
        .header("authorization", format!("Basic {alice}"))
        .json(&json!({"albumId": "forged", "rating": 5.0}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 401);

    // Nothing was written, and the real token still works.
    assert_eq!(app.get("/reviews/album/forged").await.body["total"], 0);
    app.review(&alice, "forged", 4.0).await;
    app.stop().await;
}
