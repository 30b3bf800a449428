#!/usr/bin/env bash
# Installs what sluice needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are not touched, apt-get update runs only when needed.
set -euo pipefail

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  liblz4-dev libzstd-dev libxxhash-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libhnswlib-dev libpoppler-private-dev libxml2-dev libzip-dev poppler-utils poppler-data
  libtesseract-dev libleptonica-dev tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim
  # Real PDFs the OCR tests and benchmark render and recognise, the smallest Debian ships with a
  # good text layer: libtasn1's manual (English, 0.3 MB download) and the Debian New Maintainers'
  # Guide in Chinese (0.7 MB); r-doc-pdf and debian-edu-doc-zh-cn are 10 and 24 MB.
  libtasn1-doc maint-guide-zh-cn
  redis-server redis-tools
  librdkafka-dev libhiredis-dev
  rabbitmq-server librabbitmq-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev libcurl4-openssl-dev libyaml-cpp-dev
  chromium fonts-wqy-zenhei wrk python3-fastapi python3-uvicorn python3-multipart
  procps time python3 iproute2
)

# --manuals: only the real manuals the demo and the ingest benchmark read (not needed by the tests).
# --search-corpus: those and more manuals, which the full ingest benchmark adds to its index to
# measure search at 100k chunks (about 110 MB to download).
MODE="${1:-}"
if [[ "$MODE" == "--manuals" || "$MODE" == "--search-corpus" ]]; then
  APT_PACKAGES=(r-doc-pdf python3-doc debian-edu-doc-zh-cn)
fi
if [[ "$MODE" == "--search-corpus" ]]; then
  APT_PACKAGES+=(linux-doc-6.1 postgresql-doc-15 python-django-doc sqlite3-doc python-pandas-doc octave-doc
                 maxima-doc gnuplot-doc)
fi

missing=()
# node and npm run the browser test (playwright-core); a machine may already have them from
# elsewhere (nodesource), whose nodejs conflicts with Debian's npm package.
if [[ -z "$MODE" ]] && ! command -v npm >/dev/null 2>&1; then APT_PACKAGES+=(nodejs npm); fi
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all apt packages present" >&2
fi
if [[ "$MODE" == "--manuals" || "$MODE" == "--search-corpus" ]]; then exit 0; fi

# A redis-server installed from the package starts a system service; the tests start their own.
# So does rabbitmq-server (a broker on 5672, and an epmd); tests/support/rabbitmq_server.h starts
# one per test on free ports. The system one is stopped and kept from starting at boot.
if dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  if [[ -d /run/systemd/system ]]; then
    if systemctl is-enabled --quiet rabbitmq-server 2>/dev/null || systemctl is-active --quiet rabbitmq-server; then
      echo "setup: stopping and disabling the system rabbitmq-server service" >&2
      $SUDO systemctl disable --now rabbitmq-server >/dev/null 2>&1 || true
    fi
  elif pgrep -u rabbitmq beam.smp >/dev/null 2>&1; then  # no systemd (a container): the init script
    echo "setup: stopping the system rabbitmq-server service" >&2
    $SUDO service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
fi

# The test tools from npm (package.json, pinned exactly in package-lock.json): playwright-core for
# the browser test. `npm ci` again only when the lock file changed since the last install.
cd "$(dirname "$0")/.."
if [[ -z "$MODE" && -f package-lock.json ]]; then
  if ! cmp -s package-lock.json node_modules/.sluice-installed-lock; then
    echo "setup: npm ci (test tools)" >&2
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    cp package-lock.json node_modules/.sluice-installed-lock
  fi
fi
