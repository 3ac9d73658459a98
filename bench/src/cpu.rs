//! Where the CPU went during a measurement: CPU time per process name (`orchestrator`,
//! `postgres`, `redis-server`, everything else) from `/proc`, so a report can say which
//! part of the system a throughput is bound by. Linux only; elsewhere the numbers are empty.

use std::collections::BTreeMap;

/// CPU seconds used so far, per process group.
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(BTreeMap<String, f64>);

fn group(comm: &str) -> &'static str {
    match comm {
        c if c.starts_with("orchestrator-be") => "bench",
        c if c.starts_with("orchestrator") => "orchestrator",
        c if c.starts_with("postgres") => "postgres",
        c if c.starts_with("redis") => "redis",
        _ => "other",
    }
}

/// Reads the CPU time of every process.
pub fn snapshot() -> CpuSnapshot {
    let ticks = 100.0; // USER_HZ on Linux
    let mut groups = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return CpuSnapshot(groups);
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... utime stime are fields 14 and 15.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let cpu = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *groups.entry(group(comm).to_string()).or_insert(0.0) += (cpu(11) + cpu(12)) / ticks;
    }
    CpuSnapshot(groups)
}

impl CpuSnapshot {
    /// CPU milliseconds per unit of work between `self` (earlier) and `later`, by group.
    /// `other` is everything else on the machine: a large share means the run was disturbed.
    /// Processes that ended in between are not counted.
    pub fn per_unit(&self, later: &CpuSnapshot, units: usize) -> String {
        later
            .0
            .iter()
            .map(|(name, after)| {
                let before = self.0.get(name).copied().unwrap_or(0.0);
                format!(
                    "{name} {:.2}",
                    (after - before).max(0.0) * 1000.0 / units as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
