//! Waiting for a started container to become ready: healthy when it has a health check,
//! running when it has none. A container that exits, restarts or turns unhealthy fails at
//! once, and so does one still not ready at the deadline; the error carries the container's
//! last log lines so the reason is visible where the failure is reported.

use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerState, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use tokio::time::Instant;

use super::engine_error::engine_error;
use crate::deploy::DeployError;

/// How many log lines a failure carries.
const LOG_LINES: usize = 20;

/// How often the container's state is read while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a container without a health check that was just started must keep running
/// to count as ready, so a process that exits at once is caught.
const SETTLE: Duration = Duration::from_secs(1);

/// What one look at a container's state says.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Its health check passes.
    Healthy,
    /// It runs and has no health check.
    Running,
    /// Not yet; says what is awaited, for a timeout message.
    Waiting(&'static str),
    /// Will not become ready by itself; says why.
    Failed(String),
}

/// One container to wait for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaited<'a> {
    /// The container name.
    pub name: &'a str,
    /// Its restart count before the wait (0 for one just created): any restart since means
    /// its process exited.
    pub restarts_before: i64,
    /// Whether it was started by this apply (and must first settle when it has no health
    /// check) rather than found running.
    pub just_started: bool,
}

/// Waits until `container` is ready or `deadline` passes; `timeout` is only for messages.
pub(super) async fn wait_until_ready(
    docker: &Docker,
    container: Awaited<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), DeployError> {
    let name = container.name;
    let mut running_since: Option<Instant> = None;
    loop {
        let inspect = docker
            .inspect_container(name, None)
            .await
            .map_err(|error| engine_error(&format!("inspecting container {name}"), &error))?;
        let state = inspect.state.unwrap_or_default();
        let restarted = inspect.restart_count.unwrap_or(0) > container.restarts_before;
        let now = Instant::now();
        let awaited = match verdict(&state, restarted) {
            Verdict::Healthy => return Ok(()),
            Verdict::Running => {
                let since = *running_since.get_or_insert(now);
                if !container.just_started
                    || now.saturating_duration_since(since) >= SETTLE
                    || now >= deadline
                {
                    return Ok(());
                }
                "it has not been running long enough yet"
            }
            Verdict::Failed(reason) => {
                return Err(not_ready(docker, name, reason, &state).await);
            }
            Verdict::Waiting(awaited) => awaited,
        };
        if now >= deadline {
            let reason = format!(
                "was not ready within {:.1} s ({awaited})",
                timeout.as_secs_f64()
            );
            return Err(not_ready(docker, name, reason, &state).await);
        }
        let pause = POLL_INTERVAL.min(deadline.saturating_duration_since(now));
        tokio::time::sleep(pause).await;
    }
}

fn verdict(state: &ContainerState, restarted: bool) -> Verdict {
    let exit = || {
        let code = state.exit_code.unwrap_or(0);
        let mut reason = format!("exited with code {code}");
        if state.oom_killed == Some(true) {
            reason.push_str(" (killed: out of memory)");
        }
        if let Some(error) = state.error.as_deref().filter(|e| !e.is_empty()) {
            reason.push_str(": ");
            reason.push_str(error);
        }
        reason
    };
    match state.status {
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            return Verdict::Failed(exit());
        }
        Some(ContainerStateStatusEnum::RESTARTING) => {
            return Verdict::Failed(format!("{} and is being restarted", exit()));
        }
        Some(ContainerStateStatusEnum::PAUSED) => return Verdict::Failed("is paused".into()),
        Some(ContainerStateStatusEnum::RUNNING) => {}
        _ => return Verdict::Waiting("the container is not running yet"),
    }
    if restarted || state.restarting == Some(true) {
        return Verdict::Failed(format!("{} and was restarted", exit()));
    }
    match state.health.as_ref().and_then(|health| health.status) {
        Some(HealthStatusEnum::HEALTHY) => Verdict::Healthy,
        None | Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) => Verdict::Running,
        Some(HealthStatusEnum::UNHEALTHY) => {
            Verdict::Failed("is unhealthy: its health check failed".into())
        }
        Some(HealthStatusEnum::STARTING) => Verdict::Waiting("its health check has not passed yet"),
    }
}

/// The permanent error for a container that is not ready: its name and `reason`, then its
/// last log lines and, when it has one, the output of its last health check.
async fn not_ready(
    docker: &Docker,
    name: &str,
    reason: String,
    state: &ContainerState,
) -> DeployError {
    let mut details = last_log_lines(docker, name).await;
    let last_check = state
        .health
        .as_ref()
        .and_then(|health| health.log.as_ref())
        .and_then(|log| log.last());
    if let Some(check) = last_check {
        let output = check.output.as_deref().unwrap_or("").trim();
        details.push(format!(
            "last health check exited with {}: {}",
            check.exit_code.unwrap_or(-1),
            output.lines().last().unwrap_or("(no output)")
        ));
    }
    DeployError {
        message: format!("container {name} {reason}"),
        retryable: false,
        details,
    }
}

/// The container's last [`LOG_LINES`] lines of stdout and stderr, interleaved as written.
pub(super) async fn last_log_lines(docker: &Docker, name: &str) -> Vec<String> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&LOG_LINES.to_string())
        .build();
    let mut stream = docker.logs(name, Some(options));
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(output) => text.extend_from_slice(output.as_ref()),
            Err(error) => {
                return vec![format!("(the logs of {name} could not be read: {error})")];
            }
        }
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<String> = text
        .lines()
        .map(|line| line.trim_end_matches('\r').to_owned())
        .collect();
    let skip = lines.len().saturating_sub(LOG_LINES);
    lines.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use bollard::models::Health;

    use super::*;

    fn running(health: Option<HealthStatusEnum>) -> ContainerState {
        ContainerState {
            status: Some(ContainerStateStatusEnum::RUNNING),
            running: Some(true),
            health: health.map(|status| Health {
                status: Some(status),
                ..Health::default()
            }),
            ..ContainerState::default()
        }
    }

    #[test]
    fn running_without_a_health_check_is_running() {
        assert_eq!(verdict(&running(None), false), Verdict::Running);
        assert_eq!(
            verdict(&running(Some(HealthStatusEnum::NONE)), false),
            Verdict::Running
        );
    }

    #[test]
    fn a_health_check_must_pass() {
        assert_eq!(
            verdict(&running(Some(HealthStatusEnum::HEALTHY)), false),
            Verdict::Healthy
        );
        assert!(matches!(
            verdict(&running(Some(HealthStatusEnum::STARTING)), false),
            Verdict::Waiting(_)
        ));
        assert!(matches!(
            verdict(&running(Some(HealthStatusEnum::UNHEALTHY)), false),
            Verdict::Failed(reason) if reason.contains("health check failed")
        ));
    }

    #[test]
    fn exits_and_restarts_fail_with_the_exit_code() {
        let exited = ContainerState {
            status: Some(ContainerStateStatusEnum::EXITED),
            exit_code: Some(3),
            ..ContainerState::default()
        };
        assert_eq!(
            verdict(&exited, false),
            Verdict::Failed("exited with code 3".into())
        );
        let restarting = ContainerState {
            status: Some(ContainerStateStatusEnum::RESTARTING),
            exit_code: Some(1),
            ..ContainerState::default()
        };
        assert!(matches!(verdict(&restarting, false), Verdict::Failed(r) if r.contains("code 1")));
        assert!(matches!(
            verdict(&running(Some(HealthStatusEnum::HEALTHY)), true),
            Verdict::Failed(r) if r.contains("restarted")
        ));
    }
}
