//! HTTPS with rustls: with a certificate and key configured, Tocsin serves
//! CalDAV over TLS and tells clients an https:// URL.

mod common;

use common::TestServer;

#[test]
fn with_a_certificate_the_server_speaks_https() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let config = dir.path().join("tocsin.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start_with(&data, &["--config", config.to_str().unwrap()]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let trusting = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let answer = trusting
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{}/", server.url),
        )
        .send()
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        401,
        "CalDAV answers over TLS and asks for credentials"
    );

    let plain = reqwest::blocking::get(server.url.replace("https://", "http://") + "/healthz");
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP must not be served"
    );
    assert!(server.terminate().success());
}

#[test]
fn a_missing_certificate_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tocsin.toml");
    std::fs::write(
        &config,
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let output = common::tocsin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
    assert!(!data.exists(), "the data directory must not be created");
}
