//! The control socket: how `mip6-ha status` and `mip6-mn status` talk to a running daemon
//! (like `swanctl --list-sas` talks to charon over VICI).
//!
//! A Unix stream socket at the configured path, mode 0600 (only root, or the daemon's user,
//! may ask). The protocol is one line each way: the client sends a command (`status\n`), the
//! daemon answers with one JSON object and a newline, then closes. An unknown command gets
//! `{"error": "..."}`. The server is generic: [`serve_control`] takes the function that
//! answers a command.
//!
//! Binding is careful about what is already at the path: a live daemon there is an error
//! (two daemons must not share a socket), a stale socket left by a crash is replaced, and a
//! file that is not a socket is never touched. The socket is bound inside a private 0700
//! directory, given mode 0600 and then renamed into place, so there is no moment at which
//! another user could connect to it.

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// The longest command line the server reads.
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to send its command.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the client waits for the answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening control socket. Dropping it (or [`ControlServer::close`]) stops serving and
/// removes the socket file, if it is still the one this server created.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    inode: (u64, u64),
    task: JoinHandle<()>,
}

impl ControlServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and removes the socket (what dropping it does, said explicitly).
    pub fn close(self) {
        drop(self);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.inode => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the control socket");
                }
            }
            _ => {}
        }
    }
}

/// Binds the control socket at `path` and serves it on the current tokio runtime: each
/// connection's command line (trimmed) goes to `handler`, whose answer is sent back as JSON.
///
/// Must be called from within a tokio runtime. The handler runs on the runtime's blocking
/// pool (the daemons run on one thread, which must not wait for a large answer); it should
/// only take a snapshot of state.
pub fn serve_control<F>(path: &Path, handler: F) -> anyhow::Result<ControlServer>
where
    F: Fn(&str) -> Value + Send + Sync + 'static,
{
    let std_listener = bind(path)?;
    let m = std::fs::symlink_metadata(path)
        .with_context(|| format!("control socket {}", path.display()))?;
    std_listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(std_listener)
        .with_context(|| format!("control socket {}", path.display()))?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let handler = Arc::clone(&handler);
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &handler).await {
                            tracing::debug!(error = %e, "control connection dropped");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(ControlServer {
        path: path.to_owned(),
        inode: (m.dev(), m.ino()),
        task,
    })
}

async fn answer<F: Fn(&str) -> Value + Send + Sync + 'static>(
    stream: UnixStream,
    handler: &Arc<F>,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read).take(MAX_REQUEST);
    let mut line = String::new();
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no command received"))??;
    let command = line.trim().to_owned();
    tracing::debug!(command, "control request");
    // A large answer takes a while to build: not on the daemon's (single) thread.
    let handler = Arc::clone(handler);
    let mut out = tokio::task::spawn_blocking(move || serde_json::to_vec(&handler(&command)))
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Binds a private socket and moves it to `path` (see the module documentation).
fn bind(path: &Path) -> anyhow::Result<StdUnixListener> {
    let name = path
        .file_name()
        .with_context(|| format!("control socket {}: not a file path", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("control socket: cannot create {}", dir.display()))?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => bail!("control socket {}: {e}", path.display()),
        Ok(m) if !m.file_type().is_socket() => {
            bail!(
                "control socket {}: exists and is not a socket; not replacing it",
                path.display()
            )
        }
        Ok(_) => match StdUnixStream::connect(path) {
            Ok(_) => bail!(
                "control socket {}: another daemon is listening on it",
                path.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing a stale control socket");
            }
            Err(e) => bail!("control socket {}: {e}", path.display()),
        },
    }
    let private = dir.join(format!(
        ".{}.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    if private.exists() {
        std::fs::remove_dir_all(&private).ok();
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("control socket: cannot create {}", private.display()))?;
    let result = (|| {
        let tmp = private.join("sock");
        let listener = StdUnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok::<_, io::Error>(listener)
    })();
    std::fs::remove_dir_all(&private).ok();
    result.with_context(|| format!("control socket {}", path.display()))
}

/// Why a client could not get an answer.
#[derive(Debug)]
pub enum ClientError {
    /// No daemon listens on the socket.
    NoDaemon {
        /// The socket.
        path: PathBuf,
        /// Why we think so.
        reason: String,
    },
    /// Anything else (permissions, time-out, a garbled answer).
    Failed {
        /// The socket.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoDaemon { path, reason } => {
                write!(f, "no daemon is listening on {}: {reason}", path.display())
            }
            Self::Failed { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for ClientError {}

/// Sends `command` to the daemon at `path` and returns its answer.
pub fn request(path: &Path, command: &str) -> Result<Value, ClientError> {
    let failed = |reason: String| ClientError::Failed {
        path: path.to_owned(),
        reason,
    };
    let mut stream = StdUnixStream::connect(path).map_err(|e| {
        let reason = match e.kind() {
            io::ErrorKind::NotFound => "the socket does not exist (is the daemon running?)".into(),
            io::ErrorKind::ConnectionRefused => {
                "connection refused (a stale socket: the daemon is not running)".into()
            }
            io::ErrorKind::PermissionDenied => {
                return failed("permission denied (the control socket is for root)".into());
            }
            _ => return failed(e.to_string()),
        };
        ClientError::NoDaemon {
            path: path.to_owned(),
            reason,
        }
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .and_then(|()| stream.write_all(format!("{command}\n").as_bytes()))
        .map_err(|e| failed(format!("cannot send the request: {e}")))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| failed(format!("no answer: {e}")))?;
    serde_json::from_str(answer.trim()).map_err(|e| failed(format!("garbled answer: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("daemon-control-{tag}-{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    #[tokio::test]
    async fn answers_and_cleans_up() {
        let dir = temp_dir("answers");
        let path = dir.join("sub/ctl.sock");
        let server = serve_control(&path, |cmd| match cmd {
            "status" => json!({"state": "starting"}),
            other => json!({"error": format!("unknown command {other:?}")}),
        })
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.join("sub")).unwrap().count(),
            1,
            "the private directory is gone"
        );
        let p = path.clone();
        let v = tokio::task::spawn_blocking(move || request(&p, "status"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, json!({"state": "starting"}));
        let p = path.clone();
        let v = tokio::task::spawn_blocking(move || request(&p, "bogus"))
            .await
            .unwrap()
            .unwrap();
        assert!(v["error"].as_str().unwrap().contains("bogus"));
        // A second daemon on the same socket is refused.
        let e = serve_control(&path, |_| json!({})).unwrap_err();
        assert!(e.to_string().contains("another daemon"), "{e:#}");
        server.close();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn replaces_a_stale_socket_but_not_a_file() {
        let dir = temp_dir("stale");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        drop(StdUnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = serve_control(&path, |_| json!({"ok": true})).unwrap();
        drop(server);
        assert!(!path.exists());
        std::fs::write(&path, "not a socket").unwrap();
        let e = serve_control(&path, |_| json!({})).unwrap_err();
        assert!(e.to_string().contains("not a socket"), "{e:#}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn client_errors() {
        let dir = temp_dir("client");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("none.sock");
        let e = request(&path, "status").unwrap_err();
        assert!(matches!(e, ClientError::NoDaemon { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        drop(StdUnixListener::bind(&path).unwrap());
        let e = request(&path, "status").unwrap_err();
        assert!(e.to_string().contains("connection refused"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
