//! `wanmon-sim calibrate`: every link of a scenario built for real (two namespaces joined by two
//! TUN devices and the impairment relay) and measured from outside with surge-ping, so the relay
//! can be held to what the scenario says. Needs root (network namespaces).

use crate::namespaces::{Namespaces, inside, point_to_point, sh};
use crate::relay;
use crate::scenario::{Condition, Scenario};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use surge_ping::{Client, Config, PingIdentifier, PingSequence};

/// What one link measured against what it was configured to be.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub link: String,
    pub configured: Condition,
    pub pings: usize,
    pub latency_ms: f64,
    /// Standard deviation of the RTT, the scenario's meaning of jitter.
    pub jitter_ms: f64,
    pub loss_percent: f64,
}

/// Builds one link, pings through it `pings` times (10 ms apart), and reports.
pub fn calibrate_link(
    link: &str,
    condition: &Condition,
    pings: u16,
    seed: u64,
) -> Result<Calibration, String> {
    let id = std::process::id() % 100_000;
    let (client, server) = (format!("wcc-{id}"), format!("wcs-{id}"));
    let mut namespaces = Namespaces::default();
    namespaces.create(&client)?;
    namespaces.create(&server)?;
    let client_tun =
        inside(&client, || relay::open_tun("wan"))?.map_err(|e| format!("TUN: {e}"))?;
    let server_tun =
        inside(&server, || relay::open_tun("isp"))?.map_err(|e| format!("TUN: {e}"))?;
    point_to_point(&client, "wan", "198.51.100.2", "198.51.100.1")?;
    point_to_point(&server, "isp", "198.51.100.1", "198.51.100.2")?;
    sh(&["ip", "-n", &client, "route", "add", "default", "dev", "wan"])?;
    sh(&["ip", "-n", &server, "addr", "add", "192.0.2.1/32", "dev", "lo"])?;

    let shared = Arc::new(Mutex::new(condition.clone()));
    let targets: Arc<Vec<IpAddr>> = Arc::new(vec![IpAddr::from([192, 0, 2, 1])]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    let tasks = runtime.block_on(async {
        let a = Arc::new(relay::async_tun(client_tun)?);
        let b = Arc::new(relay::async_tun(server_tun)?);
        let out = tokio::spawn(relay::relay(
            a.clone(),
            b.clone(),
            shared.clone(),
            targets.clone(),
            true,
            seed,
        ));
        let back = tokio::spawn(relay::relay(
            b,
            a,
            shared.clone(),
            targets.clone(),
            false,
            seed.wrapping_add(1),
        ));
        Ok::<_, std::io::Error>((out, back))
    });
    let (out, back) = tasks.map_err(|e| format!("cannot start the relay: {e}"))?;

    let rtts: Vec<Option<f64>> = inside(&client, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let pinger_client =
                Arc::new(Client::new(&Config::default()).map_err(|e| format!("ICMP socket: {e}"))?);
            let mut tasks = Vec::new();
            for i in 0..pings {
                let client = Arc::clone(&pinger_client);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(i) * 10)).await;
                    let mut pinger =
                        client.pinger(IpAddr::from([192, 0, 2, 1]), PingIdentifier(i)).await;
                    pinger.timeout(Duration::from_secs(2));
                    pinger
                        .ping(PingSequence(0), &[0; 16])
                        .await
                        .ok()
                        .map(|(_, rtt)| rtt.as_secs_f64() * 1000.0)
                }));
            }
            let mut rtts = Vec::new();
            for task in tasks {
                rtts.push(task.await.map_err(|e| e.to_string())?);
            }
            Ok::<_, String>(rtts)
        })
    })??;
    out.abort();
    back.abort();
    drop(runtime);

    let answered: Vec<f64> = rtts.iter().flatten().copied().collect();
    let count = answered.len().max(1) as f64;
    let latency_ms = answered.iter().sum::<f64>() / count;
    let jitter_ms = (answered.iter().map(|r| (r - latency_ms).powi(2)).sum::<f64>() / count).sqrt();
    Ok(Calibration {
        link: link.to_string(),
        configured: condition.clone(),
        pings: rtts.len(),
        latency_ms,
        jitter_ms,
        loss_percent: 100.0 * (rtts.len() - answered.len()) as f64 / rtts.len().max(1) as f64,
    })
}

/// Every link of a scenario, in its base condition.
pub fn calibrate(scenario: &Scenario, pings: u16) -> Result<Vec<Calibration>, String> {
    scenario
        .links
        .iter()
        .map(|link| calibrate_link(&link.name, &link.base, pings, scenario.seed))
        .collect()
}

/// The measured-against-configured table.
pub fn table(calibrations: &[Calibration]) -> String {
    let mut out = format!(
        "{:<15} {:>22} {:>22} {:>16}\n",
        "link", "latency (conf/meas)", "jitter (conf/meas)", "loss (conf/meas)"
    );
    for c in calibrations {
        out.push_str(&format!(
            "{:<15} {:>9.1} / {:>6.1} ms {:>9.1} / {:>6.1} ms {:>6.1} / {:>5.1} %\n",
            c.link,
            c.configured.latency_ms,
            c.latency_ms,
            c.configured.jitter_ms,
            c.jitter_ms,
            c.configured.loss_percent,
            c.loss_percent
        ));
    }
    out
}
