#!/usr/bin/env bash
# profile-groups.sh BINARY PROFILE GROUPS-FILE: CPU of a pprof profile by
# group. GROUPS-FILE has "name<TAB>regexp" lines; each sample goes to the
# first group, in file order, with a function on its stack matching the
# regexp (pprof -focus, with every earlier group's regexp as -ignore); what
# matches none is "the rest". Prints seconds and share of the profile.
set -euo pipefail
bin=$1 prof=$2 groups=$3
total=$(go tool pprof -top -nodecount=1 "$bin" "$prof" 2>/dev/null | sed -n 's/.*Total samples = \([0-9.]*\)\(m\?s\).*/\1 \2/p')
read -r tv tu <<<"$total"
[ "$tu" = ms ] && tv=$(awk -v v="$tv" 'BEGIN{print v/1000}')
secs() { # the CPU of the samples pprof keeps with these filters
  go tool pprof -top -nodecount=100000 -nodefraction=0 -edgefraction=0 "$@" "$bin" "$prof" 2>/dev/null |
    sed -n 's/^Showing nodes accounting for \([0-9.]*\)\(m\?s\),.*/\1 \2/p' |
    awk '{ v = $1; if ($2 == "ms") v /= 1000; print v } END { if (NR == 0) print 0 }'
}
ignore=""
printf "%-64s %8s %7s\n" group seconds share
while IFS=$'\t' read -r name re; do
  [ -z "$name" ] && continue
  if [ -n "$ignore" ]; then s=$(secs -focus="$re" -ignore="$ignore"); else s=$(secs -focus="$re"); fi
  awk -v n="$name" -v s="$s" -v t="$tv" 'BEGIN { printf "%-64s %8.2f %6.1f%%\n", n, s, 100*s/t }'
  ignore=${ignore:+$ignore|}$re
done <"$groups"
rest=$(secs -ignore="$ignore")
awk -v s="$rest" -v t="$tv" 'BEGIN { printf "%-64s %8.2f %6.1f%%\n%-64s %8.2f\n", "the rest", s, 100*s/t, "total", t }'
