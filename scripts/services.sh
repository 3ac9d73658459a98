# shellcheck shell=bash
#
# Throwaway test services for the Orchestrator test suite.
#
# Sourced by scripts/test.sh (not meant to be run on its own). Provides:
#
#   svc_install_missing         apt-get install what the tests need (root only)
#   svc_python_env              virtualenv with scripts/requirements-test.txt
#   svc_start_postgres          initdb + start a PostgreSQL cluster on a free port
#   svc_start_redis             start a redis-server on a free port, no persistence
#   svc_start_docker            make sure a Docker engine answers (starts dockerd if needed)
#   build_test_images           tiny local images for deployment tests
#   svc_cleanup                 stop everything started here (installed as an EXIT trap)
#
# Everything lives in one temporary directory ($SVC_DIR) that is removed on exit
# (kept when ORCH_TEST_KEEP_TMP=1). A dockerd that was already running is left alone.

# dockerd, runuser and friends live in sbin, which is not on every user's PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin:/sbin" ;; esac

SVC_DIR=""
SVC_PG_BIN=""
SVC_PG_DATA=""
SVC_PG_USER=""
SVC_REDIS_PIDFILE=""
SVC_DOCKERD_PID=""
SVC_CLEANED=0

# Bump the tag whenever an image's contents change: images are cached by tag.
REDIS_TEST_IMAGE="orchestrator-test/redis:2"
BUSYBOX_TEST_IMAGE="orchestrator-test/busybox:local"

svc_log() { printf '==> %s\n' "$*" >&2; }
svc_warn() { printf 'WARNING: %s\n' "$*" >&2; }
svc_die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

svc_is_root() { [ "$(id -u)" -eq 0 ]; }

# Milliseconds since the epoch, for timing the start-up.
svc_now_ms() { date +%s%3N; }

# --------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------

svc_pg_bindir() {
    local d
    d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        printf '%s\n' "$d"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

# Prints the Debian packages that are missing, one per line.
svc_missing_packages() {
    svc_pg_bindir >/dev/null || echo postgresql
    command -v psql >/dev/null 2>&1 || echo postgresql-client
    command -v redis-server >/dev/null 2>&1 || echo redis-server
    command -v redis-cli >/dev/null 2>&1 || echo redis-tools
    command -v dockerd >/dev/null 2>&1 || echo docker.io
    command -v docker >/dev/null 2>&1 || echo docker.io
    command -v docker-compose >/dev/null 2>&1 || echo docker-compose
    [ -x /bin/busybox ] || echo busybox-static
    command -v python3 >/dev/null 2>&1 || echo python3
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then echo python3-venv; fi
    command -v setsid >/dev/null 2>&1 || echo util-linux
    command -v ldd >/dev/null 2>&1 || echo libc-bin
}

svc_install_missing() {
    local missing
    missing="$(svc_missing_packages | sort -u | tr '\n' ' ')"
    missing="${missing% }"
    [ -z "$missing" ] && return 0
    if ! svc_is_root; then
        svc_die "missing packages: $missing
  Install them first (as root): apt-get update && apt-get install -y $missing
  or run this script as root, which installs them itself."
    fi
    svc_log "installing missing packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -q $missing >/dev/null
    local still
    still="$(svc_missing_packages | sort -u | tr '\n' ' ')"
    [ -z "${still% }" ] || svc_die "still missing after apt-get install: $still"
}

# Virtualenv holding the Python tools of scripts/requirements-test.txt; reinstalled when
# that file changes. Sets SVC_VENV and puts its bin/ first on PATH.
svc_python_env() {
    local req="$1" default_venv stamp want
    if svc_is_root; then
        default_venv=/var/cache/orchestrator-test-venv
    else
        default_venv="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator-test-venv"
    fi
    SVC_VENV="${ORCH_TEST_VENV:-$default_venv}"
    stamp="$SVC_VENV/.requirements.sha256"
    want="$(sha256sum "$req" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [ ! -x "$SVC_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        svc_log "creating Python environment $SVC_VENV"
        rm -rf "$SVC_VENV"
        mkdir -p "$(dirname "$SVC_VENV")"
        python3 -m venv "$SVC_VENV"
        "$SVC_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
        printf '%s\n' "$want" >"$stamp"
    fi
    export PATH="$SVC_VENV/bin:$PATH"
}

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

svc_free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

svc_tmpdir() {
    [ -n "$SVC_DIR" ] && return 0
    SVC_DIR="$(mktemp -d "${TMPDIR:-/tmp}/orchestrator-test.XXXXXX")"
    # The PostgreSQL server runs as an unprivileged user that must reach its own subdirectory.
    chmod 755 "$SVC_DIR"
}

# Runs a command as the PostgreSQL OS user (when root) or as ourselves.
svc_as_pg_user() {
    if [ "$SVC_PG_USER" = "$(id -un)" ]; then
        "$@"
    else
        runuser -u "$SVC_PG_USER" -- "$@"
    fi
}

svc_stop_pid() {
    # svc_stop_pid PID NAME [SECONDS]: TERM, wait, then KILL.
    local pid="$1" name="$2" secs="${3:-20}" i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    svc_warn "$name (pid $pid) did not stop within ${secs}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

svc_show_log() {
    local f="$1"
    [ -f "$f" ] || return 0
    printf -- '---- last lines of %s ----\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
    printf -- '----\n' >&2
}

# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

svc_start_postgres() {
    svc_tmpdir
    SVC_PG_BIN="$(svc_pg_bindir)" || svc_die "PostgreSQL server binaries not found"
    if svc_is_root; then
        SVC_PG_USER="${ORCH_TEST_PG_OS_USER:-postgres}"
        id "$SVC_PG_USER" >/dev/null 2>&1 ||
            svc_die "OS user '$SVC_PG_USER' does not exist (it comes with the postgresql package)"
    else
        SVC_PG_USER="$(id -un)"
    fi
    SVC_PG_DATA="$SVC_DIR/postgres/data"
    mkdir -p "$SVC_DIR/postgres"
    chown "$SVC_PG_USER" "$SVC_DIR/postgres"
    chmod 700 "$SVC_DIR/postgres"

    svc_as_pg_user "$SVC_PG_BIN/initdb" -D "$SVC_PG_DATA" -U postgres -A trust \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$SVC_DIR/initdb.log" 2>&1 || {
        svc_show_log "$SVC_DIR/initdb.log"
        svc_die "initdb failed"
    }

    local attempt port
    for attempt in 1 2 3; do
        port="$(svc_free_port)"
        # setsid: the server gets its own session, so a CTRL-C in the terminal reaches only
        # this script, whose trap then stops the server cleanly.
        if svc_as_pg_user setsid -w "$SVC_PG_BIN/pg_ctl" -D "$SVC_PG_DATA" \
            -l "$SVC_DIR/postgres/server.log" -w -t 60 \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $SVC_DIR/postgres \
                -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                -c max_connections=400 -c shared_buffers=256MB" \
            start >"$SVC_DIR/pg_ctl.log" 2>&1; then
            ORCH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
            export ORCH_TEST_POSTGRES_URL
            svc_log "PostgreSQL $("$SVC_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
            return 0
        fi
        svc_warn "PostgreSQL did not start on port $port (attempt $attempt)"
        svc_show_log "$SVC_DIR/postgres/server.log"
    done
    svc_die "could not start PostgreSQL"
}

svc_stop_postgres() {
    [ -n "$SVC_PG_DATA" ] && [ -f "$SVC_PG_DATA/postmaster.pid" ] || return 0
    svc_as_pg_user "$SVC_PG_BIN/pg_ctl" -D "$SVC_PG_DATA" -m immediate -w -t 30 stop \
        >/dev/null 2>&1 || {
        local pid
        pid="$(head -n 1 "$SVC_PG_DATA/postmaster.pid" 2>/dev/null || true)"
        svc_stop_pid "$pid" postgres 10
    }
}

# --------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------

svc_start_redis() {
    svc_tmpdir
    mkdir -p "$SVC_DIR/redis"
    SVC_REDIS_PIDFILE="$SVC_DIR/redis/redis.pid"
    local attempt port i
    for attempt in 1 2 3; do
        port="$(svc_free_port)"
        rm -f "$SVC_REDIS_PIDFILE"
        setsid -w redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$SVC_DIR/redis" --daemonize yes --pidfile "$SVC_REDIS_PIDFILE" \
            --logfile "$SVC_DIR/redis/redis.log" --maxclients 10000 ||
            true
        for ((i = 0; i < 100; i++)); do
            if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
                ORCH_TEST_REDIS_URL="redis://127.0.0.1:$port"
                export ORCH_TEST_REDIS_URL
                svc_log "Redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port"
                return 0
            fi
            sleep 0.1
        done
        svc_warn "Redis did not answer on port $port (attempt $attempt)"
        svc_show_log "$SVC_DIR/redis/redis.log"
        svc_stop_redis
    done
    svc_die "could not start Redis"
}

svc_stop_redis() {
    [ -n "$SVC_REDIS_PIDFILE" ] && [ -f "$SVC_REDIS_PIDFILE" ] || return 0
    svc_stop_pid "$(cat "$SVC_REDIS_PIDFILE" 2>/dev/null)" redis-server 10
    rm -f "$SVC_REDIS_PIDFILE"
}

# --------------------------------------------------------------------------------------
# Docker engine
# --------------------------------------------------------------------------------------

svc_docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

# Import a one-file image and remove it again: proves the storage driver really works.
svc_docker_roundtrip() {
    local d
    d="$(mktemp -d "$SVC_DIR/probe.XXXXXX")"
    echo probe >"$d/probe.txt"
    local tag="orchestrator-test/probe:$$"
    if tar -C "$d" -c . | timeout 60 docker import - "$tag" >/dev/null 2>&1 &&
        timeout 60 docker image rm "$tag" >/dev/null 2>&1; then
        rm -rf "$d"
        return 0
    fi
    rm -rf "$d"
    return 1
}

svc_run_dockerd() {
    # svc_run_dockerd DRIVER: start dockerd with that storage driver and wait until it answers.
    local driver="$1" i
    svc_log "starting dockerd (storage driver $driver)"
    setsid dockerd --storage-driver "$driver" --pidfile "$SVC_DIR/dockerd.pid" \
        >"$SVC_DIR/dockerd-$driver.log" 2>&1 </dev/null &
    SVC_DOCKERD_PID=$!
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$SVC_DOCKERD_PID" 2>/dev/null; then
            svc_warn "dockerd ($driver) exited during start-up"
            svc_show_log "$SVC_DIR/dockerd-$driver.log"
            SVC_DOCKERD_PID=""
            return 1
        fi
        if svc_docker_answers; then
            if svc_docker_roundtrip; then
                SVC_DOCKER_DRIVER="$driver"
                return 0
            fi
            svc_warn "dockerd ($driver) answers but cannot store an image"
            svc_show_log "$SVC_DIR/dockerd-$driver.log"
            svc_stop_dockerd
            return 1
        fi
        sleep 0.1
    done
    svc_warn "dockerd ($driver) did not answer within 60s"
    svc_show_log "$SVC_DIR/dockerd-$driver.log"
    svc_stop_dockerd
    return 1
}

svc_start_docker() {
    svc_tmpdir
    unset ORCH_TEST_DOCKER
    SVC_DOCKER_DRIVER=""
    if svc_docker_answers; then
        SVC_DOCKER_DRIVER="$(docker info --format '{{.Driver}}' 2>/dev/null || echo '?')"
        svc_log "using the running Docker engine (storage driver $SVC_DOCKER_DRIVER)"
    elif ! svc_is_root; then
        svc_warn "no Docker engine answers and starting one needs root: Docker tests are skipped"
        return 0
    elif [ -n "${DOCKER_HOST:-}" ]; then
        svc_warn "DOCKER_HOST=$DOCKER_HOST does not answer: Docker tests are skipped"
        return 0
    else
        local driver ok=0
        for driver in ${ORCH_TEST_DOCKER_STORAGE_DRIVER:-overlay2 vfs}; do
            if svc_run_dockerd "$driver"; then
                ok=1
                break
            fi
        done
        if [ "$ok" -ne 1 ]; then
            svc_warn "could not start a Docker engine: Docker tests are skipped"
            return 0
        fi
        svc_log "dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null) (storage driver $SVC_DOCKER_DRIVER)"
    fi
    export ORCH_TEST_DOCKER=1
}

svc_stop_dockerd() {
    [ -n "$SVC_DOCKERD_PID" ] || return 0
    # dockerd stops its own containerd and running containers on TERM.
    svc_stop_pid "$SVC_DOCKERD_PID" dockerd 30
    SVC_DOCKERD_PID=""
}

# --------------------------------------------------------------------------------------
# Test images (made from this machine's binaries: no registry needed)
# --------------------------------------------------------------------------------------

svc_docker_image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# Copies a binary and the shared libraries it needs into a root filesystem.
svc_copy_with_libs() {
    local bin="$1" root="$2" lib
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    for lib in $(ldd "$bin" | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]+ \(/ {print $1}'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

svc_minimal_etc() {
    local root="$1"
    mkdir -p "$root/etc" "$root/tmp" "$root/data"
    chmod 1777 "$root/tmp"
    cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# Root filesystem of the Redis test image, shaped like the official image as far as the redis
# blueprint needs: redis-server and redis-cli with their libraries, a busybox shell with
# grep, and a docker-entrypoint.sh that runs its arguments.
svc_redis_rootfs() {
    local root="$1" bin path applet
    for bin in redis-server redis-cli; do
        path="$(readlink -f "$(command -v "$bin")")"
        svc_copy_with_libs "$path" "$root"
        if [ "$path" != "/usr/bin/$bin" ]; then
            mkdir -p "$root/usr/bin"
            ln -sf "$path" "$root/usr/bin/$bin"
        fi
    done
    mkdir -p "$root/bin" "$root/usr/local/bin"
    cp -L /bin/busybox "$root/bin/busybox"
    for applet in sh grep cat echo env ls ps sleep test true false printf mkdir rm; do
        ln -s busybox "$root/bin/$applet"
    done
    cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Stands in for the official image's entrypoint: runs the given command as it is.
exec "$@"
EOF
    chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
    svc_minimal_etc "$root"
}

build_test_images() {
    [ "${ORCH_TEST_DOCKER:-}" = 1 ] || return 0
    local root

    if ! svc_docker_image_exists "$REDIS_TEST_IMAGE"; then
        svc_log "building $REDIS_TEST_IMAGE from $(command -v redis-server)"
        root="$(mktemp -d "$SVC_DIR/rootfs-redis.XXXXXX")"
        svc_redis_rootfs "$root"
        tar -C "$root" -c . | docker import \
            --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
            --change 'WORKDIR /data' \
            --change 'EXPOSE 6379' \
            --change 'CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]' \
            - "$REDIS_TEST_IMAGE" >/dev/null
        rm -rf "$root"
    fi
    # The redis blueprint runs `sh -c 'exec docker-entrypoint.sh redis-server …'` and checks
    # health with `redis-cli … | grep -q PONG`: all of that must work in the image.
    if timeout 120 docker run --rm "$REDIS_TEST_IMAGE" sh -c \
        'docker-entrypoint.sh redis-server --version | grep -q "Redis server" && redis-cli --version' \
        >/dev/null 2>&1; then
        export ORCH_TEST_REDIS_IMAGE="$REDIS_TEST_IMAGE"
    else
        svc_warn "$REDIS_TEST_IMAGE does not run"
    fi

    if [ -x /bin/busybox ]; then
        if ! svc_docker_image_exists "$BUSYBOX_TEST_IMAGE"; then
            svc_log "building $BUSYBOX_TEST_IMAGE from /bin/busybox"
            root="$(mktemp -d "$SVC_DIR/rootfs-busybox.XXXXXX")"
            mkdir -p "$root/bin"
            cp -L /bin/busybox "$root/bin/busybox"
            local applet
            for applet in sh wget nc sleep cat echo ls env true false printf mkdir rm test; do
                ln -s busybox "$root/bin/$applet"
            done
            svc_minimal_etc "$root"
            tar -C "$root" -c . | docker import \
                --change 'ENV PATH=/bin' \
                --change 'CMD ["sh"]' \
                - "$BUSYBOX_TEST_IMAGE" >/dev/null
            rm -rf "$root"
        fi
        if [ "$(timeout 120 docker run --rm "$BUSYBOX_TEST_IMAGE" sh -c 'echo ok' 2>/dev/null)" = ok ]; then
            export ORCH_TEST_BUSYBOX_IMAGE="$BUSYBOX_TEST_IMAGE"
        else
            svc_warn "$BUSYBOX_TEST_IMAGE does not run"
        fi
    fi
}

# --------------------------------------------------------------------------------------
# Start everything / stop everything
# --------------------------------------------------------------------------------------

svc_start_all() {
    local t0 t1
    t0="$(svc_now_ms)"
    svc_start_postgres
    svc_start_redis
    export ORCH_TEST_REQUIRE_SERVICES=1
    svc_start_docker
    t1="$(svc_now_ms)"
    build_test_images
    svc_log "services up in $(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))s (temp dir $SVC_DIR)"
}

svc_print_exports() {
    local v
    for v in ORCH_TEST_POSTGRES_URL ORCH_TEST_REDIS_URL ORCH_TEST_REQUIRE_SERVICES \
        ORCH_TEST_DOCKER ORCH_TEST_REDIS_IMAGE ORCH_TEST_BUSYBOX_IMAGE; do
        if [ -n "${!v:-}" ]; then
            printf 'export %s=%q\n' "$v" "${!v}"
        fi
    done
}

svc_cleanup() {
    [ "$SVC_CLEANED" -eq 0 ] || return 0
    SVC_CLEANED=1
    set +e
    svc_stop_redis
    svc_stop_postgres
    svc_stop_dockerd
    if [ -n "$SVC_DIR" ] && [ -d "$SVC_DIR" ]; then
        if [ "${ORCH_TEST_KEEP_TMP:-0}" = 1 ]; then
            svc_log "kept $SVC_DIR"
        else
            rm -rf "$SVC_DIR"
        fi
    fi
}
