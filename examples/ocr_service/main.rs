//! A stand-in for a third-party OCR API, the service the seed's upload
//! handler forwards images to: `POST /` takes multipart `api_key`,
//! `api_secret` and an `image` file, answers 401 unless the key and secret
//! match, 400 without an image, else JSON with the image's byte count,
//! SHA-256 and content type (it reads no text: `"text"` is empty). The
//! `async_patterns` example posts to it from `/upload`.
//!
//! ```text
//! cargo run --release --example ocr_service      # port 8890
//! curl -i -F api_key=whirl-demo-key -F api_secret=whirl-demo-secret \
//!      -F image=@photo.jpg http://127.0.0.1:8890/
//! ```
//!
//! `--api-key` and `--api-secret` set the credentials (the defaults are
//! demo values, the same as `async_patterns` sends).

mod app;

use std::io;

use clap::Parser;
use whirl::ioloop::IoLoop;

use app::{Credentials, DEMO_API_KEY, DEMO_API_SECRET};

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8890)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// The API key callers must send.
    #[arg(long, default_value = DEMO_API_KEY)]
    api_key: String,
    /// The API secret callers must send.
    #[arg(long, default_value = DEMO_API_SECRET)]
    api_secret: String,
}

fn main() -> io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    if args.api_key == DEMO_API_KEY && args.api_secret == DEMO_API_SECRET {
        log::warn!("accepting the demo credentials; pass --api-key and --api-secret");
    }
    let io_loop = IoLoop::new();
    let app = app::application(Credentials {
        api_key: args.api_key,
        api_secret: args.api_secret,
    });
    let server = app.listen(args.port, Some(&args.address))?;
    log::info!("listening on http://{}", server.local_addrs()[0]);
    io_loop.start();
    Ok(())
}
