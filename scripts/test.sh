#!/usr/bin/env bash
#
# The Orchestrator test command.
#
#   ./scripts/test.sh                          full run: lint, tests, render checks
#   ./scripts/test.sh --with-services -- CMD…  start the test services, run CMD with the
#                                              ORCH_TEST_* variables set, stop the services
#   ./scripts/test.sh --services-only          start the test services, print the exports,
#                                              wait until CTRL-C
#
# What it does:
#   * installs missing tools with apt-get when run as root (PostgreSQL, Redis, Docker engine,
#     docker-compose, busybox-static, python3-venv) and the Python tools pinned in
#     scripts/requirements-test.txt into a virtualenv; as another user it says what is
#     missing and exits 1;
#   * starts a throwaway PostgreSQL cluster and Redis server on free loopback ports, and a
#     Docker engine when none answers (root only); all of them are stopped on exit, a Docker
#     engine that was already running is left alone;
#   * exports for the tests:
#       ORCH_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:PORT/postgres (superuser)
#       ORCH_TEST_REDIS_URL      redis://127.0.0.1:PORT
#       ORCH_TEST_REQUIRE_SERVICES=1
#       ORCH_TEST_DOCKER=1       when a Docker engine answers
#       ORCH_TEST_REDIS_IMAGE    orchestrator-test/redis:local   (when Docker answers)
#       ORCH_TEST_BUSYBOX_IMAGE  orchestrator-test/busybox:local (when Docker answers)
#   * runs cargo fmt --check, cargo clippy -D warnings, the workspace tests, then renders the
#     builtin blueprints and validates the output (Kubernetes 1.33 schemas, docker-compose),
#     plus deploy/kubernetes/ and docker-compose.yml.
#
# Environment:
#   ORCH_TEST_SKIP_LINT=1     skip cargo fmt and cargo clippy (quick local runs)
#   ORCH_TEST_KEEP_TMP=1      keep the services' temporary directory (logs, data) on exit
#   ORCH_TEST_VENV=DIR        virtualenv for the Python tools
#                             (default /var/cache/orchestrator-test-venv as root)
#   ORCH_TEST_DOCKER_STORAGE_DRIVER="overlay2 vfs"
#                             storage drivers to try, in order, when dockerd is started here
#   ORCH_TEST_SLOW_SECS=60, ORCH_TEST_SLOW_PERIODS=5
#                             nextest reports a test as slow every ORCH_TEST_SLOW_SECS and
#                             terminates it (a failure) after ORCH_TEST_SLOW_PERIODS of them
#   CARGO_TARGET_DIR          default /var/cache/orchestrator-target (shared by clones)
#   Arguments after `--` in a full run are passed to the test runner (a test filter).

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

# shellcheck source=scripts/services.sh
. "$REPO_ROOT/scripts/services.sh"

K8S_VERSION="1.33.0"

usage() {
    sed -n '3,9p' "$0" | sed 's/^# \{0,1\}//'
}

MODE=full
RUNNER_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --with-services)
        MODE=with-services
        shift
        [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || {
            usage >&2
            exit 2
        }
        RUNNER_ARGS=("$@")
        break
        ;;
    --services-only)
        MODE=services-only
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        RUNNER_ARGS=("$@")
        break
        ;;
    *)
        printf 'unknown argument: %s\n' "$1" >&2
        usage >&2
        exit 2
        ;;
    esac
done

on_exit() {
    local rc=$?
    svc_cleanup
    if [ "$MODE" = full ] && [ "$rc" -ne 0 ]; then
        printf '\nFAILED (exit %s) after %dm%02ds' "$rc" $((SECONDS / 60)) $((SECONDS % 60)) >&2
        if [ "${ORCH_TEST_KEEP_TMP:-0}" != 1 ]; then
            printf '; ORCH_TEST_KEEP_TMP=1 keeps the service logs' >&2
        fi
        printf '\n' >&2
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

section() { printf '\n==== %s ==== (%dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

# ----------------------------------------------------------------------------------------
# Set-up
# ----------------------------------------------------------------------------------------

section "set-up"
svc_install_missing
svc_python_env "$REPO_ROOT/scripts/requirements-test.txt"

if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    if mkdir -p /var/cache/orchestrator-target 2>/dev/null && [ -w /var/cache/orchestrator-target ]; then
        export CARGO_TARGET_DIR=/var/cache/orchestrator-target
    else
        export CARGO_TARGET_DIR="$REPO_ROOT/target"
    fi
fi

svc_start_all
svc_print_exports

case "$MODE" in
with-services)
    set +e
    "${RUNNER_ARGS[@]}"
    rc=$?
    set -e
    exit "$rc"
    ;;
services-only)
    printf '\nServices are up; press CTRL-C to stop them.\n'
    while true; do sleep 1; done
    ;;
esac

# ----------------------------------------------------------------------------------------
# Full run
# ----------------------------------------------------------------------------------------

if [ -t 1 ]; then COLOR=always; else COLOR=never; fi
export CARGO_TERM_COLOR="$COLOR"
printf 'CARGO_TARGET_DIR=%s\n' "$CARGO_TARGET_DIR"

if [ "${ORCH_TEST_SKIP_LINT:-0}" = 1 ]; then
    section "lint skipped (ORCH_TEST_SKIP_LINT=1)"
else
    section "cargo fmt --all -- --check"
    cargo fmt --all -- --check --color "$COLOR"
    section "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi

# The subscription tests drive the API with third-party client libraries under Node.
section "client libraries and browser for the tests (npm ci --prefix tests/js, chromium)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
    else
        echo "node and npm are needed for the client-library tests; install them (Debian: nodejs npm)" >&2
        exit 1
    fi
fi
npm ci --prefix "$REPO_ROOT/tests/js" --no-audit --no-fund --loglevel=error
# The queue board test drives the web app in headless Chromium (through playwright-core).
if [ -z "${ORCH_TEST_CHROMIUM:-}" ] && ! [ -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        echo "Chromium is needed for the queue board's browser test; install it (Debian: chromium) or set ORCH_TEST_CHROMIUM" >&2
        exit 1
    fi
fi

TEST_LOG="$SVC_DIR/test-output.log"
TEST_SUMMARY=""
if cargo nextest --version >/dev/null 2>&1; then
    section "cargo test --workspace --doc"
    cargo test --workspace --doc --locked
    section "cargo nextest run --workspace"
    # A hung test must not eat the whole CI budget: a test still running after
    # ORCH_TEST_SLOW_SECS x ORCH_TEST_SLOW_PERIODS seconds is terminated and fails. The
    # repository's own .config/nextest.toml, when it sets these, takes precedence.
    cat >"$SVC_DIR/nextest.toml" <<EOF
[profile.default]
slow-timeout = { period = "${ORCH_TEST_SLOW_SECS:-60}s", terminate-after = ${ORCH_TEST_SLOW_PERIODS:-5} }
EOF
    cargo nextest run --workspace --locked --no-fail-fast --no-tests=warn --color "$COLOR" \
        --tool-config-file "orchestrator-test:$SVC_DIR/nextest.toml" \
        "${RUNNER_ARGS[@]}" 2>&1 | tee "$TEST_LOG"
    # "Summary [  12.345s] 250 tests run: 250 passed, 3 skipped"
    TEST_SUMMARY="$(sed 's/\x1b\[[0-9;]*m//g' "$TEST_LOG" |
        sed -n 's/.*tests\{0,1\} run: \([0-9][0-9]*\) passed\(.*\)$/\1 \2/p' | tail -n 1 |
        awk '{ skipped = 0; if (match($0, /[0-9]+ skipped/)) skipped = substr($0, RSTART, RLENGTH) + 0;
               printf "%d passed, 0 failed, %d skipped", $1, skipped }')"
else
    section "cargo test --workspace"
    cargo test --workspace --locked --no-fail-fast "${RUNNER_ARGS[@]}" 2>&1 | tee "$TEST_LOG"
    TEST_SUMMARY="$(sed -n 's/^test result: ok\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$TEST_LOG" |
        awk '{ p += $1; f += $2; i += $3 } END { printf "%d passed, %d failed, %d skipped", p, f, i }')"
fi

# ----------------------------------------------------------------------------------------
# Render checks
# ----------------------------------------------------------------------------------------

# validate_k8s MODE FILE...   MODE=rendered: every document must be a known kind;
#                             MODE=deploy: custom resources (e.g. KEDA) are skipped.
validate_k8s() {
    python3 - "$K8S_VERSION" "$@" <<'PY'
import re
import sys

import yaml
import kubernetes_validate
from kubernetes_validate import SchemaNotFoundError, ValidationError

version, mode, files = sys.argv[1], sys.argv[2], sys.argv[3:]
want = ".".join(version.split(".")[:2])


def builtin_group(api_version):
    # "v1", "apps/v1", "networking.k8s.io/v1" belong to Kubernetes itself.
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


errors = 0
checked = 0
for path in files:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except Exception as e:  # noqa: BLE001
        print(f"ERROR {path}: not valid YAML: {e}")
        errors += 1
        continue
    if not docs:
        if mode == "rendered":
            print(f"ERROR {path}: no documents")
            errors += 1
        continue
    for i, doc in enumerate(docs):
        where = f"{path}[{i}]"
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            print(f"ERROR {where}: not a Kubernetes object (needs apiVersion and kind)")
            errors += 1
            continue
        name = (doc.get("metadata") or {}).get("name", "?")
        what = f"{doc['kind']}/{name}"
        if doc["kind"] == "Kustomization":
            continue
        try:
            got = kubernetes_validate.validate(doc, version, strict=True)
        except ValidationError as e:
            p = ".".join(str(x) for x in e.path)
            print(f"ERROR {where} {what}: {p}: {e.message}")
            errors += 1
            continue
        except SchemaNotFoundError:
            if mode == "deploy" and not builtin_group(doc["apiVersion"]):
                print(f"skip  {where} {what}: custom resource {doc['apiVersion']}")
                continue
            print(f"ERROR {where} {what}: unknown kind {doc['kind']} in {doc['apiVersion']}")
            errors += 1
            continue
        if got != want:
            print(f"ERROR {where} {what}: validated against {got}, not {want}")
            errors += 1
            continue
        checked += 1

print(f"kubernetes-validate {kubernetes_validate.__version__}: {checked} objects valid for "
      f"Kubernetes {want} (strict), {errors} errors, {len(files)} files")
sys.exit(1 if errors else 0)
PY
}

# check_deploy_kit DIR: what kubernetes-validate cannot check offline in deploy/kubernetes.
# The KEDA objects are custom resources without a schema here, so their shape is checked
# instead: the scale target is a Deployment of the kit, every trigger is a Redis list of a
# stage queue (`<prefix>:run-stage:<level>:active`, all four levels), the authentication
# names a TriggerAuthentication whose Secret and key exist; and kustomization.yaml lists
# exactly the files of the directory.
check_deploy_kit() {
    python3 - "$1" <<'PY'
import os
import re
import sys

import yaml

root = sys.argv[1]
errors = []
objects = []
files = sorted(f for f in os.listdir(root) if f.endswith((".yaml", ".yml")))
for name in files:
    with open(os.path.join(root, name), encoding="utf-8") as f:
        objects += [(name, d) for d in yaml.safe_load_all(f) if d]


def of_kind(kind):
    return [d for _, d in objects if d.get("kind") == kind]


kustomizations = of_kind("Kustomization")
if len(kustomizations) != 1:
    errors.append("expected one kustomization.yaml")
else:
    listed = set(kustomizations[0].get("resources") or [])
    present = {f for f, d in objects if d.get("kind") != "Kustomization"}
    if listed != present:
        errors.append(f"kustomization resources {sorted(listed)} != files {sorted(present)}")

deployments = {d["metadata"]["name"] for d in of_kind("Deployment")}
secrets = {d["metadata"]["name"]: d for d in of_kind("Secret")}
auths = {}
for auth in of_kind("TriggerAuthentication"):
    if auth.get("apiVersion") != "keda.sh/v1alpha1":
        errors.append(f"TriggerAuthentication {auth['metadata']['name']}: apiVersion")
    for ref in auth.get("spec", {}).get("secretTargetRef", []):
        secret = secrets.get(ref.get("name"))
        data = {**(secret or {}).get("data", {}), **(secret or {}).get("stringData", {})}
        if not ref.get("parameter") or ref.get("key") not in data:
            errors.append(f"TriggerAuthentication {auth['metadata']['name']}: {ref} not in a Secret of the kit")
    auths[auth["metadata"]["name"]] = auth

scaled = of_kind("ScaledObject")
if not scaled:
    errors.append("no ScaledObject")
queue = re.compile(r"^[A-Za-z0-9_-]+:run-stage:(critical|high|normal|low):active$")
allowed_spec = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
                "cooldownPeriod", "idleReplicaCount", "triggers", "advanced", "fallback",
                "initialCooldownPeriod"}
for so in scaled:
    name = so["metadata"]["name"]
    spec = so.get("spec", {})
    if so.get("apiVersion") != "keda.sh/v1alpha1":
        errors.append(f"ScaledObject {name}: apiVersion must be keda.sh/v1alpha1")
    if set(spec) - allowed_spec:
        errors.append(f"ScaledObject {name}: unknown fields {sorted(set(spec) - allowed_spec)}")
    if spec.get("scaleTargetRef", {}).get("name") not in deployments:
        errors.append(f"ScaledObject {name}: scaleTargetRef is not a Deployment of the kit")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        errors.append(f"ScaledObject {name}: need 1 <= minReplicaCount <= maxReplicaCount")
    levels = set()
    for trigger in spec.get("triggers", []):
        meta = trigger.get("metadata", {})
        m = queue.match(meta.get("listName", ""))
        if trigger.get("type") != "redis" or not m:
            errors.append(f"ScaledObject {name}: trigger {meta} is not a stage queue list")
            continue
        levels.add(m.group(1))
        if not str(meta.get("listLength", "")).isdigit():
            errors.append(f"ScaledObject {name}: listLength must be a whole number as a string")
        if not (meta.get("address") or meta.get("addressFromEnv") or meta.get("host")):
            errors.append(f"ScaledObject {name}: trigger without a Redis address")
        ref = (trigger.get("authenticationRef") or {}).get("name")
        if ref is not None and ref not in auths:
            errors.append(f"ScaledObject {name}: unknown TriggerAuthentication {ref}")
    if levels != {"critical", "high", "normal", "low"}:
        errors.append(f"ScaledObject {name}: triggers cover {sorted(levels)}, not every level")

for e in errors:
    print(f"ERROR {root}: {e}")
print(f"deploy kit: {len(objects)} documents, {len(scaled)} ScaledObject(s) checked, {len(errors)} errors")
sys.exit(1 if errors else 0)
PY
}

validate_compose() {
    local f
    for f in "$@"; do
        if ! docker-compose -f "$f" config -q; then
            printf 'ERROR %s: docker-compose config failed\n' "$f" >&2
            return 1
        fi
    done
    printf 'docker-compose: %d files valid\n' "$#"
}

section "render checks"
if [ ! -f core/examples/render_catalogue.rs ]; then
    printf 'skipped: core/examples/render_catalogue.rs does not exist yet\n'
else
    RENDER_OUT="$SVC_DIR/render"
    mkdir -p "$RENDER_OUT"
    cargo run -q --locked -p orchestrator-core --example render_catalogue -- "$RENDER_OUT"
    mapfile -t K8S_FILES < <(find "$RENDER_OUT" -name '*.k8s.yaml' -type f | sort)
    mapfile -t COMPOSE_FILES < <(find "$RENDER_OUT" -name '*.compose.yml' -type f | sort)
    [ "${#K8S_FILES[@]}" -gt 0 ] || svc_die "render_catalogue wrote no *.k8s.yaml into $RENDER_OUT"
    [ "${#COMPOSE_FILES[@]}" -gt 0 ] || svc_die "render_catalogue wrote no *.compose.yml into $RENDER_OUT"
    validate_k8s rendered "${K8S_FILES[@]}"
    validate_compose "${COMPOSE_FILES[@]}"
fi

if [ -d deploy/kubernetes ]; then
    mapfile -t DEPLOY_FILES < <(find deploy/kubernetes -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
    if [ "${#DEPLOY_FILES[@]}" -gt 0 ]; then
        printf -- '-- deploy/kubernetes\n'
        validate_k8s deploy "${DEPLOY_FILES[@]}"
        check_deploy_kit deploy/kubernetes
    fi
fi

if [ -f docker-compose.yml ]; then
    printf -- '-- docker-compose.yml\n'
    # The secrets are required variables of the file; any value will do for a syntax check.
    ORCH_JWT_SECRET="${ORCH_JWT_SECRET:-check}" ORCH_SECRET_KEY="${ORCH_SECRET_KEY:-check}" \
        validate_compose docker-compose.yml
fi

section "summary"
if [ -n "$TEST_SUMMARY" ]; then
    printf 'tests: %s\n' "$TEST_SUMMARY"
fi
printf 'all checks passed (%dm%02ds)\n' $((SECONDS / 60)) $((SECONDS % 60))
