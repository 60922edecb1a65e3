//! Network namespaces for the simulator's real runs: creation, and removal whatever the run did;
//! work on a thread inside one; and an rtnetlink handle per namespace (the `rtnetlink` crate)
//! for its links, addresses, routes and route events.

use futures_util::TryStreamExt;
use netns_rs::NetNs;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::sys::SocketAddr;
use rtnetlink::{
    AddressMessageBuilder, LinkMessageBuilder, LinkUnspec, LinkVeth, MulticastGroup,
    RouteMessageBuilder,
};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::Command;

/// Runs a command (`tc`); the error names it and says what it printed.
pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Runs `work` on a thread inside the namespace `name`: sockets and devices it opens live there.
pub fn inside<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let ns = NetNs::get(&name).map_err(|e| format!("namespace {name}: {e}"))?;
        ns.enter().map_err(|e| format!("cannot enter {name}: {e}"))?;
        Ok(work())
    })
    .join()
    .map_err(|_| "a thread in a namespace panicked".to_string())?
}

/// The kernel's route events of one namespace, as rtnetlink delivers them.
pub type RouteEvents =
    futures_util::stream::BoxStream<'static, (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// An rtnetlink connection opened inside one namespace: every request acts on that namespace,
/// whichever thread makes it. Its connection task runs on the tokio runtime it was opened with.
#[derive(Clone)]
pub struct Netlink {
    pub namespace: String,
    handle: rtnetlink::Handle,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Netlink({})", self.namespace)
    }
}

impl Netlink {
    pub fn open(namespace: &str, runtime: &tokio::runtime::Handle) -> Result<Self, String> {
        let handle = runtime.clone();
        let opened = inside(namespace, move || {
            // The socket is bound to the namespace of the thread that creates it.
            let _context = handle.enter();
            let (connection, netlink, _) = rtnetlink::new_connection()?;
            handle.spawn(connection);
            Ok::<_, std::io::Error>(netlink)
        })?;
        let handle = opened.map_err(|e| format!("{namespace}: cannot open rtnetlink: {e}"))?;
        Ok(Netlink { namespace: namespace.to_string(), handle })
    }

    /// A subscription to the namespace's IPv4 and IPv6 route events (`ip monitor route`).
    pub fn route_events(
        namespace: &str,
        runtime: &tokio::runtime::Handle,
    ) -> Result<RouteEvents, String> {
        let handle = runtime.clone();
        let opened = inside(namespace, move || {
            let _context = handle.enter();
            let (connection, _, events) = rtnetlink::new_multicast_connection(&[
                MulticastGroup::Ipv4Route,
                MulticastGroup::Ipv6Route,
            ])?;
            handle.spawn(connection);
            Ok::<_, std::io::Error>(events)
        })?;
        let events =
            opened.map_err(|e| format!("{namespace}: cannot listen to route events: {e}"))?;
        Ok(Box::pin(events))
    }

    fn fail(&self, what: &str, error: impl std::fmt::Display) -> String {
        format!("namespace {}: cannot {what}: {error}", self.namespace)
    }

    /// The index of a device, by name.
    pub async fn index(&self, device: &str) -> Result<u32, String> {
        let mut found = self.handle.link().get().match_name(device.to_string()).execute();
        match found.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(self.fail(&format!("find device {device}"), "no such device")),
            Err(e) => Err(self.fail(&format!("find device {device}"), e)),
        }
    }

    /// Changes a device's flags or address (`ip link set DEV ...`); `what` names the change in
    /// the error.
    async fn set_link(
        &self,
        device: &str,
        what: &str,
        change: impl FnOnce(LinkMessageBuilder<LinkUnspec>) -> LinkMessageBuilder<LinkUnspec>,
    ) -> Result<(), String> {
        let index = self.index(device).await?;
        let message = change(LinkUnspec::new_with_index(index)).build();
        self.handle.link().set(message).execute().await.map_err(|e| self.fail(what, e))
    }

    /// Brings a device up or down (`ip link set DEV up|down`); for veth, down on one end is a
    /// pulled cable (NO-CARRIER) on the other.
    pub async fn set_up(&self, device: &str, up: bool) -> Result<(), String> {
        let what = format!("set {device} {}", if up { "up" } else { "down" });
        self.set_link(device, &what, |m| if up { m.up() } else { m.down() }).await
    }

    /// Turns ARP off on a point-to-point veth end, so no ARP packet is delayed or lost by the
    /// impairment, only the traffic under test. Without ARP the kernel sends every frame to the
    /// device's own MAC address, so both ends get the same one (each is in its own namespace)
    /// and the peer takes the frames as its own.
    pub async fn no_arp(&self, device: &str) -> Result<(), String> {
        let what = format!("turn ARP off on {device}");
        self.set_link(device, &what, |m| m.arp(false).address(vec![0x02, 0, 0x57, 0x4d, 0, 1]))
            .await
    }

    /// Adds `local` to a device, as a /32 with `peer` on the other end of the link when given
    /// (`ip addr add LOCAL peer PEER dev DEV`).
    pub async fn add_address(
        &self,
        device: &str,
        local: Ipv4Addr,
        peer: Option<Ipv4Addr>,
    ) -> Result<(), String> {
        let index = self.index(device).await?;
        let mut request = self.handle.address().add(index, IpAddr::V4(local), 32);
        if let Some(peer) = peer {
            for attribute in &mut request.message_mut().attributes {
                if let AddressAttribute::Address(address) = attribute {
                    *address = IpAddr::V4(peer);
                }
            }
        }
        request.execute().await.map_err(|e| self.fail(&format!("add {local} to {device}"), e))
    }

    /// Removes a /32 address from a device.
    pub async fn del_address(&self, device: &str, address: Ipv4Addr) -> Result<(), String> {
        let index = self.index(device).await?;
        let message =
            AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(address, 32).build();
        self.handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(|e| self.fail(&format!("remove {address} from {device}"), e))
    }

    /// A default route through a device in the main table, as netifd would set one.
    pub async fn add_default_route(&self, device: &str, metric: u32) -> Result<(), String> {
        let index = self.index(device).await?;
        let route =
            RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index).priority(metric).build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|e| self.fail(&format!("add a default route via {device}"), e))
    }

    /// A veth pair: `device` here, `peer` in the namespace `peer_namespace`.
    pub async fn add_veth(
        &self,
        device: &str,
        peer: &str,
        peer_namespace: &str,
    ) -> Result<(), String> {
        let target = NetNs::get(peer_namespace)
            .map_err(|e| self.fail(&format!("find namespace {peer_namespace}"), e))?;
        let peer_message = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(target.file().as_raw_fd())
            .build();
        let message = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(device.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
            .build();
        self.handle.link().add(message).execute().await.map_err(|e| {
            self.fail(&format!("create veth {device} with {peer} in {peer_namespace}"), e)
        })
    }

    /// Turns IPv6 off on a device before it comes up: no router solicitations or DAD on a test
    /// link, so only the probes cross it.
    pub fn disable_ipv6(&self, device: &str) -> Result<(), String> {
        let path = format!("/proc/sys/net/ipv6/conf/{device}/disable_ipv6");
        // /proc/sys/net shows the namespace of the thread that opens it. A kernel without IPv6
        // (no /proc/sys/net/ipv6) sends nothing to turn off.
        inside(&self.namespace, move || {
            if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
                return Ok(());
            }
            std::fs::write(&path, "1").map_err(|e| (path, e))
        })?
        .map_err(|(path, e)| self.fail(&format!("write {path}"), e))
    }
}

/// Namespaces created with loopback up, removed when dropped, also when a run fails half-way.
#[derive(Debug, Default)]
pub struct Namespaces(pub Vec<String>);

impl Namespaces {
    /// Creates a namespace (replacing a stale one of the same name) and opens rtnetlink in it.
    pub fn create(
        &mut self,
        name: &str,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Netlink, String> {
        if let Ok(old) = NetNs::get(name) {
            let _ = old.remove();
        }
        NetNs::new(name).map_err(|e| format!("cannot create namespace {name}: {e}"))?;
        self.0.push(name.to_string());
        let netlink = Netlink::open(name, runtime.handle())?;
        runtime.block_on(netlink.set_up("lo", true))?;
        Ok(netlink)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            if let Ok(ns) = NetNs::get(name) {
                let _ = ns.remove();
            }
        }
    }
}
