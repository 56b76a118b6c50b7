//! The low-level API: an echo server on a raw `mio::net::TcpListener`,
//! driven by fd handlers (`add_handler`, `update_handler`, `remove_handler`)
//! — Tornado's `IOLoop.add_handler(fd, handler, events)`. This is what you
//! build on when you embed the loop with your own sockets; the `iostream`
//! layer wraps exactly this.
//!
//! ```text
//! cargo run --release --example fd_handler -- --port 8888
//! printf 'hello\n' | nc -q1 127.0.0.1 8888     # prints hello
//! ```

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use whirl::ioloop::{HandlerId, Interest, IoLoop, Ready};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::IpAddr,
}

/// One client connection and the bytes still to echo back to it.
struct Conn {
    stream: TcpStream,
    id: Option<HandlerId>,
    unsent: Vec<u8>,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let io_loop = IoLoop::new();

    let listener = Rc::new(RefCell::new(TcpListener::bind(SocketAddr::new(
        args.address,
        args.port,
    ))?));
    let addr = listener.borrow().local_addr()?;
    // The handler shares the listener; the loop itself only holds the handler.
    let (lp, accept_from) = (io_loop.clone(), listener.clone());
    io_loop.add_handler(
        &mut *listener.borrow_mut(),
        Interest::READABLE,
        move |_ready| {
            // Edge-triggered: accept until WouldBlock.
            loop {
                let accepted = accept_from.borrow().accept();
                match accepted {
                    Ok((stream, peer)) => {
                        log::info!("connection from {peer}");
                        if let Err(e) = serve(&lp, stream) {
                            log::warn!("cannot serve {peer}: {e}");
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::warn!("accept failed: {e}");
                        break;
                    }
                }
            }
        },
    )?;
    log::info!("listening on tcp://{addr}");
    io_loop.start();
    Ok(())
}

/// Registers a new connection with the loop.
fn serve(io_loop: &IoLoop, stream: TcpStream) -> io::Result<()> {
    let conn = Rc::new(RefCell::new(Conn {
        stream,
        id: None,
        unsent: Vec::new(),
    }));
    let (lp, handler_conn) = (io_loop.clone(), conn.clone());
    let mut c = conn.borrow_mut();
    let id = io_loop.add_handler(&mut c.stream, Interest::READABLE, move |ready| {
        on_ready(&lp, &mut handler_conn.borrow_mut(), ready);
    })?;
    c.id = Some(id);
    Ok(())
}

/// Reads what arrived, echoes it, and waits for writability if the kernel
/// buffer is full.
fn on_ready(io_loop: &IoLoop, conn: &mut Conn, ready: Ready) {
    let mut closed = false;
    if ready.is_readable() {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.unsent.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
    }
    while !conn.unsent.is_empty() {
        match conn.stream.write(&conn.unsent) {
            Ok(n) => drop(conn.unsent.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let Some(id) = conn.id else { return };
    if closed {
        // Dropping the stream (when the handler is dropped) closes the socket.
        let _ = io_loop.remove_handler(id, &mut conn.stream);
        conn.id = None;
        return;
    }
    let interest = if conn.unsent.is_empty() {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    if let Err(e) = io_loop.update_handler(id, &mut conn.stream, interest) {
        log::warn!("cannot update interest: {e}");
    }
}
