//! Interface, address, route and proxy-neighbour configuration over rtnetlink (RFC 3549;
//! `man 7 rtnetlink`), the same requests `ip link`, `ip -6 addr`, `ip -6 route` and
//! `ip -6 neigh ... proxy` send, without running them.
//!
//! [`Netlink`] is a cheap-to-clone handle to one `NETLINK_ROUTE` socket whose connection task
//! runs on the tokio runtime that created it. The socket belongs to the network namespace of
//! the thread that called [`Netlink::new`], and so does everything it configures.
//!
//! The methods here change the kernel and forget; [`crate::NetConfigGuard`] wraps them and
//! remembers what it added so that a daemon can remove exactly that on shutdown.
//!
//! Only IPv6 is handled.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::{LinkUnspec, RouteMessageBuilder};

use crate::{Error, Result};

/// An interface, by name or by index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// By interface index.
    Index(u32),
    /// By name (resolved with `RTM_GETLINK` on every use).
    Name(String),
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "interface index {i}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

impl From<u32> for Link {
    fn from(i: u32) -> Self {
        Self::Index(i)
    }
}

impl From<&str> for Link {
    fn from(n: &str) -> Self {
        Self::Name(n.to_owned())
    }
}

impl From<String> for Link {
    fn from(n: String) -> Self {
        Self::Name(n)
    }
}

impl From<&String> for Link {
    fn from(n: &String) -> Self {
        Self::Name(n.clone())
    }
}

/// How an address is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressOptions {
    /// Run duplicate address detection (RFC 4862 §5.4). Off by default: the daemons add
    /// addresses they own (on a TUN, DAD only delays usability by a second and sends a
    /// Neighbour Solicitation into the tunnel).
    pub dad: bool,
    /// Let the kernel add the prefix route (`IFA_F_NOPREFIXROUTE` unset). On by default.
    pub prefix_route: bool,
}

impl Default for AddressOptions {
    fn default() -> Self {
        Self {
            dad: false,
            prefix_route: true,
        }
    }
}

/// An IPv6 route: `destination/prefix_len` out of an interface, optionally via a gateway, with
/// a preferred source address, a metric and a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (host bits should be zero).
    pub destination: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub prefix_len: u8,
    /// Output interface.
    pub interface: Link,
    /// Next hop (`RTA_GATEWAY`), if not on-link.
    pub gateway: Option<Ipv6Addr>,
    /// Preferred source address (`RTA_PREFSRC`, `ip route ... src`); must be a local address.
    pub source: Option<Ipv6Addr>,
    /// Metric (`RTA_PRIORITY`); the kernel uses 1024 when unset.
    pub metric: Option<u32>,
    /// Routing table; `main` (254) when unset.
    pub table: Option<u32>,
}

impl Route {
    /// `destination/prefix_len dev interface`.
    pub fn new(destination: Ipv6Addr, prefix_len: u8, interface: impl Into<Link>) -> Self {
        Self {
            destination,
            prefix_len,
            interface: interface.into(),
            gateway: None,
            source: None,
            metric: None,
            table: None,
        }
    }

    /// Sets the next hop.
    #[must_use]
    pub fn gateway(mut self, gw: Ipv6Addr) -> Self {
        self.gateway = Some(gw);
        self
    }

    /// Sets the preferred source address.
    #[must_use]
    pub fn source(mut self, src: Ipv6Addr) -> Self {
        self.source = Some(src);
        self
    }

    /// Sets the metric.
    #[must_use]
    pub fn metric(mut self, metric: u32) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Sets the table.
    #[must_use]
    pub fn table(mut self, table: u32) -> Self {
        self.table = Some(table);
        self
    }

    /// The same route with the interface resolved to an index.
    pub(crate) fn with_index(&self, index: u32) -> Self {
        Self {
            interface: Link::Index(index),
            ..self.clone()
        }
    }

    fn message(&self, index: u32) -> RouteMessage {
        let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(self.destination, self.prefix_len)
            .output_interface(index);
        if let Some(gw) = self.gateway {
            b = b.gateway(gw);
        }
        if let Some(src) = self.source {
            b = b.pref_source(src);
        }
        if let Some(m) = self.metric {
            b = b.priority(m);
        }
        if let Some(t) = self.table {
            b = b.table_id(t);
        }
        b.build()
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.destination, self.prefix_len)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        write!(f, " dev {}", self.interface)?;
        if let Some(s) = self.source {
            write!(f, " src {s}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if let Some(t) = self.table {
            write!(f, " table {t}")?;
        }
        Ok(())
    }
}

/// One IPv6 route as dumped from the kernel (see [`Netlink::routes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// Destination prefix (`::` for a default route).
    pub destination: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Output interface index, if any.
    pub ifindex: Option<u32>,
    /// Next hop, if any.
    pub gateway: Option<Ipv6Addr>,
    /// Preferred source, if any.
    pub source: Option<Ipv6Addr>,
    /// Metric, if reported.
    pub metric: Option<u32>,
    /// Table id.
    pub table: u32,
}

/// One IPv6 address as dumped from the kernel (see [`Netlink::addresses`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressEntry {
    /// The address.
    pub address: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Interface index.
    pub ifindex: u32,
    /// Still undergoing DAD (`IFA_F_TENTATIVE`): not yet usable as a source or for `bind`.
    pub tentative: bool,
}

/// State of an interface (see [`Netlink::link_info`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// MTU, if reported.
    pub mtu: Option<u32>,
}

#[derive(Debug)]
struct Conn {
    handle: rtnetlink::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A handle to one rtnetlink socket (clone it freely; the socket closes with the last clone).
#[derive(Clone, Debug)]
pub struct Netlink {
    conn: Arc<Conn>,
}

impl Netlink {
    /// Opens an rtnetlink socket in the calling thread's network namespace and spawns its
    /// connection task on the current tokio runtime.
    pub fn new() -> Result<Self> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::invalid("open netlink socket", format!("no tokio runtime: {e}")))?;
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::io("open", "NETLINK_ROUTE socket", e))?;
        let task = rt.spawn(conn);
        Ok(Self {
            conn: Arc::new(Conn { handle, task }),
        })
    }

    fn h(&self) -> &rtnetlink::Handle {
        &self.conn.handle
    }

    /// Resolves an interface to its index; [`Error::NoSuchInterface`] if it does not exist.
    pub async fn ifindex(&self, link: impl Into<Link>) -> Result<u32> {
        match link.into() {
            Link::Index(i) => Ok(i),
            Link::Name(name) => self.link_info(name).await.map(|l| l.index),
        }
    }

    /// Looks an interface up; [`Error::NoSuchInterface`] if it does not exist.
    pub async fn link_info(&self, link: impl Into<Link>) -> Result<LinkInfo> {
        let link = link.into();
        let req = match &link {
            Link::Index(i) => self.h().link().get().match_index(*i),
            Link::Name(n) => self.h().link().get().match_name(n.clone()),
        };
        let msg = match req.execute().try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(Error::NoSuchInterface(link.to_string())),
            Err(e) => {
                let e = Error::netlink("look up", link.to_string(), e);
                return Err(if e.is_not_found() {
                    Error::NoSuchInterface(link.to_string())
                } else {
                    e
                });
            }
        };
        Ok(link_info_of(&msg))
    }

    /// True if the interface exists.
    pub async fn link_exists(&self, link: impl Into<Link>) -> Result<bool> {
        match self.link_info(link).await {
            Ok(_) => Ok(true),
            Err(Error::NoSuchInterface(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn resolve(&self, link: &Link) -> Result<(u32, String)> {
        let idx = self.ifindex(link.clone()).await?;
        let target = match link {
            Link::Index(i) => format!("interface index {i}"),
            Link::Name(n) => format!("{n} (index {idx})"),
        };
        Ok((idx, target))
    }

    async fn set_link(&self, link: &Link, op: &'static str, msg: LinkMessage) -> Result<()> {
        let (_, target) = self.resolve(link).await?;
        self.h()
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::netlink(op, target, e))
    }

    /// Sets the interface administratively up (`ip link set dev X up`).
    pub async fn link_up(&self, link: impl Into<Link>) -> Result<()> {
        let link = link.into();
        let idx = self.ifindex(link.clone()).await?;
        self.set_link(
            &link,
            "set link up",
            LinkUnspec::new_with_index(idx).up().build(),
        )
        .await
    }

    /// Sets the interface administratively down.
    pub async fn link_down(&self, link: impl Into<Link>) -> Result<()> {
        let link = link.into();
        let idx = self.ifindex(link.clone()).await?;
        self.set_link(
            &link,
            "set link down",
            LinkUnspec::new_with_index(idx).down().build(),
        )
        .await
    }

    /// Sets the MTU.
    pub async fn set_mtu(&self, link: impl Into<Link>, mtu: u32) -> Result<()> {
        let link = link.into();
        let idx = self.ifindex(link.clone()).await?;
        self.set_link(
            &link,
            "set MTU",
            LinkUnspec::new_with_index(idx).mtu(mtu).build(),
        )
        .await
    }

    /// Turns off the kernel's automatic IPv6 link-local address (`IFLA_INET6_ADDR_GEN_MODE` =
    /// `IN6_ADDR_GEN_MODE_NONE`, `ip link set X addrgenmode none`). Do this while the interface
    /// is down: the link-local address is generated when it comes up, and without one the
    /// kernel sends no Router Solicitations either.
    pub async fn set_addr_gen_mode_none(&self, link: impl Into<Link>) -> Result<()> {
        let link = link.into();
        let idx = self.ifindex(link.clone()).await?;
        let msg = LinkUnspec::new_with_index(idx)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]))
            .build();
        self.set_link(&link, "set addrgenmode none", msg).await
    }

    /// Deletes an interface (`ip link del`). A TUN device also disappears by itself when its
    /// last file descriptor is closed.
    pub async fn delete_link(&self, link: impl Into<Link>) -> Result<()> {
        let link = link.into();
        let (idx, target) = self.resolve(&link).await?;
        self.h()
            .link()
            .del(idx)
            .execute()
            .await
            .map_err(|e| Error::netlink("delete link", target, e))
    }

    /// Adds an IPv6 address (`ip -6 addr add ADDR/LEN dev X [nodad] [noprefixroute]`).
    pub async fn add_address(
        &self,
        link: impl Into<Link>,
        address: Ipv6Addr,
        prefix_len: u8,
        options: AddressOptions,
    ) -> Result<()> {
        let link = link.into();
        if prefix_len > 128 {
            return Err(Error::invalid(
                "add address",
                format!("prefix length {prefix_len} > 128"),
            ));
        }
        let (idx, target) = self.resolve(&link).await?;
        let mut req = self.h().address().add(idx, IpAddr::V6(address), prefix_len);
        let mut flags = AddressFlags::empty();
        if !options.dad {
            flags |= AddressFlags::Nodad;
        }
        if !options.prefix_route {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(flags));
        }
        req.execute().await.map_err(|e| {
            Error::netlink(
                "add address",
                format!("{address}/{prefix_len} on {target}"),
                e,
            )
        })?;
        if !options.dad {
            self.wait_local(address, &target).await?;
        }
        Ok(())
    }

    /// The index of the interface that holds `address`, if any.
    pub async fn interface_of(&self, address: Ipv6Addr) -> Result<Option<u32>> {
        Ok(self
            .addresses(None)
            .await?
            .into_iter()
            .find(|a| a.address == address)
            .map(|a| a.ifindex))
    }

    /// True when the kernel routes `address` as local (RTN_LOCAL), i.e. delivers packets to it.
    pub async fn is_local(&self, address: Ipv6Addr) -> Result<bool> {
        let msg = RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(address, 128)
            .build();
        match self.h().route().get(msg).execute().try_next().await {
            Ok(Some(r)) => Ok(r.header.kind == RouteType::Local),
            Ok(None) => Ok(false),
            Err(e) => {
                let e = Error::netlink("look up route to", address.to_string(), e);
                // No route at all (ENETUNREACH, EHOSTUNREACH): not local.
                match e.raw_os_error() {
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => Ok(false),
                    _ => Err(e),
                }
            }
        }
    }

    /// Waits until a just-added address is routed as local. The kernel acknowledges
    /// `RTM_NEWADDR` before it inserts the local route: even with `IFA_F_NODAD` that happens
    /// in the DAD work item, and packets to the address that arrive in between are dropped as
    /// `Ip6InAddrErrors` (seen under load, after a few milliseconds).
    async fn wait_local(&self, address: Ipv6Addr, target: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            if self.is_local(address).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::io(
                    "add address",
                    format!("{address} on {target}"),
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the kernel did not install the local route within 3 s",
                    ),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// Removes an IPv6 address.
    pub async fn del_address(
        &self,
        link: impl Into<Link>,
        address: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<()> {
        let link = link.into();
        let (idx, target) = self.resolve(&link).await?;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = prefix_len;
        msg.header.index = idx;
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V6(address)));
        self.h().address().del(msg).execute().await.map_err(|e| {
            Error::netlink(
                "delete address",
                format!("{address}/{prefix_len} on {target}"),
                e,
            )
        })
    }

    /// Dumps the IPv6 addresses, of one interface or (with `None`) of all.
    pub async fn addresses(&self, link: Option<Link>) -> Result<Vec<AddressEntry>> {
        let idx = match &link {
            Some(l) => Some(self.ifindex(l.clone()).await?),
            None => None,
        };
        let mut req = self.h().address().get();
        if let Some(i) = idx {
            req = req.set_link_index_filter(i);
        }
        let msgs: Vec<AddressMessage> = req.execute().try_collect().await.map_err(|e| {
            Error::netlink(
                "dump addresses",
                link.map_or("all".into(), |l| l.to_string()),
                e,
            )
        })?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.family == AddressFamily::Inet6)
            .filter_map(|m| {
                let mut addr = None;
                let mut flags = AddressFlags::empty();
                for a in &m.attributes {
                    match a {
                        AddressAttribute::Address(IpAddr::V6(x)) => addr = Some(*x),
                        AddressAttribute::Flags(f) => flags = *f,
                        _ => {}
                    }
                }
                Some(AddressEntry {
                    address: addr?,
                    prefix_len: m.header.prefix_len,
                    ifindex: m.header.index,
                    tentative: flags.contains(AddressFlags::Tentative),
                })
            })
            .collect())
    }

    /// Adds an IPv6 route (`ip -6 route add`). Fails with `EEXIST` if the same route exists.
    pub async fn add_route(&self, route: &Route) -> Result<()> {
        check_route(route, "add route")?;
        let (idx, _) = self.resolve(&route.interface).await?;
        self.h()
            .route()
            .add(route.message(idx))
            .execute()
            .await
            .map_err(|e| Error::netlink("add route", route.to_string(), e))
    }

    /// Removes an IPv6 route (`ip -6 route del`); without a metric, the first route with the
    /// other fields equal is removed.
    pub async fn del_route(&self, route: &Route) -> Result<()> {
        check_route(route, "delete route")?;
        let (idx, _) = self.resolve(&route.interface).await?;
        self.h()
            .route()
            .del(route.message(idx))
            .execute()
            .await
            .map_err(|e| Error::netlink("delete route", route.to_string(), e))
    }

    /// Dumps the IPv6 routes of all tables.
    pub async fn routes(&self) -> Result<Vec<RouteEntry>> {
        let msgs: Vec<RouteMessage> = self
            .h()
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("dump routes", "IPv6", e))?;
        Ok(msgs.iter().map(route_entry_of).collect())
    }

    /// Adds a proxy neighbour entry (`NTF_PROXY`, `ip -6 neigh add proxy ADDR dev X`): the
    /// kernel answers Neighbour Solicitations for `address` on that interface (RFC 4861 §7.2.8)
    /// once `proxy_ndp` **and** `forwarding` are 1 there ([`crate::sysctl::set_proxy_ndp`],
    /// [`crate::sysctl::set_forwarding`]; the kernel checks both). The home agent uses it to
    /// defend a mobile node's home address on the home link (RFC 6275 §10.4.1).
    pub async fn add_proxy_neighbour(
        &self,
        link: impl Into<Link>,
        address: Ipv6Addr,
    ) -> Result<()> {
        let link = link.into();
        let (idx, target) = self.resolve(&link).await?;
        self.h()
            .neighbours()
            .add(idx, IpAddr::V6(address))
            .flags(NeighbourFlags::Proxy)
            .execute()
            .await
            .map_err(|e| Error::netlink("add proxy neighbour", format!("{address} on {target}"), e))
    }

    /// Removes a proxy neighbour entry.
    pub async fn del_proxy_neighbour(
        &self,
        link: impl Into<Link>,
        address: Ipv6Addr,
    ) -> Result<()> {
        let link = link.into();
        let (idx, target) = self.resolve(&link).await?;
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.ifindex = idx;
        msg.header.flags = NeighbourFlags::Proxy;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(
                address,
            )));
        self.h().neighbours().del(msg).execute().await.map_err(|e| {
            Error::netlink(
                "delete proxy neighbour",
                format!("{address} on {target}"),
                e,
            )
        })
    }

    /// Dumps the IPv6 proxy neighbour entries: `(interface index, address)`.
    pub async fn proxy_neighbours(&self) -> Result<Vec<(u32, Ipv6Addr)>> {
        let msgs: Vec<NeighbourMessage> = self
            .h()
            .neighbours()
            .get()
            .proxies()
            .set_address_family(AddressFamily::Inet6)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink("dump proxy neighbours", "IPv6", e))?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.flags.contains(NeighbourFlags::Proxy))
            .filter_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(x)) => {
                        Some((m.header.ifindex, *x))
                    }
                    _ => None,
                })
            })
            .collect())
    }
}

fn check_route(route: &Route, op: &'static str) -> Result<()> {
    if route.prefix_len > 128 {
        return Err(Error::invalid(op, format!("{route}: prefix length > 128")));
    }
    Ok(())
}

fn link_info_of(msg: &LinkMessage) -> LinkInfo {
    let mut name = String::new();
    let mut mtu = None;
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Mtu(m) => mtu = Some(*m),
            _ => {}
        }
    }
    LinkInfo {
        index: msg.header.index,
        name,
        up: msg.header.flags.contains(LinkFlags::Up),
        mtu,
    }
}

fn route_entry_of(m: &RouteMessage) -> RouteEntry {
    let v6 = |a: &RouteAddress| match a {
        RouteAddress::Inet6(x) => Some(*x),
        _ => None,
    };
    let mut e = RouteEntry {
        destination: Ipv6Addr::UNSPECIFIED,
        prefix_len: m.header.destination_prefix_length,
        ifindex: None,
        gateway: None,
        source: None,
        metric: None,
        table: u32::from(m.header.table),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => e.destination = v6(d).unwrap_or(e.destination),
            RouteAttribute::Gateway(g) => e.gateway = v6(g),
            RouteAttribute::PrefSource(s) => e.source = v6(s),
            RouteAttribute::Oif(i) => e.ifindex = Some(*i),
            RouteAttribute::Priority(p) => e.metric = Some(*p),
            RouteAttribute::Table(t) => e.table = *t,
            _ => {}
        }
    }
    e
}
