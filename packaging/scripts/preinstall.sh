#!/bin/sh
# glmd preinstall: before the files are unpacked.
#   deb preinst: install [OLD-VERSION] | upgrade OLD-VERSION | abort-upgrade NEW-VERSION
#   rpm %pre:    1 (install) | 2 or more (upgrade)
# Creates the glmd group (the group of the control socket and of
# /etc/glmd/conf.d) before dpkg or rpm needs it for the files' ownership, and
# tells postinstall whether this is an install or an upgrade. Idempotent.
set -e

state=/var/lib/glmd

case "$1" in
install) fresh=1 ;;
upgrade) fresh=0 ;;
1) fresh=1 ;;
[2-9] | [1-9][0-9]*) fresh=0 ;;
*) exit 0 ;;
esac

[ -d "$state" ] || install -d -m 0750 "$state"

if ! getent group glmd >/dev/null; then
	if command -v groupadd >/dev/null 2>&1; then
		groupadd --system glmd
	elif command -v addgroup >/dev/null 2>&1; then
		addgroup --system glmd
	else
		echo "glmd: cannot create the system group glmd: neither groupadd nor addgroup is installed (install passwd or shadow-utils)" >&2
		exit 1
	fi
	# Purge removes the group only if the package made it.
	echo "the glmd package created the glmd group; purging the package removes it" >"$state/.package-group"
fi

# postinstall enables and starts glmd on a first install (also a reinstall
# after a removal), and only restarts it on an upgrade.
if [ "$fresh" = 1 ]; then
	: >"$state/.package-fresh-install"
fi
exit 0
