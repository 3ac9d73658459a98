//! The `orchestrator` command line: run the product (standalone, api or worker), migrate the
//! database, print the GraphQL schema, or mint a token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{Application, Mode};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use orchestrator_core::auth::{Claims, mint_hs256};
use orchestrator_core::config::{CliOverrides, Config, LogFormat};
use orchestrator_entity::Role;

/// Control plane for AI backends, prompts, blueprints, deployment intents and executions.
#[derive(Parser, Debug)]
#[command(name = "orchestrator", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Configuration file (TOML); environment variables override it.
    #[arg(long, env = "ORCH_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "ORCH_LISTEN", global = true)]
    listen: Option<String>,
    /// Directory for the embedded database, queue and generated keys.
    #[arg(long, env = "ORCH_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// API and workers in one process (the default).
    Standalone,
    /// Serve the GraphQL API only (scaled deployments).
    Api,
    /// Run queue workers only (scaled deployments).
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print a signed bearer token.
    Token(TokenArgs),
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// Role the token grants: admin, operator or viewer.
    #[arg(long, env = "ORCH_TOKEN_ROLE")]
    role: String,
    /// Limit the role to this project (slug); without it the role spans every project.
    #[arg(long, env = "ORCH_TOKEN_PROJECT")]
    project: Option<String>,
    /// Lifetime, e.g. 30m, 1h, 7d.
    #[arg(long, env = "ORCH_TOKEN_TTL", default_value = "1h")]
    ttl: String,
    /// Subject (who the token speaks for).
    #[arg(long, env = "ORCH_TOKEN_SUBJECT", default_value = "cli")]
    subject: String,
}

/// Parses the command line and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    crate::telemetry::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(common: &CommonArgs) -> anyhow::Result<Config> {
    Ok(Config::load(
        common.config.as_deref(),
        &CliOverrides {
            listen: common.listen.clone(),
            data_dir: common.data_dir.clone(),
        },
    )?)
}

fn init_logging(format: LogFormat) {
    crate::telemetry::init(format);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Two rustls crypto providers are in the dependency graph; pick one before any TLS use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let command = cli.command.unwrap_or(Command::Standalone);
    match command {
        Command::Schema => {
            print!("{}", orchestrator_api::sdl());
            Ok(())
        }
        Command::Token(args) => {
            let config = load_config(&cli.common)?;
            println!("{}", mint_token(&config, &args)?);
            Ok(())
        }
        Command::Migrate => {
            let config = load_config(&cli.common)?;
            init_logging(config.log_format);
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!("cannot create the data dir {}", config.data_dir.display())
            })?;
            let db = orchestrator_core::db::connect(&config.database_url, 2).await?;
            orchestrator_core::db::migrate(&db).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Standalone | Command::Api | Command::Worker => {
            let mode = match command {
                Command::Api => Mode::Api,
                Command::Worker => Mode::Worker,
                _ => Mode::Standalone,
            };
            let config = load_config(&cli.common)?;
            init_logging(config.log_format);
            let data_dir = config.data_dir.clone();
            let app = Application::build(config, mode).await?;
            let addr = app.local_addr();
            match mode {
                Mode::Standalone | Mode::Api => {
                    tracing::info!(%addr, ?mode, "orchestrator is listening");
                    eprintln!(
                        "GraphQL API:  http://{addr}/graphql  (GraphiQL in a browser, where enabled)"
                    );
                    eprintln!(
                        "Mint a token: orchestrator token --data-dir {} --role admin",
                        shell_quote(&data_dir.display().to_string())
                    );
                }
                Mode::Worker => {
                    tracing::info!(%addr, "worker is running; probes on /health and /ready")
                }
            }
            app.run_until(shutdown_signal()).await
        }
    }
}

fn mint_token(config: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    let role: Role = args
        .role
        .parse()
        .map_err(|e| anyhow::anyhow!("--role: {e}"))?;
    let ttl = parse_duration(&args.ttl)
        .with_context(|| format!("--ttl: cannot read {:?}; use e.g. 30m, 1h, 7d", args.ttl))?;
    if let Some(slug) = &args.project {
        orchestrator_core::projects::validate_slug("--project", slug)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let secret = orchestrator_core::keys::jwt_secret(config)?;
    let now = chrono::Utc::now().timestamp();
    let role_text = orchestrator_core::projects::role_name(role).to_string();
    let claims = Claims {
        sub: args.subject.clone(),
        exp: now + ttl.as_secs() as i64,
        nbf: None,
        iat: Some(now),
        role: args.project.is_none().then(|| role_text.clone()),
        projects: args
            .project
            .iter()
            .map(|p| (p.clone(), role_text.clone()))
            .collect(),
    };
    mint_hs256(&secret, &claims)
}

/// Reads `90`, `90s`, `30m`, `1h`, `7d`.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => anyhow::bail!("unknown unit {other:?}"),
    };
    anyhow::ensure!(secs > 0, "must be above zero");
    Ok(Duration::from_secs(secs))
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
