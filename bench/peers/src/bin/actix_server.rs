//! actix-web 4 with one worker (`workers(1)`): the harness's routes (see the
//! crate docs), `/static/NAME` by `actix_files::NamedFile`.
//!
//! ```text
//! cargo run --release --manifest-path bench/peers/Cargo.toml --bin actix_server -- --port 8888
//! curl -i http://127.0.0.1:8888/json
//! ```
//!
//! Keep-alive is raised from actix's 5 s to 75 s (whirl's and nginx's) so
//! the idle-connection workload measures parked connections, not closed ones.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use actix_files::NamedFile;
use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use whirl_peers::{static_file, HELLO, MESSAGE, SLEEP};

/// `GET /`.
async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(HELLO)
}

/// `GET /json`.
async fn json() -> HttpResponse {
    match serde_json::to_vec(&MESSAGE) {
        Ok(body) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// `GET /sleep`.
async fn sleep() -> HttpResponse {
    actix_web::rt::time::sleep(SLEEP).await;
    plaintext().await
}

/// `GET /static/NAME`.
async fn file(request: HttpRequest, dir: web::Data<PathBuf>) -> actix_web::Result<NamedFile> {
    let path = static_file(&dir, request.path())
        .ok_or_else(|| actix_web::error::ErrorNotFound("no such file"))?;
    Ok(NamedFile::open_async(path).await?)
}

#[actix_web::main]
async fn main() -> io::Result<()> {
    let args = whirl_peers::init();
    let dir = web::Data::new(args.static_dir.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(dir.clone())
            .route("/", web::get().to(plaintext))
            .route("/json", web::get().to(json))
            .route("/sleep", web::get().to(sleep))
            .route("/static/{name}", web::get().to(file))
    })
    .workers(1)
    .keep_alive(Duration::from_secs(75))
    .bind((args.address.as_str(), args.port))?;
    for address in server.addrs() {
        log::info!("listening on http://{address}");
    }
    server.run().await
}
