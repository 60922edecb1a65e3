//! The probe sockets of every link, one per address family its targets need, bound to the link's
//! device and marked for its routing table. They follow what the controller says:
//! [`crate::core::Action::BindProbes`] and [`crate::core::Action::KeepProbes`].

use super::icmp::{self, ProbeSocket, Session, SocketError};
use crate::core::{Family, LinkIndex, LinkPlan, Probe};
use crate::protocol::link_mark;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

/// One link's sockets, per family slot.
#[derive(Debug, Default)]
struct LinkSockets {
    sockets: [Option<ProbeSocket>; 2],
}

#[derive(Debug)]
pub struct Probes {
    links: Vec<LinkSockets>,
    session: Session,
}

impl Probes {
    pub fn new(session: Session) -> Probes {
        Probes { links: Vec::new(), session }
    }

    fn resize(&mut self, links: usize) {
        self.links.resize_with(links, LinkSockets::default);
    }

    /// Opens the sockets of link `index` on its device (closes them for `None`). Returns what
    /// could not be opened, per family.
    pub fn bind(
        &mut self,
        plans: &[LinkPlan],
        index: LinkIndex,
        device: Option<u32>,
    ) -> Vec<(Family, SocketError)> {
        self.resize(plans.len());
        let Some(plan) = plans.get(index) else { return Vec::new() };
        let mut failures = Vec::new();
        let mut sockets = LinkSockets::default();
        if device.is_some() {
            for family in &plan.probe_families {
                let v6 = *family == Family::V6;
                match ProbeSocket::open(v6, &plan.device, link_mark(index)) {
                    Ok(socket) => sockets.sockets[family.slot()] = Some(socket),
                    Err(e) => failures.push((*family, e)),
                }
            }
        }
        self.links[index] = sockets;
        failures
    }

    /// After a reload: new link `i` takes the sockets of old link `keep[i]`, re-marked for `i`.
    pub fn keep(&mut self, keep: &[Option<LinkIndex>]) -> Vec<SocketError> {
        let mut old = std::mem::take(&mut self.links);
        let mut failures = Vec::new();
        for (index, kept) in keep.iter().enumerate() {
            let sockets = kept.and_then(|k| old.get_mut(k)).map(std::mem::take).unwrap_or_default();
            for socket in sockets.sockets.iter().flatten() {
                if let Err(e) = socket.set_mark(link_mark(index)) {
                    failures.push(e);
                }
            }
            self.links.push(sockets);
        }
        failures
    }

    /// Sends one echo request; an error when the link has no socket for its family.
    pub fn send(&self, probe: &Probe) -> io::Result<()> {
        let family = Family::of(&probe.address);
        let socket = self
            .links
            .get(probe.link)
            .and_then(|l| l.sockets[family.slot()].as_ref())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))?;
        let packet = icmp::echo_request(family == Family::V6, self.session, probe.seq);
        socket.send(probe.address, &packet)
    }

    /// The next reply waiting on a link's socket: (source, sequence); `None` when there is none.
    pub fn receive(&self, link: LinkIndex, slot: usize) -> Option<(IpAddr, u16)> {
        let socket = self.links.get(link)?.sockets.get(slot)?.as_ref()?;
        socket.receive(self.session).ok().flatten()
    }

    /// Every open socket as (link, family slot, descriptor), for the poll set.
    pub fn descriptors(&self) -> impl Iterator<Item = (LinkIndex, usize, RawFd)> + '_ {
        self.links.iter().enumerate().flat_map(|(link, sockets)| {
            sockets
                .sockets
                .iter()
                .enumerate()
                .filter_map(move |(slot, s)| s.as_ref().map(|s| (link, slot, s.as_raw_fd())))
        })
    }
}
