//! whirl's asynchronous HTTP/1.1 client (Tornado's `httpclient` and
//! `simple_httpclient`). Work in progress.

pub mod multipart;
