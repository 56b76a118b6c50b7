//! Behaviour of fd handlers: [`IoLoop::add_handler`], `update_handler`,
//! `remove_handler`, and the [`Ready`] they are called with. Loopback TCP
//! only.

mod support;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use support::{run, start_within, tcp_pair, wait_until, yield_times, SAFETY};
use whirl_ioloop::{sleep, HandlerId, Interest, IoLoop, Ready};

/// A registered stream, where its own handler (or another) can reach it to
/// read, update or remove it; `None` once removed.
type Registered = Rc<RefCell<Option<(HandlerId, TcpStream)>>>;

/// Registers `stream` with a handler made by `make`, which is handed the
/// [`Registered`] cell the stream and its id end up in.
fn register<F>(
    io_loop: &IoLoop,
    mut stream: TcpStream,
    interest: Interest,
    make: impl FnOnce(Registered) -> F,
) -> Registered
where
    F: FnMut(Ready) + 'static,
{
    let registered: Registered = Rc::new(RefCell::new(None));
    let id = io_loop
        .add_handler(&mut stream, interest, make(registered.clone()))
        .expect("add_handler");
    *registered.borrow_mut() = Some((id, stream));
    registered
}

/// Removes a registered stream's handler and hands back the stream (still
/// open); `None` if it was already removed.
fn unregister(registered: &Registered) -> Option<TcpStream> {
    let (id, mut stream) = registered.borrow_mut().take()?;
    IoLoop::current()
        .remove_handler(id, &mut stream)
        .expect("remove_handler");
    Some(stream)
}

/// Reads until `WouldBlock` or EOF; returns the bytes and whether EOF was seen.
fn drain(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (out, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// A handler that records each readiness it is called with (and drains its
/// stream, so the next arrival is a new edge).
fn recorder(seen: &Rc<RefCell<Vec<Ready>>>) -> impl FnOnce(Registered) -> Box<dyn FnMut(Ready)> {
    let seen = seen.clone();
    move |registered: Registered| {
        Box::new(move |ready: Ready| {
            seen.borrow_mut().push(ready);
            if let Some((_, stream)) = registered.borrow_mut().as_mut() {
                drain(stream);
            }
        })
    }
}

/// Lets the loop run a while, so an event that should not be dispatched
/// would have been.
async fn settle() {
    yield_times(3).await;
    sleep(Duration::from_millis(20)).await;
    yield_times(3).await;
}

fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0".parse().expect("an address")).expect("bind 127.0.0.1:0")
}

// ----- readiness -------------------------------------------------------------------

#[test]
fn a_listener_is_readable_when_a_client_connects() {
    let io_loop = IoLoop::new();
    let mut listener = loopback_listener();
    let addr = listener.local_addr().expect("listener address");
    let seen = Rc::new(RefCell::new(Vec::new()));
    let id = io_loop
        .add_handler(&mut listener, Interest::READABLE, {
            let seen = seen.clone();
            move |ready: Ready| {
                seen.borrow_mut().push(ready);
                IoLoop::current().stop();
            }
        })
        .expect("add_handler");
    let client = thread::spawn(move || std::net::TcpStream::connect(addr).map(drop));
    assert!(
        start_within(&io_loop, SAFETY),
        "the handler stopped the loop"
    );
    client.join().expect("client thread").expect("connect");
    let seen = seen.borrow();
    assert!(!seen.is_empty());
    assert!(seen[0].is_readable(), "{:?}", seen[0]);
    assert!(
        listener.accept().is_ok(),
        "the readiness was real: a connection is waiting"
    );
    io_loop
        .remove_handler(id, &mut listener)
        .expect("remove_handler");
}

#[test]
fn echo_round_trip_through_handlers() {
    let io_loop = IoLoop::new();
    let listener = Rc::new(RefCell::new(loopback_listener()));
    let addr = listener.borrow().local_addr().expect("listener address");
    let accepted = Rc::new(Cell::new(0));
    let closed = Rc::new(Cell::new(0));
    let listener_id = io_loop
        .add_handler(&mut *listener.borrow_mut(), Interest::READABLE, {
            let listener = listener.clone();
            let accepted = accepted.clone();
            let closed = closed.clone();
            move |_ready: Ready| loop {
                let next = listener.borrow().accept();
                match next {
                    Ok((stream, _)) => {
                        accepted.set(accepted.get() + 1);
                        serve_echo(stream, closed.clone());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept failed: {e}"),
                }
            }
        })
        .expect("add_handler");

    let handle = io_loop.handle();
    let client = thread::spawn(move || {
        let result = echo_client(addr);
        handle.add_callback(|| IoLoop::current().stop());
        result
    });
    assert!(
        start_within(&io_loop, SAFETY),
        "the client stopped the loop"
    );
    let echoed = client.join().expect("client thread").expect("client I/O");
    assert_eq!(echoed, b"hello whirl, and again".to_vec());
    assert_eq!(accepted.get(), 1);
    assert_eq!(
        closed.get(),
        1,
        "the server saw EOF and removed the connection"
    );
    io_loop
        .remove_handler(listener_id, &mut *listener.borrow_mut())
        .expect("remove_handler");
}

/// Registers an accepted connection with a handler that echoes what it reads
/// and, at EOF, removes itself (closing the connection) and counts a close.
fn serve_echo(stream: TcpStream, closed: Rc<Cell<usize>>) {
    register(
        &IoLoop::current(),
        stream,
        Interest::READABLE,
        |registered| {
            move |_ready: Ready| {
                let eof = {
                    let mut guard = registered.borrow_mut();
                    let Some((_, stream)) = guard.as_mut() else {
                        return;
                    };
                    let (bytes, eof) = drain(stream);
                    // Small messages: the kernel buffer takes them whole.
                    stream.write_all(&bytes).expect("echo write");
                    eof
                };
                if eof && unregister(&registered).is_some() {
                    closed.set(closed.get() + 1);
                }
            }
        },
    );
}

/// Sends two messages, reading each echo, then half-closes and reads to EOF
/// (the server closes its side when it sees ours).
fn echo_client(addr: std::net::SocketAddr) -> io::Result<Vec<u8>> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(SAFETY))?;
    let mut echoed = Vec::new();
    for message in [&b"hello whirl"[..], &b", and again"[..]] {
        stream.write_all(message)?;
        let mut buf = vec![0; message.len()];
        stream.read_exact(&mut buf)?;
        echoed.extend_from_slice(&buf);
    }
    stream.shutdown(Shutdown::Write)?;
    stream.read_to_end(&mut echoed)?;
    Ok(echoed)
}

#[test]
fn update_handler_switches_to_writable_and_back() {
    let io_loop = IoLoop::new();
    let (conn, mut peer) = tcp_pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let registered = register(&io_loop, conn, Interest::READABLE, recorder(&seen));
    run(&io_loop, async {
        settle().await;
        assert!(
            seen.borrow().is_empty(),
            "nothing to read yet: {:?}",
            seen.borrow()
        );

        {
            let mut guard = registered.borrow_mut();
            let (id, stream) = guard.as_mut().expect("registered");
            IoLoop::current()
                .update_handler(*id, stream, Interest::WRITABLE)
                .expect("update_handler");
        }
        wait_until(|| !seen.borrow().is_empty()).await;
        let ready = seen.borrow()[0];
        assert!(ready.is_writable(), "{ready:?}");
        assert!(!ready.is_readable(), "{ready:?}");

        {
            let mut guard = registered.borrow_mut();
            let (id, stream) = guard.as_mut().expect("registered");
            IoLoop::current()
                .update_handler(*id, stream, Interest::READABLE)
                .expect("update_handler");
        }
        settle().await;
        seen.borrow_mut().clear();
        peer.write_all(b"x").expect("peer write");
        wait_until(|| !seen.borrow().is_empty()).await;
        let ready = seen.borrow()[0];
        assert!(ready.is_readable(), "{ready:?}");
        assert!(!ready.is_writable(), "{ready:?}");
    });
    assert!(unregister(&registered).is_some());
}

// ----- removal -----------------------------------------------------------------------

#[test]
fn a_removed_handler_is_not_called_again() {
    let io_loop = IoLoop::new();
    let (conn, mut peer) = tcp_pair();
    let calls = Rc::new(Cell::new(0));
    let kept = Rc::new(RefCell::new(None));
    let registered = register(&io_loop, conn, Interest::READABLE, |registered| {
        let calls = calls.clone();
        let kept = kept.clone();
        move |_ready: Ready| {
            calls.set(calls.get() + 1);
            // Removes itself without reading (the data stays unread) and
            // keeps the stream open.
            *kept.borrow_mut() = unregister(&registered);
            assert!(kept.borrow().is_some());
        }
    });
    run(&io_loop, async {
        peer.write_all(b"first").expect("peer write");
        wait_until(|| calls.get() == 1).await;
        peer.write_all(b"second").expect("peer write");
        settle().await;
    });
    assert_eq!(calls.get(), 1);
    assert!(registered.borrow().is_none());
    assert!(kept.borrow().is_some());
}

#[test]
fn a_handler_removed_from_outside_is_not_called() {
    let io_loop = IoLoop::new();
    let (conn, mut peer) = tcp_pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let registered = register(&io_loop, conn, Interest::READABLE, recorder(&seen));
    run(&io_loop, async {
        peer.write_all(b"first").expect("peer write");
        wait_until(|| !seen.borrow().is_empty()).await;
        let _kept = unregister(&registered).expect("registered");
        peer.write_all(b"second").expect("peer write");
        settle().await;
    });
    assert_eq!(seen.borrow().len(), 1);
}

#[test]
fn a_handler_removed_by_an_earlier_handler_of_the_same_batch_is_not_called() {
    let io_loop = IoLoop::new();
    let (conn_a, mut peer_a) = tcp_pair();
    let (conn_b, mut peer_b) = tcp_pair();
    // Both readable before they are registered: the first poll reports both.
    peer_a.write_all(b"a").expect("peer write");
    peer_b.write_all(b"b").expect("peer write");

    let calls = Rc::new(RefCell::new(Vec::new()));
    let other_of_a: Registered = Rc::new(RefCell::new(None));
    let other_of_b: Registered = Rc::new(RefCell::new(None));
    let handler = |name: &'static str, other: &Registered| {
        let calls = calls.clone();
        let other = other.clone();
        move |_registered: Registered| {
            move |_ready: Ready| {
                calls.borrow_mut().push(name);
                unregister(&other);
            }
        }
    };
    let a = register(
        &io_loop,
        conn_a,
        Interest::READABLE,
        handler("a", &other_of_a),
    );
    let b = register(
        &io_loop,
        conn_b,
        Interest::READABLE,
        handler("b", &other_of_b),
    );
    *other_of_a.borrow_mut() = b.borrow_mut().take();
    *other_of_b.borrow_mut() = a.borrow_mut().take();

    run(&io_loop, async {
        wait_until(|| !calls.borrow().is_empty()).await;
        settle().await;
    });
    assert_eq!(
        calls.borrow().len(),
        1,
        "only the first handler ran: {:?}",
        calls.borrow()
    );
}

#[test]
fn a_stale_event_is_not_delivered_to_a_handler_reusing_the_slot() {
    let io_loop = IoLoop::new();
    let (conn_a, mut peer_a) = tcp_pair();
    let (conn_b, mut peer_b) = tcp_pair();
    let (conn_c, _peer_c) = tcp_pair();
    peer_a.write_all(b"a").expect("peer write");
    peer_b.write_all(b"b").expect("peer write");

    let calls = Rc::new(RefCell::new(Vec::new()));
    let other_of_a: Registered = Rc::new(RefCell::new(None));
    let other_of_b: Registered = Rc::new(RefCell::new(None));
    // `c` is registered by whichever of a/b runs first, right after it
    // removed the other: it likely takes the removed one's slot. Nothing is
    // ever written to c's peer, so it must never be called.
    let spare = Rc::new(RefCell::new(Some(conn_c)));
    let c_slot: Rc<RefCell<Option<Registered>>> = Rc::new(RefCell::new(None));
    let handler = |name: &'static str, other: &Registered| {
        let calls = calls.clone();
        let other = other.clone();
        let spare = spare.clone();
        let c_slot = c_slot.clone();
        move |_registered: Registered| {
            move |_ready: Ready| {
                calls.borrow_mut().push(name);
                if unregister(&other).is_some() {
                    let conn_c = spare.borrow_mut().take().expect("c registered once");
                    let calls = calls.clone();
                    let c = register(&IoLoop::current(), conn_c, Interest::READABLE, move |_| {
                        move |_ready: Ready| calls.borrow_mut().push("c")
                    });
                    *c_slot.borrow_mut() = Some(c);
                }
            }
        }
    };
    let a = register(
        &io_loop,
        conn_a,
        Interest::READABLE,
        handler("a", &other_of_a),
    );
    let b = register(
        &io_loop,
        conn_b,
        Interest::READABLE,
        handler("b", &other_of_b),
    );
    *other_of_a.borrow_mut() = b.borrow_mut().take();
    *other_of_b.borrow_mut() = a.borrow_mut().take();

    run(&io_loop, async {
        wait_until(|| !calls.borrow().is_empty()).await;
        settle().await;
    });
    assert_eq!(calls.borrow().len(), 1, "{:?}", calls.borrow());
    assert!(!calls.borrow().contains(&"c"));
    assert!(c_slot.borrow().is_some(), "c was registered");
}

#[test]
fn a_stale_id_is_not_found() {
    let io_loop = IoLoop::new();
    let (mut conn, _peer) = tcp_pair();
    let id = io_loop
        .add_handler(&mut conn, Interest::READABLE, |_| {})
        .expect("add_handler");
    io_loop
        .remove_handler(id, &mut conn)
        .expect("first removal");

    let err = io_loop
        .remove_handler(id, &mut conn)
        .expect_err("second removal");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = io_loop
        .update_handler(id, &mut conn, Interest::WRITABLE)
        .expect_err("update after removal");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_stale_id_does_not_reach_a_handler_reusing_its_slot() {
    let io_loop = IoLoop::new();
    let (mut old, _old_peer) = tcp_pair();
    let (new, mut new_peer) = tcp_pair();
    let old_id = io_loop
        .add_handler(&mut old, Interest::READABLE, |_| {})
        .expect("add_handler");
    io_loop
        .remove_handler(old_id, &mut old)
        .expect("remove_handler");

    let seen = Rc::new(RefCell::new(Vec::new()));
    let registered = register(&io_loop, new, Interest::READABLE, recorder(&seen));
    let new_id = registered.borrow().as_ref().expect("registered").0;
    assert_ne!(new_id, old_id);

    let err = io_loop
        .remove_handler(old_id, &mut old)
        .expect_err("stale removal");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let err = io_loop
        .update_handler(old_id, &mut old, Interest::WRITABLE)
        .expect_err("stale update");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);

    // The new handler is untouched.
    run(&io_loop, async {
        new_peer.write_all(b"still here").expect("peer write");
        wait_until(|| !seen.borrow().is_empty()).await;
    });
    assert!(seen.borrow()[0].is_readable());
    assert!(unregister(&registered).is_some());
}

// ----- panics ------------------------------------------------------------------------

#[test]
fn a_panicking_handler_does_not_stop_the_loop() {
    let io_loop = IoLoop::new();
    let (conn, mut peer) = tcp_pair();
    let calls = Rc::new(Cell::new(0));
    let returned = Rc::new(Cell::new(0));
    let registered = register(&io_loop, conn, Interest::READABLE, |registered| {
        let calls = calls.clone();
        let returned = returned.clone();
        move |_ready: Ready| {
            calls.set(calls.get() + 1);
            if let Some((_, stream)) = registered.borrow_mut().as_mut() {
                drain(stream);
            }
            assert!(calls.get() > 1, "the first call panics");
            returned.set(returned.get() + 1);
        }
    });
    let timer_ran = Rc::new(Cell::new(false));
    run(&io_loop, async {
        peer.write_all(b"1").expect("peer write");
        wait_until(|| calls.get() == 1).await;
        // The loop goes on: timers run, and the handler is still registered.
        let current = IoLoop::current();
        current.call_later(Duration::from_millis(1), {
            let timer_ran = timer_ran.clone();
            move || timer_ran.set(true)
        });
        wait_until(|| timer_ran.get()).await;
        peer.write_all(b"2").expect("peer write");
        wait_until(|| calls.get() == 2).await;
    });
    assert_eq!(returned.get(), 1, "the second call returned normally");
    assert!(unregister(&registered).is_some());
}

// ----- Ready -------------------------------------------------------------------------

#[test]
fn ready_debug_lists_its_flags() {
    assert_eq!(format!("{:?}", Ready::default()), "Ready()");
    let empty = Ready::default();
    assert!(!empty.is_readable() && !empty.is_writable() && !empty.is_error());
    assert!(!empty.is_read_closed() && !empty.is_write_closed() && !empty.is_priority());

    let io_loop = IoLoop::new();

    // A listener with a connection waiting: readable.
    let mut listener = loopback_listener();
    let _client =
        std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    // A connection whose peer wrote and half-closed: readable, read-closed.
    let (closing, mut closing_peer) = tcp_pair();
    closing_peer.write_all(b"bye").expect("peer write");
    closing_peer.shutdown(Shutdown::Write).expect("shutdown");
    // A fresh connection asked for writability: writable.
    let (fresh, _fresh_peer) = tcp_pair();

    let listened = Rc::new(RefCell::new(Vec::new()));
    let listener_id = io_loop
        .add_handler(&mut listener, Interest::READABLE, {
            let listened = listened.clone();
            move |ready: Ready| listened.borrow_mut().push(ready)
        })
        .expect("add_handler");
    let closed_seen = Rc::new(RefCell::new(Vec::new()));
    let closing = register(
        &io_loop,
        closing,
        Interest::READABLE,
        recorder(&closed_seen),
    );
    let fresh_seen = Rc::new(RefCell::new(Vec::new()));
    let fresh = register(&io_loop, fresh, Interest::WRITABLE, recorder(&fresh_seen));

    // The data and the FIN may arrive as one edge or two: wait for the FIN.
    let read_closed = || {
        closed_seen
            .borrow()
            .iter()
            .copied()
            .find(|r| r.is_read_closed())
    };
    run(&io_loop, async {
        wait_until(|| {
            !listened.borrow().is_empty()
                && read_closed().is_some()
                && !fresh_seen.borrow().is_empty()
        })
        .await;
    });
    assert_eq!(format!("{:?}", listened.borrow()[0]), "Ready(READABLE)");
    let ready = read_closed().expect("the FIN was seen");
    assert_eq!(format!("{ready:?}"), "Ready(READABLE | READ_CLOSED)");
    assert_eq!(format!("{:?}", fresh_seen.borrow()[0]), "Ready(WRITABLE)");
    let copy = ready;
    assert_eq!(ready, copy);
    assert_ne!(ready, Ready::default());

    io_loop
        .remove_handler(listener_id, &mut listener)
        .expect("remove_handler");
    assert!(unregister(&closing).is_some());
    assert!(unregister(&fresh).is_some());
}

#[test]
fn a_handler_replaced_from_inside_itself_gets_no_more_events_and_the_new_one_does() {
    let io_loop = IoLoop::new();
    let (conn, mut peer) = tcp_pair();
    let (old_calls, new_calls) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let registered = register(&io_loop, conn, Interest::READABLE, |registered| {
        let (old_calls, new_calls) = (old_calls.clone(), new_calls.clone());
        move |_ready: Ready| {
            old_calls.set(old_calls.get() + 1);
            let id = registered.borrow().as_ref().expect("registered").0;
            let (registered, new_calls) = (registered.clone(), new_calls.clone());
            // Leaves the data unread: the new callback hears of the next
            // edge only (the registration is the same, not a fresh one).
            IoLoop::current()
                .replace_handler(id, move |ready: Ready| {
                    assert!(ready.is_readable());
                    new_calls.set(new_calls.get() + 1);
                    let mut slot = registered.borrow_mut();
                    let (_, stream) = slot.as_mut().expect("registered");
                    drain(stream);
                })
                .expect("replace_handler");
        }
    });
    run(&io_loop, async {
        peer.write_all(b"first").expect("peer write");
        wait_until(|| old_calls.get() == 1).await;
        settle().await;
        assert_eq!(new_calls.get(), 0, "no new edge yet");
        peer.write_all(b"second").expect("peer write");
        wait_until(|| new_calls.get() == 1).await;
        settle().await;
    });
    assert_eq!((old_calls.get(), new_calls.get()), (1, 1));
    assert!(unregister(&registered).is_some());
}

#[test]
fn a_stale_id_cannot_be_replaced() {
    let io_loop = IoLoop::new();
    let (mut conn, _peer) = tcp_pair();
    let id = io_loop
        .add_handler(&mut conn, Interest::READABLE, |_| {})
        .expect("add_handler");
    io_loop.remove_handler(id, &mut conn).expect("removal");
    let err = io_loop
        .replace_handler(id, |_| {})
        .expect_err("replace after removal");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

/// A handler woken by I/O after the loop slept in `poll` sees the time as
/// it is after the sleep, not as it was before it.
#[test]
fn a_handler_after_a_long_poll_sees_the_loop_time_after_it() {
    let io_loop = IoLoop::new();
    let (server, mut peer) = tcp_pair();
    let seen = Rc::new(Cell::new(None));
    let registered = register(&io_loop, server, Interest::READABLE, |registered| {
        let seen = seen.clone();
        move |_ready| {
            if let Some((_, stream)) = registered.borrow_mut().as_mut() {
                drain(stream);
            }
            if seen.get().is_none() {
                seen.set(Some(whirl_ioloop::loop_time()));
                IoLoop::current().stop();
            }
        }
    });
    let written = Arc::new(Mutex::new(None));
    let writer = {
        let written = written.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            *written.lock().unwrap() = Some(Instant::now());
            peer.write_all(b"x").expect("write");
            peer
        })
    };
    // Nothing else to do: the loop sleeps in `poll` until the byte comes.
    start_within(&io_loop, SAFETY);
    let _peer = writer.join().expect("writer thread");
    let written = written.lock().unwrap().expect("written");
    let seen = seen.get().expect("the handler ran");
    assert!(
        seen >= written,
        "the handler saw {seen:?}, before the write at {written:?}"
    );
    let (id, mut stream) = registered.borrow_mut().take().expect("registered");
    io_loop
        .remove_handler(id, &mut stream)
        .expect("remove_handler");
}
