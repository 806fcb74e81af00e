//! Running a child process with a deadline: the one way the ftshim tools run a program that may
//! hang or talk a lot (`ftshim audit --import`'s child interpreters, the abi-tests' drivers,
//! builds and CLI runs).
//!
//! Both of the child's output pipes are drained on their own threads *while* it runs, so a chatty
//! child never blocks on a full pipe (and is never mistaken for a hung one); it is killed when the
//! deadline passes, and what it printed until then is kept.
//!
//! **Why it lives here.** Both users — the CLI and the abi-tests — already depend on this crate
//! with the `describe` feature, and only tools enable that feature: the shipped libraries
//! (`scripts/build-libs.sh` builds `ftshim-loader` without it) carry none of this code. A crate of
//! its own for one module would add a package and change nothing about what ships.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// After the child has ended (or was killed), how long its pipes are still read when something
/// else — a process it started — holds them open. Output written before the end is read anyway.
const GRACE: Duration = Duration::from_secs(1);

/// The longest pause between two checks whether the child has ended.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// What a child did.
#[derive(Debug)]
pub struct Finished {
    /// How it ended: its exit status, or, when it was killed at the deadline, the kill's.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// It was still running at the deadline and was killed.
    pub timed_out: bool,
    /// From the start to its end (or to the kill).
    pub elapsed: Duration,
}

/// A child whose stdout and stderr are being drained.
pub struct Running {
    child: Child,
    stdout: Drain,
    stderr: Drain,
    start: Instant,
}

impl Running {
    /// Starts `cmd` with stdin from `/dev/null` and stdout and stderr piped and drained.
    pub fn spawn(cmd: &mut Command) -> io::Result<Running> {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let start = Instant::now();
        let stdout = Drain::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Drain::start(child.stderr.take().expect("stderr is piped"));
        Ok(Running { child, stdout, stderr, start })
    }

    /// Waits until the child ends or `limit` has passed since it started; then it is killed
    /// ([`Finished::timed_out`]). An error from waiting kills the child too.
    pub fn wait_within(mut self, limit: Duration) -> io::Result<Finished> {
        let deadline = self.start + limit;
        let mut pause = Duration::from_millis(1);
        let (status, timed_out) = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break (status, false),
                Ok(None) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(e);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                // Fails only if it has just ended by itself; the wait then reports how.
                let _ = self.child.kill();
                break (self.child.wait()?, true);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_PAUSE);
        };
        let elapsed = self.start.elapsed();
        let until = if timed_out { Instant::now() + GRACE } else { deadline.max(Instant::now() + GRACE) };
        Ok(Finished {
            status,
            stdout: self.stdout.finish(until),
            stderr: self.stderr.finish(until),
            timed_out,
            elapsed,
        })
    }
}

/// Runs `cmd` (stdin `/dev/null`, stdout and stderr captured) and kills it if it has not ended
/// within `limit`. `Err` only when it cannot be started or waited for.
pub fn run_within(cmd: &mut Command, limit: Duration) -> io::Result<Finished> {
    Running::spawn(cmd)?.wait_within(limit)
}

/// One pipe read to its end on a thread of its own, into a buffer the caller can take at any
/// time (so output is kept even when the pipe never closes).
struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

impl Drain {
    fn start(mut pipe: impl Read + Send + 'static) -> Drain {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = Arc::clone(&buf);
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        sink.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(&chunk[..n])
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Drain { buf, done }
    }

    /// Waits for the end of the pipe until `until`, then takes what was read.
    fn finish(self, until: Instant) -> Vec<u8> {
        let _ = self.done.recv_timeout(until.saturating_duration_since(Instant::now()));
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn a_child_printing_megabytes_to_both_pipes_is_drained_and_not_timed_out() {
        const MIB2: usize = 2 << 20;
        // Far more than a pipe holds (64 KiB): without draining while waiting, the child would
        // block on its first write and be killed at the deadline as if it had hung.
        let script = format!("head -c {MIB2} /dev/zero; head -c {MIB2} /dev/zero >&2; echo done");
        let run = run_within(&mut sh(&script), Duration::from_secs(60)).unwrap();
        assert!(!run.timed_out, "{run:?}");
        assert!(run.status.success(), "{:?}", run.status);
        assert_eq!(run.stdout.len(), MIB2 + "done\n".len());
        assert!(run.stdout.ends_with(b"done\n"));
        assert_eq!(run.stderr.len(), MIB2);
    }

    #[test]
    fn a_sleeping_child_is_killed_at_the_deadline_and_its_output_kept() {
        let limit = Duration::from_millis(300);
        let run = run_within(&mut sh("echo before; echo err >&2; exec sleep 30"), limit).unwrap();
        assert!(run.timed_out);
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&run.status), Some(libc::SIGKILL));
        assert!(run.elapsed >= limit && run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
        assert_eq!(run.stdout, b"before\n");
        assert_eq!(run.stderr, b"err\n");
    }

    #[test]
    fn a_pipe_held_open_by_a_grandchild_does_not_hold_up_the_result() {
        // `sh` ends at once; the `sleep` it started keeps stdout open for 3 s longer.
        let start = Instant::now();
        let run = run_within(&mut sh("echo quick; sleep 3 & exit 7"), Duration::from_millis(200)).unwrap();
        assert!(!run.timed_out);
        assert_eq!(run.status.code(), Some(7));
        assert_eq!(run.stdout, b"quick\n");
        assert!(start.elapsed() < Duration::from_millis(200) + GRACE + Duration::from_secs(1));
    }

    #[test]
    fn a_program_that_does_not_exist_is_an_error() {
        let err =
            run_within(&mut Command::new("/nonexistent/ftshim-child"), Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
