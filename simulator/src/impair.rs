//! The impaired links of the real runs: for each scenario link, a device in the router
//! namespace, an ISP namespace holding the probe targets, and between them either the kernel's
//! netem on a veth pair (where the kernel has `sch_netem`) or the userspace relay between two
//! TUN devices (everywhere, seeded). Both take the same `Condition` and mean the same by it:
//! half the latency and jitter/√2 each way, loss on the way out, an outage drops everything,
//! carrier down is a pulled cable, an unreachable target does not answer on that link.

use crate::namespaces::{Namespaces, Netlink, inside, sh};
use crate::relay;
use crate::scenario::{Carrier, Condition};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::runtime::Runtime;

/// What impairs the links of a real run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impairment {
    /// The kernel's netem qdisc on both ends of a veth pair. Not seedable on the kernels this
    /// was built on: which packets are lost differs from run to run.
    Netem,
    /// The userspace relay (`relay.rs`): seeded, needs only TUN.
    Relay,
}

impl Impairment {
    pub fn name(self) -> &'static str {
        match self {
            Impairment::Netem => "netem",
            Impairment::Relay => "relay",
        }
    }

    /// `auto`, `netem` or `relay` from the command line; `auto` picks netem when the kernel has
    /// it. Asking for netem where the kernel has none is an error, not a silent fallback.
    pub fn choose(asked: &str) -> Result<Impairment, String> {
        Impairment::choose_given(asked, netem_available)
    }

    /// [`Impairment::choose`] with the kernel's answer given, so every branch can be tested on
    /// any kernel.
    fn choose_given(
        asked: &str,
        netem_available: impl FnOnce() -> Result<bool, String>,
    ) -> Result<Impairment, String> {
        match asked {
            "relay" => Ok(Impairment::Relay),
            "auto" => Ok(match netem_available() {
                Ok(true) => Impairment::Netem,
                _ => Impairment::Relay,
            }),
            "netem" => match netem_available() {
                Ok(true) => Ok(Impairment::Netem),
                Ok(false) => Err("--impair netem: this kernel has no sch_netem (`tc qdisc add \
                                  ... netem` is refused); use --impair relay or auto"
                    .into()),
                Err(e) => Err(format!("--impair netem: cannot check for sch_netem: {e}")),
            },
            other => Err(format!("--impair: got {other:?}, expected auto, relay or netem")),
        }
    }
}

/// Whether the kernel takes a netem qdisc, tried on loopback in a scratch namespace (the
/// kernel loads `sch_netem` on demand where it is a module). An error when the scratch
/// namespace cannot be made (not root).
pub fn netem_available() -> Result<bool, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let name = format!("wsim-netem-{}", std::process::id());
    let mut scratch = Namespaces::default();
    scratch.create(&name, &runtime)?;
    Ok(sh(&["tc", "-n", &name, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
        .is_ok())
}

/// The `tc ... netem` arguments for one direction of a link in `condition`: half the latency and
/// jitter/√2 each way; loss (bursty: netem's Gilbert–Elliott model) on the way out, return loss
/// on the way back; everything dropped in an outage or without carrier.
pub fn netem_arguments(condition: &Condition, outbound: bool) -> Vec<String> {
    let mut arguments = vec![
        "netem".to_string(),
        "delay".to_string(),
        format!("{:.3}ms", condition.latency_ms / 2.0),
    ];
    let spread = condition.jitter_ms / std::f64::consts::SQRT_2;
    if spread > 0.0 {
        arguments.extend([format!("{spread:.3}ms"), "distribution".into(), "normal".into()]);
    }
    let percent = |v: f64| format!("{v:.3}%");
    if condition.outage || condition.carrier == Carrier::Down {
        arguments.extend(["loss".to_string(), percent(100.0)]);
    } else if let (true, Some(bursts)) = (outbound, condition.bursts) {
        // p, r, 1-h, 1-k: into the bad state, out of it, loss in it, loss out of it.
        arguments.extend(["loss".to_string(), "gemodel".to_string()]);
        arguments.extend(
            [bursts.enter_percent, bursts.leave_percent, bursts.loss_percent]
                .into_iter()
                .chain([condition.loss_percent])
                .map(percent),
        );
    } else {
        let loss = if outbound { condition.loss_percent } else { condition.return_loss_percent };
        if loss > 0.0 {
            arguments.extend(["loss".to_string(), percent(loss)]);
        }
    }
    arguments
}

/// The addresses of link `index`: the router's end and the ISP's end of a point-to-point /32.
/// Kept clear of the probe targets, which live on the ISP's loopback.
pub fn link_addresses(index: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 128 + 4 * index as u8;
    (Ipv4Addr::new(198, 51, 100, base + 2), Ipv4Addr::new(198, 51, 100, base + 1))
}

enum Backend {
    Netem { router: Netlink, device: String },
    Relay { shared: Arc<Mutex<Condition>>, router_end: Arc<AsyncFd<OwnedFd>> },
}

/// One impaired link between the router namespace and its ISP namespace.
pub struct ImpairedLink {
    pub name: String,
    isp: Netlink,
    targets: Vec<Ipv4Addr>,
    condition: Condition,
    backend: Backend,
}

impl std::fmt::Debug for ImpairedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImpairedLink({} to {})", self.name, self.isp.namespace)
    }
}

/// Where one link goes and what it starts as.
#[derive(Debug)]
pub struct LinkPlan<'a> {
    /// The device name in the router namespace (the scenario's link name).
    pub device: &'a str,
    pub index: usize,
    pub base: &'a Condition,
    pub targets: &'a [Ipv4Addr],
    /// The relay's seed; netem cannot be seeded.
    pub seed: u64,
}

impl ImpairedLink {
    /// Builds the link: devices, addresses, targets, and the impairment in its base condition.
    pub fn build(
        runtime: &Runtime,
        impairment: Impairment,
        router: &Netlink,
        isp: &Netlink,
        plan: LinkPlan<'_>,
    ) -> Result<ImpairedLink, String> {
        let (mine, peer) = link_addresses(plan.index);
        let backend = match impairment {
            Impairment::Netem => {
                runtime.block_on(router.add_veth(plan.device, "isp", &isp.namespace))?;
                for (netlink, device) in [(router, plan.device), (isp, "isp")] {
                    netlink.disable_ipv6(device)?;
                    runtime.block_on(netlink.no_arp(device))?;
                }
                Backend::Netem { router: router.clone(), device: plan.device.to_string() }
            }
            Impairment::Relay => {
                let device = plan.device.to_string();
                let router_tun = inside(&router.namespace, move || relay::open_tun(&device))?
                    .map_err(|e| format!("TUN {}: {e}", plan.device))?;
                let isp_tun = inside(&isp.namespace, || relay::open_tun("isp"))?
                    .map_err(|e| format!("TUN isp: {e}"))?;
                router.disable_ipv6(plan.device)?;
                isp.disable_ipv6("isp")?;
                let shared = Arc::new(Mutex::new(plan.base.clone()));
                let targets = plan.targets.iter().map(|t| IpAddr::V4(*t)).collect();
                let _context = runtime.enter();
                let router_end =
                    relay::start(router_tun, isp_tun, shared.clone(), targets, plan.seed)
                        .map_err(|e| format!("cannot start the relay of {}: {e}", plan.device))?;
                Backend::Relay { shared, router_end }
            }
        };
        runtime.block_on(async {
            router.add_address(plan.device, mine, Some(peer)).await?;
            isp.add_address("isp", peer, Some(mine)).await?;
            router.set_up(plan.device, true).await?;
            isp.set_up("isp", true).await?;
            for target in plan.targets {
                isp.add_address("lo", *target, None).await?;
            }
            Ok::<_, String>(())
        })?;
        let mut link = ImpairedLink {
            name: plan.device.to_string(),
            isp: isp.clone(),
            targets: plan.targets.to_vec(),
            // What is set so far: the carrier is up and every target answers until `apply` says not.
            condition: Condition {
                carrier: Carrier::Up,
                unreachable_targets: Vec::new(),
                ..plan.base.clone()
            },
            backend,
        };
        if let Backend::Netem { .. } = link.backend {
            link.set_netem(plan.base)?;
        }
        link.apply(runtime, plan.base)?;
        Ok(link)
    }

    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    fn set_netem(&self, condition: &Condition) -> Result<(), String> {
        let Backend::Netem { router, device } = &self.backend else { return Ok(()) };
        for (namespace, device, outbound) in
            [(&router.namespace, device.as_str(), true), (&self.isp.namespace, "isp", false)]
        {
            let mut command: Vec<String> = ["tc", "-n", namespace, "qdisc", "replace", "dev"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            command.extend([device.to_string(), "root".to_string()]);
            command.extend(netem_arguments(condition, outbound));
            let command: Vec<&str> = command.iter().map(String::as_str).collect();
            sh(&command).map_err(|e| format!("link {}: {e}", self.name))?;
        }
        Ok(())
    }

    /// Puts the link into `condition`: the impairment, the carrier, and which targets answer.
    pub fn apply(&mut self, runtime: &Runtime, condition: &Condition) -> Result<(), String> {
        match &self.backend {
            Backend::Relay { shared, router_end } => {
                *shared.lock().map_err(|_| "condition lock poisoned")? = condition.clone();
                if condition.carrier != self.condition.carrier {
                    relay::set_carrier(router_end.as_raw_fd(), condition.carrier == Carrier::Up)
                        .map_err(|e| format!("cannot set the carrier of {}: {e}", self.name))?;
                }
            }
            Backend::Netem { .. } => {
                condition.netem_can().map_err(|what| {
                    format!("link {}: netem cannot do {what}; use --impair relay", self.name)
                })?;
                let impairment_changed = netem_arguments(condition, true)
                    != netem_arguments(&self.condition, true)
                    || netem_arguments(condition, false) != netem_arguments(&self.condition, false);
                if impairment_changed {
                    self.set_netem(condition)?;
                }
                if condition.carrier != self.condition.carrier {
                    // The ISP's end down: the router's end sees NO-CARRIER, a pulled cable.
                    runtime.block_on(self.isp.set_up("isp", condition.carrier == Carrier::Up))?;
                }
                // A target without its address drops the probes silently (the ISP namespace
                // does not forward), as a filtered target does.
                for (index, target) in self.targets.iter().enumerate() {
                    let was = self.condition.unreachable_targets.contains(&index);
                    let is = condition.unreachable_targets.contains(&index);
                    if is && !was {
                        runtime.block_on(self.isp.del_address("lo", *target))?;
                    } else if was && !is {
                        runtime.block_on(self.isp.add_address("lo", *target, None))?;
                    }
                }
            }
        }
        self.condition = condition.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition() -> Condition {
        Condition::new(50.0, 10.0, 20.0)
    }

    #[test]
    fn netem_splits_latency_and_jitter_over_the_two_directions_and_loses_on_the_way_out() {
        assert_eq!(
            netem_arguments(&condition(), true).join(" "),
            "netem delay 25.000ms 7.071ms distribution normal loss 20.000%"
        );
        assert_eq!(
            netem_arguments(&condition(), false).join(" "),
            "netem delay 25.000ms 7.071ms distribution normal"
        );
        let steady = Condition { jitter_ms: 0.0, loss_percent: 0.0, ..condition() };
        assert_eq!(netem_arguments(&steady, true).join(" "), "netem delay 25.000ms");
        let returning = Condition { return_loss_percent: 5.0, ..steady.clone() };
        assert_eq!(
            netem_arguments(&returning, false).join(" "),
            "netem delay 25.000ms loss 5.000%"
        );
        let bursty = Condition {
            bursts: Some(crate::condition::Bursts {
                enter_percent: 1.0,
                leave_percent: 20.0,
                loss_percent: 100.0,
            }),
            loss_percent: 0.5,
            ..steady
        };
        assert_eq!(
            netem_arguments(&bursty, true).join(" "),
            "netem delay 25.000ms loss gemodel 1.000% 20.000% 100.000% 0.500%"
        );
    }

    #[test]
    fn netem_drops_everything_both_ways_in_an_outage_or_without_carrier() {
        for broken in [
            Condition { outage: true, ..condition() },
            Condition { carrier: Carrier::Down, ..condition() },
        ] {
            for outbound in [true, false] {
                assert!(netem_arguments(&broken, outbound).join(" ").ends_with("loss 100.000%"));
            }
        }
    }

    #[test]
    fn link_addresses_never_collide_with_the_targets() {
        let targets: Vec<Ipv4Addr> =
            crate::scenario::TARGETS.iter().filter_map(|t| t.parse().ok()).collect();
        for index in 0..8 {
            let (mine, peer) = link_addresses(index);
            assert!(!targets.contains(&mine) && !targets.contains(&peer));
            assert_ne!(mine, peer);
        }
        assert_ne!(link_addresses(0), link_addresses(1));
    }

    #[test]
    fn asking_for_an_unknown_impairment_names_the_choices() {
        let error = Impairment::choose("tbf").unwrap_err();
        assert!(error.contains("expected auto, relay or netem"), "{error}");
        assert_eq!(Impairment::choose("relay"), Ok(Impairment::Relay));
    }

    #[test]
    fn auto_picks_netem_only_where_the_kernel_takes_it_and_netem_is_never_a_silent_fallback() {
        let has = || Ok(true);
        let lacks = || Ok(false);
        let unknown = || Err("not root".to_string());
        assert_eq!(Impairment::choose_given("auto", has), Ok(Impairment::Netem));
        assert_eq!(Impairment::choose_given("auto", lacks), Ok(Impairment::Relay));
        assert_eq!(Impairment::choose_given("auto", unknown), Ok(Impairment::Relay));
        assert_eq!(Impairment::choose_given("netem", has), Ok(Impairment::Netem));
        let refused = Impairment::choose_given("netem", lacks).unwrap_err();
        assert!(refused.contains("this kernel has no sch_netem"), "{refused}");
        let unknown = Impairment::choose_given("netem", unknown).unwrap_err();
        assert!(unknown.contains("cannot check for sch_netem: not root"), "{unknown}");
    }
}
