# Shared by the bench/run_*.sh scripts: machine load and facts. Source it; do not run it.

# Percentage of all CPUs busy over one second, from /proc/stat.
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# Waits (up to WAIT_IDLE s) until under 15% of the CPUs are busy; echoes the last reading.
wait_idle() {
  local busy deadline=$(( SECONDS + WAIT_IDLE ))
  busy=$(cpu_busy)
  while (( busy >= 15 && SECONDS < deadline )); do sleep 4; busy=$(cpu_busy); done
  echo "$busy"
}

# Exports what the reports print about the machine (BUILD must be set).
export_machine_facts() {
  export TORCH_PKG="$(dpkg-query -W -f='${Package} ${Version}' libtorch-dev 2>/dev/null || true)"
  export COMMIT="$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
  export CPU_MODEL="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  export CPU_COUNT="$(nproc)"
  export CORES="$(lscpu | awk -F: '/^Core\(s\) per socket/ {c=$2} /^Socket\(s\)/ {s=$2} END {print c*s}')"
  export MEM_GIB="$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
  export OS_NAME="$(. /etc/os-release && echo "$PRETTY_NAME")"
  export KERNEL="$(uname -r)"
  export CXX_VERSION="$(grep -m1 '^CMAKE_CXX_COMPILER:' "$BUILD/CMakeCache.txt" | cut -d= -f2 | xargs -r -I{} sh -c '{} --version | head -1')"
  export DATE_UTC="$(date -u '+%Y-%m-%d %H:%M UTC')"
}
