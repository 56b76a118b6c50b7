//! Property tests of the HTTP/1 codec: what whirl writes, whirl reads back.
//!
//! - Chunked and `Content-Length` bodies framed by [`Encoder`] decode with
//!   [`Decoder`] to the same bytes however the wire is split, stop exactly
//!   at the body's end, and hold to the decoder's limit.
//! - Header fields written by a connection (the client role here, which
//!   writes its header block with the server's code) parse back with
//!   [`parse_request_head`] and [`HttpHeaders::parse`] to the same fields —
//!   Latin-1 values exactly, others as their UTF-8 bytes, never as extra
//!   fields.
//!
//! Case counts are modest so `cargo test` stays fast; set `PROPTEST_CASES`
//! for a longer run.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{select, Index};
use whirl_httpserver::{
    parse_request_head, BodyError, Decoder, Encoder, Framing, HeadLimits, Http1ClientConnection,
    Http1ClientParams, HttpHeaders, RequestStartLine, Version,
};
use whirl_ioloop::IoLoop;
use whirl_iostream::IoStream;

/// `cases` cases, or `PROPTEST_CASES` when set.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig::with_cases(cases)
}

// ----- bodies ---------------------------------------------------------------------

/// A piece of body: random bytes, or bytes that look like chunk framing.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..2048),
        prop::collection::vec(select(b"0123456789abcdefABCDEF;\r\n \t".to_vec()), 0..64),
    ]
}

/// Sorted cut positions in `0..=len` from proptest's indices.
fn cuts(indices: &[Index], len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
    cuts.push(len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The wire bytes of `pieces` framed by an encoder for `framing`.
fn encode(framing: Framing, pieces: &[Vec<u8>]) -> Vec<u8> {
    let mut encoder = Encoder::new(framing);
    let mut wire = Vec::new();
    for piece in pieces {
        let (head, tail) = encoder.frame(piece.len()).expect("within the framing");
        wire.extend_from_slice(head.as_slice());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(tail);
    }
    wire.extend_from_slice(encoder.finish().expect("every byte written"));
    wire
}

/// Decodes `wire` arriving in pieces that end at `cuts`, the way a
/// connection does (unconsumed bytes wait in a buffer for the next read).
/// Returns the body, or the error, and the bytes left after the body.
fn decode(
    framing: Framing,
    max: u64,
    wire: &[u8],
    cuts: &[usize],
) -> (Result<Vec<u8>, BodyError>, Vec<u8>) {
    let mut decoder = Decoder::new(framing, max);
    let mut body = Vec::new();
    let mut pending = Vec::new();
    let mut start = 0;
    for &end in cuts {
        pending.extend_from_slice(&wire[start..end]);
        start = end;
        while !pending.is_empty() && !decoder.is_done() {
            let step = match decoder.decode(&pending) {
                Ok(step) => step,
                Err(e) => return (Err(e), pending),
            };
            assert!(step.consumed > 0 || step.done, "no progress");
            body.extend_from_slice(&pending[step.data]);
            pending.drain(..step.consumed);
        }
    }
    assert!(decoder.is_done(), "the body did not end");
    pending.extend_from_slice(&wire[start..]);
    (Ok(body), pending)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn chunked_bodies_round_trip_in_any_split(
        pieces in prop::collection::vec(piece(), 0..8),
        next in prop::collection::vec(any::<u8>(), 0..16),
        splits in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut wire = encode(Framing::Chunked, &pieces);
        let body_len = wire.len();
        // A pipelined request after the body must be left alone.
        wire.extend_from_slice(&next);
        let (body, rest) = decode(Framing::Chunked, u64::MAX, &wire, &cuts(&splits, body_len));
        prop_assert_eq!(body, Ok(pieces.concat()));
        prop_assert_eq!(rest, next);
    }

    #[test]
    fn chunked_bodies_keep_to_the_limit(
        pieces in prop::collection::vec(piece(), 1..8),
        splits in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let wire = encode(Framing::Chunked, &pieces);
        let len = pieces.concat().len() as u64;
        let at = cuts(&splits, wire.len());
        let (exact, _) = decode(Framing::Chunked, len, &wire, &at);
        prop_assert_eq!(exact, Ok(pieces.concat()));
        if len > 0 {
            let (over, _) = decode(Framing::Chunked, len - 1, &wire, &at);
            prop_assert_eq!(over, Err(BodyError::TooLarge { max: len - 1 }));
        }
    }

    #[test]
    fn content_length_bodies_round_trip_in_any_split(
        pieces in prop::collection::vec(piece(), 0..8),
        next in prop::collection::vec(any::<u8>(), 0..16),
        splits in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let framing = Framing::Length(pieces.concat().len() as u64);
        let mut wire = encode(framing, &pieces);
        prop_assert_eq!(&wire, &pieces.concat());
        let body_len = wire.len();
        wire.extend_from_slice(&next);
        let (body, rest) = decode(framing, u64::MAX, &wire, &cuts(&splits, body_len));
        prop_assert_eq!(body, Ok(pieces.concat()));
        prop_assert_eq!(rest, next);
    }
}

// ----- headers --------------------------------------------------------------------

/// The bytes of a `token` (RFC 9110 §5.6.2).
const TOKEN: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A field name: a token, other than the framing fields (which the
/// connection checks rather than sends as they are).
fn field_name() -> impl Strategy<Value = String> {
    prop::collection::vec(select(TOKEN.to_vec()), 1..24)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect::<String>())
        .prop_filter("a framing field", |name| {
            !["content-length", "transfer-encoding"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f))
        })
}

/// A field value of Latin-1 characters (what HTTP/1.1 carries one byte
/// each): tab, printable ASCII and U+0080–U+00FF.
fn latin1_value() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        Just('\t'),
        (0x20u8..0x7f).prop_map(char::from),
        (0x80u8..=0xff).prop_map(char::from),
    ];
    prop::collection::vec(c, 0..48).prop_map(String::from_iter)
}

/// A field value of any characters a header may hold (no control
/// characters but tab), many past U+00FF.
fn unicode_value() -> impl Strategy<Value = String> {
    let c = any::<char>().prop_filter("a control character", |&c| {
        c == '\t' || (c >= ' ' && c != '\x7f')
    });
    prop::collection::vec(c, 0..24).prop_map(String::from_iter)
}

/// A request target of the characters a client may send unescaped.
fn target() -> impl Strategy<Value = String> {
    let chars = b"abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%".to_vec();
    prop::collection::vec(select(chars), 0..40)
        .prop_map(|bytes| format!("/{}", bytes.into_iter().map(char::from).collect::<String>()))
}

/// What a value reads back as: its bytes on the wire (Latin-1 when every
/// character fits, else UTF-8) read as Latin-1, surrounding spaces and
/// tabs trimmed.
fn read_back(value: &str) -> String {
    let wire: Vec<u8> = if value.chars().all(|c| u32::from(c) <= 0xff) {
        value.chars().map(|c| u32::from(c) as u8).collect()
    } else {
        value.as_bytes().to_vec()
    };
    let text: String = wire.into_iter().map(char::from).collect();
    text.trim_matches([' ', '\t']).to_string()
}

/// The head a client connection writes for `start_line` and `headers`,
/// as the peer receives it.
fn written_head(start_line: &RequestStartLine, headers: &HttpHeaders) -> Vec<u8> {
    thread_local! {
        static LOOP: IoLoop = IoLoop::new();
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("an address");
    LOOP.with(|io_loop| {
        io_loop
            .run_sync_timeout(
                async {
                    let stream = IoStream::connect(addr).await.expect("connect");
                    let connection =
                        Http1ClientConnection::new(stream, Http1ClientParams::default());
                    connection
                        .write_headers(start_line, headers)
                        .expect("valid headers")
                        .await
                        .expect("written");
                    // Keep the connection open until the bytes are read.
                    connection
                },
                Duration::from_secs(30),
            )
            .expect("in time")
    });
    let (mut peer, _) = listener.accept().expect("accept");
    read_head(&mut peer)
}

/// Reads from `peer` up to and including the blank line ending a head.
fn read_head(peer: &mut TcpStream) -> Vec<u8> {
    peer.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    while !head.ends_with(b"\r\n\r\n") {
        let n = peer.read(&mut buf).expect("read");
        assert!(n > 0, "closed after {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    head
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn header_fields_round_trip_through_the_wire(
        method in select(vec!["GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "M-SEARCH"]),
        target in target(),
        fields in prop::collection::vec(
            (field_name(), prop_oneof![3 => latin1_value(), 1 => unicode_value()]),
            0..40,
        ),
        cut_at in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let start_line = RequestStartLine {
            method: method.to_string(),
            target,
            version: Version::Http11,
        };
        let mut headers = HttpHeaders::new();
        for (name, value) in &fields {
            headers.add(name.as_str(), value.as_str());
        }
        let wire = written_head(&start_line, &headers);

        let mut want = HttpHeaders::new();
        for (name, value) in &fields {
            want.add(name.as_str(), read_back(value));
        }
        let (head, consumed) = parse_request_head(&wire, &HeadLimits::default())
            .expect("a valid head")
            .expect("a complete head");
        prop_assert_eq!(consumed, wire.len());
        prop_assert_eq!(&head.start_line, &start_line);
        prop_assert_eq!(&head.headers, &want);

        // The header block alone, through `HttpHeaders::parse`.
        let line_end = wire.windows(2).position(|w| w == b"\r\n").expect("a line") + 2;
        prop_assert_eq!(HttpHeaders::parse(&wire[line_end..]), Ok(want));

        // Any prefix of the head is "need more".
        for cut in cut_at {
            let cut = cut.index(wire.len());
            prop_assert_eq!(parse_request_head(&wire[..cut], &HeadLimits::default()), Ok(None));
        }
    }
}
