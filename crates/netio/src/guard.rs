//! [`NetConfigGuard`]: remembers every address, route, proxy neighbour, link and sysctl a daemon
//! changed, so that shutdown removes exactly those (RFC-free bookkeeping; issue 3 asks that a
//! daemon under SIGTERM leaves no address, route or TUN device behind).

use std::net::Ipv6Addr;
use std::path::PathBuf;

use crate::netlink::{AddressOptions, Link, Netlink, Route};
use crate::{Error, Result, sysctl};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Address {
        ifindex: u32,
        address: Ipv6Addr,
        prefix_len: u8,
    },
    Route(Route),
    ProxyNeighbour {
        ifindex: u32,
        address: Ipv6Addr,
    },
    Link {
        ifindex: u32,
        name: String,
    },
    Sysctl {
        path: PathBuf,
        old: String,
    },
}

/// Tracks kernel configuration made through it and undoes it, newest first, in
/// [`cleanup`](Self::cleanup).
///
/// `Drop` cannot be async, so **`cleanup().await` must be called** (on SIGTERM and on every
/// orderly exit path, in the network namespace the changes were made in). A guard dropped with
/// items left logs a warning naming them and leaves them in place; a TUN device tracked with
/// [`track_link`](Self::track_link) still disappears when its last descriptor is closed.
#[derive(Debug)]
pub struct NetConfigGuard {
    nl: Netlink,
    items: Vec<Item>,
}

impl NetConfigGuard {
    /// A guard that configures through `nl`.
    pub fn new(nl: &Netlink) -> Self {
        Self {
            nl: nl.clone(),
            items: Vec::new(),
        }
    }

    /// The netlink handle this guard uses.
    pub fn netlink(&self) -> &Netlink {
        &self.nl
    }

    /// Number of tracked changes not yet undone.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds an address and tracks it. An address that already existed is not tracked (it was
    /// not ours) and the call succeeds.
    pub async fn add_address(
        &mut self,
        link: impl Into<Link>,
        address: Ipv6Addr,
        prefix_len: u8,
        options: AddressOptions,
    ) -> Result<()> {
        let link = link.into();
        let ifindex = self.nl.ifindex(link).await?;
        match self
            .nl
            .add_address(ifindex, address, prefix_len, options)
            .await
        {
            Ok(()) => {
                self.items.push(Item::Address {
                    ifindex,
                    address,
                    prefix_len,
                });
                Ok(())
            }
            Err(e) if e.is_already_exists() => {
                tracing::debug!(%address, prefix_len, ifindex, "address already present: not tracked");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a route and tracks it; an identical pre-existing route is not tracked.
    pub async fn add_route(&mut self, route: &Route) -> Result<()> {
        let ifindex = self.nl.ifindex(route.interface.clone()).await?;
        let route = route.with_index(ifindex);
        match self.nl.add_route(&route).await {
            Ok(()) => {
                self.items.push(Item::Route(route));
                Ok(())
            }
            Err(e) if e.is_already_exists() => {
                tracing::debug!(%route, "route already present: not tracked");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a proxy neighbour entry and tracks it.
    pub async fn add_proxy_neighbour(
        &mut self,
        link: impl Into<Link>,
        address: Ipv6Addr,
    ) -> Result<()> {
        let ifindex = self.nl.ifindex(link).await?;
        match self.nl.add_proxy_neighbour(ifindex, address).await {
            Ok(()) => {
                self.items.push(Item::ProxyNeighbour { ifindex, address });
                Ok(())
            }
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Tracks a link this process created (a TUN device) for deletion at clean-up.
    pub fn track_link(&mut self, ifindex: u32, name: &str) {
        self.items.push(Item::Link {
            ifindex,
            name: name.to_owned(),
        });
    }

    /// Sets `net.ipv6.conf.<iface>.<key>` and tracks the old value for restoration.
    pub fn set_ipv6_conf(&mut self, iface: &str, key: &str, value: &str) -> Result<()> {
        let path = sysctl::ipv6_conf_path(iface, key)?;
        let old = sysctl::write(&path, value)?;
        if old != value {
            self.items.push(Item::Sysctl { path, old });
        }
        Ok(())
    }

    /// Removes an address now (and stops tracking it).
    pub async fn remove_address(
        &mut self,
        ifindex: u32,
        address: Ipv6Addr,
        prefix_len: u8,
    ) -> Result<()> {
        self.nl.del_address(ifindex, address, prefix_len).await?;
        self.items.retain(|i| {
            *i != Item::Address {
                ifindex,
                address,
                prefix_len,
            }
        });
        Ok(())
    }

    /// Removes a route now (and stops tracking it).
    pub async fn remove_route(&mut self, route: &Route) -> Result<()> {
        let ifindex = self.nl.ifindex(route.interface.clone()).await?;
        let route = route.with_index(ifindex);
        self.nl.del_route(&route).await?;
        self.items.retain(|i| *i != Item::Route(route.clone()));
        Ok(())
    }

    /// Removes a proxy neighbour entry now (and stops tracking it).
    pub async fn remove_proxy_neighbour(&mut self, ifindex: u32, address: Ipv6Addr) -> Result<()> {
        self.nl.del_proxy_neighbour(ifindex, address).await?;
        self.items
            .retain(|i| *i != Item::ProxyNeighbour { ifindex, address });
        Ok(())
    }

    /// Undoes everything tracked, newest first. Items that are already gone (their interface
    /// was deleted, someone else removed them) count as removed. Every item is attempted; the
    /// failures are returned together in [`Error::Cleanup`].
    pub async fn cleanup(mut self) -> Result<()> {
        let mut errors = Vec::new();
        while let Some(item) = self.items.pop() {
            let res = match &item {
                Item::Address {
                    ifindex,
                    address,
                    prefix_len,
                } => self.nl.del_address(*ifindex, *address, *prefix_len).await,
                Item::Route(r) => self.nl.del_route(r).await,
                Item::ProxyNeighbour { ifindex, address } => {
                    self.nl.del_proxy_neighbour(*ifindex, *address).await
                }
                Item::Link { ifindex, name } => match self.nl.link_info(*ifindex).await {
                    // The index may have been reused after the TUN vanished with its fd.
                    Ok(info) if info.name == *name => self.nl.delete_link(*ifindex).await,
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                },
                Item::Sysctl { path, old } => sysctl::write(path, old).map(drop),
            };
            match res {
                Ok(()) => tracing::debug!(?item, "removed"),
                Err(e) if e.is_not_found() => tracing::debug!(?item, "already gone"),
                Err(e) => {
                    tracing::warn!(?item, error = %e, "clean-up failed");
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Cleanup(errors))
        }
    }
}

impl Drop for NetConfigGuard {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            tracing::warn!(
                left = self.items.len(),
                items = ?self.items,
                "NetConfigGuard dropped without cleanup(): kernel configuration left in place"
            );
        }
    }
}
