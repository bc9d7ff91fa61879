#!/bin/sh
# glmd postinstall: after the files are in place.
#   deb postinst: configure [OLD-VERSION] | abort-upgrade | abort-remove | abort-deconfigure ...
#   rpm %post:    1 (install) | 2 or more (upgrade)
# Makes the state and log directories, then with a running systemd: on an
# install enables and starts glmd, on an upgrade restarts it if it runs.
# Without systemd (containers, chroots) it starts nothing. Idempotent.
set -e

state=/var/lib/glmd
logs=/var/log/glmd
unit=glmd.service

case "$1" in
configure | [1-9] | [1-9][0-9]*) ;;
*) exit 0 ;;
esac

[ -d "$state" ] || install -d -m 0750 "$state"
[ -d "$logs" ] || install -d -m 0750 "$logs"
# The package gives conf.d to root:glmd 0750 already; this repairs a tree
# unpacked before the group existed.
if getent group glmd >/dev/null; then
	chgrp glmd /etc/glmd/conf.d
	chmod 0750 /etc/glmd/conf.d
fi

# An install, not an upgrade: preinstall left its mark, or rpm says 1, or
# dpkg names no previous version (a reinstall after a removal does name
# one: there only the mark tells).
fresh=0
if [ -e "$state/.package-fresh-install" ] || [ "$1" = 1 ] || { [ "$1" = configure ] && [ -z "${2:-}" ]; }; then
	fresh=1
fi
rm -f "$state/.package-fresh-install"

# policy-rc.d (Debian) forbids starting services while an image is built.
may_start() {
	[ -x /usr/sbin/policy-rc.d ] || return 0
	rc=0
	/usr/sbin/policy-rc.d "$unit" start >/dev/null 2>&1 || rc=$?
	[ "$rc" -ne 101 ]
}

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ "$fresh" = 1 ]; then
		systemctl enable "$unit" || echo "glmd: could not enable $unit" >&2
		if may_start; then
			systemctl start "$unit" ||
				echo "glmd: $unit did not start; see: journalctl -u glmd, and check /etc/glmd/glmd.toml with: glmd validate" >&2
		fi
	else
		# Restarts only a running glmd: one an operator stopped stays stopped.
		systemctl try-restart "$unit" ||
			echo "glmd: $unit did not restart; see: journalctl -u glmd" >&2
	fi
elif [ "$fresh" = 1 ]; then
	# A chroot or an image: enable it for the boot to come.
	if command -v systemctl >/dev/null 2>&1; then
		systemctl enable "$unit" >/dev/null 2>&1 || true
	fi
	echo "glmd: systemd is not running here, so glmd was not started; run: /usr/bin/glmd --config /etc/glmd/glmd.toml"
fi
exit 0
