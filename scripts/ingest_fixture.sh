#!/usr/bin/env bash
# Post a folder of ccusage JSON outputs to a running server as one machine, read the totals back
# through /api/v1/usage/ and check they equal ccusage's own (tokens exactly, cost to the cent).
#
# Usage:
#   scripts/ingest_fixture.sh [--server URL] [--token TOKEN | --email EMAIL]
#                             [--machine-uuid UUID] [--name NAME] [--ccusage-version X.Y.Z] DIR
#
#   DIR holds ccusage outputs: claude-daily-instances.json (or 18.x's daily-instances.json),
#   and optionally claude-session.json (session.json), all-daily-by-agent.json and
#   blocks-hourly.json. Against `make run`:
#     .venv/bin/python manage.py adduser you@example.com --team demo --role owner
#     scripts/ingest_fixture.sh --email you@example.com tests/fixtures/ccusage/output
#   --email makes a token with `manage.py create_api_token`; --token (or $CCT_TOKEN) uses yours.
#   Exit status: 0 when the totals match, 1 when they differ or the server refuses.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
server="${CCT_SERVER:-http://127.0.0.1:8000}"
token="${CCT_TOKEN:-}"
email=""
machine_uuid=""
name="fixture-machine"
version=""
dir=""

die() { echo "ingest_fixture: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="${2:?--server needs a URL}"; shift 2 ;;
    --token) token="${2:?--token needs a value}"; shift 2 ;;
    --email) email="${2:?--email needs an address}"; shift 2 ;;
    --machine-uuid) machine_uuid="${2:?--machine-uuid needs a UUID}"; shift 2 ;;
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --ccusage-version) version="${2:?--ccusage-version needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$dir" ] || die "one fixture folder only"; dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || die "give the folder of ccusage outputs (see --help)"
[ -d "$dir" ] || die "$dir is not a folder"
command -v curl >/dev/null || die "curl is required"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "python3 is required"
server="${server%/}"

if [ -z "$token" ]; then
  [ -n "$email" ] || die "give --token TOKEN, \$CCT_TOKEN or --email EMAIL"
  manage_python="$here/.venv/bin/python"
  [ -x "$manage_python" ] || manage_python="$python"
  token="$(cd "$here" && "$manage_python" manage.py create_api_token "$email" --name "ingest-fixture")" \
    || die "could not create a token for $email"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build the envelope (reports verbatim) and the totals ccusage printed for this machine.
"$python" - "$dir" "$work" "$machine_uuid" "$name" "$version" <<'PY'
import gzip, json, sys, uuid
from decimal import Decimal
from pathlib import Path

folder, work, machine_uuid, name, version = sys.argv[1:6]
folder, work = Path(folder), Path(work)


def first(*names):
    for candidate in names:
        if (folder / candidate).is_file():
            return folder / candidate
    return None


instances = first("claude-daily-instances.json", "daily-instances.json")
if instances is None:
    sys.exit(f"ingest_fixture: {folder} has no claude-daily-instances.json")
if not version:
    version = "18.0.11" if instances.name == "daily-instances.json" else "20.0.24"
files = {
    "claude_daily_instances": instances,
    "claude_session": first("claude-session.json", "session.json"),
    "daily_by_agent": first("all-daily-by-agent.json"),
    "blocks_hourly": first("blocks-hourly.json"),
}
reports = {kind: json.loads(path.read_text()) for kind, path in files.items() if path}
envelope = {
    "schema": 1,
    "machine": {
        "uuid": machine_uuid or str(uuid.uuid4()),
        "name": name,
        "hostname": name,
        "os": "fixture",
        "agent_version": "ingest_fixture.sh",
        "ccusage_version": version,
        "timezone": "UTC",
    },
    "full": True,
    "since": None,
    "reports": reports,
    "projects": {},
}
(work / "body.json.gz").write_bytes(gzip.compress(json.dumps(envelope).encode()))
(work / "machine").write_text(envelope["machine"]["uuid"])

exact = lambda path: json.loads(path.read_text(), parse_float=Decimal)  # noqa: E731
totals = exact(instances)["totals"]
tokens, cost = totals["totalTokens"], Decimal(totals["totalCost"])
if files["daily_by_agent"]:
    for row in exact(files["daily_by_agent"])["daily"]:
        for agent in row.get("agents", []):
            if agent["agent"] != "claude":
                tokens += agent["totalTokens"]
                cost += Decimal(agent["totalCost"])
(work / "expected").write_text(f"{tokens} {cost}")
print(f"Sending {', '.join(reports)} from {folder} as machine {envelope['machine']['uuid']}")
PY

status="$(curl -sS -o "$work/answer.json" -w '%{http_code}' -X POST "$server/api/v1/ingest/" \
  -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  -H "Content-Encoding: gzip" --data-binary "@$work/body.json.gz")" \
  || die "could not reach $server"
case "$status" in
  200|201) ;;
  *) die "the server answered $status: $(cat "$work/answer.json")" ;;
esac

machine="$(cat "$work/machine")"
status="$(curl -sS -o "$work/usage.json" -w '%{http_code}' -G "$server/api/v1/usage/" \
  -H "Authorization: Bearer $token" --data-urlencode "machine=$machine" \
  --data-urlencode "group_by=source")" || die "could not reach $server"
[ "$status" = 200 ] || die "reading usage answered $status: $(cat "$work/usage.json")"

"$python" - "$work" <<'PY'
import json, sys
from decimal import Decimal
from pathlib import Path

work = Path(sys.argv[1])
answer = json.loads((work / "answer.json").read_text())
usage = json.loads((work / "usage.json").read_text())
expected_tokens, expected_cost = (work / "expected").read_text().split()
cent = Decimal("0.01")
want = (int(expected_tokens), Decimal(expected_cost).quantize(cent))
got = (usage["totals"]["total_tokens"], Decimal(usage["totals"]["cost_usd"]).quantize(cent))
counts = ", ".join(
    f"{kind} {c['created']}+{c['updated']}~{c['unchanged']}" for kind, c in answer["counts"].items()
)
print(f"Stored batch {answer['batch_id']} (created+updated~unchanged: {counts})")
print(f"ccusage says: {want[0]:,} tokens, ${want[1]}")
print(f"server says:  {got[0]:,} tokens, ${got[1]}")
if got != want:
    sys.exit("ingest_fixture: MISMATCH")
print("OK: the server's totals equal ccusage's")
PY
