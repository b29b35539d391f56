#!/bin/bash
# The drawing of the house, checked: derives the folder-level include graph of src/ (an arrow
# A -> B for each `#include "B/..."` in a file of src/A/) and fails on an arrow that runs up the
# layering of DESIGN.md, on a cycle between folders, or on an MPI header outside src/dist/.
#   cli -> serve -> train | eval | analysis | report -> model | diffusion -> moe -> nn | optim -> core,
#   at the side, used from above: config, store, data, io, dist (they use core and each other).
# Arrows within a layer (train -> eval) are allowed while they form no cycle.
# Given the object folder of a build (build/obj), it also derives the file-level graph (A -> B when
# A.o uses a symbol that B.o defines) and fails on a cycle: no two files call each other in a loop.
# Usage: scripts/include-graph.sh [--print] [OBJECT_DIR]   (--print lists the folder arrows)
set -euo pipefail
cd "$(dirname "$0")/.."

rank() {
    case $1 in
    core) echo 0 ;;
    config | store | data | io | dist) echo 1 ;;
    nn | optim) echo 2 ;;
    moe) echo 3 ;;
    model | diffusion) echo 4 ;;
    train | eval | analysis | report) echo 5 ;;
    serve) echo 6 ;;
    cli) echo 7 ;;
    *) echo "" ;;
    esac
}

arrows=$(grep -H '^#include "[a-z_]*/' src/*/*.[ch] |
    sed -E 's#^src/([^/]+)/[^:]*:\#include "([^/"]+)/.*#\1 \2#' | awk '$1 != $2' | sort | uniq -c)
print=0
[ "${1:-}" = --print ] && print=1 && shift
objects=${1:-}
[ $print = 1 ] && echo "$arrows" | awk '{print $2 " -> " $3 " (" $1 " includes)"}'

status=0
while read -r count from to; do
    rf=$(rank "$from") rt=$(rank "$to")
    if [ -z "$rf" ] || [ -z "$rt" ]; then
        echo "include-graph: folder '$from' or '$to' has no place in the layering (add it to scripts/include-graph.sh and DESIGN.md)" >&2
        status=1
    elif [ "$rf" -lt "$rt" ]; then
        echo "include-graph: src/$from includes src/$to ($count times), an arrow running up:" >&2
        grep -l "^#include \"$to/" src/"$from"/*.[ch] | sed 's/^/    /' >&2
        status=1
    fi
done <<<"$arrows"

# tsort reports a loop on stderr when the arrows contain one.
if ! echo "$arrows" | awk '{print $2, $3}' | tsort >/dev/null 2>/tmp/include-graph.$$; then
    status=1
fi
if [ -s /tmp/include-graph.$$ ]; then
    echo "include-graph: cycle between folders:" >&2
    sed 's/^/    /' /tmp/include-graph.$$ >&2
    status=1
fi
rm -f /tmp/include-graph.$$

mpi=$(grep -l '#include <mpi.h>' src/*/*.[ch] | grep -v '^src/dist/' || true)
if [ -n "$mpi" ]; then
    echo "include-graph: MPI header outside src/dist/: $mpi" >&2
    status=1
fi
# File level: symbols defined and used by each object.
if [ -n "$objects" ]; then
    calls=$({
        nm -A --defined-only "$objects"/*/*.o | awk '$2 ~ /^[TDRB]$/ {sub(/:.*/, "", $1); print "D", $1, $3}'
        nm -A -u "$objects"/*/*.o | awk '{sub(/:.*/, "", $1); print "U", $1, $NF}'
    } | sed -E "s#^(.) $objects/(.*)\\.o #\\1 \\2 #" |
        awk '$1 == "D" {def[$3] = $2} $1 == "U" {use[NR] = $2 " " $3}
        END {for (i in use) {split(use[i], p, " "); if ((p[2] in def) && def[p[2]] != p[1]) print p[1], def[p[2]]}}' |
        sort -u)
    if ! echo "$calls" | tsort >/dev/null 2>/tmp/include-graph.$$ || [ -s /tmp/include-graph.$$ ]; then
        echo "include-graph: files that call each other in a loop:" >&2
        sed 's/^/    /' /tmp/include-graph.$$ >&2
        status=1
    fi
    rm -f /tmp/include-graph.$$
    [ $status = 0 ] && echo "include-graph: $(echo "$calls" | wc -l) calls between files of $objects, no loop"
fi
[ $status = 0 ] && echo "include-graph: $(echo "$arrows" | wc -l) arrows between folders, none up, no cycle"
exit $status
