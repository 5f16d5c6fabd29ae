#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable on 127.0.0.1, the way the README promises: use them if
# they already run; else start them with docker/compose.yml when a Docker engine is there;
# else, as root with apt-get, install and start Debian's packages; else say what to do.
# Sourced by scripts/run and scripts/test; safe to run again and again.

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '==> %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port name
  for _ in $(seq 1 60); do
    port_open "$1" "$2" && return 0
    sleep 0.5
  done
  say "$3 did not come up on $1:$2"
  return 1
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

start_with_docker() {
  say "starting PostgreSQL 15 and Redis 7 with docker compose"
  docker compose -f "$ROOT_DIR/docker/compose.yml" up -d postgres redis
}

start_with_apt() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  local missing=()
  command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! port_open "$PG_HOST" "$PG_PORT"; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # A development server: the postgres user connects over loopback without a password.
    if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      say "allowing passwordless loopback connections in $hba"
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  if ! port_open "$REDIS_HOST" "$REDIS_PORT"; then
    say "starting Redis (nothing kept on disk)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  fi
}

ensure_services() {
  if port_open "$PG_HOST" "$PG_PORT" && port_open "$REDIS_HOST" "$REDIS_PORT"; then
    say "PostgreSQL ($PG_HOST:$PG_PORT) and Redis ($REDIS_HOST:$REDIS_PORT) are running"
    return 0
  fi
  if docker_engine; then
    start_with_docker
  elif ! start_with_apt; then
    cat >&2 <<MSG
PostgreSQL on $PG_HOST:$PG_PORT and Redis on $REDIS_HOST:$REDIS_PORT are needed and are not running.
Start them in one of these ways, then run this command again:
  - with Docker:        docker compose -f docker/compose.yml up -d postgres redis
  - on Debian/Ubuntu:   sudo apt-get install postgresql redis-server
                        (allow 'host all all 127.0.0.1/32 trust' in pg_hba.conf, or set
                         WAIAAS__DATABASE__URL to a URL with a password)
  - anywhere else:      run PostgreSQL 15+ and Redis 7+ and point WAIAAS__DATABASE__URL and
                        WAIAAS__REDIS__URL (and WAIAAS_TEST_DATABASE_URL / WAIAAS_TEST_REDIS_URL
                        for the tests) at them.
MSG
    return 1
  fi
  wait_port "$PG_HOST" "$PG_PORT" PostgreSQL && wait_port "$REDIS_HOST" "$REDIS_PORT" Redis
}

# The tools tests run besides the servers: `openssl` makes the TLS tests' certificates.
ensure_test_tools() {
  # openssl: the TLS tests make their certificates with it. chromium and chromedriver: the
  # console's tests drive a real headless browser. pgbouncer: the pooler tests start their own.
  local missing=()
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's ${missing[*]} (for the TLS, browser and pooler tests)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    return 0
  fi
  say "the tests need ${missing[*]}: install them (sudo apt-get install ${missing[*]})"
  return 1
}

ensure_toolchain() {
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo is missing: install Rust with rustup (https://rustup.rs); rust-toolchain.toml pins 1.95.0"
    return 1
  fi
}
