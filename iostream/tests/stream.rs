//! `IoStream` behaviour over loopback (TCP on 127.0.0.1 and Unix socket
//! pairs): delimited and counted reads, one read at a time, write ordering and
//! back-pressure, buffer limits, closing, close callbacks and leaks.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use regex::bytes::Regex;
use whirl_ioloop::IoLoop;
use whirl_iostream::{
    spare_write_buffer, CloseReason, IoStream, StreamError, StreamOptions, TcpServer, WriteBuf,
    WriteFuture,
};

use support::{
    fd_count, handler_count, init_logging, into_stream, join, poll_once, read_to_end, reset, run,
    run_on, settle, shutdown_write, std_tcp_pair, tcp_pair, tcp_pair_with, trickle, unix_pair,
    unix_pair_with, wait_until,
};

/// The reason of a `StreamError::Closed`, or a panic naming what came instead.
fn closed_reason(e: &StreamError) -> &CloseReason {
    match e.as_closed() {
        Some(closed) => closed.reason(),
        None => panic!("expected StreamError::Closed, got {e:?}"),
    }
}

/// Whether `reason` is an I/O error of `kind`.
fn is_io(reason: &CloseReason, kind: io::ErrorKind) -> bool {
    matches!(reason, CloseReason::Io(e) if e.kind() == kind)
}

/// Shrinks the kernel buffers of a connected pair so that a few hundred KiB
/// fill them: our send buffer and the peer's receive buffer.
fn small_socket_buffers(ours: &TcpStream, peer: &TcpStream) {
    socket2::SockRef::from(ours)
        .set_send_buffer_size(64 * 1024)
        .expect("SO_SNDBUF");
    socket2::SockRef::from(peer)
        .set_recv_buffer_size(64 * 1024)
        .expect("SO_RCVBUF");
}

// ----- read_until --------------------------------------------------------------

#[test]
fn read_until_delimiter_split_across_one_byte_writes() {
    run(async {
        let (stream, peer) = tcp_pair();
        let message = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nnext\r\n\r\n".to_vec();
        let peer = trickle(peer, message, Duration::from_millis(1));
        let head = stream.read_until(b"\r\n\r\n", 1024).await.unwrap();
        assert_eq!(head, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let next = stream.read_until(b"\r\n\r\n", 1024).await.unwrap();
        assert_eq!(next, b"next\r\n\r\n");
        join(peer).await;
    });
}

#[test]
fn read_until_multibyte_delimiter_straddling_chunk_boundaries() {
    // Reads of `chunk` bytes at a time put every chunk boundary somewhere
    // inside the delimiter or one of its false starts ("\r\n\r\r\n").
    let message: &[u8] = b"ab\r\n\r\r\n\r\ncd\r\n\r\n\r\n\r\nlast\r\n\r\n";
    let expected: [&[u8]; 4] = [
        b"ab\r\n\r\r\n\r\n",
        b"cd\r\n\r\n",
        b"\r\n\r\n",
        b"last\r\n\r\n",
    ];
    for chunk in 1..=9 {
        let got = run(async {
            let (writer, reader) = unix_pair_with(StreamOptions::default().read_chunk_size(chunk));
            writer.write(message);
            let mut got = Vec::new();
            for _ in 0..expected.len() {
                got.push(reader.read_until(b"\r\n\r\n", 1024).await.unwrap());
            }
            got
        });
        assert_eq!(got, expected, "read_chunk_size {chunk}");
    }
}

#[test]
fn read_until_serves_buffered_data_without_touching_the_socket() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        // Two messages in one write: one segment, one read.
        peer.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"one\n");
        assert_eq!(stream.buffered(), 4);
        // The peer never sends again; worse, it resets the connection. The
        // socket now holds an error, but the second message is already ours.
        reset(peer);
        settle().await;
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"two\n");
        // Only the next read reaches the socket and meets the reset.
        let e = stream.read_until(b"\n", 64).await.unwrap_err();
        assert!(
            is_io(closed_reason(&e), io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
    });
}

#[test]
fn read_until_past_max_bytes_is_unsatisfiable_and_closes() {
    // Already buffered, or arriving while the read waits.
    for split in [false, true] {
        run(async {
            let (stream, mut peer) = tcp_pair();
            if split {
                let peer = trickle(peer, vec![b'x'; 60], Duration::ZERO);
                let e = stream.read_until(b"\n", 50).await.unwrap_err();
                assert!(
                    matches!(e, StreamError::UnsatisfiableRead { max_bytes: 50 }),
                    "{e:?}"
                );
                join(peer).await;
            } else {
                peer.write_all(&[b'x'; 100]).unwrap();
                settle().await;
                let e = stream.read_until(b"\n", 50).await.unwrap_err();
                assert!(
                    matches!(e, StreamError::UnsatisfiableRead { max_bytes: 50 }),
                    "{e:?}"
                );
            }
            assert!(stream.closed());
            let reason = stream.error().expect("error() after the close");
            assert!(
                matches!(
                    reason.reason(),
                    CloseReason::UnsatisfiableRead { max_bytes: 50 }
                ),
                "{reason:?}"
            );
            // Later operations fail with the same cause (bytes still
            // buffered stay readable, as in Tornado, but hold no newline).
            let e = stream.read_until(b"\n", 1 << 20).await.unwrap_err();
            assert!(
                matches!(closed_reason(&e), CloseReason::UnsatisfiableRead { .. }),
                "{e:?}"
            );
            let e = stream.write("x").await.unwrap_err();
            assert!(
                matches!(closed_reason(&e), CloseReason::UnsatisfiableRead { .. }),
                "{e:?}"
            );
        });
    }
}

#[test]
fn read_until_delimiter_found_beyond_max_bytes_is_unsatisfiable() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"0123456789\n").unwrap();
        let e = stream.read_until(b"\n", 5).await.unwrap_err();
        assert!(
            matches!(e, StreamError::UnsatisfiableRead { max_bytes: 5 }),
            "{e:?}"
        );
        assert!(stream.closed());
        assert!(matches!(
            stream.error().unwrap().reason(),
            CloseReason::UnsatisfiableRead { max_bytes: 5 }
        ));
    });
}

#[test]
fn read_until_max_bytes_counts_the_delimiter_and_allows_exactly_max() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"0123\r\nrest").unwrap();
        assert_eq!(stream.read_until(b"\r\n", 6).await.unwrap(), b"0123\r\n");
        assert!(!stream.closed());
    });
}

// ----- read_until_regex ----------------------------------------------------------

#[test]
fn read_until_regex_across_one_byte_writes() {
    run(async {
        let (stream, peer) = tcp_pair();
        let peer = trickle(
            peer,
            b"HTTP/1.1 200 OK\nX: y\r\n\r\nbody".to_vec(),
            Duration::from_millis(1),
        );
        let blank_line = Regex::new(r"\r?\n\r?\n").unwrap();
        let head = stream.read_until_regex(&blank_line, 1024).await.unwrap();
        assert_eq!(head, b"HTTP/1.1 200 OK\nX: y\r\n\r\n");
        assert_eq!(stream.read_bytes(4, false).await.unwrap(), b"body");
        join(peer).await;
    });
}

#[test]
fn read_until_regex_with_tiny_read_chunks() {
    run(async {
        let (writer, reader) = unix_pair_with(StreamOptions::default().read_chunk_size(1));
        writer.write("id=42;id=7;");
        let id = Regex::new(r"id=[0-9]+;").unwrap();
        assert_eq!(reader.read_until_regex(&id, 64).await.unwrap(), b"id=42;");
        assert_eq!(reader.read_until_regex(&id, 64).await.unwrap(), b"id=7;");
    });
}

#[test]
fn read_until_regex_past_max_bytes_is_unsatisfiable() {
    // No match within the limit, and a match that ends past it.
    let end = Regex::new("END").unwrap();
    for (data, max_bytes) in [
        (&b"aaaaaaaaaaaaaaaaaaaa"[..], 10),
        (&b"0123456789END"[..], 5),
    ] {
        run(async {
            let (stream, mut peer) = tcp_pair();
            peer.write_all(data).unwrap();
            let e = stream.read_until_regex(&end, max_bytes).await.unwrap_err();
            assert!(
                matches!(e, StreamError::UnsatisfiableRead { max_bytes: m } if m == max_bytes),
                "{e:?}"
            );
            assert!(stream.closed());
            assert!(matches!(
                stream.error().unwrap().reason(),
                CloseReason::UnsatisfiableRead { .. }
            ));
        });
    }
}

// ----- read_bytes, read_into, read_until_close ------------------------------------

#[test]
fn read_bytes_waits_for_all_n() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"abc").unwrap();
        let mut read = pin!(stream.read_bytes(5, false));
        assert!(poll_once(read.as_mut()).await.is_pending());
        settle().await;
        assert!(
            poll_once(read.as_mut()).await.is_pending(),
            "3 of 5 bytes must not complete the read"
        );
        peer.write_all(b"defgh").unwrap();
        assert_eq!(read.await.unwrap(), b"abcde");
        // The rest was buffered and is served at once.
        assert_eq!(stream.buffered(), 3);
        assert_eq!(stream.read_bytes(3, false).await.unwrap(), b"fgh");
    });
}

#[test]
fn read_bytes_partial_returns_what_is_there() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"abc").unwrap();
        assert_eq!(stream.read_bytes(10, true).await.unwrap(), b"abc");
        // More than asked for: at most n, the rest stays buffered.
        peer.write_all(b"0123456789ABCDEFGHIJ").unwrap();
        assert_eq!(stream.read_bytes(10, true).await.unwrap(), b"0123456789");
        assert_eq!(stream.read_bytes(100, true).await.unwrap(), b"ABCDEFGHIJ");
        // With nothing buffered, partial still waits for at least one byte.
        let mut read = pin!(stream.read_bytes(10, true));
        settle().await;
        assert!(poll_once(read.as_mut()).await.is_pending());
        peer.write_all(b"z").unwrap();
        assert_eq!(read.await.unwrap(), b"z");
    });
}

#[test]
fn read_into_full_and_partial() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        let mut buf = [0u8; 8];
        peer.write_all(b"12345").unwrap();
        assert_eq!(stream.read_into(&mut buf, true).await.unwrap(), 5);
        assert_eq!(&buf[..5], b"12345");

        peer.write_all(b"ABC").unwrap();
        {
            let mut read = pin!(stream.read_into(&mut buf, false));
            settle().await;
            assert!(
                poll_once(read.as_mut()).await.is_pending(),
                "3 of 8 bytes must not fill the buffer"
            );
            peer.write_all(b"DEFGHxyz").unwrap();
            assert_eq!(read.await.unwrap(), 8);
        }
        assert_eq!(&buf, b"ABCDEFGH");
        assert_eq!(stream.buffered(), 3);
        let mut small = [0u8; 2];
        assert_eq!(stream.read_into(&mut small, true).await.unwrap(), 2);
        assert_eq!(&small, b"xy");
    });
}

#[test]
fn read_until_close_returns_everything_once_the_peer_closes() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        let mut data = vec![0u8; 1 << 20];
        support::Pattern::new(7).fill(&mut data);
        let sent = data.clone();
        let peer = thread::spawn(move || {
            peer.write_all(&data).unwrap();
            shutdown_write(&peer);
            peer
        });
        let got = stream.read_until_close().await.unwrap();
        assert!(got == sent, "got {} bytes, sent {}", got.len(), sent.len());
        assert!(stream.closed());
        assert!(matches!(stream.error().unwrap().reason(), CloseReason::Eof));
        drop(join(peer).await);
    });
}

#[test]
fn read_until_close_on_a_reset_fails_with_the_reset_as_source() {
    run(async {
        let (stream, peer) = tcp_pair();
        let mut read = pin!(stream.read_until_close());
        assert!(poll_once(read.as_mut()).await.is_pending());
        reset(peer);
        let e = read.await.unwrap_err();
        assert!(
            is_io(closed_reason(&e), io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
        // The cause is reachable through `source()`: StreamError ->
        // StreamClosed -> CloseReason -> io::Error.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let io_error = cause
            .downcast_ref::<io::Error>()
            .expect("the root cause is the io::Error");
        assert_eq!(io_error.kind(), io::ErrorKind::ConnectionReset);
        assert!(stream.closed());
    });
}

// ----- one read at a time ---------------------------------------------------------

#[test]
fn a_second_concurrent_read_is_refused() {
    run(async {
        let (writer, reader) = unix_pair();
        let mut first = pin!(reader.read_until(b"\n", 64));
        assert!(poll_once(first.as_mut()).await.is_pending());
        assert!(reader.reading());
        assert!(matches!(
            reader.read_bytes(1, true).await,
            Err(StreamError::AlreadyReading)
        ));
        assert!(matches!(
            reader.read_until_close().await,
            Err(StreamError::AlreadyReading)
        ));
        // The refusal does not disturb the first read nor close the stream.
        writer.write("x\n");
        assert_eq!(first.await.unwrap(), b"x\n");
        assert!(!reader.reading());
        assert!(!reader.closed());
    });
}

#[test]
fn a_dropped_read_frees_the_slot_and_loses_no_data() {
    run(async {
        let (writer, reader) = unix_pair();
        writer.write("abc");
        {
            let mut read = pin!(reader.read_until(b"\n", 64));
            settle().await;
            assert!(poll_once(read.as_mut()).await.is_pending());
            assert_eq!(reader.buffered(), 3);
        }
        assert!(!reader.reading());
        writer.write("\n");
        assert_eq!(reader.read_until(b"\n", 64).await.unwrap(), b"abc\n");
    });
}

#[test]
fn dropped_read_until_does_not_leave_a_stale_search_offset() {
    // Regression: a read_until dropped mid-search kept its search offset, and
    // the next read_until (after other reads consumed the buffer) started past
    // the delimiter and waited forever.
    run(async {
        let (writer, reader) = unix_pair();
        writer.write("abcdef");
        {
            let mut read = pin!(reader.read_until(b"\n", 64));
            settle().await;
            assert!(poll_once(read.as_mut()).await.is_pending());
        }
        assert_eq!(reader.read_bytes(4, false).await.unwrap(), b"abcd");
        writer.write("\n");
        assert_eq!(reader.read_until(b"\n", 64).await.unwrap(), b"ef\n");
        // A different delimiter after an abandoned search.
        writer.write("xyz;");
        {
            let mut read = pin!(reader.read_until(b"\n", 64));
            settle().await;
            assert!(poll_once(read.as_mut()).await.is_pending());
        }
        assert_eq!(reader.read_until(b";", 64).await.unwrap(), b"xyz;");
    });
}

// ----- writes ----------------------------------------------------------------------

#[test]
fn write_futures_resolve_in_order() {
    run(async {
        let (ours, peer) = std_tcp_pair();
        small_socket_buffers(&ours, &peer);
        let stream = into_stream(ours, StreamOptions::default());
        const N: usize = 6;
        const SIZE: usize = 512 * 1024;
        let mut writes: Vec<Pin<Box<WriteFuture>>> = (0..N)
            .map(|i| Box::pin(stream.write(vec![i as u8; SIZE])))
            .collect();
        // A slow reader that checks every byte.
        let reader = thread::spawn(move || {
            let mut peer = peer;
            let mut buf = vec![0u8; 16 * 1024];
            let mut total = 0;
            while total < N * SIZE {
                let n = peer.read(&mut buf).unwrap();
                assert!(n > 0, "early EOF");
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(usize::from(b), (total + k) / SIZE, "byte {}", total + k);
                }
                total += n;
                thread::sleep(Duration::from_micros(200));
            }
        });
        // Poll all writes each time; the resolved ones must always be a prefix.
        let mut done = [false; N];
        let mut passes_with_a_gap = 0;
        poll_fn(|cx| {
            for (i, write) in writes.iter_mut().enumerate() {
                if !done[i] {
                    if let Poll::Ready(result) = write.as_mut().poll(cx) {
                        result.unwrap();
                        done[i] = true;
                    }
                }
            }
            let first_pending = done.iter().position(|d| !d).unwrap_or(N);
            if done[first_pending..].iter().any(|d| *d) {
                passes_with_a_gap += 1;
            }
            if first_pending == N {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        assert_eq!(
            passes_with_a_gap, 0,
            "a later write resolved before an earlier one"
        );
        join(reader).await;
    });
}

#[test]
fn a_burst_of_small_writes_arrives_intact_and_in_order() {
    run(async {
        let (stream, peer) = tcp_pair();
        const COUNT: usize = 20_000;
        let expected: Vec<u8> = (0..COUNT)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let len = expected.len();
        let reader = thread::spawn(move || {
            let mut peer = peer;
            let mut got = vec![0u8; len];
            peer.read_exact(&mut got).unwrap();
            got
        });
        let mut last = None;
        for i in 0..COUNT {
            last = Some(stream.write(format!("{i}\n")));
        }
        assert!(
            stream.writing(),
            "bytes are queued until the loop flushes them"
        );
        last.unwrap().await.unwrap();
        assert!(!stream.writing());
        let got = join(reader).await;
        assert!(got == expected, "the bytes differ");
    });
}

#[test]
fn a_large_write_resolves_only_after_the_reader_drained_it() {
    run(async {
        let (ours, peer) = std_tcp_pair();
        small_socket_buffers(&ours, &peer);
        let stream = into_stream(ours, StreamOptions::default());
        const TOTAL: usize = 32 << 20;
        let mut write = pin!(stream.write(vec![7u8; TOTAL]));
        settle().await;
        assert!(
            poll_once(write.as_mut()).await.is_pending(),
            "nobody read 32 MiB yet"
        );
        assert!(stream.writing());

        let drained = Arc::new(AtomicUsize::new(0));
        let counter = drained.clone();
        let reader = thread::spawn(move || {
            let mut peer = peer;
            let mut buf = vec![0u8; 64 * 1024];
            let mut all_sevens = true;
            loop {
                let n = peer.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                all_sevens &= buf[..n].iter().all(|&b| b == 7);
                counter.fetch_add(n, Ordering::SeqCst);
            }
            all_sevens
        });
        write.await.unwrap();
        let at_resolve = drained.load(Ordering::SeqCst);
        // Whatever the peer had not read yet fits in the two small kernel
        // buffers between us.
        assert!(
            at_resolve >= TOTAL - (4 << 20),
            "the write resolved when the peer had read only {at_resolve} bytes"
        );
        assert!(!stream.writing());
        stream.close();
        assert!(join(reader).await, "the peer saw other bytes than sent");
        assert_eq!(drained.load(Ordering::SeqCst), TOTAL);
    });
}

#[test]
fn write_on_a_closed_stream_fails() {
    run(async {
        let (stream, _peer) = tcp_pair();
        stream.write("hello").await.unwrap();
        stream.close();
        let e = stream.write("again").await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Local), "{e:?}");
        assert!(!stream.writing());
    });
}

#[test]
fn write_after_the_peer_closed_fails_with_the_cause() {
    run(async {
        let (stream, peer) = tcp_pair();
        drop(peer);
        let e = stream.read_until(b"\n", 64).await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Eof), "{e:?}");
        let e = stream.write("too late").await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Eof), "{e:?}");
    });
}

/// A transport that, like TLS answering a key update, makes bytes of its own
/// while reading: each `ping` read stashes a `pong`, which only
/// `flush_transport` sends.
struct Answering {
    /// The socket.
    socket: mio::net::TcpStream,
    /// Bytes made by reads, not yet sent.
    stash: Vec<u8>,
}

impl mio::event::Source for Answering {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        self.socket.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.socket.deregister(registry)
    }
}

impl whirl_iostream::Transport for Answering {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = Read::read(&mut self.socket, buf)?;
        if buf[..n].windows(4).any(|w| w == b"ping") {
            self.stash.extend_from_slice(b"pong");
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Write::write_vectored(&mut self.socket, bufs)
    }

    fn flush_transport(&mut self) -> io::Result<bool> {
        while !self.stash.is_empty() {
            let n = Write::write(&mut self.socket, &self.stash)?;
            self.stash.drain(..n);
        }
        Ok(true)
    }

    fn has_buffered_write(&self) -> bool {
        !self.stash.is_empty()
    }
}

#[test]
fn bytes_a_transport_made_while_reading_go_out_on_the_next_event() {
    // A writability event with nothing queued skips the flush, unless the
    // transport says it holds bytes of its own: those must still go out.
    let (ours, mut peer) = std_tcp_pair();
    ours.set_nonblocking(true).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let pinged = Arc::new(AtomicUsize::new(0));
    let seen = pinged.clone();
    let peer = thread::spawn(move || {
        peer.write_all(b"ping").unwrap();
        while seen.load(Ordering::SeqCst) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        // The stream waits for readiness now: this brings an event
        // (readable, and writable too) that must flush the stash.
        peer.write_all(b"more").unwrap();
        let mut answer = [0; 4];
        peer.read_exact(&mut answer).map(|()| answer)
    });
    run(async {
        let transport = Answering {
            socket: mio::net::TcpStream::from_std(ours),
            stash: Vec::new(),
        };
        let stream = IoStream::new(transport).unwrap();
        assert_eq!(stream.read_bytes(4, false).await.unwrap(), b"ping");
        pinged.store(1, Ordering::SeqCst);
        assert_eq!(stream.read_bytes(4, false).await.unwrap(), b"more");
        // Nothing was ever written through the stream.
        let answer = join(peer).await.expect("the stashed answer");
        assert_eq!(&answer, b"pong");
    });
}

// ----- max_buffer_size -----------------------------------------------------------------

#[test]
fn a_peer_flooding_past_max_buffer_size_fails_the_read_with_buffer_full() {
    const LIMIT: usize = 64 * 1024;
    run(async {
        let (stream, peer) = tcp_pair_with(StreamOptions::default().max_buffer_size(LIMIT));
        let flood = thread::spawn(move || {
            let mut peer = peer;
            // Fails (reset or broken pipe) once the stream gives up; fine.
            let _ = peer.write_all(&vec![b'x'; 1 << 20]);
        });
        let mut read = pin!(stream.read_until(b"\n", 16 << 20));
        let mut max_seen = 0;
        let result = poll_fn(|cx| {
            let poll = read.as_mut().poll(cx);
            max_seen = max_seen.max(stream.buffered());
            poll
        })
        .await;
        let e = result.unwrap_err();
        assert!(
            matches!(
                e,
                StreamError::BufferFull {
                    max_buffer_size: LIMIT
                }
            ),
            "{e:?}"
        );
        assert!(stream.closed());
        assert!(matches!(
            stream.error().unwrap().reason(),
            CloseReason::BufferFull {
                max_buffer_size: LIMIT
            }
        ));
        assert!(max_seen <= LIMIT, "the stream held {max_seen} bytes");
        assert!(
            stream.buffered() <= LIMIT,
            "the stream holds {} bytes",
            stream.buffered()
        );
        join(flood).await;
    });
}

#[test]
fn read_bytes_larger_than_max_buffer_size_fails_with_buffer_full() {
    const LIMIT: usize = 16 * 1024;
    run(async {
        let (stream, peer) = tcp_pair_with(StreamOptions::default().max_buffer_size(LIMIT));
        let flood = thread::spawn(move || {
            let mut peer = peer;
            let _ = peer.write_all(&vec![b'x'; 256 * 1024]);
        });
        let e = stream.read_bytes(128 * 1024, false).await.unwrap_err();
        assert!(
            matches!(
                e,
                StreamError::BufferFull {
                    max_buffer_size: LIMIT
                }
            ),
            "{e:?}"
        );
        assert!(stream.closed());
        assert!(stream.buffered() <= LIMIT);
        join(flood).await;
    });
}

// ----- close, close callbacks, error() -----------------------------------------------------

#[test]
fn close_fails_pending_read_and_write_with_local() {
    run(async {
        let (ours, peer) = std_tcp_pair();
        small_socket_buffers(&ours, &peer);
        let stream = into_stream(ours, StreamOptions::default());
        let mut write = pin!(stream.write(vec![1u8; 16 << 20]));
        let mut read = pin!(stream.read_until(b"\n", 64));
        settle().await;
        assert!(poll_once(write.as_mut()).await.is_pending());
        assert!(poll_once(read.as_mut()).await.is_pending());
        assert!(!stream.closed());
        assert!(stream.error().is_none());

        stream.close();
        assert!(stream.closed());
        assert!(matches!(
            stream.error().unwrap().reason(),
            CloseReason::Local
        ));
        let e = read.await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Local), "{e:?}");
        let e = write.await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Local), "{e:?}");
        assert!(!stream.writing());
        drop(peer);
    });
}

/// A close callback that counts its runs and notes whether the loop was
/// running each time.
fn counting_close_callback(stream: &IoStream) -> (Rc<Cell<u32>>, Rc<RefCell<Vec<bool>>>) {
    let runs = Rc::new(Cell::new(0));
    let on_loop = Rc::new(RefCell::new(Vec::new()));
    let (r, o) = (runs.clone(), on_loop.clone());
    stream.set_close_callback(move || {
        r.set(r.get() + 1);
        o.borrow_mut().push(IoLoop::current().is_running());
    });
    (runs, on_loop)
}

#[test]
fn close_callback_runs_once_on_the_loop_after_a_local_close() {
    run(async {
        let (stream, _peer) = tcp_pair();
        let (runs, on_loop) = counting_close_callback(&stream);
        settle().await;
        assert_eq!(runs.get(), 0);
        stream.close();
        assert_eq!(
            runs.get(),
            0,
            "the callback runs from the loop, not inside close()"
        );
        wait_until(|| runs.get() > 0).await;
        stream.close();
        stream.close_with_reason(CloseReason::Timeout);
        settle().await;
        assert_eq!(runs.get(), 1);
        assert_eq!(*on_loop.borrow(), [true]);
        // The first reason sticks.
        assert!(matches!(
            stream.error().unwrap().reason(),
            CloseReason::Local
        ));
    });
}

#[test]
fn close_callback_runs_once_when_a_read_observes_peer_eof() {
    run(async {
        let (stream, peer) = tcp_pair();
        let (runs, _) = counting_close_callback(&stream);
        shutdown_write(&peer);
        let e = stream.read_until(b"\n", 64).await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Eof), "{e:?}");
        wait_until(|| runs.get() > 0).await;
        stream.close();
        settle().await;
        assert_eq!(runs.get(), 1);
        assert!(stream.closed());
        assert!(matches!(stream.error().unwrap().reason(), CloseReason::Eof));
    });
}

#[test]
fn close_callback_runs_once_after_an_error() {
    run(async {
        let (stream, peer) = tcp_pair();
        let (runs, _) = counting_close_callback(&stream);
        let mut read = pin!(stream.read_bytes(10, false));
        assert!(poll_once(read.as_mut()).await.is_pending());
        reset(peer);
        let e = read.await.unwrap_err();
        assert!(
            is_io(closed_reason(&e), io::ErrorKind::ConnectionReset),
            "{e:?}"
        );
        wait_until(|| runs.get() > 0).await;
        settle().await;
        assert_eq!(runs.get(), 1);
        assert!(is_io(
            stream.error().unwrap().reason(),
            io::ErrorKind::ConnectionReset
        ));
    });
}

#[test]
fn close_callback_set_after_the_close_still_runs() {
    run(async {
        let (stream, _peer) = tcp_pair();
        stream.close();
        let (runs, on_loop) = counting_close_callback(&stream);
        wait_until(|| runs.get() > 0).await;
        settle().await;
        assert_eq!(runs.get(), 1);
        assert_eq!(*on_loop.borrow(), [true]);
    });
}

#[test]
fn a_replaced_close_callback_does_not_run() {
    run(async {
        let (stream, _peer) = tcp_pair();
        let (first, _) = counting_close_callback(&stream);
        let (second, _) = counting_close_callback(&stream);
        stream.close();
        wait_until(|| second.get() > 0).await;
        settle().await;
        assert_eq!((first.get(), second.get()), (0, 1));
    });
}

// ----- dropping handles ---------------------------------------------------------------------

#[test]
fn dropping_the_last_handle_closes_the_socket_and_frees_the_handler() {
    let io_loop = IoLoop::new();
    run_on(&io_loop, async {
        let baseline = handler_count(&IoLoop::current());
        let (stream, mut peer) = tcp_pair();
        assert_eq!(handler_count(&IoLoop::current()), baseline + 1);
        let clone = stream.clone();
        drop(stream);
        // One handle is left: the socket stays open.
        peer.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut byte = [0u8; 1];
        let e = peer.read(&mut byte).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e:?}"
        );
        drop(clone);
        assert_eq!(handler_count(&IoLoop::current()), baseline);
        peer.set_read_timeout(Some(support::TEST_TIMEOUT)).unwrap();
        assert_eq!(
            peer.read(&mut byte).unwrap(),
            0,
            "the peer sees end of file"
        );
    });
}

#[test]
fn ten_thousand_dropped_streams_leak_no_fds_and_no_handlers() {
    init_logging();
    let io_loop = IoLoop::new();
    let fds_before = fd_count();
    let handlers_before = handler_count(&io_loop);
    run_on(&io_loop, async {
        for i in 0..10_000 {
            let (a, b) = unix_pair();
            a.write("x");
            if i % 100 == 0 {
                // Now and then let the loop turn: events, flushes, a read.
                assert_eq!(b.read_bytes(1, false).await.unwrap(), b"x");
            }
        }
        // Streams dropped with a write queued live until it is sent (or
        // fails: the peer is gone too), which takes a turn of the loop.
        wait_until(|| handler_count(&IoLoop::current()) == handlers_before).await;
    });
    assert_eq!(handler_count(&io_loop), handlers_before, "handlers leaked");
    if let (Some(before), Some(after)) = (fds_before, fd_count()) {
        // Other tests of this binary open and close sockets concurrently; a
        // leak here would be 20,000 descriptors.
        assert!(after <= before + 200, "fds: {before} before, {after} after");
    }
}

// ----- options -----------------------------------------------------------------------------------

#[test]
fn set_nodelay_works_on_tcp_and_is_harmless_elsewhere() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        stream.set_nodelay(true).unwrap();
        stream.set_nodelay(false).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write("ping\n").await.unwrap();
        let mut line = [0u8; 5];
        peer.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"ping\n");

        let (a, _b) = unix_pair();
        a.set_nodelay(true).unwrap();
        stream.close();
        stream.set_nodelay(true).unwrap();
    });
}

#[test]
fn a_unix_pair_carries_bytes_both_ways() {
    run(async {
        let (a, b) = unix_pair();
        a.write("ping\n");
        assert_eq!(b.read_until(b"\n", 64).await.unwrap(), b"ping\n");
        b.write("pong\n");
        assert_eq!(a.read_until(b"\n", 64).await.unwrap(), b"pong\n");
        drop(b);
        let e = a.read_until_close().await;
        assert_eq!(e.unwrap(), b"");
    });
}

#[test]
fn read_parsed_parses_from_the_buffer_and_drops_what_it_consumed() {
    let io_loop = IoLoop::new();
    let out = io_loop
        .run_sync_timeout(
            async {
                let (a, b) = mio::net::UnixStream::pair().unwrap();
                let (a, b) = (IoStream::new(a).unwrap(), IoStream::new(b).unwrap());
                // A length-prefixed frame, trickled in two writes.
                a.write(b"\x05hel".as_slice());
                let reader = b.clone();
                let parse = |buf: &[u8]| -> Result<Option<(Vec<u8>, usize)>, StreamError> {
                    match buf.first() {
                        Some(&n) if buf.len() > n as usize => {
                            Ok(Some((buf[1..=n as usize].to_vec(), n as usize + 1)))
                        }
                        _ => Ok(None),
                    }
                };
                let frame = whirl_ioloop::spawn(async move { reader.read_parsed(parse).await });
                whirl_ioloop::sleep(Duration::from_millis(20)).await;
                a.write(b"loEXTRA".as_slice());
                let frame = frame.await.unwrap().unwrap();
                let rest = b.read_bytes(5, false).await.unwrap();
                // A parser error comes back as is and the stream stays open.
                let err = b
                    .read_parsed(|_| -> Result<Option<((), usize)>, io::Error> {
                        Err(io::Error::other("nope"))
                    })
                    .await
                    .unwrap_err();
                (frame, rest, err.to_string(), b.closed())
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(
        out,
        (
            b"hello".to_vec(),
            b"EXTRA".to_vec(),
            "nope".to_string(),
            false
        )
    );
}

#[test]
fn writes_queued_when_the_peer_half_closes_still_reach_it() {
    let io_loop = IoLoop::new();
    let got = io_loop
        .run_sync_timeout(
            async {
                let (server, client) = std_tcp_pair();
                let server = into_stream(server, StreamOptions::default());
                let mut client = client;
                client.write_all(b"question\n").unwrap();
                client.shutdown(std::net::Shutdown::Write).unwrap();
                let line = server.read_until(b"\n", 64).await.unwrap();
                // Answer, then read again at once: the read sees EOF while
                // the answer is still queued.
                server.write([b"answer to ".as_slice(), &line].concat());
                let eof = server.read_bytes(1, false).await;
                assert!(eof.is_err());
                let reader = thread::spawn(move || {
                    let mut buf = Vec::new();
                    client.read_to_end(&mut buf).unwrap();
                    buf
                });
                join(reader).await
            },
            Duration::from_secs(20),
        )
        .expect("timed out");
    assert_eq!(got, b"answer to question\n");
}

// ----- regressions: replace_transport ----------------------------------------------------------

#[test]
fn replace_transport_may_use_the_stream_inside_wrap() {
    // Regression: wrap ran while the stream's state was mutably borrowed, so
    // touching the stream from it panicked (BorrowMutError).
    run(async {
        let (a, b) = unix_pair();
        let inside = b.clone();
        b.replace_transport(|transport| {
            assert!(!inside.closed());
            assert_eq!(inside.buffered(), 0);
            transport
        })
        .unwrap();
        a.write("still works\n");
        assert_eq!(b.read_until(b"\n", 64).await.unwrap(), b"still works\n");
    });
}

#[test]
fn a_panicking_replace_transport_wrap_closes_the_stream_instead_of_hanging() {
    // Regression: a panicking wrap left the stream open with no transport;
    // reads then saw "closed" without a close and could spin.
    run(async {
        let (_a, b) = unix_pair();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            b.replace_transport(|_| panic!("wrap failed (on purpose)"))
        }));
        assert!(outcome.is_err());
        assert!(b.closed());
        let e = b.read_bytes(1, false).await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Local), "{e:?}");
        let e = b.write("x").await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Local), "{e:?}");
    });
}

#[test]
fn replace_transport_on_a_busy_stream_is_not_idle_rather_than_already_reading() {
    // Regression: unread bytes or unsent writes were reported as
    // AlreadyReading.
    run(async {
        let (a, b) = unix_pair();
        a.write("one\ntwo\n").await.unwrap();
        b.read_until(b"\n", 64).await.unwrap(); // "two\n" stays buffered
        let e = b.replace_transport(|t| t).unwrap_err();
        assert!(matches!(e, StreamError::NotIdle), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the stream is not idle: a read is pending, or unread bytes or unsent writes remain"
        );
        // Unsent writes: nobody reads `b`, so 16 MiB stay queued on `a`.
        a.write(vec![0u8; 16 << 20]);
        settle().await;
        assert!(a.writing());
        let e = a.replace_transport(|t| t).unwrap_err();
        assert!(matches!(e, StreamError::NotIdle), "{e:?}");
        assert!(!a.closed() && !b.closed(), "refusing closes nothing");
    });
}

// ----- regressions: writes outliving their handles ---------------------------------------------

#[test]
fn an_unawaited_write_is_not_lost_when_the_last_handle_is_dropped() {
    // Regression: the flush was scheduled through a weak reference, so a
    // handler that wrote without awaiting and returned dropped the bytes; the
    // client saw a clean end of file and nothing else.
    run(async {
        let server = TcpServer::new(|stream: IoStream, _| async move {
            stream.write("hello");
        });
        let addr = server.listen(0, Some("127.0.0.1")).unwrap()[0];
        let client = IoStream::connect(addr).await.unwrap();
        assert_eq!(client.read_until_close().await.unwrap(), b"hello");
        server.stop();
    });
}

#[test]
fn a_large_unawaited_write_is_sent_whole_after_the_last_handle_is_dropped() {
    let io_loop = IoLoop::new();
    run_on(&io_loop, async {
        let baseline = handler_count(&IoLoop::current());
        let (ours, peer) = std_tcp_pair();
        small_socket_buffers(&ours, &peer);
        let stream = into_stream(ours, StreamOptions::default());
        let mut data = vec![0u8; 8 << 20];
        support::Pattern::new(3).fill(&mut data);
        stream.write(data.clone());
        settle().await;
        assert!(stream.writing(), "8 MiB do not fit in the kernel buffers");
        drop(stream);
        let got = join(read_to_end(peer)).await.unwrap();
        assert!(got == data, "got {} bytes, sent {}", got.len(), data.len());
        // Sent, then closed (the peer saw end of file) and unregistered.
        wait_until(|| handler_count(&IoLoop::current()) == baseline).await;
    });
}

// ----- regressions: waking outside the borrow --------------------------------------------------

thread_local! {
    /// What a `CallOnWake` waker runs, synchronously, when woken.
    static ON_WAKE: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// A waker that runs `ON_WAKE` inside `wake()`, as a waker may: it catches
/// wakes made while the stream's state is still borrowed.
struct CallOnWake;

impl Wake for CallOnWake {
    fn wake(self: Arc<Self>) {
        ON_WAKE.with(|f| {
            if let Some(f) = &*f.borrow() {
                f();
            }
        });
    }
}

#[test]
fn a_read_that_sees_the_close_wakes_writers_after_releasing_the_stream() {
    // Regression: a read that found end of file woke the stream's other
    // waiters while still holding its state borrowed; a waker that touched
    // the stream panicked.
    run(async {
        let (ours, peer) = std_tcp_pair();
        small_socket_buffers(&ours, &peer);
        let stream = into_stream(ours, StreamOptions::default());
        let mut write = pin!(stream.write(vec![1u8; 16 << 20]));
        settle().await;
        let waker = Waker::from(Arc::new(CallOnWake));
        assert!(write
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let seen = Rc::new(Cell::new(None));
        let (saw, inside) = (seen.clone(), stream.clone());
        ON_WAKE.with(|f| *f.borrow_mut() = Some(Box::new(move || saw.set(Some(inside.closed())))));
        shutdown_write(&peer);
        let e = stream.read_bytes(1, false).await.unwrap_err();
        assert!(matches!(closed_reason(&e), CloseReason::Eof), "{e:?}");
        ON_WAKE.with(|f| f.borrow_mut().take());
        assert_eq!(seen.get(), Some(true), "the writer was woken, unborrowed");
        drop(peer);
    });
}

// ----- regressions: a dead idle connection --------------------------------------------------

#[test]
fn an_idle_stream_notices_a_peer_reset() {
    // Regression: with no read pending, readiness only set flags, so a reset
    // went unnoticed and the close callback of an idle connection never ran.
    run(async {
        let (stream, peer) = tcp_pair();
        let (runs, _) = counting_close_callback(&stream);
        settle().await;
        reset(peer);
        wait_until(|| runs.get() > 0).await;
        assert!(stream.closed());
        assert!(
            is_io(
                stream.error().unwrap().reason(),
                io::ErrorKind::ConnectionReset
            ),
            "{:?}",
            stream.error()
        );
    });
}

#[test]
fn an_idle_stream_stays_open_when_the_peer_only_half_closes() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        let (runs, _) = counting_close_callback(&stream);
        peer.write_all(b"question\n").unwrap();
        shutdown_write(&peer);
        settle().await;
        assert!(!stream.closed(), "a half-closed client still waits");
        assert_eq!(runs.get(), 0);
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"question\n");
        stream.write("answer\n").await.unwrap();
        let mut line = [0u8; 7];
        peer.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"answer\n");
    });
}

#[test]
fn an_idle_stream_told_to_close_does_when_the_peer_half_closes() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        stream.set_close_on_peer_shutdown(true);
        let (runs, _) = counting_close_callback(&stream);
        peer.write_all(b"question\n").unwrap();
        shutdown_write(&peer);
        wait_until(|| runs.get() > 0).await;
        assert!(stream.closed(), "Tornado's behaviour: the peer has left");
        // What it sent before leaving is still readable.
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"question\n");
    });
}

#[cfg(unix)]
#[test]
fn an_idle_pipe_write_end_closes_as_a_broken_pipe_when_its_reader_goes() {
    // The dead-socket check reads to notice the end; a pipe's write end
    // cannot read, and must not close with "cannot read" as its reason.
    run(async {
        let (sender, receiver) = mio::unix::pipe::new().unwrap();
        let stream = IoStream::new(sender).unwrap();
        let (runs, _) = counting_close_callback(&stream);
        drop(receiver);
        wait_until(|| runs.get() > 0).await;
        assert!(
            is_io(stream.error().unwrap().reason(), io::ErrorKind::BrokenPipe),
            "{:?}",
            stream.error()
        );
    });
}

// ----- regressions: read_into ------------------------------------------------------------------

#[test]
fn a_dropped_read_into_loses_no_data() {
    // Regression: each poll moved the buffered bytes into the caller's
    // buffer, so a read_into dropped before completing took them along.
    run(async {
        let (writer, reader) = unix_pair();
        writer.write("abc");
        let mut buf = [0u8; 8];
        {
            let mut read = pin!(reader.read_into(&mut buf, false));
            settle().await;
            assert!(poll_once(read.as_mut()).await.is_pending());
        }
        assert!(!reader.reading());
        assert_eq!(reader.buffered(), 3, "the dropped read took nothing");
        assert_eq!(reader.read_bytes(3, false).await.unwrap(), b"abc");
    });
}

#[test]
fn read_into_a_buffer_larger_than_max_buffer_size_still_fills_it() {
    run(async {
        let (writer, reader) = unix_pair_with(StreamOptions::default().max_buffer_size(16));
        let mut data = vec![0u8; 1000];
        support::Pattern::new(5).fill(&mut data);
        writer.write(data.clone());
        let mut buf = vec![0u8; 1000];
        assert_eq!(reader.read_into(&mut buf, false).await.unwrap(), 1000);
        assert!(buf == data);
        assert!(!reader.closed());
    });
}

// ----- regressions: close callbacks and weak handles -------------------------------------------

#[test]
fn a_close_callback_holding_its_own_stream_is_released_when_the_stream_closes() {
    run(async {
        let (stream, _peer) = tcp_pair();
        let weak = stream.downgrade();
        let inside = stream.clone();
        let saw_closed = Rc::new(Cell::new(None));
        let seen = saw_closed.clone();
        stream.set_close_callback(move || seen.set(Some(inside.closed())));
        drop(stream);
        // Documented: the callback's clone keeps the stream until it closes.
        let stream = weak.upgrade().expect("held by its close callback");
        stream.close();
        drop(stream);
        wait_until(|| saw_closed.get().is_some()).await;
        assert_eq!(saw_closed.get(), Some(true));
        assert!(weak.upgrade().is_none(), "the ran callback was dropped");
    });
}

#[test]
fn a_close_callback_holding_a_weak_handle_does_not_keep_the_socket_open() {
    let io_loop = IoLoop::new();
    run_on(&io_loop, async {
        let baseline = handler_count(&IoLoop::current());
        let (stream, mut peer) = tcp_pair();
        let weak = stream.downgrade();
        let inside = weak.clone();
        stream.set_close_callback(move || drop(inside.upgrade()));
        drop(stream);
        assert!(weak.upgrade().is_none());
        assert_eq!(handler_count(&IoLoop::current()), baseline);
        let mut byte = [0u8; 1];
        assert_eq!(
            peer.read(&mut byte).unwrap(),
            0,
            "the peer sees end of file"
        );
    });
}

#[test]
fn a_stream_kept_alive_by_unsent_writes_is_freed_when_its_loop_closes() {
    let io_loop = IoLoop::new();
    let (ours, peer) = std_tcp_pair();
    small_socket_buffers(&ours, &peer);
    let weak = run_on(&io_loop, async {
        let stream = into_stream(ours, StreamOptions::default());
        stream.write(vec![0u8; 8 << 20]);
        settle().await;
        assert!(stream.writing());
        stream.downgrade()
    });
    assert!(weak.upgrade().is_some(), "unsent writes keep the stream");
    io_loop.close();
    assert!(weak.upgrade().is_none(), "closing the loop lets it go");
    drop(peer);
}

#[test]
fn a_written_buffer_is_spare_for_the_next_head() {
    run(async {
        let (writer, reader) = unix_pair();
        let mut head = spare_write_buffer(200);
        head.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let storage = head.as_ptr();
        writer.write(head).await.unwrap();
        assert_eq!(
            reader.read_bytes(19, false).await.unwrap(),
            b"HTTP/1.1 200 OK\r\n\r\n"
        );
        let next = spare_write_buffer(100);
        assert!(next.is_empty());
        assert_eq!(next.as_ptr(), storage, "the sent buffer was given back");
    });
}

#[test]
fn a_buffer_appended_to_another_leaves_its_storage_spare() {
    let mut head = b"head ".to_vec();
    let mut body = spare_write_buffer(100);
    body.extend_from_slice(b"owned");
    let storage = body.as_ptr();
    WriteBuf::from(body).append_to(&mut head);
    WriteBuf::from(" static").append_to(&mut head);
    assert_eq!(head, b"head owned static");
    let next = spare_write_buffer(10);
    assert!(next.is_empty());
    assert_eq!(next.as_ptr(), storage, "the appended buffer was given back");
}

#[test]
fn small_writes_after_an_owned_buffer_arrive_whole_and_in_order() {
    run(async {
        let (writer, reader) = unix_pair();
        let mut expected = Vec::new();
        for i in 0..200u32 {
            // Owned, static and large pieces, mixed: small ones are copied
            // onto the owned buffer before them, large ones queued as they are.
            let owned = format!("head {i}\n").into_bytes();
            expected.extend_from_slice(&owned);
            writer.write(owned);
            writer.write(&b"static body\n"[..]);
            expected.extend_from_slice(b"static body\n");
            if i % 50 == 0 {
                let large = vec![b'a' + (i % 26) as u8; 5000];
                expected.extend_from_slice(&large);
                writer.write(large);
            }
        }
        writer.write(b"end").await.unwrap();
        expected.extend_from_slice(b"end");
        let got = reader.read_bytes(expected.len(), false).await.unwrap();
        assert_eq!(got, expected);
    });
}
