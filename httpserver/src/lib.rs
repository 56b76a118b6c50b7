//! whirl's HTTP/1.1 layer (work in progress: the pure codec).
mod body;
mod head;
mod headers;
mod start_line;

pub use body::{
    BodyError, ChunkHead, Decoded, Decoder, Encoder, Framing, MAX_CHUNK_EXTENSION, MAX_TRAILERS,
    MAX_TRAILER_SIZE,
};
pub use head::{
    parse_request_head, parse_response_head, HeadLimits, ParseError, RequestHead, ResponseHead,
};
pub use headers::{is_valid_header_name, is_valid_header_value, HeaderError, HttpHeaders};
pub use start_line::{reason_phrase, RequestStartLine, ResponseStartLine, Version};
