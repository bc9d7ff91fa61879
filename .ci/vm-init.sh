#!/bin/sh
# PID 1 of the cgroup v2 test VM that .ci/cgroup2-vm boots (User-Mode-Linux, busybox, an initramfs).
#
# It mounts a pure cgroup v2 tree, checks it, runs every /tests/*.test binary as root with
#   GLMD_TEST_STRICT=1 GLMD_TEST_DISK=<the VM's disk> GLMD_TESTWORKER=/testworker
# and prints "GLMD-VM-EXIT <code>" (0 only if every binary passed), then powers the VM off. That line is the
# only result the host sees: the emulator's own exit status says nothing about the guest.
#
# Kernel command line (read from /proc/cmdline; the host script rejects values with blanks or quotes):
#   glmdtest=REGEXP    -test.run of every binary (default ^TestV2_); a binary with no matching test passes
#   glmdtimeout=SECS   -test.timeout of every binary, so that a hung test ends with a goroutine dump
export PATH=/bin HOME=/root USER=root TMPDIR=/tmp

say() { echo "glmd-vm: $*"; }

# The console is the host's log: LF, not the tty's CRLF.
stty -onlcr 2>/dev/null || true

# cmdarg NAME prints the value of NAME= on the kernel command line.
cmdarg() { echo " $(cat /proc/cmdline)" | sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# The kernel mounts devtmpfs itself only for a root filesystem from a disk, not for an initramfs.
grep -q '^[^ ]* /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup

# What tests expect of any Linux host: a loopback interface that is up (listeners on 127.0.0.1:0), localhost in
# /etc/hosts (there is no DNS), and users for os/user and for workers run as someone else.
ip link set lo up || say "cannot bring up the loopback interface"
mkdir -p /etc
printf '127.0.0.1 localhost\n::1 localhost\n' >/etc/hosts
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >/etc/group
hostname glmd-vm

code=0
# A pure v2 tree: cgroup2 on /sys/fs/cgroup, no v1 hierarchy anywhere, and the controllers the tests limit.
controllers=$(cat /sys/fs/cgroup/cgroup.controllers)
echo "GLMD-VM-CGROUP2 controllers: $controllers"
echo "GLMD-VM-CGROUP2 subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "GLMD-VM-CGROUP2 /proc/self/cgroup: $(cat /proc/self/cgroup)"
grep ' cgroup' /proc/mounts | sed 's/^/GLMD-VM-CGROUP2 mount: /'
for c in cpu io memory pids; do
	case " $controllers " in
	*" $c "*) ;;
	*) say "controller $c missing from /sys/fs/cgroup/cgroup.controllers"; code=1 ;;
	esac
done
if grep -q ' cgroup ' /proc/mounts; then
	say "a cgroup v1 hierarchy is mounted: not a pure v2 tree"
	code=1
fi

disk=
for d in /dev/ubda /dev/vda; do
	if [ -b "$d" ]; then
		disk=$d
		break
	fi
done
[ -n "$disk" ] || say "no disk (/dev/ubda or /dev/vda): IO tests will fail"

run=$(cmdarg glmdtest)
run=${run:-^TestV2_}
timeout=$(cmdarg glmdtimeout)
timeout=${timeout:-300}
say "kernel $(uname -r), $(nproc) CPU, $(sed -n 's/^MemTotal: *//p' /proc/meminfo) memory, disk ${disk:-none}," \
	"-test.run '$run', -test.timeout ${timeout}s"

if [ "$code" -eq 0 ]; then
	for bin in /tests/*.test; do
		[ -x "$bin" ] || continue
		name=${bin##*/}
		# go test runs a test in its package directory; testdata/, if any, was copied there.
		dir=/pkg/${name%.test}
		mkdir -p "$dir"
		echo "GLMD-VM-RUN $name"
		rc=0
		(cd "$dir" && GLMD_TEST_STRICT=1 GLMD_TEST_DISK=$disk GLMD_TESTWORKER=/testworker \
			"$bin" -test.v -test.run "$run" -test.timeout "${timeout}s") || rc=$?
		echo "GLMD-VM-RESULT $name $rc"
		[ "$rc" -eq 0 ] || code=1
	done
fi

sync
echo "GLMD-VM-EXIT $code"
poweroff -f
# Not reached; if it were, PID 1 must not exit (the kernel would panic), so wait for the host's timeout.
sleep 3600
