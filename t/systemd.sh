#!/bin/sh
# Packaging (issue 12): the systemd unit made by make passes
# `systemd-analyze verify` (skipped, with the reason, where there is no
# systemd-analyze) and names the real paths; the man pages name the
# sysconfdir that make install uses (they said /etc/shoal whatever it was);
# the sample config as installed has an absolute data_dir and validates;
# `make install DESTDIR=...` puts the unit, the sample, the man pages and
# shoald where they belong.
. "${top_srcdir:-.}/t/tap.sh"
. "${top_srcdir:-.}/t/lib.sh"

unit=$top_builddir/contrib/systemd/shoald.service
ok "$([ -f "$unit" ]; echo $?)" "make made contrib/systemd/shoald.service"
u=$(cat "$unit")
like "$u" "Type=${SHOAL_SYSTEMD:-exec}" "  Type=${SHOAL_SYSTEMD:-exec} (notify when built with libsystemd)"
like "$u" "ExecStart=$sbindir/shoald --config $sysconfdir/shoal/shoald.toml " \
	"  runs $sbindir/shoald with $sysconfdir/shoal/shoald.toml"
like "$u" "StateDirectory=shoal" "  StateDirectory=shoal"
for opt in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes DynamicUser=yes; do
	like "$u" "$opt" "  $opt"
done
ok "$(printf '%s' "$u" | grep -q '@[a-zA-Z_]*@'; [ $? -ne 0 ]; echo $?)" "  nothing left to substitute"

for page in shoald.8 shoald.toml.5; do
	m=$(cat "$top_builddir/doc/$page")
	like "$m" "$sysconfdir/shoal/shoald.toml" "doc/$page names $sysconfdir/shoal/shoald.toml"
	ok "$(printf '%s' "$m" | grep -q '@[a-zA-Z_]*@'; [ $? -ne 0 ]; echo $?)" \
		"  nothing left to substitute"
	if [ "$sysconfdir" != /etc ]; then
		ok "$(printf '%s' "$m" | grep -q ' /etc/shoal'; [ $? -ne 0 ]; echo $?)" \
			"  and not /etc/shoal, which is not where make install puts it"
	fi
done

inst=$top_builddir/etc/shoald.toml.installed
like "$(grep '^data_dir' "$inst")" "data_dir = \"$localstatedir/lib/shoal\"" \
	"the installed sample keeps data in $localstatedir/lib/shoal, an absolute path"
is "$(diff "$top_srcdir/etc/shoald.toml" "$inst" | grep -c '^[<>]')" 2 \
	"  and differs from etc/shoald.toml in that line only"
out=$("$SHOALD" --check-config "$inst" 2>&1)
ok $? "  shoald --check-config accepts it" || diag "$out"

root=$TESTDIR/root
out=$(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make install DESTDIR="$root" 2>&1)
ok $? "make install DESTDIR=..." || diag "$(printf '%s\n' "$out" | tail -15)"
for f in "$sbindir/shoald" "$sysconfdir/shoal/shoald.toml"; do
	ok "$([ -f "$root$f" ]; echo $?)" "  installs $f"
done
like "$(grep '^data_dir' "$root$sysconfdir/shoal/shoald.toml")" "\"$localstatedir/lib/shoal\"" \
	"  the sample with its absolute data_dir"
n=$(find "$root" -name shoald.8 -o -name shoald.toml.5 | wc -l)
is "$n" 2 "  the man pages shoald.8 and shoald.toml.5"
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$top_builddir/Makefile")
if [ -n "$unitdir" ]; then
	ok "$([ -f "$root$unitdir/shoald.service" ]; echo $?)" "  the unit in $unitdir"
else
	skip "configured --without-systemdsystemunitdir: no unit installed"
fi
if command -v systemd-analyze >/dev/null; then
	# as installed: ExecStart's program and the Documentation= man pages exist
	mkdir -p "$TESTDIR/unit"
	sed "s|^ExecStart=[^ ]*|ExecStart=$root$sbindir/shoald|" "$unit" >"$TESTDIR/unit/shoald.service"
	mandir=$(dirname "$(dirname "$(find "$root" -name shoald.8 | head -1)")")
	out=$(cd "$TESTDIR/unit" && MANPATH=$mandir systemd-analyze verify ./shoald.service 2>&1)
	rc=$?
	is "$rc" 0 "systemd-analyze verify shoald.service: exit 0" || diag "$out"
	bad=$(printf '%s\n' "$out" | grep 'shoald.service' || true)
	is "$bad" "" "  and nothing to say about it (its man pages found too)"
else
	skip "systemd-analyze is not installed (Debian package systemd): the unit is not verified"
	skip "systemd-analyze is not installed"
fi
done_testing
