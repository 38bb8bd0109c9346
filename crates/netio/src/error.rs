//! The error type of the set-up paths (netlink, sysctl, socket and TUN creation).
//!
//! Per-packet I/O (`recv`, `send`, batches) returns plain [`std::io::Result`]: those calls sit on
//! the hot path, their errors are transient (`WouldBlock` is handled inside, `ENETUNREACH` and
//! friends are the caller's to count and drop) and building a context string per packet would
//! cost more than the system call. Everything that configures the kernel returns [`Error`], which
//! always names the interface, address or file it was working on.

use std::io;

/// A failed set-up step. Every variant names what it was working on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named interface does not exist (in the network namespace of the calling thread).
    #[error("interface {0:?} not found")]
    NoSuchInterface(String),
    /// A netlink request or a system call failed with an OS error.
    #[error("{op} {target}: {source}")]
    Io {
        /// What was being done, e.g. `"add address"`.
        op: &'static str,
        /// What it was done to, e.g. `"fd00:1::1/64 on tun0 (index 7)"`.
        target: String,
        /// The OS error (netlink NACKs are converted to their errno).
        #[source]
        source: io::Error,
    },
    /// A netlink request failed without an errno (malformed or unexpected answer).
    #[error("netlink {op} {target}: {source}")]
    Netlink {
        /// What was being done.
        op: &'static str,
        /// What it was done to.
        target: String,
        /// The error reported by `rtnetlink`.
        #[source]
        source: rtnetlink::Error,
    },
    /// An argument was rejected before anything was sent to the kernel.
    #[error("{op}: invalid argument: {reason}")]
    InvalidInput {
        /// What was being done.
        op: &'static str,
        /// Why the argument is invalid.
        reason: String,
    },
    /// [`crate::NetConfigGuard::cleanup`] could not remove everything; each inner error names
    /// the item that was left behind.
    #[error("cleanup left {} item(s) behind: {}", .0.len(), join(.0))]
    Cleanup(Vec<Self>),
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn io(op: &'static str, target: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            op,
            target: target.into(),
            source,
        }
    }

    pub(crate) fn netlink(
        op: &'static str,
        target: impl Into<String>,
        source: rtnetlink::Error,
    ) -> Self {
        let target = target.into();
        match source {
            // A NACK carries an errno: report it as the OS error it is.
            rtnetlink::Error::NetlinkError(msg) if msg.code.is_some() => Self::Io {
                op,
                target,
                source: msg.to_io(),
            },
            source => Self::Netlink { op, target, source },
        }
    }

    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            op,
            reason: reason.into(),
        }
    }

    /// The errno behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the error says that the object is already gone (no such device, address,
    /// route or entry). Clean-up treats that as success.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NoSuchInterface(_))
            || matches!(
                self.raw_os_error(),
                Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENXIO)
            )
    }

    /// True when the error says that the object already exists (`EEXIST`).
    pub fn is_already_exists(&self) -> bool {
        self.raw_os_error() == Some(libc::EEXIST)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
