"""A minimal Dockyard processor: read the payload, do the work, print the result."""

import json
import os
import sys

payload = json.load(sys.stdin)
print(f"run {os.environ['DOCKYARD_RUN_ID']} attempt {os.environ['DOCKYARD_ATTEMPT']}", file=sys.stderr)
try:
    result = {"received": payload}
except Exception as exc:  # a temporary problem: exit 75 (EX_TEMPFAIL)
    print(f"temporary failure: {exc}", file=sys.stderr)
    sys.exit(75)
print("DOCKYARD_RESULT " + json.dumps(result))
