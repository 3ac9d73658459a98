//! Bearer tokens forged every way we know are refused with `UNAUTHENTICATED`, without telling
//! the client why; valid HS256 and RS256 (PEM and JWKS) tokens are accepted.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orchestrator::Mode;
use orchestrator_tests::{Services, TEST_JWT_SECRET, spawn_app_with};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        claims,
        None,
    )
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn assert_refused(app: &orchestrator_tests::TestApp, label: &str, token: &str) {
    let body = app
        .gql(Some(token), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{label}: {body}"
    );
    let text = body.to_string().to_lowercase();
    for leak in [
        "expired",
        "signature",
        "algorithm",
        "audience",
        "issuer",
        "immature",
        "nbf",
        "exp ",
        "kid",
        "too large",
    ] {
        assert!(
            !text.contains(leak),
            "{label}: the response explains the refusal ({leak}): {body}"
        );
    }
}

/// An RSA key pair made with openssl: (private PEM, public PEM, modulus, exponent).
fn rsa_pair(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let ok = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey -pubout");
    (
        std::fs::read(private).unwrap(),
        std::fs::read(public).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_and_valid_ones_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = rsa_pair(dir.path());
    let pem_path = dir.path().join("public.pem");
    std::fs::write(&pem_path, &public_pem).unwrap();
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[
            ("ORCH_JWT_AUDIENCE", "orchestrator"),
            ("ORCH_JWT_ISSUER", "https://id.example"),
            ("ORCH_JWT_PUBLIC_KEY_FILE", pem_path.to_str().unwrap()),
        ],
    )
    .await;
    let good = json!({ "sub": "alice", "exp": now() + 600, "role": "viewer", "aud": "orchestrator", "iss": "https://id.example" });

    // The valid ones.
    let body = app
        .gql(Some(&hs(&good)), "{ viewer { subject } }", json!({}))
        .await;
    assert_eq!(body["data"]["viewer"]["subject"], "alice", "{body}");
    let rsa_key = EncodingKey::from_rsa_pem(&private_pem).unwrap();
    let body = app
        .gql(
            Some(&sign(Algorithm::RS256, &rsa_key, &good, None)),
            "{ viewer { subject } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["viewer"]["subject"], "alice", "RS256: {body}");

    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&good)
    );
    let other_secret = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-another-secret-00"),
        &good,
        None,
    );
    let hs512 = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        &good,
        None,
    );
    let mut huge = good.clone();
    huge["padding"] = json!("x".repeat(9 * 1024));
    let cases = vec![
        ("alg none", alg_none),
        ("bad signature", other_secret),
        ("wrong algorithm", hs512),
        ("expired", hs(&with("exp", json!(now() - 600)))),
        ("not yet valid", hs(&with("nbf", json!(now() + 600)))),
        ("missing exp", hs(&no_exp)),
        ("wrong audience", hs(&with("aud", json!("someone-else")))),
        (
            "wrong issuer",
            hs(&with("iss", json!("https://evil.example"))),
        ),
        ("unknown role", hs(&with("role", json!("root")))),
        ("over 8 KiB", hs(&huge)),
        ("garbage", "a.b.c".to_string()),
    ];
    for (label, token) in &cases {
        assert_refused(&app, label, token).await;
    }
    // A tampered payload with the original signature.
    let valid = hs(&good);
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with("role", json!("admin"))),
        parts[2]
    );
    assert_refused(&app, "tampered payload", &tampered).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_from_a_jwks_file_pick_the_key_by_kid() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, _) = rsa_pair(dir.path());
    // The JWKS entry for this key, built from its modulus and exponent.
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-pubin", "-in"])
        .arg(dir.path().join("public.pem"))
        .args(["-noout", "-modulus"])
        .output()
        .unwrap();
    let modulus_hex = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("Modulus=")
        .to_string();
    let modulus: Vec<u8> = (0..modulus_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&modulus_hex[i..i + 2], 16).unwrap())
        .collect();
    let jwks = json!({ "keys": [{
        "kty": "RSA", "kid": "key-1", "use": "sig", "alg": "RS256",
        "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(modulus),
        "e": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([1u8, 0, 1]),
    }]});
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let app = spawn_app_with(
        &Services::Embedded,
        Mode::Standalone,
        &[("ORCH_JWKS_FILE", jwks_path.to_str().unwrap())],
    )
    .await;
    let key = EncodingKey::from_rsa_pem(&private_pem).unwrap();
    let claims = json!({ "sub": "svc", "exp": now() + 600, "projects": { "default": "operator" } });
    let body = app
        .gql(
            Some(&sign(Algorithm::RS256, &key, &claims, Some("key-1"))),
            "{ viewer { subject projects { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["projects"][0]["role"], "OPERATOR",
        "{body}"
    );
    assert_refused(
        &app,
        "unknown kid",
        &sign(Algorithm::RS256, &key, &claims, Some("key-2")),
    )
    .await;
    assert_refused(&app, "no kid", &sign(Algorithm::RS256, &key, &claims, None)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mode_hides_introspection_and_suggestions() {
    let app = spawn_app_with(&Services::Embedded, Mode::Api, &[]).await;
    let body = app
        .gql(
            Some(&app.admin_token),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(
        body["errors"].is_array() || body["data"]["__schema"].is_null(),
        "introspection must be off: {body}"
    );
    let body = app
        .gql(Some(&app.admin_token), "{ projectz { id } }", json!({}))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        !body.to_string().contains("Did you mean"),
        "suggestions must be off: {body}"
    );
    let page = app.http.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 404, "GraphiQL off in api mode");
    // And on in standalone mode.
    let standalone = spawn_app_with(&Services::Embedded, Mode::Standalone, &[]).await;
    let body = standalone
        .gql(
            Some(&standalone.admin_token),
            "{ __schema { queryType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "QueryRoot",
        "{body}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), app.stop()).await;
    standalone.stop().await;
}
