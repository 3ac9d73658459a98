//! Small blueprints for the deployer tests, all on the busybox test image (their `image`
//! parameter is set by each test). Processes trap `TERM` so they stop at once.

/// Serves a page on port 7000 and exports where: a dependency.
pub const STORE: &str = r#"
name: store
platform: docker
defaults: { image: busybox, port: 7000 }
args:
  - sh
  - -c
  - 'trap "exit 0" TERM; mkdir -p /www; echo stored > /www/index.html; busybox httpd -f -p 7000 -h /www & wait'
exports:
  host: ${service.host}
  port: ${service.port}
healthcheck: { http: /, port: 7000, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 2 }
"#;

/// Depends on `store`; healthy only while it can fetch from the exported host and port.
pub const APP: &str = r#"
name: app
platform: docker
defaults: { image: busybox }
dependencies: [store]
environment:
  STORE_HOST: ${deps.store.host}
  STORE_PORT: ${deps.store.port}
args: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
healthcheck:
  command: [sh, -c, 'wget -q -O /dev/null "http://$STORE_HOST:$STORE_PORT/"']
  initialDelaySeconds: 0
  periodSeconds: 1
  timeoutSeconds: 2
"#;

/// Runs, logs recognisable lines, and never passes its health check.
pub const FLAKY: &str = r#"
name: flaky
platform: docker
defaults: { image: busybox }
args:
  - sh
  - -c
  - 'echo "flaky: starting up"; echo "flaky: cannot reach the database" >&2; trap "exit 0" TERM; while :; do sleep 1; done'
healthcheck:
  command: [sh, -c, 'echo not today; exit 1']
  initialDelaySeconds: 0
  periodSeconds: 1
  timeoutSeconds: 1
  failureThreshold: 2
"#;

/// Logs a line and exits with code 3.
pub const QUITTER: &str = r#"
name: quitter
platform: docker
defaults: { image: busybox }
args: [sh, -c, 'echo "quitter: configuration missing"; exit 3']
"#;

/// Runs with a `greeting` parameter in its environment and no health check.
pub const GREETER: &str = r#"
name: greeter
platform: docker
defaults: { image: busybox }
parameters:
  greeting: { type: string, default: hello }
environment:
  GREETING: ${greeting}
args: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
"#;
