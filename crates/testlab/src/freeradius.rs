//! FreeRADIUS 3.2 (Debian's `freeradius`) on the home link, as the RADIUS server of the home
//! agent's XAUTH check.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::kea::listening_udp6;
use crate::lab::{HA_HOME, HOME_HOST, Lab, Node};
use crate::proc::{Proc, Spawn};
use crate::util;

/// The FreeRADIUS daemon of Debian's `freeradius` package.
pub const FREERADIUS_BIN: &str = "/usr/sbin/freeradius";

/// The RADIUS authentication port (RFC 2865 §3) FreeRADIUS listens on.
pub const RADIUS_AUTH_PORT: u16 = 1812;

/// One user of the `users` file.
#[derive(Debug, Clone)]
struct User {
    name: String,
    password: String,
    reply_message: Option<String>,
}

/// How to start [`FreeRadius`]. The defaults: one client, the home agent's home-link address
/// `2001:db8:1::1`, with the given secret and `require_message_authenticator = yes`; no users;
/// Debian's `reject_delay = 1` (every Access-Reject held back 1 s); a `Message-Authenticator`
/// added to every Access-Accept and Access-Reject (see
/// [`FreeRadiusOptions::reply_message_authenticator`]).
#[derive(Clone)]
pub struct FreeRadiusOptions {
    name: String,
    secret: String,
    clients: Vec<String>,
    users: Vec<User>,
    reject_delay: u32,
    reject_message: Option<String>,
    require_message_authenticator: bool,
    reply_message_authenticator: bool,
    debug: bool,
    timeout: Duration,
}

impl std::fmt::Debug for FreeRadiusOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreeRadiusOptions")
            .field("name", &self.name)
            .field("clients", &self.clients)
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .field("reject_delay", &self.reject_delay)
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field(
                "reply_message_authenticator",
                &self.reply_message_authenticator,
            )
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl FreeRadiusOptions {
    /// The defaults (instance name `freeradius`) with this shared secret.
    pub fn new(secret: &str) -> Self {
        Self {
            name: "freeradius".to_owned(),
            secret: secret.to_owned(),
            clients: vec![HA_HOME.to_string()],
            users: Vec::new(),
            reject_delay: 1,
            reject_message: None,
            require_message_authenticator: true,
            reply_message_authenticator: true,
            debug: false,
            timeout: Duration::from_secs(10),
        }
    }

    /// Instance name: the directory is `<lab dir>/<name>/`, the log `<lab dir>/<name>.log`.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Replaces the client list: IPv6 addresses or prefixes (`2001:db8:1::/64`) allowed to ask,
    /// all with the shared secret.
    #[must_use]
    pub fn clients<I, S>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clients = clients.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a user with a `Cleartext-Password`, so that both PAP and CHAP can be checked.
    #[must_use]
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push(User {
            name: name.to_owned(),
            password: password.to_owned(),
            reply_message: None,
        });
        self
    }

    /// Adds a user whose Access-Accept carries this Reply-Message (FreeRADIUS expands
    /// `%{User-Name}` and the like in it).
    #[must_use]
    pub fn user_with_reply(mut self, name: &str, password: &str, reply_message: &str) -> Self {
        self.users.push(User {
            name: name.to_owned(),
            password: password.to_owned(),
            reply_message: Some(reply_message.to_owned()),
        });
        self
    }

    /// Seconds every Access-Reject is held back (`security { reject_delay }`, Debian: 1).
    #[must_use]
    pub fn reject_delay(mut self, seconds: u32) -> Self {
        self.reject_delay = seconds;
        self
    }

    /// A Reply-Message for every Access-Reject.
    #[must_use]
    pub fn reject_message(mut self, text: &str) -> Self {
        self.reject_message = Some(text.to_owned());
        self
    }

    /// `require_message_authenticator` of the clients (default on): requests without a valid
    /// Message-Authenticator are dropped.
    #[must_use]
    pub fn require_message_authenticator(mut self, on: bool) -> Self {
        self.require_message_authenticator = on;
        self
    }

    /// Whether Access-Accept and Access-Reject carry a Message-Authenticator (default on).
    /// FreeRADIUS 3.2.1 adds one only when the policy puts it in the reply (this option does,
    /// in `post-auth`); 3.2.5 and later always do. Off gives 3.2.1's stock behaviour.
    #[must_use]
    pub fn reply_message_authenticator(mut self, on: bool) -> Self {
        self.reply_message_authenticator = on;
        self
    }

    /// Runs `freeradius -X` (full debug output in the log) instead of `-f`.
    #[must_use]
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Time limit for start-up (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One request as FreeRADIUS's `detail` module wrote it (every Access-Request it accepted as
/// coming from a client, before authentication): the attributes in order, names and values as
/// FreeRADIUS prints them (strings quoted, octets as `0x…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusRequestRecord {
    /// `(name, value)` pairs.
    pub attributes: Vec<(String, String)>,
}

impl RadiusRequestRecord {
    /// The first value of attribute `name`, quotes removed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// Whether attribute `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.attributes.iter().any(|(n, _)| n == name)
    }
}

/// A running FreeRADIUS in the lab's [`Node::Dhcp`] namespace, listening on UDP 1812 of
/// `2001:db8:1::2`, with a minimal configuration of its own in its instance directory (no EAP,
/// no certificates): modules `pap`, `chap`, `files` (the users) and a `detail` log of every
/// request (so a test can see whether it carried CHAP-Password or User-Password). Runs as root
/// in the foreground; its log (with `Login OK` / `Login incorrect` lines) goes to
/// `<lab dir>/<name>.log`. Stopped (SIGTERM, by PID) on drop.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use testlab::{FreeRadius, FreeRadiusOptions, Lab};
/// let lab = Lab::new("doc-radius")?;
/// let radius = FreeRadius::start(
///     &lab,
///     FreeRadiusOptions::new("radius-secret").user("mnuser", "mnpass"),
/// )?;
/// // … send an Access-Request to [2001:db8:1::2]:1812 from the home agent's namespace …
/// for r in radius.requests()? {
///     println!("{:?} chap={}", r.get("User-Name"), r.has("CHAP-Password"));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FreeRadius {
    dir: PathBuf,
    detail: PathBuf,
    proc: Proc,
}

impl FreeRadius {
    /// Writes the configuration, starts `freeradius -f -d DIR` in the dhcp namespace and waits
    /// until it listens on UDP 1812 of `2001:db8:1::2` and logs that it is ready. Fails with a
    /// clear message if FreeRADIUS is not installed or a string would break the configuration,
    /// or quoting its log if it does not come up.
    pub fn start(lab: &Lab, options: FreeRadiusOptions) -> io::Result<Self> {
        util::check_name("freeradius instance", &options.name)?;
        util::require_executable(Path::new(FREERADIUS_BIN), "freeradius")?;
        check_literal("secret", &options.secret, false)?;
        for u in &options.users {
            check_literal("user name", &u.name, false)?;
            check_literal("password", &u.password, false)?;
            if let Some(m) = &u.reply_message {
                check_literal("reply message", m, true)?;
            }
        }
        if let Some(m) = &options.reject_message {
            check_literal("reject message", m, true)?;
        }
        for c in &options.clients {
            if c.is_empty()
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_hexdigit() || matches!(ch, ':' | '/' | '.'))
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("RADIUS client {c:?} is not an IPv6 address or prefix"),
                ));
            }
        }
        let dir = lab.dir().join(&options.name);
        let logdir = dir.join("log");
        let run = dir.join("run");
        fs::create_dir_all(&logdir)?;
        fs::create_dir_all(&run)?;
        let detail = logdir.join("detail");
        fs::write(dir.join("radiusd.conf"), radiusd_conf(&options, &dir))?;
        fs::write(dir.join("users"), users_file(&options))?;
        // The server reads raddb/dictionary after the main one; nothing to add.
        fs::write(
            dir.join("dictionary"),
            "# Written by testlab: no local attributes.\n",
        )?;

        let mut spawn = Spawn::new(FREERADIUS_BIN).log_name(options.name.clone());
        spawn = if options.debug {
            spawn.arg("-X")
        } else {
            spawn.arg("-f")
        };
        let mut proc = lab.spawn(Node::Dhcp, spawn.arg("-d").arg(&dir))?;
        let pid = proc.pid();
        let ready = util::poll(options.timeout, Duration::from_millis(10), || {
            if let Ok(Some(st)) = proc.try_status() {
                return Some(Err(proc.error(&format!("exited ({st}) during start-up"))));
            }
            (listening_udp6(pid, HOME_HOST, RADIUS_AUTH_PORT)
                && proc.log().contains("Ready to process requests"))
            .then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            Err(proc.error(&format!(
                "is not ready on [{HOME_HOST}]:{RADIUS_AUTH_PORT} after {:?}",
                options.timeout
            )))
        })?;
        Ok(Self { dir, detail, proc })
    }

    /// FreeRADIUS's PID.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The instance (configuration) directory: `radiusd.conf`, `users`, `log/`, `run/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the `detail` file of received requests.
    pub fn detail_path(&self) -> &Path {
        &self.detail
    }

    /// FreeRADIUS's log (stdout): start-up, `Auth: … Login OK` / `Login incorrect` lines, and
    /// everything with [`FreeRadiusOptions::debug`].
    pub fn log(&self) -> String {
        self.proc.log()
    }

    /// The `detail` file as written so far.
    pub fn detail(&self) -> String {
        util::read_lossy(&self.detail)
    }

    /// The requests logged so far, oldest first.
    pub fn requests(&self) -> io::Result<Vec<RadiusRequestRecord>> {
        Ok(parse_detail(&self.detail()))
    }

    /// Stops FreeRADIUS (SIGTERM by PID, SIGKILL after 3 s) and returns its exit status.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        self.proc.stop()
    }
}

/// Refuses what would need quoting in the configuration: quotes, backslashes, control
/// characters, and (unless `xlat`) `%`, which FreeRADIUS would expand.
fn check_literal(what: &str, s: &str, xlat: bool) -> io::Result<()> {
    let bad = s.is_empty()
        || s.chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '`') || (!xlat && c == '%'));
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("FreeRADIUS {what} must be non-empty, without quotes, backslashes or controls"),
        ));
    }
    Ok(())
}

fn radiusd_conf(o: &FreeRadiusOptions, dir: &Path) -> String {
    let dir = dir.display();
    let mut clients = String::new();
    for (i, c) in o.clients.iter().enumerate() {
        let _ = write!(
            clients,
            "client lab-{i} {{\n\tipv6addr = {c}\n\tsecret = \"{secret}\"\n\
             \trequire_message_authenticator = {req}\n\tshortname = lab-{i}\n}}\n",
            secret = o.secret,
            req = if o.require_message_authenticator {
                "yes"
            } else {
                "no"
            },
        );
    }
    let ma = if o.reply_message_authenticator {
        "\t\t\tMessage-Authenticator := 0x00\n"
    } else {
        ""
    };
    let reject_message = o
        .reject_message
        .as_ref()
        .map(|m| format!("\t\t\t\tReply-Message := \"{m}\"\n"))
        .unwrap_or_default();
    let accept_update = if ma.is_empty() {
        String::new()
    } else {
        format!("\t\tupdate reply {{\n{ma}\t\t}}\n")
    };
    let reject_update = if ma.is_empty() && reject_message.is_empty() {
        String::new()
    } else {
        format!("\t\t\tupdate reply {{\n{reject_message}\t{ma}\t\t\t}}\n")
    };
    format!(
        r#"# Written by testlab: a minimal FreeRADIUS 3.2 (PAP, CHAP, users file, detail log).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
libdir = /usr/lib/freeradius
raddbdir = {dir}
confdir = {dir}
modconfdir = {dir}
logdir = {dir}/log
radacctdir = {dir}/log
run_dir = {dir}/run
db_dir = {dir}
pidfile = {dir}/run/radiusd.pid
name = radiusd
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
proxy_requests = no
log {{
	destination = stdout
	colourise = no
	stripped_names = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = {reject_delay}
	status_server = no
}}
{clients}thread pool {{
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}}
modules {{
	pap {{
		normalise = yes
	}}
	chap {{
	}}
	files {{
		filename = {dir}/users
	}}
	detail request_log {{
		filename = {dir}/log/detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}}
}}
instantiate {{
}}
server default {{
	listen {{
		type = auth
		ipv6addr = {addr}
		port = {port}
	}}
	authorize {{
		request_log
		chap
		files
		pap
	}}
	authenticate {{
		Auth-Type PAP {{
			pap
		}}
		Auth-Type CHAP {{
			chap
		}}
	}}
	post-auth {{
{accept_update}		Post-Auth-Type REJECT {{
{reject_update}		}}
	}}
}}
"#,
        reject_delay = o.reject_delay,
        addr = HOME_HOST,
        port = RADIUS_AUTH_PORT,
    )
}

fn users_file(o: &FreeRadiusOptions) -> String {
    let mut s = String::from("# Written by testlab.\n");
    for u in &o.users {
        let _ = write!(s, "{}\tCleartext-Password := \"{}\"", u.name, u.password);
        match &u.reply_message {
            Some(m) => {
                let _ = writeln!(s, "\n\tReply-Message := \"{m}\"");
            }
            None => s.push('\n'),
        }
    }
    s
}

/// Parses a `detail` file: records separated by blank lines, each a header line (the time)
/// followed by tab-indented `Name = value` lines.
fn parse_detail(text: &str) -> Vec<RadiusRequestRecord> {
    let mut out = Vec::new();
    let mut current: Option<RadiusRequestRecord> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if let Some(r) = current.take() {
                out.push(r);
            }
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            // A header line starts a new record.
            if let Some(r) = current.replace(RadiusRequestRecord {
                attributes: Vec::new(),
            }) {
                out.push(r);
            }
            continue;
        }
        if let Some((name, value)) = line.trim().split_once(" = ") {
            current
                .get_or_insert_with(|| RadiusRequestRecord {
                    attributes: Vec::new(),
                })
                .attributes
                .push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_records() {
        let text = "Fri Nov 27 06:44:16 2026\n\tPacket-Type = Access-Request\n\
\tUser-Name = \"mnuser\"\n\tCHAP-Password = 0xe729\n\tTimestamp = 1795761856\n\n\
Fri Nov 27 06:44:17 2026\n\tUser-Name = \"other\"\n\tUser-Password = \"pw\"\n";
        let r = parse_detail(text);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].get("User-Name"), Some("mnuser"));
        assert!(r[0].has("CHAP-Password"));
        assert!(!r[0].has("User-Password"));
        assert_eq!(r[1].get("User-Password"), Some("pw"));
    }

    #[test]
    fn config_quotes_are_refused() {
        assert!(check_literal("secret", "a\"b", false).is_err());
        assert!(check_literal("secret", "a%{x}", false).is_err());
        assert!(check_literal("reply", "hi %{User-Name}", true).is_ok());
        assert!(check_literal("secret", "", false).is_err());
    }

    #[test]
    fn config_has_clients_users_and_reply_message_authenticator() {
        let o = FreeRadiusOptions::new("s3cret")
            .clients(["2001:db8:1::/64"])
            .user_with_reply("mn", "pw", "hello")
            .reject_message("no");
        let conf = radiusd_conf(&o, Path::new("/tmp/x"));
        assert!(conf.contains("ipv6addr = 2001:db8:1::/64"), "{conf}");
        assert!(conf.contains("require_message_authenticator = yes"));
        assert_eq!(conf.matches("Message-Authenticator := 0x00").count(), 2);
        assert!(conf.contains("Reply-Message := \"no\""));
        let users = users_file(&o);
        assert!(users.contains("mn\tCleartext-Password := \"pw\"\n\tReply-Message := \"hello\""));
        let stock = radiusd_conf(
            &FreeRadiusOptions::new("s").reply_message_authenticator(false),
            Path::new("/tmp/x"),
        );
        assert!(!stock.contains("Message-Authenticator :="));
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
