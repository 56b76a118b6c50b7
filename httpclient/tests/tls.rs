//! HTTPS against whirl's own TLS server with `rcgen` certificates:
//! validation on by default, `validate_cert(false)`, `ca_certs`, host name
//! checks, client certificates, and pooling over TLS.

mod support;

use std::sync::Arc;

use support::{app, app_server, run, self_signed, spawn_server, tls_app_server, TempDir, HELLO};
use whirl_httpclient::{AsyncHttpClient, ErrorKind, HttpClientError, HttpRequest, HttpResponse};
use whirl_iostream::TlsServerConfig;

/// Fetches `request` with a fresh client.
fn fetch(request: HttpRequest) -> Result<HttpResponse, HttpClientError> {
    run(async move { AsyncHttpClient::new().fetch(request).await })
}

#[test]
fn validate_cert_false_accepts_a_self_signed_certificate() {
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let response =
        fetch(HttpRequest::get(server.https_url("/secure")).validate_cert(false)).unwrap();
    assert_eq!(response.text(), HELLO);
    assert_eq!(server.stats.last().request.protocol, "https");
}

#[test]
fn a_self_signed_certificate_is_refused_by_default() {
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let e = fetch(HttpRequest::get(server.https_url("/"))).unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
    assert!(e.message().to_lowercase().contains("tls"), "{e}");
    assert!(server.stats.seen().is_empty());
}

#[test]
fn ca_certs_trusts_the_certificate_in_the_file() {
    let (cert, key) = self_signed();
    let dir = TempDir::new("ca");
    let ca = dir.write("ca.pem", &cert);
    let server = tls_app_server(&cert, &key);
    let by_ip = fetch(HttpRequest::get(server.https_url("/ip")).ca_certs(&ca)).unwrap();
    assert_eq!(by_ip.text(), HELLO);
    let by_name = format!("https://localhost:{}/name", server.addr.port());
    let by_name = fetch(HttpRequest::get(by_name).ca_certs(&ca)).unwrap();
    assert_eq!(by_name.text(), HELLO);
}

#[test]
fn ca_certs_does_not_excuse_a_wrong_host_name() {
    let names = vec!["somewhere.example".to_string()];
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (generated.cert.pem(), generated.signing_key.serialize_pem());
    let dir = TempDir::new("ca-name");
    let ca = dir.write("ca.pem", &cert);
    let server = tls_app_server(&cert, &key);
    let e = fetch(HttpRequest::get(server.https_url("/")).ca_certs(&ca)).unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
}

#[test]
fn a_ca_file_of_another_authority_is_refused() {
    let (cert, key) = self_signed();
    let (other, _) = self_signed();
    let dir = TempDir::new("ca-other");
    let ca = dir.write("other.pem", &other);
    let server = tls_app_server(&cert, &key);
    let e = fetch(HttpRequest::get(server.https_url("/")).ca_certs(&ca)).unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
}

#[test]
fn a_missing_ca_file_is_a_tls_error_naming_it() {
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let dir = TempDir::new("ca-missing");
    let missing = dir.path().join("nope.pem");
    let e = fetch(HttpRequest::get(server.https_url("/")).ca_certs(&missing)).unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
    assert!(e.message().contains("nope.pem"), "{e}");
}

#[test]
fn https_to_a_plain_http_port_is_a_tls_error() {
    let server = app_server();
    let url = format!("https://{}/", server.addr);
    let e = fetch(HttpRequest::get(url).validate_cert(false)).unwrap_err();
    assert_eq!((e.code(), e.kind()), (599, ErrorKind::Tls), "{e}");
}

#[test]
fn plain_http_to_a_tls_port_fails_with_599() {
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let e = fetch(
        HttpRequest::get(server.url("/")).request_timeout(std::time::Duration::from_secs(10)),
    )
    .unwrap_err();
    assert_eq!(e.code(), 599, "{e}");
}

#[test]
fn https_connections_are_pooled() {
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let url = server.https_url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..4 {
            let response = client
                .fetch(HttpRequest::get(&url).validate_cert(false))
                .await
                .unwrap();
            assert_eq!(response.text(), HELLO);
        }
        assert_eq!(client.idle_connections(), 1);
    });
    assert_eq!(server.stats.connections(), 1);
}

#[test]
fn different_tls_settings_do_not_share_connections() {
    let (cert, key) = self_signed();
    let dir = TempDir::new("ca-pool");
    let ca = dir.write("ca.pem", &cert);
    let server = tls_app_server(&cert, &key);
    let url = server.https_url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        client
            .fetch(HttpRequest::get(&url).validate_cert(false))
            .await
            .unwrap();
        // A validating request must not ride on the unvalidated connection.
        client
            .fetch(HttpRequest::get(&url).ca_certs(&ca))
            .await
            .unwrap();
        let e = client.fetch(HttpRequest::get(&url)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    });
    assert_eq!(server.stats.connections(), 2);
}

/// A TLS server that requires a client certificate signed by (here: equal
/// to) `client_ca_der`.
fn client_auth_config(
    server: &rcgen::CertifiedKey<rcgen::KeyPair>,
    client_ca_der: Vec<u8>,
) -> TlsServerConfig {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(client_ca_der)).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.signing_key.serialize_der())),
        )
        .unwrap();
    TlsServerConfig::from_rustls(Arc::new(config))
}

#[test]
fn client_cert_is_presented_to_a_server_that_requires_one() {
    let client = rcgen::generate_simple_self_signed(vec!["client.test".to_string()]).unwrap();
    let dir = TempDir::new("client-cert");
    let cert_path = dir.write("client.pem", client.cert.pem());
    let key_path = dir.write("client.key", client.signing_key.serialize_pem());
    let client_der = client.cert.der().to_vec();
    let server = spawn_server(move |stats| {
        let server_cert =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        app(stats).with_tls(client_auth_config(&server_cert, client_der))
    });
    let url = server.https_url("/");
    let with_cert = fetch(
        HttpRequest::get(&url)
            .validate_cert(false)
            .client_cert(&cert_path, &key_path),
    )
    .unwrap();
    assert_eq!(with_cert.text(), HELLO);
    let without = fetch(HttpRequest::get(&url).validate_cert(false));
    let e = without.unwrap_err();
    assert_eq!(e.code(), 599, "{e}");
    assert_eq!(
        server.stats.seen().len(),
        1,
        "only the request with a certificate got through"
    );
}

#[test]
fn a_pooled_https_connection_left_idle_past_dormant_after_is_still_served() {
    // The server makes a connection dormant after 50 ms (the default): the
    // TLS session sleeps with its socket and is woken by the next request.
    let (cert, key) = self_signed();
    let server = tls_app_server(&cert, &key);
    let url = server.https_url("/");
    run(async move {
        let client = AsyncHttpClient::new();
        for _ in 0..3 {
            let response = client
                .fetch(HttpRequest::get(&url).validate_cert(false))
                .await
                .unwrap();
            assert_eq!(response.text(), HELLO);
            whirl_ioloop::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(client.idle_connections(), 1);
    });
    assert_eq!(server.stats.connections(), 1);
}
