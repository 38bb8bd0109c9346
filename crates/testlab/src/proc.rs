//! Long-running processes inside the lab: the [`Spawn`] description and the [`Proc`] guard.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

use crate::util;

/// Default time between SIGTERM and SIGKILL when a [`Proc`] is stopped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// What to start with [`Lab::spawn`](crate::Lab::spawn): a program, its arguments and
/// environment, and whether it gets a private `/run`.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{Lab, Node, Spawn};
/// let lab = Lab::new("doc-spawn")?;
/// let sleeper = lab.spawn(Node::Ha, Spawn::new("sleep").arg("60").log_name("sleeper"))?;
/// assert!(sleeper.log_path().ends_with("sleeper.log"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Spawn {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) private_run: Option<PathBuf>,
    pub(crate) log_name: Option<String>,
    pub(crate) grace: Duration,
}

impl Spawn {
    /// A program (a path, or a name looked up in `PATH` inside the namespace).
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            private_run: None,
            log_name: None,
            grace: DEFAULT_GRACE,
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable (the rest of the environment is inherited).
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the program in its own mount namespace with `dir` bind-mounted over `/run` (and so
    /// over `/var/run`, a symlink to it). Needed by daemons with fixed paths there, such as
    /// charon's `/var/run/charon.pid`. `dir` must exist.
    #[must_use]
    pub fn private_run(mut self, dir: impl Into<PathBuf>) -> Self {
        self.private_run = Some(dir.into());
        self
    }

    /// Base name of the log file in the lab directory (`<name>.log`; a numeric suffix is added
    /// if taken). Defaults to the program's file name.
    #[must_use]
    pub fn log_name(mut self, name: impl Into<String>) -> Self {
        self.log_name = Some(name.into());
        self
    }

    /// Time between SIGTERM and SIGKILL when the process is stopped (default 3 s).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// A process started in a lab namespace. Dropping it stops it: SIGTERM by PID, then SIGKILL
/// after the grace period, then it is reaped. Its stdout and stderr go to a log file in the lab
/// directory, readable with [`Proc::log`].
#[derive(Debug)]
pub struct Proc {
    child: Child,
    name: String,
    log_path: PathBuf,
    grace: Duration,
    status: Option<ExitStatus>,
}

impl Proc {
    pub(crate) fn new(child: Child, name: String, log_path: PathBuf, grace: Duration) -> Self {
        Self {
            child,
            name,
            log_path,
            grace,
            status: None,
        }
    }

    /// The process ID. The program runs under the same PID as the spawned command (`ip netns
    /// exec`, `unshare` and `sh -c 'exec …'` all exec in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name used for the log file.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the file that receives stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        util::read_lossy(&self.log_path)
    }

    /// The exit status if the process has ended (it is reaped then), `None` while it runs.
    pub fn try_status(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_status(), Ok(None))
    }

    /// Waits until the log contains `needle`. Fails if the process ends first or on timeout,
    /// quoting the end of the log.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> io::Result<()> {
        let found = util::poll(timeout, Duration::from_millis(10), || {
            if self.log().contains(needle) {
                return Some(Ok(()));
            }
            match self.try_status() {
                Ok(None) => None,
                Ok(Some(st)) => Some(Err(
                    self.error(&format!("exited ({st}) before logging {needle:?}"))
                )),
                Err(e) => Some(Err(e)),
            }
        });
        found.unwrap_or_else(|| {
            Err(self.error(&format!("did not log {needle:?} within {timeout:?}")))
        })
    }

    /// Stops the process: SIGTERM, up to the grace period, then SIGKILL; reaps it and returns
    /// its exit status. Stopping an ended process just returns its status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(st) = self.try_status()? {
            return Ok(st);
        }
        // The child is not reaped yet, so its PID cannot have been reused.
        let _ = util::signal(self.pid(), "TERM");
        let exited = util::poll(self.grace, Duration::from_millis(5), || {
            self.child.try_wait().ok().flatten()
        });
        let st = match exited {
            Some(st) => st,
            None => {
                let _ = self.child.kill();
                self.child.wait()?
            }
        };
        self.status = Some(st);
        Ok(st)
    }

    /// Kills the process at once (SIGKILL, no chance to clean up: a crash), reaps it and
    /// returns its exit status.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(st) = self.try_status()? {
            return Ok(st);
        }
        let _ = self.child.kill();
        let st = self.child.wait()?;
        self.status = Some(st);
        Ok(st)
    }

    /// An error about this process that quotes the last lines of its log.
    pub(crate) fn error(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "{} (pid {}) {what}; last lines of {}:\n{}",
            self.name,
            self.pid(),
            self.log_path.display(),
            util::tail(&self.log(), 30)
        ))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
