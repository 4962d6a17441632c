#!/usr/bin/env bash
# Run the real hermes-agent TUI (Node/Ink, unmodified) against its Python
# gateway, with tui-gateway's bridge mode in between, and a fake offline model.
#
#   examples/hermes/run.sh            TUI -> tui-gateway -- python -m tui_gateway.entry
#   examples/hermes/run.sh --direct   TUI -> python -m tui_gateway.entry (no bridge)
#   add --capture to tee the gateway's stdin/stdout to $HERMES_SCRATCH/wire.{in,out}
#
# Env: HERMES_SCRATCH (default /tmp/hermes), FAKE_OPENAI_PORT (default 18080),
#      TUI_GATEWAY (default: target/release/tui-gateway, else target/debug; the
#      first whose --help shows bridge mode).
# In the TUI: `!echo hi` runs a shell command, any other line is a prompt,
# `/quit` (or Ctrl+C on an empty composer) exits.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SCRATCH=${HERMES_SCRATCH:-/tmp/hermes}
PORT=${FAKE_OPENAI_PORT:-18080}
DIRECT=0 CAPTURE=0
for a in "$@"; do
  case $a in
    --direct) DIRECT=1 ;;
    --capture) CAPTURE=1 ;;
    *) echo "usage: $0 [--direct] [--capture]" >&2; exit 2 ;;
  esac
done
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)

# (a) hermes-agent 0.19.0 in a venv of its own (pip from PyPI, once).
PY=$SCRATCH/venv/bin/python
if ! "$PY" -c 'import importlib.util as u; assert u.find_spec("tui_gateway.entry")' 2>/dev/null; then
  python3 -m venv "$SCRATCH/venv"
  "$SCRATCH/venv/bin/pip" install -q hermes-agent==0.19.0
fi
TUI_JS=$("$PY" -c 'import hermes_cli, os; print(os.path.join(os.path.dirname(hermes_cli.__file__), "tui_dist", "entry.js"))')

# (b) A scratch HERMES_HOME: a "custom" OpenAI-compatible provider at the fake
# server. That is all a first boot needs (no `hermes setup`); the gateway fills
# in the rest (state.db, skills/, logs/...) itself. No lazy pip installs at run
# time (hermes would otherwise pip-install edge-tts when building the agent).
export HERMES_HOME=$SCRATCH/home
mkdir -p "$HERMES_HOME" "$SCRATCH/work"
cat > "$HERMES_HOME/config.yaml" <<EOF
model:
  provider: custom
  base_url: http://127.0.0.1:$PORT/v1
  api_key: sk-fake
  default: fake-model
security:
  allow_lazy_installs: false
EOF
export HERMES_DISABLE_LAZY_INSTALLS=1

# (c) The fake model, stopped when this script exits.
python3 "$HERE/fake_openai.py" "$PORT" 2>>"$SCRATCH/fake_openai.log" &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null || true' EXIT
until python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=1)" 2>/dev/null; do
  kill -0 $FAKE_PID 2>/dev/null || { echo "fake_openai.py died: see $SCRATCH/fake_openai.log" >&2; exit 1; }
  sleep 0.1
done

# (d) What the TUI spawns as "$HERMES_PYTHON -m tui_gateway.entry".
if [ "$DIRECT" = 1 ]; then
  BACKEND=$PY
else
  if [ -z "${TUI_GATEWAY:-}" ]; then   # release, else debug: the first with bridge mode
    for TUI_GATEWAY in "$REPO"/target/{release,debug}/tui-gateway; do
      "$TUI_GATEWAY" --help 2>/dev/null | grep -q -- '-- CMD' && break
    done
  fi
  [ -x "$TUI_GATEWAY" ] || { echo "no tui-gateway binary (cargo build first)" >&2; exit 1; }
  BACKEND=$SCRATCH/bridge-python
  printf '#!/bin/sh\nexec "%s" -- "%s" "$@"\n' "$TUI_GATEWAY" "$PY" > "$BACKEND"
  chmod +x "$BACKEND"
fi
if [ "$CAPTURE" = 1 ]; then   # tee both directions of the TUI <-> backend pipes
  : > "$SCRATCH/wire.in"; : > "$SCRATCH/wire.out"
  printf '#!/bin/bash\ntee -a "%s" | "%s" "$@" | tee -a "%s"\n' \
    "$SCRATCH/wire.in" "$BACKEND" "$SCRATCH/wire.out" > "$SCRATCH/capture-python"
  chmod +x "$SCRATCH/capture-python"
  BACKEND=$SCRATCH/capture-python
fi
export HERMES_PYTHON=$BACKEND

# (e) The unmodified TUI. HERMES_CWD is the gateway's cwd (where `!cmd` runs);
# without it the TUI would use the site-packages folder.
export HERMES_CWD=$SCRATCH/work NODE_ENV=production
node "$TUI_JS"
