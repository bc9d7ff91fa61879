#!/bin/sh
# glmd postremove: after the files are removed.
#   deb postrm: remove | purge | upgrade NEW-VERSION | abort-install | abort-upgrade | failed-upgrade | disappear
#   rpm %postun: 0 (erase) | 1 or more (upgrade)
# A purge removes what the package made: glmd's state and task logs, the
# socket directory and, if the package created it, the glmd group. Task
# files you wrote in /etc/glmd/conf.d are yours and stay. rpm has no purge:
# an erase keeps state, logs and the group. Idempotent.
set -e

state=/var/lib/glmd
logs=/var/log/glmd

reload_systemd() {
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl reset-failed glmd.service >/dev/null 2>&1 || true
	fi
}

case "$1" in
remove | 0)
	reload_systemd
	;;
purge)
	made_group=0
	[ -e "$state/.package-group" ] && made_group=1
	rm -rf "$state" "$logs" /run/glmd
	if [ "$made_group" = 1 ] && getent group glmd >/dev/null; then
		groupdel glmd || echo "glmd: could not remove the group glmd (is it a user's primary group?)" >&2
	fi
	reload_systemd
	;;
abort-install)
	rm -f "$state/.package-fresh-install"
	;;
esac
exit 0
