#!/bin/sh
# glmd preremove: before the files are removed.
#   deb prerm: remove | upgrade NEW-VERSION | deconfigure ... | failed-upgrade OLD-VERSION
#   rpm %preun: 0 (erase) | 1 or more (upgrade)
# On a removal stops glmd (which stops every task, each within its stop
# timeout) and disables it. An upgrade stops nothing: the new package's
# postinstall restarts glmd, so the workers are down only once. Idempotent.
set -e

unit=glmd.service

case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl stop "$unit" || echo "glmd: could not stop $unit; see: journalctl -u glmd" >&2
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable "$unit" >/dev/null 2>&1 || true
fi

# A glmd started by hand (no systemd) is not ours to stop: say so.
for exe in /proc/[0-9]*/exe; do
	if [ "$(readlink "$exe" 2>/dev/null)" = /usr/bin/glmd ]; then
		pid=${exe#/proc/}
		echo "glmd: glmd (pid ${pid%/exe}) still runs; stop it with: kill -TERM ${pid%/exe}" >&2
	fi
done
exit 0
