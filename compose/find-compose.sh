# Sourced by ci.sh and demo.sh: sets COMPOSE to the compose command this machine has
# (`docker compose`, else Debian's `docker-compose`), or returns 1 when it has neither.
find_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  else
    return 1
  fi
}
