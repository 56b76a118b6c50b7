//! TLS with `rustls` (ring provider): Tornado's `SSLIOStream` and
//! `ssl_options`.
//!
//! [`TlsTransport`] layers a `rustls` connection over any other
//! [`Transport`], so TLS is one more transport under the same buffering
//! logic: [`IoStream::start_tls_server`] and [`IoStream::start_tls_client`]
//! swap it in over a plain stream (STARTTLS, or right after accept/connect)
//! and drive the handshake. Configuration comes from PEM files
//! ([`TlsServerConfig::from_pem_files`]) or from `rustls` configs directly.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::error::{CloseReason, StreamClosed, StreamError};
use crate::stream::IoStream;
use crate::transport::{Handshake, Transport, TransportIo};

/// Most plaintext one [`TlsTransport::write_vectored`] call takes: 64 KiB,
/// four full TLS records. With the refusal to take more while records are
/// pending, it bounds what `rustls` buffers per stream.
const MAX_PLAINTEXT_PER_WRITE: usize = 64 * 1024;

/// The crypto provider whirl uses: `rustls`'s `ring`.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Turns a `rustls` error into an `io::Error` the stream reports as
/// [`CloseReason::Tls`](crate::CloseReason::Tls).
fn tls_error(e: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads every certificate in a PEM file.
fn load_certs(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad certificate PEM: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no certificate in the PEM data",
        ));
    }
    Ok(certs)
}

/// Reads the first private key in a PEM file.
fn load_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad private key PEM: {e}"),
        )
    })
}

/// Server-side TLS settings: a certificate chain and its key (Tornado's
/// `ssl_options={"certfile": …, "keyfile": …}`). Cheap to clone.
#[derive(Clone)]
pub struct TlsServerConfig {
    /// The `rustls` configuration.
    config: Arc<ServerConfig>,
}

impl TlsServerConfig {
    /// Loads a PEM certificate chain and private key from files.
    ///
    /// # Errors
    ///
    /// File errors; `InvalidData` for bad PEM or a key not matching the
    /// certificate.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> io::Result<Self> {
        let cert = std::fs::read(cert_path)?;
        let key = std::fs::read(key_path)?;
        TlsServerConfig::from_pem(&cert, &key)
    }

    /// Builds from PEM bytes: a certificate chain and a private key.
    ///
    /// # Errors
    ///
    /// `InvalidData` for bad PEM or a key not matching the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Self> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(load_certs(cert_pem)?, load_key(key_pem)?)
            .map_err(tls_error)?;
        Ok(TlsServerConfig {
            config: Arc::new(config),
        })
    }

    /// Uses a `rustls` server configuration as it is (client authentication,
    /// session resumption, … are yours to set).
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        TlsServerConfig { config }
    }

    /// Sets the ALPN protocols offered, most preferred first (e.g.
    /// `b"http/1.1"`). Default is none.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        Arc::make_mut(&mut self.config).alpn_protocols =
            protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The underlying `rustls` configuration.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

/// Client-side TLS settings (Tornado's `ssl_options` and the HTTP client's
/// `validate_cert`, `ca_certs`, `client_cert`, `client_key`). Build with
/// [`TlsClientConfig::builder`]; cheap to clone.
#[derive(Clone)]
pub struct TlsClientConfig {
    /// The `rustls` configuration.
    config: Arc<ClientConfig>,
}

/// Builds a [`TlsClientConfig`].
#[derive(Debug, Clone, Default)]
pub struct TlsClientConfigBuilder {
    /// Accept any server certificate for any name: the chain and the name are
    /// *not* verified (set by `validate_cert(false)`).
    skip_validation: bool,
    /// Extra (or, with `only_custom_ca`, the only) trusted roots, PEM.
    ca_pem: Option<Vec<u8>>,
    /// Trust only `ca_pem`, not the system roots.
    only_custom_ca: bool,
    /// Client certificate chain and key, PEM.
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// ALPN protocols offered.
    alpn: Vec<Vec<u8>>,
}

impl TlsClientConfig {
    /// A builder: system roots, certificate validation on, no client
    /// certificate, no ALPN.
    pub fn builder() -> TlsClientConfigBuilder {
        TlsClientConfigBuilder::default()
    }

    /// Uses a `rustls` client configuration as it is.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        TlsClientConfig { config }
    }

    /// The underlying `rustls` configuration.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl TlsClientConfigBuilder {
    /// Whether to verify the server's certificate. Default is `true`.
    /// `false` accepts any certificate for any name — only for testing or
    /// servers you reach over a trusted path (Tornado: `validate_cert=False`).
    pub fn validate_cert(mut self, validate: bool) -> Self {
        self.skip_validation = !validate;
        self
    }

    /// Trusts the CA certificates in this PEM bundle *instead of* the system
    /// roots (Tornado: `ca_certs`). Default is the system roots.
    pub fn ca_certs_pem(mut self, pem: &[u8]) -> Self {
        self.ca_pem = Some(pem.to_vec());
        self.only_custom_ca = true;
        self
    }

    /// Like [`ca_certs_pem`](Self::ca_certs_pem), from a file.
    ///
    /// # Errors
    ///
    /// The error of reading the file.
    pub fn ca_certs_file(self, path: impl AsRef<Path>) -> io::Result<Self> {
        let pem = std::fs::read(path)?;
        Ok(self.ca_certs_pem(&pem))
    }

    /// Presents this client certificate chain and key (Tornado:
    /// `client_cert`, `client_key`). Default is none.
    pub fn client_cert_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client_cert = Some((cert_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Sets the ALPN protocols offered, most preferred first. Default is none.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Builds the configuration.
    ///
    /// # Errors
    ///
    /// `InvalidData` for bad PEM; `NotFound` if no trusted root could be
    /// loaded (no system roots and no `ca_certs`).
    pub fn build(self) -> io::Result<TlsClientConfig> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        let builder = if self.skip_validation {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match self.client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(load_certs(&cert)?, load_key(&key)?)
                .map_err(tls_error)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsClientConfig {
            config: Arc::new(config),
        })
    }

    /// The trusted roots: the custom bundle, or the system's.
    fn roots(&self) -> io::Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        if let Some(pem) = &self.ca_pem {
            for cert in load_certs(pem)? {
                roots.add(cert).map_err(tls_error)?;
            }
        }
        if !self.only_custom_ca {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::debug!("while loading system CA certificates: {e}");
            }
            roots.add_parsable_certificates(found.certs);
        }
        if roots.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no trusted CA certificates: none in the system store and no ca_certs given",
            ));
        }
        Ok(roots)
    }
}

/// The verifier behind `validate_cert(false)`: accepts every certificate,
/// but still checks the handshake signatures (so the connection is encrypted
/// to *someone*).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A `rustls` connection over another transport.
///
/// Writes are accepted only while no records of earlier writes are waiting
/// for the socket, at most 64 KiB at a time, and
/// [`flush_transport`](Transport::flush_transport) reports records still
/// waiting: so a write future of the stream above resolves only once its
/// ciphertext reached the kernel.
///
/// Once the handshake is done, a peer that closes the connection without a
/// `close_notify` alert is read as an ordinary end of file (Python's
/// `suppress_ragged_eofs`, which Tornado keeps on): many peers never send
/// one. A protocol that must detect truncation frames its messages (HTTP's
/// `Content-Length` and chunked coding do).
pub struct TlsTransport {
    /// The transport carrying the TLS records.
    inner: Box<dyn Transport>,
    /// The TLS state machine.
    conn: Connection,
    /// True when `rustls` may hold decrypted bytes not yet read.
    plaintext_pending: bool,
}

impl TlsTransport {
    /// Wraps `inner` in a TLS connection.
    pub fn new(inner: Box<dyn Transport>, conn: impl Into<Connection>) -> Self {
        let mut conn = conn.into();
        // `write_vectored` bounds what is buffered (it takes no plaintext
        // while records wait, and 64 KiB at most); rustls's own limit would
        // refuse plaintext with no readiness event to retry on.
        conn.set_buffer_limit(None);
        TlsTransport {
            inner,
            conn,
            plaintext_pending: false,
        }
    }

    /// The ALPN protocol the peers agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Decrypts what `read_tls` took in; on a protocol error, tries to send
    /// the alert before failing.
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.plaintext_pending = state.plaintext_bytes_to_read() > 0;
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.write_tls(&mut TransportIo(&mut *self.inner));
                Err(tls_error(e))
            }
        }
    }

    /// Sends queued TLS records until none is left (`Ok`) or the socket is
    /// full (`WouldBlock`).
    fn write_records(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut TransportIo(&mut *self.inner)) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket accepted no bytes",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Transport for TlsTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Step 1. Serve decrypted bytes.
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer sent close_notify
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.plaintext_pending = false,
                // Closed without close_notify: after the handshake, an end of
                // file like any other (see the type's docs).
                Err(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof && !self.conn.is_handshaking() =>
                {
                    return Ok(0)
                }
                Err(e) => return Err(e),
            }
            // Step 2. Take in more records (WouldBlock goes to the caller).
            if self.conn.read_tls(&mut TransportIo(&mut *self.inner))? == 0 {
                // EOF from the socket: rustls now answers Step 1 for good.
                self.process()?;
                continue;
            }
            self.process()?;
            // Step 3. Answer whatever the records asked for (key updates…).
            match self.write_records() {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Step 1. Records of earlier writes go first; while the socket cannot
        // take them, take no more plaintext (`WouldBlock` tells the stream
        // its bytes are not out yet).
        self.write_records()?;
        // Step 2. Encrypt at most MAX_PLAINTEXT_PER_WRITE bytes.
        let mut budget = MAX_PLAINTEXT_PER_WRITE;
        let mut limited = Vec::with_capacity(bufs.len());
        for buf in bufs {
            if budget == 0 {
                break;
            }
            let take = buf.len().min(budget);
            limited.push(IoSlice::new(&buf[..take]));
            budget -= take;
        }
        let n = self.conn.writer().write_vectored(&limited)?;
        // Step 3. Send the records; what the socket cannot take yet waits for
        // the next call or `flush_transport`.
        match self.write_records() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn has_buffered_write(&self) -> bool {
        self.conn.wants_write()
    }

    fn flush_transport(&mut self) -> io::Result<bool> {
        match self.write_records() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        let _ = self.write_records();
        self.inner.shutdown_write()
    }

    fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    fn take_error(&mut self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    fn handshake(&mut self) -> io::Result<Handshake> {
        loop {
            if self.conn.wants_write() {
                match self.write_records() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Handshake::WantWrite)
                    }
                    Err(e) => return Err(e),
                }
            }
            if !self.conn.is_handshaking() {
                return Ok(Handshake::Done);
            }
            match self.conn.read_tls(&mut TransportIo(&mut *self.inner)) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    ))
                }
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Handshake::WantRead),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn has_buffered_read(&self) -> bool {
        self.plaintext_pending
    }

    fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.conn.alpn_protocol().map(<[u8]>::to_vec)
    }
}

impl Source for TlsTransport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.inner.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.inner.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl IoStream {
    /// Starts TLS as the server on this (plain, connected) stream and waits for
    /// the handshake. Tornado: `IOStream.start_tls(server_side=True, …)`.
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] with reason
    /// [`CloseReason::Tls`](crate::CloseReason::Tls) if the handshake fails
    /// (e.g. the peer spoke plain text); the stream is then closed. Errors of
    /// [`replace_transport`](IoStream::replace_transport).
    pub async fn start_tls_server(&self, config: &TlsServerConfig) -> Result<(), StreamError> {
        let conn =
            rustls::ServerConnection::new(config.config.clone()).map_err(|e| self.fail_tls(e))?;
        self.replace_transport(|inner| Box::new(TlsTransport::new(inner, conn)))?;
        self.handshake().await
    }

    /// Starts TLS as the client, for `server_name` (sent as SNI and checked
    /// against the certificate), and waits for the handshake. Tornado:
    /// `IOStream.start_tls(server_side=False, server_hostname=…)`.
    ///
    /// # Errors
    ///
    /// As [`start_tls_server`](IoStream::start_tls_server); an invalid name
    /// fails with reason `Tls` too.
    pub async fn start_tls_client(
        &self,
        config: &TlsClientConfig,
        server_name: &str,
    ) -> Result<(), StreamError> {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| self.fail_tls(e))?;
        let conn =
            ClientConnection::new(config.config.clone(), name).map_err(|e| self.fail_tls(e))?;
        self.replace_transport(|inner| Box::new(TlsTransport::new(inner, conn)))?;
        self.handshake().await
    }

    /// Closes the stream for a TLS setup error and returns the error: the
    /// stream's close reason (this one, unless it had already closed).
    fn fail_tls(&self, e: impl fmt::Display) -> StreamError {
        let message = e.to_string();
        self.close_with_reason(CloseReason::Tls(message.clone()));
        let closed = self
            .error()
            .unwrap_or_else(|| StreamClosed::new(std::rc::Rc::new(CloseReason::Tls(message))));
        StreamError::Closed(closed)
    }
}
