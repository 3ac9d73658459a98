//! `orchestrator-bench`: measures the execution engine through the real binary.
//!
//! * `throughput` — executions of the 3-stage `noop` pipeline, in stages per second:
//!   `drain` queues a backlog through an `api` process, then one `worker` process runs it
//!   (engine speed); `standalone` submits to one all-in-one process while it runs them
//!   (API and engine sharing the machine).
//! * `latency` — executions started at a fixed rate on one all-in-one process;
//!   enqueue→first-stage-start and stage-to-next-stage latency, p50 and p99.
//!
//! Each scenario runs `--runs` times on a fresh deployment; every run and the median are
//! printed. See `bench/README.md` for the commands and the numbers measured.

mod cpu;
mod fanout;

/// The same allocator as the product, so the clients of a fan-out run cost as little as they
/// can next to the server they measure.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod load;
mod product;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::load::Timeline;
use crate::product::{Deployment, ServiceUrls, Services};

#[derive(Parser, Debug)]
#[command(name = "orchestrator-bench", about = "Execution engine benchmarks")]
struct Cli {
    /// The product binary to run (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/orchestrator")]
    binary: PathBuf,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// PostgreSQL server for `pg-redis` (a database is created per run).
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:55432/postgres"
    )]
    postgres: String,
    /// Also print how many stages finished in each second of a throughput run.
    #[arg(long)]
    histogram: bool,
    /// Extra settings for the product processes, e.g. `--env ORCH_WORKER_CONCURRENCY=32`.
    #[arg(long = "env", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Redis for `pg-redis` (a key prefix per run).
    #[arg(
        long,
        env = "BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:56379"
    )]
    redis: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Stages per second of the 3-stage `noop` pipeline.
    Throughput {
        #[arg(long, value_enum)]
        services: Services,
        #[arg(long, value_enum, default_value_t = Mode::Drain)]
        mode: Mode,
        #[arg(long, default_value_t = 2000)]
        executions: usize,
        /// Concurrent `startExecution` requests while submitting.
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// Subscription fan-out: N websocket subscribers of one execution on one `api` process
    /// (PostgreSQL + Redis; a separate `worker` runs the execution).
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Clients keep their socket open after completion until every client has completed
        /// (a frontend that keeps one connection for the session), instead of closing it at
        /// once (`graphql-ws` in lazy mode).
        #[arg(long)]
        hold: bool,
    },
    /// Stage-start latency at a fixed rate of executions.
    Latency {
        #[arg(long, value_enum)]
        services: Services,
        #[arg(long, default_value_t = 50)]
        rate: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Queue a backlog with an `api` process, then time one `worker` process draining it.
    Drain,
    /// Submit to one all-in-one process while it runs the stages.
    Standalone,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

fn millis(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// The value at quantile `q` (0..=1) of `values` (nearest rank).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn median(mut values: Vec<f64>) -> f64 {
    quantile(&mut values, 0.5)
}

/// Stages per second between the first stage start and the last stage end.
fn stages_per_second(timelines: &[Timeline]) -> f64 {
    let spans = timelines.iter().flat_map(|t| t.stages.iter());
    let first = spans.clone().map(|s| s.0).min().expect("stages ran");
    let last = spans.clone().map(|s| s.1).max().expect("stages ran");
    spans.count() as f64 / (millis(last - first) / 1000.0)
}

async fn throughput_run(
    cli: &Cli,
    urls: &ServiceUrls,
    services: Services,
    mode: Mode,
    executions: usize,
    clients: usize,
) -> anyhow::Result<f64> {
    let mut dep = Deployment::prepare(&cli.binary, services, urls).await?;
    dep.env.extend(cli.settings.iter().cloned());
    let first = dep
        .spawn(if mode == Mode::Drain {
            "api"
        } else {
            "standalone"
        })
        .await?;
    let project = load::default_project(&dep, first).await?;
    let submit = load::submit_burst(&dep, first, &project, executions, clients).await?;
    let before = cpu::snapshot();
    if mode == Mode::Drain {
        dep.spawn("worker").await?;
    }
    load::wait_succeeded(&dep, first, &project, executions, Duration::from_secs(600)).await?;
    let used = before.per_unit(&cpu::snapshot(), executions * 3);
    let timelines = load::timelines(&dep, first, &project).await?;
    dep.teardown().await?;
    let rate = stages_per_second(&timelines);
    if cli.histogram {
        let first = timelines
            .iter()
            .flat_map(|t| t.stages.iter())
            .map(|s| s.0)
            .min()
            .unwrap();
        let mut buckets = std::collections::BTreeMap::<i64, usize>::new();
        for t in &timelines {
            for s in &t.stages {
                *buckets
                    .entry((s.1 - first).num_milliseconds() / 1000)
                    .or_default() += 1;
            }
        }
        println!("  finished per second: {buckets:?}");
    }
    println!(
        "  run: {rate:>7.0} stages/s ({} stages; submitting took {:.1} s; CPU ms per stage: {used})",
        executions * 3,
        submit.as_secs_f64()
    );
    Ok(rate)
}

/// (enqueue→start p50, p99, stage→next p50, p99) in milliseconds.
async fn latency_run(
    cli: &Cli,
    urls: &ServiceUrls,
    services: Services,
    rate: u32,
    seconds: u32,
) -> anyhow::Result<[f64; 4]> {
    let mut dep = Deployment::prepare(&cli.binary, services, urls).await?;
    dep.env.extend(cli.settings.iter().cloned());
    let addr = dep.spawn("standalone").await?;
    let project = load::default_project(&dep, addr).await?;
    let dep = Arc::new(dep);
    let n = load::submit_at_rate(dep.clone(), addr, &project, rate, seconds).await?;
    load::wait_succeeded(&dep, addr, &project, n, Duration::from_secs(300)).await?;
    let timelines = load::timelines(&dep, addr, &project).await?;
    let mut to_start: Vec<f64> = timelines
        .iter()
        .map(|t| millis(t.stages[0].0 - t.created))
        .collect();
    let mut to_next: Vec<f64> = timelines
        .iter()
        .flat_map(|t| t.stages.windows(2).map(|w| millis(w[1].0 - w[0].1)))
        .collect();
    Arc::into_inner(dep)
        .expect("no other users")
        .teardown()
        .await?;
    let result = [
        quantile(&mut to_start, 0.5),
        quantile(&mut to_start, 0.99),
        quantile(&mut to_next, 0.5),
        quantile(&mut to_next, 0.99),
    ];
    println!(
        "  run: enqueue→start p50 {:.1} ms p99 {:.1} ms | stage→next p50 {:.1} ms p99 {:.1} ms ({n} executions)",
        result[0], result[1], result[2], result[3]
    );
    Ok(result)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let urls = ServiceUrls {
        postgres: cli.postgres.clone(),
        redis: cli.redis.clone(),
    };
    match cli.scenario {
        Scenario::Throughput {
            services,
            mode,
            executions,
            clients,
        } => {
            println!(
                "throughput: {services:?}, {mode:?}, {executions} executions x 3 noop stages, {} runs",
                cli.runs
            );
            let mut rates = Vec::new();
            for _ in 0..cli.runs {
                rates.push(throughput_run(&cli, &urls, services, mode, executions, clients).await?);
            }
            println!("median: {:.0} stages/s", median(rates));
        }
        Scenario::Fanout { subscribers, hold } => {
            println!(
                "fanout: {subscribers} subscribers of one execution, sockets {} after completion, {} runs",
                if hold { "held open" } else { "closed" },
                cli.runs
            );
            let (mut p50s, mut p99s, mut per_sub) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..cli.runs {
                let mut dep = Deployment::prepare(&cli.binary, Services::PgRedis, &urls).await?;
                dep.env.extend(cli.settings.iter().cloned());
                let mut run = fanout::run(&mut dep, subscribers, hold).await?;
                dep.teardown().await?;
                let (p50, p99) = (
                    quantile(&mut run.latencies_ms, 0.5),
                    quantile(&mut run.latencies_ms, 0.99),
                );
                let running_p99 = quantile(&mut run.running_ms, 0.99);
                let succeeded_p99 = quantile(&mut run.succeeded_ms, 0.99);
                println!(
                    "  run: delivered {}/{} | commit→client p50 {p50:.1} ms p99 {p99:.1} ms (p99 RUNNING {running_p99:.1} ms, SUCCEEDED {succeeded_p99:.1} ms) | RSS {:.1} KB per subscriber ({} → {} KiB) | attached in {:.1} s",
                    run.delivered,
                    2 * subscribers,
                    run.rss_per_subscriber_bytes() / 1024.0,
                    run.rss_before_kib,
                    run.rss_after_kib,
                    run.attach_seconds
                );
                p50s.push(p50);
                p99s.push(p99);
                per_sub.push(run.rss_per_subscriber_bytes() / 1024.0);
            }
            println!(
                "median: commit→client p50 {:.1} ms p99 {:.1} ms | RSS {:.1} KB per subscriber",
                median(p50s),
                median(p99s),
                median(per_sub)
            );
        }
        Scenario::Latency {
            services,
            rate,
            seconds,
        } => {
            println!(
                "latency: {services:?}, {rate} executions/s for {seconds} s, {} runs",
                cli.runs
            );
            let mut runs = Vec::new();
            for _ in 0..cli.runs {
                runs.push(latency_run(&cli, &urls, services, rate, seconds).await?);
            }
            let column = |i: usize| median(runs.iter().map(|r| r[i]).collect());
            println!(
                "median: enqueue→start p50 {:.1} ms p99 {:.1} ms | stage→next p50 {:.1} ms p99 {:.1} ms",
                column(0),
                column(1),
                column(2),
                column(3)
            );
        }
    }
    Ok(())
}
