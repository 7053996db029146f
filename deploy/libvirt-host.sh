#!/usr/bin/env bash
# Prepares a Debian machine to be a compute host for the libvirt driver
# (crates/driver-libvirt) and the host data plane (crates/dataplane):
# installs QEMU, libvirt and the tools they shell out to (qemu-img,
# genisoimage, dnsmasq, ip, bridge, nft, sysctl; busybox for the netns
# driver's guests, iperf3 for the data plane benchmark), creates the users and
# groups libvirtd expects, starts virtlogd and libvirtd without systemd (as in
# containers and CI runners), and checks that qemu:///system answers.
#
# Idempotent: every step checks first and says what it did or found.
# Run as root (or with sudo available). Usage: deploy/libvirt-host.sh
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

say() { echo "libvirt-host: $*"; }

PACKAGES=(
    qemu-system-x86 qemu-utils
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
    genisoimage dnsmasq-base bridge-utils iproute2 pkg-config procps libxml2-utils
    nftables conntrack busybox iperf3
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    say "packages already installed"
fi
# A newer qemu-utils from backports conflicts with Debian's qemu-system-x86:
# installing the latter removes it, leaving no qemu-img. Put Debian's back.
if ! command -v qemu-img >/dev/null; then
    say "qemu-img went missing (qemu-utils was replaced); installing Debian's qemu-utils"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-utils
fi

# libvirtd runs QEMU as libvirt-qemu:libvirt-qemu (Debian's build defaults)
# and gives the kvm group access to /dev/kvm. The Debian packages that
# create them (libvirt-daemon-system) are not needed without systemd.
for g in kvm libvirt libvirt-qemu; do
    if getent group "$g" >/dev/null; then
        say "group $g exists"
    else
        $SUDO groupadd --system "$g"
        say "created group $g"
    fi
done
if id libvirt-qemu >/dev/null 2>&1; then
    say "user libvirt-qemu exists"
else
    $SUDO useradd --system --gid libvirt-qemu --groups kvm \
        --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu
    say "created user libvirt-qemu"
fi
if [ -e /dev/kvm ]; then
    $SUDO chgrp kvm /dev/kvm && $SUDO chmod 0660 /dev/kvm
    say "/dev/kvm is group kvm"
fi

# State and run directories the daemons expect (normally made by systemd
# tmpfiles or the -system package).
for d in /var/run/libvirt /var/lib/libvirt /var/lib/libvirt/qemu /var/cache/libvirt /var/log/libvirt/qemu; do
    $SUDO mkdir -p "$d"
done

running() { pgrep -x "$1" >/dev/null 2>&1; }

# virtlogd must run first: libvirtd hands QEMU's stdout/stderr log to it.
if running virtlogd; then
    say "virtlogd already running"
else
    $SUDO virtlogd -d
    say "started virtlogd"
fi
if running libvirtd; then
    say "libvirtd already running"
else
    $SUDO libvirtd -d
    say "started libvirtd"
fi

for _ in $(seq 1 30); do
    if $SUDO virsh -c qemu:///system version >/dev/null 2>&1; then
        break
    fi
    sleep 1
done
if ! $SUDO virsh -c qemu:///system version; then
    say "qemu:///system does not answer" >&2
    exit 1
fi
say "qemu:///system is up"
