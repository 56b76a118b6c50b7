//! Listening sockets: [`bind_sockets`] and [`bind_unix_socket`] (Tornado's
//! `netutil`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// Default listen backlog (Tornado's `_DEFAULT_BACKLOG`).
pub const DEFAULT_BACKLOG: i32 = 128;

/// Which address families [`bind_sockets`] binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// Every family the address resolves to (Tornado's `AF_UNSPEC`).
    #[default]
    Any,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

impl Family {
    /// Whether `addr` belongs to this family.
    fn accepts(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::Ipv4 => addr.is_ipv4(),
            Family::Ipv6 => addr.is_ipv6(),
        }
    }
}

/// Creates listening sockets bound to `port` on `address`: one per address the
/// name resolves to (`None` means every interface, IPv4 and IPv6). Tornado:
/// `netutil.bind_sockets`.
///
/// Each socket has `SO_REUSEADDR`, optionally `SO_REUSEPORT` (so several
/// threads or processes can share the port), IPv6 sockets have `IPV6_V6ONLY`
/// (so the IPv4 socket binds the same port), and all are non-blocking. With
/// `port` 0 the first socket picks a free port and the others reuse it; read it
/// with `local_addr()`.
///
/// # Errors
///
/// Resolution or socket errors; `AddrInUse` if the port is taken.
///
/// # Examples
///
/// ```
/// use whirl_iostream::netutil::{bind_sockets, Family, DEFAULT_BACKLOG};
///
/// let sockets = bind_sockets(0, Some("127.0.0.1"), Family::Any, DEFAULT_BACKLOG, false).unwrap();
/// assert_ne!(sockets[0].local_addr().unwrap().port(), 0);
/// ```
pub fn bind_sockets(
    port: u16,
    address: Option<&str>,
    family: Family,
    backlog: i32,
    reuse_port: bool,
) -> io::Result<Vec<TcpListener>> {
    let mut addrs: Vec<SocketAddr> = match address {
        None | Some("") => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
        Some(host) => (host, port).to_socket_addrs()?.collect(),
    };
    addrs.retain(|a| family.accepts(a));
    addrs.dedup();
    let mut sockets = Vec::new();
    let mut bound_port = port;
    for mut addr in addrs {
        if port == 0 && bound_port != 0 {
            addr.set_port(bound_port);
        }
        match bind_one(addr, backlog, reuse_port) {
            Ok(listener) => {
                bound_port = listener.local_addr()?.port();
                sockets.push(listener);
            }
            // A host without IPv6 still gets its IPv4 socket for the wildcard.
            Err(e) if address.is_none() && addr.is_ipv6() && is_family_unsupported(&e) => {
                log::debug!("skipping {addr}: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    if sockets.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address to bind",
        ));
    }
    Ok(sockets)
}

/// Whether `e` says the address family is not available on this host.
fn is_family_unsupported(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported
    ) || e.raw_os_error() == Some(97) // EAFNOSUPPORT on Linux
}

/// Binds and listens on one address.
fn bind_one(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if reuse_port {
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Creates a listening Unix socket at `path` with permissions `mode`,
/// replacing a stale socket file left there. Tornado: `netutil.bind_unix_socket`.
///
/// # Errors
///
/// `AlreadyExists` if `path` exists and is not a socket; socket errors.
#[cfg(unix)]
pub fn bind_unix_socket(
    path: impl AsRef<std::path::Path>,
    mode: u32,
    backlog: i32,
) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = path.as_ref();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_picks_one_port_for_every_family() {
        let sockets = bind_sockets(0, None, Family::Any, DEFAULT_BACKLOG, false).unwrap();
        let ports: Vec<u16> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert!(ports.iter().all(|&p| p != 0 && p == ports[0]), "{ports:?}");
    }

    #[test]
    fn family_filter() {
        let sockets = bind_sockets(0, Some("127.0.0.1"), Family::Ipv6, DEFAULT_BACKLOG, false);
        assert!(sockets.is_err(), "127.0.0.1 has no IPv6 address");
        let sockets =
            bind_sockets(0, Some("127.0.0.1"), Family::Ipv4, DEFAULT_BACKLOG, false).unwrap();
        assert_eq!(sockets.len(), 1);
    }

    #[test]
    fn reuse_port_lets_two_sockets_share_a_port() {
        let a = bind_sockets(0, Some("127.0.0.1"), Family::Any, DEFAULT_BACKLOG, true).unwrap();
        let port = a[0].local_addr().unwrap().port();
        let b = bind_sockets(port, Some("127.0.0.1"), Family::Any, DEFAULT_BACKLOG, true);
        assert!(b.is_ok(), "{b:?}");
        let c = bind_sockets(port, Some("127.0.0.1"), Family::Any, DEFAULT_BACKLOG, false);
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn unix_socket_replaces_a_stale_file_and_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("whirl-netutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        drop(bind_unix_socket(&path, 0o600, DEFAULT_BACKLOG).unwrap());
        let listener = bind_unix_socket(&path, 0o660, DEFAULT_BACKLOG).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(listener);
        std::fs::write(dir.join("plain"), b"x").unwrap();
        assert_eq!(
            bind_unix_socket(dir.join("plain"), 0o600, 1)
                .unwrap_err()
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
