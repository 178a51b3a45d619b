#!/usr/bin/env bash
# Refreshes the vendored Chart.js from the npm package pinned in package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
npm install --no-audit --no-fund --no-save --silent
version=$(node -p "require('./node_modules/chart.js/package.json').version")
rm -f static/vendor/chart-*.umd.min.js
# The source map is not vendored, so its pointer goes too (collectstatic would chase it).
grep -v "^//# sourceMappingURL=" node_modules/chart.js/dist/chart.umd.min.js \
  > "static/vendor/chart-${version}.umd.min.js"
echo "static/vendor/chart-${version}.umd.min.js"
