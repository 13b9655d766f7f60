#!/bin/sh
# Installs the system packages Atoll's tests use (a real nats-server, Debian's openstack CLI, and
# openssl for test certificates) when
# they are missing, then the npm packages. Safe to run again.
set -eu
missing=""
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
command -v openstack >/dev/null 2>&1 || missing="$missing python3-openstackclient"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
