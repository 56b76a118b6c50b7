//! Where a request goes and how to get there: the URL taken apart, the pool
//! key, and opening a connection — directly, through an HTTP proxy, or
//! through a proxy's `CONNECT` tunnel for https.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use url::Url;
use whirl_httpserver::{parse_response_head, HeadLimits, ParseError};
use whirl_iostream::{
    ConnectError, ConnectOptions, IoStream, StreamError, TcpClient, TlsClientConfig,
};

use crate::error::{ErrorKind, HttpClientError};
use crate::request::HttpRequest;

/// Default port of an HTTP proxy given without one.
pub const DEFAULT_PROXY_PORT: u16 = 8080;

/// A request's destination, from its URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The parsed URL.
    pub(crate) url: Url,
    /// Whether it is https.
    pub(crate) tls: bool,
    /// The host, without brackets for IPv6.
    pub(crate) host: String,
    /// The port (the scheme's default when the URL has none).
    pub(crate) port: u16,
    /// The `Host` header: the host, bracketed for IPv6, with the port when
    /// it is not the default.
    pub(crate) host_header: String,
    /// The request target in origin form (`/path?query`).
    pub(crate) origin_form: String,
}

impl Target {
    /// Takes `url` apart.
    pub(crate) fn parse(url: &str) -> Result<Target, HttpClientError> {
        let invalid = |why: &str| {
            HttpClientError::new(
                ErrorKind::InvalidRequest,
                format!("invalid URL {url:?}: {why}"),
            )
        };
        let url = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(invalid(&format!("unsupported scheme {other}"))),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(invalid("no host")),
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let host_header = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(invalid("no host")),
        };
        let mut origin_form = url.path().to_string();
        if let Some(query) = url.query() {
            origin_form.push('?');
            origin_form.push_str(query);
        }
        Ok(Target {
            tls,
            host,
            port,
            host_header,
            origin_form,
            url,
        })
    }

    /// `scheme://host:port`, for comparing origins.
    pub(crate) fn origin(&self) -> (bool, &str, u16) {
        (self.tls, &self.host, self.port)
    }
}

/// The proxy a request goes through, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Proxy {
    /// Proxy host.
    pub(crate) host: String,
    /// Proxy port.
    pub(crate) port: u16,
    /// `Proxy-Authorization` value, when credentials are set.
    pub(crate) authorization: Option<String>,
}

impl Proxy {
    /// The proxy settings of `request`.
    pub(crate) fn of(request: &HttpRequest) -> Option<Proxy> {
        let host = request.proxy_host.clone()?;
        let authorization = request
            .proxy_username
            .as_ref()
            .map(|user| basic_auth(user, request.proxy_password.as_deref().unwrap_or("")));
        Some(Proxy {
            host,
            port: request.proxy_port.unwrap_or(DEFAULT_PROXY_PORT),
            authorization,
        })
    }
}

/// An `Authorization: Basic …` value.
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// What makes two connections interchangeable: the destination, the
/// proxy, and the TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolKey {
    /// https or not.
    tls: bool,
    /// Destination host.
    host: String,
    /// Destination port.
    port: u16,
    /// The proxy used, if any.
    proxy: Option<Proxy>,
    /// The TLS settings (https only).
    tls_settings: Option<TlsSettings>,
}

impl std::hash::Hash for PoolKey {
    /// Hashes the destination only: keys that differ just in their proxy or
    /// TLS settings are rare, still told apart by `Eq`, and hashing those
    /// settings cost more than the rest of a pooled request's lookups.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.tls, &self.host, self.port).hash(state);
    }
}

impl PoolKey {
    /// The key for `request` to `target`.
    pub(crate) fn new(target: &Target, request: &HttpRequest) -> PoolKey {
        PoolKey {
            tls: target.tls,
            host: target.host.clone(),
            port: target.port,
            proxy: Proxy::of(request),
            tls_settings: target.tls.then(|| TlsSettings::of(request)),
        }
    }
}

/// The TLS settings of a request, for caching configurations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TlsSettings {
    /// Whether the certificate is checked.
    validate_cert: bool,
    /// CA file instead of the system's.
    ca_certs: Option<PathBuf>,
    /// Client certificate and key files.
    client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsSettings {
    /// The settings of `request`.
    fn of(request: &HttpRequest) -> TlsSettings {
        TlsSettings {
            validate_cert: request.validate_cert,
            ca_certs: request.ca_certs.clone(),
            client_cert: request.client_cert.clone().zip(request.client_key.clone()),
        }
    }
}

/// Opens connections; keeps built TLS configurations (loading the system's
/// certificates is slow).
#[derive(Default)]
pub(crate) struct Connector {
    /// Resolves and connects.
    tcp: TcpClient,
    /// TLS configurations by settings.
    tls_configs: RefCell<HashMap<TlsSettings, TlsClientConfig>>,
}

impl Connector {
    /// A connection for `request` to `target`, ready for HTTP: through the
    /// proxy if any (a tunnel for https), with TLS done for https.
    pub(crate) async fn open(
        &self,
        target: &Target,
        request: &HttpRequest,
    ) -> Result<IoStream, HttpClientError> {
        let tls = if target.tls {
            Some(self.tls_config(&TlsSettings::of(request))?)
        } else {
            None
        };
        let options =
            ConnectOptions::new().timeout(crate::client::no_zero(request.connect_timeout));
        match Proxy::of(request) {
            None => {
                let options = match tls {
                    Some(config) => options.tls(config).server_hostname(target.host.clone()),
                    None => options,
                };
                self.tcp
                    .connect_with(&target.host, target.port, &options)
                    .await
                    .map_err(connect_error)
            }
            Some(proxy) => {
                let stream = self
                    .tcp
                    .connect_with(&proxy.host, proxy.port, &options)
                    .await
                    .map_err(connect_error)?;
                if let Some(config) = tls {
                    tunnel(&stream, target, &proxy).await?;
                    stream
                        .start_tls_client(&config, &target.host)
                        .await
                        .map_err(|e| {
                            HttpClientError::new(
                                ErrorKind::Tls,
                                format!("TLS through the proxy to {}: {e}", target.host),
                            )
                        })?;
                }
                Ok(stream)
            }
        }
    }

    /// The TLS configuration for `settings`, built once.
    fn tls_config(&self, settings: &TlsSettings) -> Result<TlsClientConfig, HttpClientError> {
        if let Some(config) = self.tls_configs.borrow().get(settings) {
            return Ok(config.clone());
        }
        let tls_error = |what: &str, e: std::io::Error| {
            HttpClientError::new(ErrorKind::Tls, format!("{what}: {e}"))
        };
        let mut builder = TlsClientConfig::builder().validate_cert(settings.validate_cert);
        if let Some(ca) = &settings.ca_certs {
            builder = builder
                .ca_certs_file(ca)
                .map_err(|e| tls_error(&format!("reading ca_certs {}", ca.display()), e))?;
        }
        if let Some((cert, key)) = &settings.client_cert {
            let cert_pem = std::fs::read(cert)
                .map_err(|e| tls_error(&format!("reading client_cert {}", cert.display()), e))?;
            let key_pem = std::fs::read(key)
                .map_err(|e| tls_error(&format!("reading client_key {}", key.display()), e))?;
            builder = builder.client_cert_pem(&cert_pem, &key_pem);
        }
        let config = builder
            .build()
            .map_err(|e| tls_error("building the TLS configuration", e))?;
        self.tls_configs
            .borrow_mut()
            .insert(settings.clone(), config.clone());
        Ok(config)
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

/// Asks `proxy` (on `stream`) for a tunnel to `target`: `CONNECT
/// host:port`, which must be answered 2xx.
async fn tunnel(stream: &IoStream, target: &Target, proxy: &Proxy) -> Result<(), HttpClientError> {
    let authority = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(authorization) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    stream.write(request).await.map_err(|e| {
        HttpClientError::new(
            ErrorKind::Proxy,
            format!("writing CONNECT to the proxy: {e}"),
        )
    })?;
    let limits = HeadLimits::default();
    let head = stream
        .read_parsed(|buf| parse_response_head(buf, &limits).map_err(TunnelError::Head))
        .await
        .map_err(|e| {
            HttpClientError::new(
                ErrorKind::Proxy,
                format!("reading the proxy's answer to CONNECT: {e}"),
            )
        })?;
    let code = head.start_line.code;
    if !(200..300).contains(&code) {
        stream.close();
        return Err(HttpClientError::new(
            ErrorKind::Proxy,
            format!(
                "the proxy refused the tunnel to {authority}: {code} {}",
                head.start_line.reason
            ),
        ));
    }
    Ok(())
}

/// A failure reading the proxy's answer.
#[derive(Debug)]
enum TunnelError {
    /// Not a valid response head.
    Head(ParseError),
    /// The stream failed.
    Stream(StreamError),
}

impl From<StreamError> for TunnelError {
    fn from(e: StreamError) -> Self {
        TunnelError::Stream(e)
    }
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Head(e) => write!(f, "{e}"),
            TunnelError::Stream(e) => write!(f, "{e}"),
        }
    }
}

/// A connection failure as a client error, with Tornado's words where it
/// has them.
fn connect_error(e: ConnectError) -> HttpClientError {
    let kind = match &e {
        ConnectError::Resolve { .. } => ErrorKind::Dns,
        ConnectError::Timeout { .. } => ErrorKind::ConnectTimeout,
        ConnectError::Tls { .. } => ErrorKind::Tls,
        _ => ErrorKind::Connect,
    };
    let message = match &e {
        ConnectError::Timeout { .. } => format!("Timeout while connecting ({e})"),
        _ => e.to_string(),
    };
    HttpClientError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart() {
        let t = Target::parse("http://example.com/a/b?c=1#frag").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("example.com", 80, false));
        assert_eq!(t.origin_form, "/a/b?c=1");
        assert_eq!(t.host_header, "example.com");
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 8443, true));
        assert_eq!(t.host_header, "[::1]:8443");
        assert_eq!(t.origin_form, "/");
        for bad in ["ftp://x/", "not a url", "http://", "http://:80/"] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
