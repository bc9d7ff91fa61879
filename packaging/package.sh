#!/usr/bin/env bash
# package.sh builds glmd's .deb and .rpm packages (make package).
#
# Usage:
#   packaging/package.sh [ARCH...]     ARCH: amd64, arm64 (default: both)
#
# For each ARCH it builds glmd and glmctl with cgo (NVML needs it; arm64 on an
# amd64 host with Debian's aarch64-linux-gnu-gcc), with the package version
# stamped in (`glmd version`), generates glmctl's shell completions, and runs
# nfpm (packaging/nfpm.yaml) for deb and rpm. nfpm is built from the Go module
# proxy at the version pinned in packaging/tools/go.mod (checked by its
# go.sum), never downloaded as a binary.
#
# Output: $GLMD_PKG_DIR (bin/packages): glmd_<version>_<arch>.deb and
# glmd-<version>-1.<x86_64|aarch64>.rpm. The binaries are under $GLMD_BUILD
# (bin/pkgbuild).
#
# Environment:
#   VERSION       the version to stamp (default: git describe --tags --always --dirty, as make build)
#   COMMIT        the commit to stamp (default: git rev-parse --short HEAD)
#   PKG_VERSION   the package version (default: derived from VERSION, see pkg_version below)
#   GO            the go command (go)
#   CC_amd64, CC_arm64   C cross compilers (default: gcc for the host's own arch,
#                 x86_64-linux-gnu-gcc / aarch64-linux-gnu-gcc otherwise)
#   GLMD_BUILD, GLMD_PKG_DIR   where binaries and packages go
#   SOURCE_DATE_EPOCH   file times in the packages (default: the commit's time)
set -euo pipefail

prog=package.sh
say() { echo "$prog: $*" >&2; }
die() {
	say "FAIL: $*"
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go=${GO:-go}
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64)

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || true)}
export GLMD_BUILD=${GLMD_BUILD:-$root/bin/pkgbuild}
pkgdir=${GLMD_PKG_DIR:-$root/bin/packages}

# pkg_version turns a git-describe version into one that dpkg and rpm order
# correctly: v1.2.3 -> 1.2.3; v1.2.3-rc1 -> 1.2.3~rc1 (before 1.2.3);
# v1.2.3-4-gabc1234[-dirty] -> 1.2.3+git4.abc1234[.dirty] (after 1.2.3);
# an untagged abc1234[-dirty] -> 0.0.0~git<commit time>.abc1234[.dirty].
pkg_version() {
	local v=${1#v} when
	if [[ $v =~ ^[0-9]+\.[0-9] ]]; then
		v=$(sed -E 's/-([0-9]+)-g([0-9a-f]+)/+git\1.\2/; s/-dirty$/.dirty/; s/-/~/g' <<<"$v")
	else
		when=$(git log -1 --format=%cd --date=format:%Y%m%d%H%M%S 2>/dev/null || echo 0)
		v=0.0.0~git$when.$(sed -E 's/-dirty$/.dirty/; s/[^A-Za-z0-9.+~]/./g' <<<"$1")
	fi
	printf '%s\n' "$v"
}
PKG_VERSION=${PKG_VERSION:-$(pkg_version "$VERSION")}
[[ $PKG_VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
	die "package version \"$PKG_VERSION\" must start with a digit and hold only letters, digits, '.', '+' and '~' (set PKG_VERSION)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
	export SOURCE_DATE_EPOCH
fi

# go-nvml's header deprecates dozens of vGPU calls: silence the warnings.
export CGO_CFLAGS=${CGO_CFLAGS:-"-O2 -g -Wno-deprecated-declarations"}
host=$($go env GOHOSTARCH)
cc_for() {
	local override
	override=CC_$1
	if [ -n "${!override:-}" ]; then
		echo "${!override}"
	elif [ "$1" = "$host" ]; then
		echo gcc
	else
		case $1 in
		amd64) echo x86_64-linux-gnu-gcc ;;
		arm64) echo aarch64-linux-gnu-gcc ;;
		*) die "unsupported architecture $1 (amd64 or arm64)" ;;
		esac
	fi
}

ldflags="-X github.com/open-autoglm/glmd/internal/version.Version=$PKG_VERSION -X github.com/open-autoglm/glmd/internal/version.Commit=$COMMIT"
for arch in "${archs[@]}"; do
	cc=$(cc_for "$arch")
	command -v "$cc" >/dev/null ||
		die "no C compiler $cc for $arch (cgo, for NVML): apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross, or set CC_$arch"
	say "building glmd $PKG_VERSION for linux/$arch (CC=$cc)"
	CGO_ENABLED=1 GOOS=linux GOARCH=$arch CC=$cc \
		$go build -trimpath -ldflags "$ldflags" -o "$GLMD_BUILD/linux_$arch/" ./cmd/glmd ./cmd/glmctl
done

# The completion scripts are the same for every architecture; the host's
# glmctl writes them.
say "generating glmctl's shell completions"
mkdir -p "$GLMD_BUILD/completions"
if [ -x "$GLMD_BUILD/linux_$host/glmctl" ] && [[ " ${archs[*]} " == *" $host "* ]]; then
	glmctl=$GLMD_BUILD/linux_$host/glmctl
else
	glmctl=$GLMD_BUILD/glmctl-host
	$go build -trimpath -o "$glmctl" ./cmd/glmctl
fi
"$glmctl" completion bash >"$GLMD_BUILD/completions/glmctl.bash"
"$glmctl" completion zsh >"$GLMD_BUILD/completions/_glmctl"
"$glmctl" completion fish >"$GLMD_BUILD/completions/glmctl.fish"

say "building nfpm (packaging/tools/go.mod)"
nfpm=$($go -C packaging/tools tool -n nfpm) || die "could not build nfpm from packaging/tools (is the Go module proxy reachable?)"

mkdir -p "$pkgdir"
export GLMD_PKG_VERSION=$PKG_VERSION
for arch in "${archs[@]}"; do
	for packager in deb rpm; do
		GLMD_ARCH=$arch "$nfpm" package --config packaging/nfpm.yaml --packager "$packager" --target "$pkgdir/" >&2
	done
done
say "packages in ${pkgdir#"$root"/}:"
for arch in "${archs[@]}"; do
	rpmarch=$arch
	case $arch in amd64) rpmarch=x86_64 ;; arm64) rpmarch=aarch64 ;; esac
	for f in "$pkgdir/glmd_${PKG_VERSION}_$arch.deb" "$pkgdir/glmd-$PKG_VERSION-1.$rpmarch.rpm"; do
		[ -f "$f" ] || die "nfpm did not write $f"
		echo "$f"
	done
done
