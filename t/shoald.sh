#!/bin/sh
# shoald as a process: --version, --check-config on good and bad files, start
# without a config, stop on SIGTERM and SIGINT within a second, two daemons
# on one data dir, flags over the file, SIGHUP reload.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

out=$("$SHOALD" --version)
like "$out" "shoald (shoal) " "--version prints the version"

# --check-config ------------------------------------------------------------
out=$("$SHOALD" --check-config "$top_srcdir/etc/shoald.toml" 2>&1)
ok $? "--check-config accepts etc/shoald.toml"
like "$out" "configuration ok" "and says so"

bad=$TESTDIR/bad.toml
printf '[node]\nname = "n1"\n\n[log]\nlevle = "debug"\n' >"$bad"
out=$("$SHOALD" --check-config "$bad" 2>&1); st=$?
is "$st" 2 "unknown key: exit status 2"
like "$out" "$bad:5:1: unknown key 'log.levle'" "unknown key: file:line:col and key"

printf '[listen]\nbase_port = "seven"\n' >"$bad"
out=$("$SHOALD" --check-config "$bad" 2>&1); st=$?
is "$st" 2 "wrong type: exit status 2"
like "$out" "$bad:2:1: key 'listen.base_port': expected an integer, found string" \
	"wrong type: file:line and key"

printf '[listen]\nbase_port = 747\nbase_port = 748\n' >"$bad"
out=$("$SHOALD" --check-config "$bad" 2>&1); st=$?
is "$st" 2 "duplicate key: exit status 2"
like "$out" "$bad:3:" "duplicate key: file and line"

printf '[log\nlevel = "info"\n' >"$bad"
out=$("$SHOALD" --check-config "$bad" 2>&1); st=$?
is "$st" 2 "syntax error: exit status 2"
like "$out" "$bad:1:" "syntax error: file and line"

out=$("$SHOALD" --check-config "$TESTDIR/missing.toml" 2>&1); st=$?
is "$st" 2 "missing file: exit status 2"
like "$out" "missing.toml" "missing file: names the file"

out=$("$SHOALD" --check-config --log-level loud 2>&1); st=$?
is "$st" 2 "bad flag value: exit status 2"
like "$out" "command line: --log-level: unknown value 'loud'" "bad flag value: names the flag"

out=$("$SHOALD" --frobnicate 2>&1); st=$?
is "$st" 2 "unknown option: exit status 2"
like "$out" "unknown option '--frobnicate'" "unknown option: names it"

# start without a config, stop on SIGTERM ----------------------------------
# (on a free base port: shoald binds its cluster port, and tests run in
# parallel)
free_base_port 1 || bail_out "no free ports"
cd "$TESTDIR" || bail_out "cd $TESTDIR"
start_shoald "$TESTDIR/a.log" --listen-base-port "$base"
a=$pid
wait_for "$TESTDIR/a.log" "started" 10
ok $? "shoald with no config starts"
ok "$([ -f "$TESTDIR/shoal-data/node.id" ]; echo $?)" "it created ./shoal-data/node.id"

# a second daemon on the same data dir refuses ------------------------------
out=$(timeout 10 "$SHOALD" --listen-base-port "$base" 2>&1); st=$?
is "$st" 1 "a second shoald on the same data dir exits 1"
like "$out" "in use by another shoald (pid $a)" "and names the first one's pid"
is "$(cat "$TESTDIR/shoal-data/LOCK")" "$a" "LOCK holds the holder's pid"
ok "$(kill -0 "$a"; echo $?)" "the first one keeps running"

kill -TERM "$a"
wait_exit "$a" 1000
ok $? "SIGTERM stops it within a second"
is "$status" 0 "exit status 0"
like "$(cat "$TESTDIR/a.log")" "SIGTERM received: stopping" "it logs why it stops"

start_shoald "$TESTDIR/b.log" --node-name restarted --listen-base-port "$base"
wait_for "$TESTDIR/b.log" "started" 10
ok $? "after the first stopped, the data dir can be used again"
id1=$(cat "$TESTDIR/shoal-data/node.id")
like "$(cat "$TESTDIR/b.log")" "restarted" "--node-name sets the node name in the log"
like "$(cat "$TESTDIR/b.log")" "id $id1" "the node id is the stored one"
kill -INT "$pid"
wait_exit "$pid" 1000
ok $? "SIGINT stops it within a second"
is "$status" 0 "exit status 0"

# flags override the file; SIGHUP reloads ------------------------------------
conf=$TESTDIR/c.toml
printf '[node]\nname = "from-file"\ndata_dir = "%s/c"\n[log]\nlevel = "info"\nfile = "%s/c.file.log"\n' \
	"$TESTDIR" "$TESTDIR" >"$conf"
start_shoald "$TESTDIR/c.log" --config "$conf" --node-name from-flag --listen-base-port "$base"
wait_for "$TESTDIR/c.file.log" "started" 10
ok $? "log.file from the file is used"
like "$(cat "$TESTDIR/c.file.log")" " from-flag server:" "the flag overrides the file"
printf '[node]\nname = "from-file"\ndata_dir = "%s/c"\n[log]\nlevel = "debug"\nfile = "%s/c.file.log"\n' \
	"$TESTDIR" "$TESTDIR" >"$conf"
kill -HUP "$pid"
wait_for "$TESTDIR/c.file.log" "log.level changed from 'info' to 'debug'" 10
ok $? "SIGHUP applies a runtime key"
printf '[node]\nname = "from-file"\ndata_dir = "%s/elsewhere"\n[log]\nlevel = "debug"\nfile = "%s/c.file.log"\n' \
	"$TESTDIR" "$TESTDIR" >"$conf"
kill -HUP "$pid"
wait_for "$TESTDIR/c.file.log" "node.data_dir changed .* restart to apply" 10
ok $? "SIGHUP reports a key that needs a restart" || diag "$(cat "$TESTDIR/c.file.log")"
printf '[log]\nlevel = 5\n' >"$conf"
kill -HUP "$pid"
wait_for "$TESTDIR/c.file.log" "reload failed, keeping the running configuration" 10
ok $? "SIGHUP with a broken file keeps running"
ok "$(kill -0 "$pid"; echo $?)" "and the node is still up"
kill -TERM "$pid"
wait_exit "$pid" 1000
ok $? "and stops on SIGTERM"

# a bad bootstrap.state stops the node with its path and the fault ----------
mkdir -p "$TESTDIR/boot"
printf 'shoal-bootstrap 1 1 zz\n' >"$TESTDIR/boot/bootstrap.state"
out=$(timeout 10 "$SHOALD" --node-data-dir "$TESTDIR/boot" --listen-base-port "$base" \
	--cluster-bootstrap-expect 3 --cluster-seeds 127.0.0.1:1 2>&1); st=$?
ok "$([ "$st" -ne 0 ] && [ "$st" -ne 124 ]; echo $?)" "a corrupt bootstrap.state: shoald exits ($st)"
like "$out" "boot/bootstrap.state: field 2 is not 1 to 16 hex digits" "and names the file and the field"
printf 'shoal-bootstrap 1 1 5 1 5 0 2 a b\n' >"$TESTDIR/boot/bootstrap.state"
out=$(timeout 10 "$SHOALD" --node-data-dir "$TESTDIR/boot" --listen-base-port "$base" \
	--cluster-bootstrap-expect 3 --cluster-seeds 127.0.0.1:1 2>&1); st=$?
ok "$([ "$st" -ne 0 ] && [ "$st" -ne 124 ]; echo $?)" "a founder set of 2 with bootstrap_expect 3: shoald exits"
like "$out" "holds a founder set of 2 while cluster.bootstrap_expect is 3" "and says why"

done_testing
