//! The userspace impairment relay: two TUN devices in two network namespaces, and a tokio task
//! per direction that delays, jitters and drops the packets between them. It works where the
//! kernel has no netem (this project's machines), and it is seeded: the same packets are lost
//! in every run.
//!
//! Delay is split over the two directions so a round trip sees the scenario's latency; loss and
//! unreachable targets act on the way out (router to ISP), like a lost probe in the replay.

use crate::condition::Condition;
use crate::network::Path;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETCARRIER: libc::c_ulong = 0x4004_54e2;

/// Opens a TUN device named `name` in the namespace of the calling thread.
pub fn open_tun(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: plain open(2) of a device node; the result is checked before it is owned.
    let fd = unsafe {
        libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // struct ifreq: 16 bytes of name, then the flags.
    let mut request = [0u8; 40];
    let bytes = name.as_bytes();
    if bytes.len() >= 16 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("device name {name:?} is too long"),
        ));
    }
    request[..bytes.len()].copy_from_slice(bytes);
    request[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes an ifreq, which `request` is large enough to hold.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, request.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A TUN device for the tokio reactor.
pub fn async_tun(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is a valid, open descriptor that stays open and the same for as long as
    // the AsyncFd owns it, which is what registering requires.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// Carrier off makes the device NO-CARRIER for its namespace: a pulled cable.
pub fn set_carrier(fd: RawFd, up: bool) -> io::Result<()> {
    let value: libc::c_int = i32::from(up);
    // SAFETY: TUNSETCARRIER reads one int through the pointer.
    if unsafe { libc::ioctl(fd, TUNSETCARRIER as _, &value) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The destination address of an IP packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(packet.get(16..20)?).ok()?)),
        6 => Some(IpAddr::from(<[u8; 16]>::try_from(packet.get(24..40)?).ok()?)),
        _ => None,
    }
}

/// What the relay does to one packet.
#[derive(Debug, PartialEq)]
pub enum Fate {
    Drop,
    Deliver(Duration),
}

/// The fate of one packet in one direction at scenario time `t_s`, by the link's path model
/// (`network::Path::one_way`): an outbound packet to a target meets that target's conditions.
pub fn fate(path: &mut Path, targets: &[IpAddr], packet: &[u8], outbound: bool, t_s: f64) -> Fate {
    let target = if outbound {
        destination(packet).and_then(|d| targets.iter().position(|t| *t == d))
    } else {
        None
    };
    match path.one_way(target, outbound, t_s) {
        Some(ms) => Fate::Deliver(Duration::from_secs_f64(ms / 1000.0)),
        None => Fate::Drop,
    }
}

/// Starts the relay between the router's end and the ISP's end of a link, one task per
/// direction (seeds `seed` and `seed + 1`), on the current tokio runtime. Returns the router's
/// end, which pulls the carrier (`set_carrier`).
pub fn start(
    router_end: OwnedFd,
    isp_end: OwnedFd,
    condition: Arc<Mutex<Condition>>,
    targets: Vec<IpAddr>,
    seed: u64,
) -> io::Result<Arc<AsyncFd<OwnedFd>>> {
    let router_end = Arc::new(async_tun(router_end)?);
    let isp_end = Arc::new(async_tun(isp_end)?);
    let targets = Arc::new(targets);
    let (out, back) = (seed, seed.wrapping_add(1));
    tokio::spawn(relay(
        router_end.clone(),
        isp_end.clone(),
        condition.clone(),
        targets.clone(),
        true,
        out,
    ));
    tokio::spawn(relay(isp_end, router_end.clone(), condition, targets, false, back));
    Ok(router_end)
}

/// Moves packets from `from` to `to` through the shared condition until the task is dropped.
pub async fn relay(
    from: Arc<AsyncFd<OwnedFd>>,
    to: Arc<AsyncFd<OwnedFd>>,
    condition: Arc<Mutex<Condition>>,
    targets: Arc<Vec<IpAddr>>,
    outbound: bool,
    seed: u64,
) -> io::Result<()> {
    let mut path = Path::new(Condition::new(0.0, 0.0, 0.0), seed);
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 65_536];
    loop {
        let mut ready = from.readable().await?;
        // SAFETY: buffer is valid for writes of its length.
        let got = unsafe { libc::read(from.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if got < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                ready.clear_ready();
                continue;
            }
            return Err(error);
        }
        let packet = buffer[..got as usize].to_vec();
        path.condition =
            condition.lock().map_err(|_| io::Error::other("condition lock poisoned"))?.clone();
        let decided = fate(&mut path, &targets, &packet, outbound, started.elapsed().as_secs_f64());
        if let Fate::Deliver(delay) = decided {
            let to = Arc::clone(&to);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // SAFETY: packet is a valid buffer of its length. A full queue drops the packet,
                // as a congested link would.
                unsafe { libc::write(to.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(condition: Condition) -> Path {
        Path::new(condition, 1)
    }

    fn condition() -> Condition {
        Condition { unreachable_targets: vec![1], ..Condition::new(40.0, 0.0, 0.0) }
    }

    fn packet_to(address: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45; 20];
        p[16..20].copy_from_slice(&address);
        p
    }

    fn targets() -> Vec<IpAddr> {
        vec!["192.0.2.1".parse().unwrap(), "198.51.100.1".parse().unwrap()]
    }

    #[test]
    fn each_direction_carries_half_the_latency() {
        let fate = fate(&mut path(condition()), &targets(), &packet_to([192, 0, 2, 1]), true, 0.0);
        assert_eq!(fate, Fate::Deliver(Duration::from_millis(20)));
    }

    #[test]
    fn outages_unreachable_targets_and_loss_drop() {
        let to_second = packet_to([198, 51, 100, 1]);
        assert_eq!(fate(&mut path(condition()), &targets(), &to_second, true, 0.0), Fate::Drop);
        // The way back is never filtered by target: only outbound probes are.
        let back = fate(&mut path(condition()), &targets(), &to_second, false, 0.0);
        assert!(matches!(back, Fate::Deliver(_)));
        let mut outage = path(Condition { outage: true, ..condition() });
        assert_eq!(
            fate(&mut outage, &targets(), &packet_to([192, 0, 2, 1]), false, 0.0),
            Fate::Drop
        );
        let mut lossy = path(Condition { loss_percent: 100.0, ..condition() });
        assert_eq!(fate(&mut lossy, &targets(), &packet_to([192, 0, 2, 1]), true, 0.0), Fate::Drop);
        let mut returns = path(Condition { return_loss_percent: 100.0, ..condition() });
        assert_eq!(
            fate(&mut returns, &targets(), &packet_to([192, 0, 2, 1]), false, 0.0),
            Fate::Drop
        );
        assert_eq!(destination(&[0x60; 10]), None);
    }

    #[test]
    fn a_slow_target_is_slow_on_the_way_out() {
        let mut slow = path(Condition { target_latency_ms: vec![0.0, 100.0], ..condition() });
        slow.condition.unreachable_targets.clear();
        let to_second = packet_to([198, 51, 100, 1]);
        assert_eq!(
            fate(&mut slow, &targets(), &to_second, true, 0.0),
            Fate::Deliver(Duration::from_millis(120))
        );
    }

    #[test]
    fn the_same_seed_loses_the_same_packets() {
        let lossy = Condition { loss_percent: 30.0, jitter_ms: 5.0, ..condition() };
        let run = |seed| {
            let mut path = Path::new(lossy.clone(), seed);
            (0..200)
                .map(|_| fate(&mut path, &[], &packet_to([192, 0, 2, 1]), true, 0.0))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
