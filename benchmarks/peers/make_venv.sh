#!/bin/sh
# make_venv.sh NAME PYTHON [optional]: the peer's own virtualenv data/peers/NAME-venv, from PyPI with the pinned
# benchmarks/peers/requirements-NAME.txt (kept while that file is unchanged). A required peer that cannot be
# installed fails the make target; an optional one (cryptofeed: it needs Python >= 3.13) leaves the reason in
# data/peers/NAME-venv.skipped, where the bench reports it, and the others run.
set -u
name=$1; python=$2; optional=${3:-}
dir=data/peers; venv=$dir/$name-venv; req=benchmarks/peers/requirements-$name.txt
mkdir -p $dir
if [ -f $venv/.installed ] && [ $venv/.installed -nt $req ]; then rm -f $venv.skipped; exit 0; fi
rm -rf $venv $venv.skipped
if [ -z "$python" ]; then
    reason="no Python interpreter for $name (cryptofeed 3 needs Python >= 3.13)"
elif "$python" -m venv $venv >$dir/$name-install.log 2>&1 && $venv/bin/pip install -q -r $req >>$dir/$name-install.log 2>&1; then
    touch $venv/.installed
    exit 0
else
    reason="venv or pip install -r $req failed: $(grep -v '^WARNING: Location' $dir/$name-install.log | tail -n 3 | tr '\n' ' ')"
fi
rm -rf $venv
if [ -n "$optional" ]; then
    echo "$reason" > $venv.skipped
    echo "bench-peers: $name skipped: $reason" >&2
    exit 0
fi
echo "bench-peers: $reason" >&2
exit 1
