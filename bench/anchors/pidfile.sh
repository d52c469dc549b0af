# Sourced by the anchor scripts: a server run in the background with its pid in a file.

# pidfile_running PIDF: whether the process named in PIDF is alive
pidfile_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# pidfile_wait PIDF TEST...: up to 10 s for TEST to succeed while the process lives
pidfile_wait() {
  local pidf=$1; shift
  for _ in $(seq 1 50); do
    "$@" && return 0
    pidfile_running "$pidf" || return 1
    sleep 0.2
  done
  return 1
}

# pidfile_stop PIDF: SIGTERM, up to 10 s to exit, then forget the pid
pidfile_stop() {
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$1"
  echo stopped
}
