//! The server-side patterns of the seed: the same slow task (`--task`, a
//! shell command) run five ways, from blocking the whole server to awaiting
//! a thread pool under a deadline.

use std::io;
use std::process::{Command, ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use whirl::ioloop::{spawn, with_timeout, IoLoop};
use whirl::iostream::Subprocess;
use whirl::web::{Context, HandlerResult, HttpError, RequestHandler};

use super::Shared;

/// How long `/future_response` waits for the pool unless `?timeout=` says
/// otherwise (the seed's `with_timeout(timedelta(10), …)`).
pub const DEFAULT_FUTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished task left.
#[derive(Debug)]
pub struct TaskOutput {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, then its stderr.
    pub output: Vec<u8>,
}

impl TaskOutput {
    /// The answer of `/async_task` and `/future_response`.
    fn to_json(&self, task: &str) -> serde_json::Value {
        json!({
            "task": task,
            "exit_code": self.status.code(),
            "success": self.status.success(),
            "output": String::from_utf8_lossy(&self.output),
        })
    }
}

/// The task as a `sh -c` command line.
fn shell(task: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(task).stdin(Stdio::null());
    command
}

/// Runs `task` to the end on this thread — blocking it. Right on a pool
/// thread; on the loop thread, the seed's mistake (`os.system`).
pub fn run_blocking(task: &str) -> io::Result<TaskOutput> {
    let out = shell(task).output()?;
    let mut output = out.stdout;
    output.extend_from_slice(&out.stderr);
    Ok(TaskOutput {
        status: out.status,
        output,
    })
}

/// Runs `task` as an asynchronous [`Subprocess`]: the loop serves others
/// while it runs. Its stderr joins its stdout (`exec 2>&1`), so one pipe is
/// read to the end.
pub async fn run_async(task: &str) -> io::Result<TaskOutput> {
    let mut command = shell(&format!("exec 2>&1\n{task}"));
    command.stdout(Stdio::piped());
    let child = Subprocess::spawn(command)?;
    let output = match child.stdout() {
        Some(stdout) => stdout
            .read_until_close()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?,
        None => Vec::new(),
    };
    let status = child.wait_for_exit().await?;
    Ok(TaskOutput { status, output })
}

/// `GET /sync`: runs the task blocking the loop, then answers. Every other
/// request — on every connection — waits meanwhile; the blocking detector
/// logs it. Tornado: the seed's `SyncHandler` (`os.system("ping …")`).
pub struct SyncHandler(pub Rc<Shared>);

impl RequestHandler for SyncHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let output = run_blocking(&self.0.config.task)?;
        log::info!("/sync: the task exited with {}", output.status);
        cx.write("It works");
        Ok(())
    }
}

/// `GET /async`: schedules the task with `call_later` and answers at once.
/// Tornado: the seed's `AsyncHandler` (`add_timeout(1, callback=ping)`).
///
/// The seed's callback ran `os.system`, so it still blocked the loop — only
/// later. Here the scheduled callback starts the task as a [`Subprocess`],
/// so nothing blocks, before or after the answer.
pub struct AsyncHandler(pub Rc<Shared>);

impl RequestHandler for AsyncHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let task = self.0.config.task.clone();
        IoLoop::current().call_later(Duration::ZERO, move || {
            drop(spawn(async move {
                match run_async(&task).await {
                    Ok(output) => log::info!("/async: the task exited with {}", output.status),
                    Err(e) => log::error!("/async: the task failed: {e}"),
                }
            }));
        });
        cx.write("It works");
        Ok(())
    }
}

/// `GET /async_task`: awaits the task as an asynchronous [`Subprocess`] and
/// answers with its exit status and output; other requests run meanwhile.
/// Tornado: the seed's `AsyncTaskHandler` (`yield gen.Task(self.ping, …)`).
pub struct AsyncTaskHandler(pub Rc<Shared>);

impl RequestHandler for AsyncTaskHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let task = &self.0.config.task;
        let output = run_async(task).await?;
        cx.write(output.to_json(task));
        Ok(())
    }
}

/// `GET /future`: hands the task to the 10-thread pool and answers at once.
/// Tornado: the seed's `FutureHandler` (`@run_on_executor`).
pub struct FutureHandler(pub Rc<Shared>);

impl RequestHandler for FutureHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let task = self.0.config.task.clone();
        let job = self.0.pool.submit(move || run_blocking(&task));
        // Someone must hold the job's future (dropping it cancels a job not
        // yet started): a task on the loop that logs how it ended.
        drop(spawn(async move {
            match job.await {
                Ok(Ok(output)) => log::info!("/future: the task exited with {}", output.status),
                Ok(Err(e)) => log::error!("/future: the task failed: {e}"),
                Err(e) => log::error!("/future: the pool job failed: {e}"),
            }
        }));
        cx.write("It works");
        Ok(())
    }
}

/// `GET /future_response[?timeout=SECONDS]`: awaits the pool's result under
/// `with_timeout` (10 s by default) and answers with it; 504 when the
/// deadline passes first (the job still runs to its end on its thread).
/// Tornado: the seed's `FutureResponseHandler` (`gen.with_timeout`).
pub struct FutureResponseHandler(pub Rc<Shared>);

impl RequestHandler for FutureResponseHandler {
    const SUPPORTED_METHODS: &'static [&'static str] = &["GET"];

    async fn get(&mut self, cx: &mut Context) -> HandlerResult {
        let timeout = match cx.get_query_argument_or("timeout", "")?.as_str() {
            "" => DEFAULT_FUTURE_TIMEOUT,
            text => parse_timeout(text)?,
        };
        let task = self.0.config.task.clone();
        let job = self.0.pool.submit(move || run_blocking(&task));
        let output = with_timeout(timeout, job)
            .await
            .map_err(|_| HttpError::new(504).log_message(format!("no result after {timeout:?}")))?
            .map_err(|e| HttpError::new(500).log_message(e.to_string()))??;
        cx.write(output.to_json(&self.0.config.task));
        Ok(())
    }
}

/// `?timeout=` as a duration: seconds, 0 to one hour.
fn parse_timeout(text: &str) -> Result<Duration, HttpError> {
    let bad = || HttpError::new(400).log_message(format!("bad timeout {text:?}"));
    let seconds: f64 = text.parse().map_err(|_| bad())?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}
