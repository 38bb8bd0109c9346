//! What the mobile node keeps across restarts, in `state_dir` (created mode 0700 if missing):
//!
//! - `duid`: the DHCPv6 DUID (RFC 8415 §11), one line of hex (`dhcp6_client::Duid::to_state`).
//!   A DUID-UUID (RFC 6355) from the system RNG on the first start; the same node keeps the
//!   same DUID, so the DHCPv6 server gives it the same lease.
//! - `lease`: the last home address leased by DHCPv6, one line. Asked for again as a hint
//!   (RFC 8415 §18.2.1) on the next start, so a node that released its lease at shutdown gets
//!   the same address back while the server still has it free.
//!
//! A corrupt file is reported with a warning naming it and replaced (the DUID at once, the
//! lease at the next lease). Files are written to a temporary name (mode 0600) and renamed.
//! Errors name the path.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::net::Ipv6Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use dhcp6_client::{Duid, duid_from_state};
use tracing::{info, warn};

/// The file holding the DUID.
const DUID_FILE: &str = "duid";
/// The file holding the last leased address.
const LEASE_FILE: &str = "lease";

/// The state directory.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens `dir`, creating it (and missing parents) with mode 0700.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("state_dir {}: not a directory", dir.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("creating the state directory {}", dir.display()))?;
                info!(dir = %dir.display(), "created the state directory");
            }
            Err(e) => {
                return Err(e).with_context(|| format!("state_dir {}", dir.display()));
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The path of one of the files.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The DUID: read from `duid`, or made from `random` (a first start, or a corrupt file)
    /// and written there.
    pub(crate) fn duid(&self, random: impl FnOnce() -> [u8; 16]) -> anyhow::Result<Duid> {
        let path = self.path(DUID_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match duid_from_state(&bytes) {
                Ok(d) => return Ok(d),
                Err(e) => warn!(
                    file = %path.display(),
                    error = %e,
                    "corrupt DUID file; generating a new DUID (the DHCPv6 server will see a new client)"
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let d = Duid::uuid_from_random(random());
        write_atomic(&path, &d.to_state())?;
        info!(file = %path.display(), duid = %d, "generated a DUID-UUID");
        Ok(d)
    }

    /// The last leased address, if the file holds one.
    pub(crate) fn lease(&self) -> Option<Ipv6Addr> {
        let path = self.path(LEASE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot read the lease file; ignoring it");
                return None;
            }
        };
        match text.trim().parse::<Ipv6Addr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
            _ => {
                warn!(
                    file = %path.display(),
                    "corrupt lease file; ignoring it (it is rewritten at the next lease)"
                );
                None
            }
        }
    }

    /// Remembers the leased address.
    pub(crate) fn save_lease(&self, address: Ipv6Addr) -> anyhow::Result<()> {
        write_atomic(&self.path(LEASE_FILE), format!("{address}\n").as_bytes())
    }
}

/// Writes `data` to a temporary file next to `path` (mode 0600), then renames it.
fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let r = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    r.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A scratch directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let d = std::env::temp_dir().join(format!(
                "mip6-mn-state-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&d).unwrap();
            Self(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_directory_private() {
        let d = Dir::new();
        let sd = d.0.join("var/lib/mip6-mn");
        StateDir::open(&sd).unwrap();
        assert!(sd.is_dir());
        assert_eq!(mode(&sd), 0o700);
        // An existing directory is used as it is.
        StateDir::open(&sd).unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_it() {
        let d = Dir::new();
        let f = d.0.join("notadir");
        std::fs::write(&f, "x").unwrap();
        let e = StateDir::open(&f).unwrap_err();
        assert!(format!("{e:#}").contains(&f.display().to_string()), "{e:#}");
    }

    #[test]
    fn duid_is_generated_once_and_kept() {
        let d = Dir::new();
        let sd = StateDir::open(&d.0).unwrap();
        let first = sd.duid(|| [7; 16]).unwrap();
        assert_eq!(first.duid_type(), dhcp6_client::duid::DUID_UUID);
        assert_eq!(mode(&sd.path(DUID_FILE)), 0o600);
        let again = StateDir::open(&d.0)
            .unwrap()
            .duid(|| panic!("no new DUID while the file is good"))
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(std::fs::read(sd.path(DUID_FILE)).unwrap(), first.to_state());
    }

    #[test]
    fn corrupt_duid_is_replaced() {
        let d = Dir::new();
        let sd = StateDir::open(&d.0).unwrap();
        std::fs::write(sd.path(DUID_FILE), "not hex at all\n").unwrap();
        let new = sd.duid(|| [9; 16]).unwrap();
        assert_eq!(new, Duid::uuid_from_random([9; 16]));
        assert_eq!(
            duid_from_state(&std::fs::read(sd.path(DUID_FILE)).unwrap()).unwrap(),
            new
        );
    }

    #[test]
    fn lease_round_trip_and_corrupt_lease() {
        let d = Dir::new();
        let sd = StateDir::open(&d.0).unwrap();
        assert_eq!(sd.lease(), None);
        let a: Ipv6Addr = "2001:db8:1::1000".parse().unwrap();
        sd.save_lease(a).unwrap();
        assert_eq!(sd.lease(), Some(a));
        assert_eq!(
            std::fs::read_to_string(sd.path(LEASE_FILE)).unwrap(),
            "2001:db8:1::1000\n"
        );
        std::fs::write(sd.path(LEASE_FILE), "2001:db8:1::zz\n").unwrap();
        assert_eq!(sd.lease(), None);
        std::fs::write(sd.path(LEASE_FILE), "ff02::1\n").unwrap();
        assert_eq!(sd.lease(), None);
        sd.save_lease(a).unwrap();
        assert_eq!(sd.lease(), Some(a));
    }

    #[test]
    fn write_errors_name_the_path() {
        let d = Dir::new();
        let sd = StateDir::open(&d.0).unwrap();
        // A directory where the file should be: the rename fails, even for root.
        std::fs::create_dir(sd.path(LEASE_FILE)).unwrap();
        std::fs::write(sd.path(LEASE_FILE).join("x"), "x").unwrap();
        let e = sd.save_lease("2001:db8:1::1".parse().unwrap()).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains(&sd.path(LEASE_FILE).display().to_string()),
            "{text}"
        );
        assert!(
            !sd.path(".lease.tmp").exists(),
            "the temporary file is removed"
        );
    }
}
