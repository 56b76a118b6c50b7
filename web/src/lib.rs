//! whirl's web framework (Tornado's `web`, `routing`, `template`, `escape`).
//!
//! Work in progress: the pure building blocks land first.

pub mod cookie;
pub mod escape;
pub mod signing;
pub mod static_files;
pub mod template;
pub mod xsrf;
