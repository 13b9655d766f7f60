#!/bin/sh
# Installs the system packages Atoll's tests use (a real nats-server, Debian's openstack CLI, and
# openssl for test certificates, qemu and the tiny guest for the QEMU driver, ip and dnsmasq for the
# Linux data plane, Debian's tempest for
# the interop guideline test)
# when they are missing, then the npm packages. Safe to run again.
set -eu
missing=""
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
command -v openstack >/dev/null 2>&1 || missing="$missing python3-openstackclient"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# test/interop.test.ts runs Tempest (scripts/tempest.mjs).
command -v tempest >/dev/null 2>&1 || missing="$missing tempest"
# The QEMU driver's tests: qemu, qcow2 overlays, the config drive and the tiny guest (build-guest.sh).
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
command -v qemu-img >/dev/null 2>&1 || missing="$missing qemu-utils"
command -v genisoimage >/dev/null 2>&1 || missing="$missing genisoimage"
command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"
# The Linux data plane (services.network.dataplane "linux", test/network-dataplane.test.ts): ip and dnsmasq.
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # apt-get update only when apt knows nothing yet about a package we need.
  apt-cache show linux-image-cloud-amd64 $missing >/dev/null 2>&1 || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
sh "$(dirname "$0")/build-guest.sh" >/dev/null
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
