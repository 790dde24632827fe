#!/usr/bin/env bash
# `make browser`: Debian's Chromium and chromedriver for the browser tests (tests/browser, marker
# `browser`). Quick when both are present; installs them with apt-get when missing and possible (root
# and apt-get); otherwise says why and exits 0, and the browser tests skip with that reason.
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

chromium_bin="${AIRFLOW_OMNISEND_CHROMIUM:-}"
driver_bin="${AIRFLOW_OMNISEND_CHROMEDRIVER:-}"
if { [ -n "$chromium_bin" ] && [ -x "$chromium_bin" ] || have chromium || have chromium-browser; } &&
   { [ -n "$driver_bin" ] && [ -x "$driver_bin" ] || have chromedriver; }; then
    exit 0
fi

if ! have apt-get; then
    echo "browser: chromium/chromedriver missing and no apt-get here; install them by hand" \
         "(or set AIRFLOW_OMNISEND_CHROMIUM and AIRFLOW_OMNISEND_CHROMEDRIVER); browser tests will skip"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser: chromium/chromedriver missing; run as root (or: sudo apt-get install chromium" \
         "chromium-driver) to install them; browser tests will skip"
    exit 0
fi

echo "browser: installing chromium and chromium-driver with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; then
    echo "browser: $(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
else
    echo "browser: apt-get could not install chromium and chromium-driver; browser tests will skip"
fi
exit 0
