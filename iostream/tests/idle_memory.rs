//! Idle streams hold no read buffer: once nothing is unread, a stream that
//! waits for data (or has stopped reading) gives its buffer back to the
//! per-thread pool, and data that arrives later is still read intact.

mod support;

use std::cell::Cell;
use std::fmt::Debug;
use std::future::Future;
use std::io::{Read, Write};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::time::Duration;

use whirl_ioloop::{sleep, IoLoop};
use whirl_iostream::{DormantStream, IoStream, StreamError, StreamOptions};

use support::{
    handler_count, join, poll_once, run, settle, shutdown_write, tcp_pair, tcp_pair_with, trickle,
    unix_pair, wait_until,
};

/// Streams in the many-idle-connections test.
const IDLE_STREAMS: usize = 1_000;

/// Polls `read`, which must stay pending, until `stream` has buffered `n`
/// bytes (a read moves bytes from the socket only while it is polled).
async fn pending_until_buffered<F>(stream: &IoStream, mut read: Pin<&mut F>, n: usize)
where
    F: Future,
    F::Output: Debug,
{
    loop {
        let poll = poll_once(read.as_mut()).await;
        assert!(poll.is_pending(), "the read ended early: {poll:?}");
        if stream.buffered() >= n {
            return;
        }
        sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn a_waiting_read_holds_no_read_buffer() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"first\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"first\n");
        // Not reading, nothing unread (a request being served): no buffer.
        assert_eq!(stream.read_buffer_capacity(), 0);
        // The next read waits for data: still no buffer.
        let mut next = pin!(stream.read_until(b"\n", 64));
        assert!(poll_once(next.as_mut()).await.is_pending());
        assert_eq!(stream.read_buffer_capacity(), 0);
        // Data arriving later is read correctly.
        peer.write_all(b"second\n").unwrap();
        assert_eq!(next.await.unwrap(), b"second\n");
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

#[test]
fn a_read_that_finds_the_socket_empty_gives_its_buffer_back() {
    run(async {
        // A full chunk does not prove the socket drained: the next read tries
        // the socket, takes a buffer for it, and meets `WouldBlock`.
        let (stream, mut peer) = tcp_pair_with(StreamOptions::default().read_chunk_size(3));
        peer.write_all(b"ab\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"ab\n");
        let mut next = pin!(stream.read_until(b"\n", 64));
        assert!(poll_once(next.as_mut()).await.is_pending());
        assert_eq!(stream.read_buffer_capacity(), 0);
        peer.write_all(b"cd\n").unwrap();
        assert_eq!(next.await.unwrap(), b"cd\n");
    });
}

#[test]
fn a_read_that_meets_end_of_file_leaves_no_buffer() {
    run(async {
        let (stream, peer) = tcp_pair();
        drop(peer);
        let e = stream.read_until(b"\n", 64).await.unwrap_err();
        assert!(e.as_closed().is_some(), "{e:?}");
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

#[test]
fn unread_bytes_keep_their_buffer_while_the_read_waits() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"no delimiter yet").unwrap();
        let mut read = pin!(stream.read_until(b"\n", 64));
        pending_until_buffered(&stream, read.as_mut(), 16).await;
        assert_eq!(stream.buffered(), 16);
        assert!(stream.read_buffer_capacity() >= 16);
        peer.write_all(b", now\n").unwrap();
        assert_eq!(read.await.unwrap(), b"no delimiter yet, now\n");
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

#[test]
fn a_thousand_waiting_streams_hold_no_read_buffers() {
    let streams = descriptors_for(2 * IDLE_STREAMS) / 2;
    run(async {
        // Step 1. Every stream reads one message, then waits for the next.
        let mut pairs = Vec::with_capacity(streams);
        for i in 0..streams {
            let (writer, reader) = unix_pair();
            writer.write(format!("hello {i}\n"));
            pairs.push((writer, reader));
        }
        for (i, (_, reader)) in pairs.iter().enumerate() {
            let message = reader.read_until(b"\n", 64).await.unwrap();
            assert_eq!(message, format!("hello {i}\n").as_bytes());
        }
        let mut reads: Vec<_> = pairs
            .iter()
            .map(|(_, reader)| Box::pin(reader.read_until(b"\n", 64)))
            .collect();
        for read in &mut reads {
            assert!(poll_once(read.as_mut()).await.is_pending());
        }
        // Step 2. None of them holds read-buffer memory.
        let held: usize = pairs.iter().map(|(_, r)| r.read_buffer_capacity()).sum();
        assert_eq!(held, 0, "{streams} idle streams hold {held} bytes");
        // Step 3. Data arriving later reaches each of them intact.
        for (i, (writer, _)) in pairs.iter().enumerate() {
            writer.write(format!("later {i}\n"));
        }
        for (i, read) in reads.into_iter().enumerate() {
            assert_eq!(read.await.unwrap(), format!("later {i}\n").as_bytes());
        }
        let held: usize = pairs.iter().map(|(_, r)| r.read_buffer_capacity()).sum();
        assert_eq!(held, 0);
    });
}

#[test]
fn read_until_across_many_small_writes() {
    run(async {
        let (stream, peer) = tcp_pair();
        let mut message = b"GET /".to_vec();
        message.extend(b"a".repeat(100));
        message.extend(b" HTTP/1.1\r\nHost: x\r\n\r\nnext\r\n\r\n");
        let peer = trickle(peer, message.clone(), Duration::from_millis(1));
        let head = stream.read_until(b"\r\n\r\n", 1024).await.unwrap();
        assert_eq!(head, &message[..message.len() - 8]);
        assert_eq!(
            stream.read_until(b"\r\n\r\n", 1024).await.unwrap(),
            b"next\r\n\r\n"
        );
        assert_eq!(stream.read_buffer_capacity(), 0);
        join(peer).await;
    });
}

#[test]
fn many_small_writes_with_the_delimiter_split_between_them() {
    run(async {
        let (stream, mut peer) = tcp_pair_with(StreamOptions::default().read_chunk_size(3));
        peer.set_nodelay(true).unwrap();
        let mut read = pin!(stream.read_until(b"\r\n\r\n", 4096));
        let mut expected = Vec::new();
        for i in 0..200 {
            let piece = format!("{i},");
            expected.extend_from_slice(piece.as_bytes());
            peer.write_all(piece.as_bytes()).unwrap();
            pending_until_buffered(&stream, read.as_mut(), expected.len()).await;
            assert_eq!(stream.buffered(), expected.len());
            assert!(stream.read_buffer_capacity() >= expected.len());
        }
        for piece in [&b"\r"[..], b"\n\r", b"\n"] {
            expected.extend_from_slice(piece);
            peer.write_all(piece).unwrap();
            settle().await;
        }
        assert_eq!(read.await.unwrap(), expected);
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

#[test]
fn a_burst_is_freed_after_it_is_read() {
    run(async {
        let (writer, reader) = unix_pair();
        let burst: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        writer.write(burst.clone());
        assert_eq!(reader.read_bytes(burst.len(), false).await.unwrap(), burst);
        assert_eq!(reader.read_buffer_capacity(), 0);
        writer.write("small\n");
        assert_eq!(reader.read_until(b"\n", 64).await.unwrap(), b"small\n");
    });
}

#[test]
fn a_message_parsed_from_the_buffer_releases_it() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"one\n");
        assert!(stream.read_buffer_capacity() > 0, "two is unread");
        let two = stream.try_read_parsed(|data: &[u8]| {
            Ok::<_, StreamError>(
                data.iter()
                    .position(|&b| b == b'\n')
                    .map(|at| (data[..=at].to_vec(), at + 1)),
            )
        });
        assert_eq!(two.unwrap().unwrap(), b"two\n");
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

#[test]
fn a_closed_stream_releases_its_buffer_once_nothing_is_unread() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"last words").unwrap();
        shutdown_write(&peer);
        let rest = stream.read_until_close().await.unwrap();
        assert_eq!(rest, b"last words");
        assert!(stream.closed());
        assert_eq!(stream.read_buffer_capacity(), 0);

        // One write, one read: "read" stays buffered when the stream closes.
        let (writer, stream) = unix_pair();
        writer.write("unread");
        assert_eq!(stream.read_bytes(2, false).await.unwrap(), b"un");
        stream.close();
        assert_eq!(stream.buffered(), 4);
        assert!(stream.read_buffer_capacity() >= 4);
        assert_eq!(stream.read_bytes(4, false).await.unwrap(), b"read");
        assert_eq!(stream.read_buffer_capacity(), 0);
    });
}

/// How many descriptors of the `wanted` this test can open: raises the soft
/// `RLIMIT_NOFILE` (never lowers it) as far as the hard limit allows.
#[cfg(unix)]
fn descriptors_for(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    const HEADROOM: u64 = 256;
    let limit = getrlimit(Resource::Nofile);
    let need = wanted as u64 + HEADROOM;
    let current = limit.current.unwrap_or(u64::MAX);
    if current < need {
        let raised = limit.maximum.map_or(need, |max| max.min(need));
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        );
    }
    let current = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let usable = usize::try_from(current.saturating_sub(HEADROOM)).unwrap_or(usize::MAX);
    if usable < wanted {
        eprintln!("only {usable} descriptors available; the test opens fewer streams");
    }
    usable.min(wanted)
}

/// How many descriptors of the `wanted` this test can open.
#[cfg(not(unix))]
fn descriptors_for(wanted: usize) -> usize {
    wanted
}

/// Puts `stream` to sleep with a callback counting events into `events`.
fn sleep_counting(stream: IoStream, events: &Rc<Cell<usize>>) -> DormantStream {
    let events = events.clone();
    stream
        .into_dormant(move |_| events.set(events.get() + 1))
        .unwrap_or_else(|_| panic!("a quiet stream may sleep"))
}

#[test]
fn a_dormant_stream_hears_the_peer_and_wakes_to_read_and_write() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        peer.write_all(b"first\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"first\n");
        stream.write(b"answer\n".to_vec()).await.unwrap();
        let closes = Rc::new(Cell::new(0));
        let on_close = closes.clone();
        stream.set_close_callback(move || on_close.set(on_close.get() + 1));
        let handlers = handler_count(&IoLoop::current());

        let events = Rc::new(Cell::new(0));
        let dormant = sleep_counting(stream, &events);
        settle().await;
        assert_eq!(events.get(), 0, "nothing happened yet");
        assert_eq!(
            handler_count(&IoLoop::current()),
            handlers,
            "still registered"
        );
        peer.write_all(b"second\n").unwrap();
        wait_until(|| events.get() > 0).await;

        let stream = dormant.wake().unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"second\n");
        stream.write(b"again\n".to_vec()).await.unwrap();
        let mut got = [0; 13];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"answer\nagain\n");
        settle().await;
        assert_eq!(closes.get(), 0, "sleeping is not closing");
    });
}

#[test]
fn a_stream_with_another_handle_or_unread_bytes_does_not_sleep() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        let other = stream.clone();
        let stream = stream.into_dormant(|_| {}).expect_err("another handle");
        drop(other);
        let weak = stream.downgrade(); // a weak handle does not count

        peer.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"one\n");
        assert_eq!(stream.buffered(), 4);
        let stream = stream.into_dormant(|_| {}).expect_err("unread bytes");
        assert_eq!(stream.read_until(b"\n", 64).await.unwrap(), b"two\n");

        let dormant = stream.into_dormant(|_| {}).expect("quiet now");
        assert!(weak.upgrade().is_none(), "its state is freed");
        drop(dormant);
    });
}

#[test]
fn dropping_a_dormant_stream_closes_the_socket_and_frees_its_handler() {
    run(async {
        let (stream, mut peer) = tcp_pair();
        let handlers = handler_count(&IoLoop::current());
        let events = Rc::new(Cell::new(0));
        let dormant = sleep_counting(stream, &events);
        drop(dormant);
        assert_eq!(handler_count(&IoLoop::current()), handlers - 1);
        let mut rest = Vec::new();
        assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0, "end of file");
    });
}

#[test]
fn a_peer_that_hangs_up_wakes_a_dormant_stream_which_then_reads_end_of_file() {
    run(async {
        let (stream, peer) = tcp_pair();
        let events = Rc::new(Cell::new(0));
        let dormant = sleep_counting(stream, &events);
        drop(peer);
        wait_until(|| events.get() > 0).await;
        let stream = dormant.wake().unwrap();
        let e = stream.read_until(b"\n", 64).await.unwrap_err();
        assert!(matches!(e, StreamError::Closed(_)), "{e:?}");
        assert!(stream.closed());
    });
}
