"""The @test:chaos tool: notes its start in a ledger, works as its model says, writes a receipt.

argv: chaos.py <input file> <output file> <temp dir> [<records dir>]. The model is a text file
holding the seconds to work. The job id (the work dir's name) is appended to `ledger.txt` in
the records dir (default: beside this script), in one O_APPEND write, before the work starts:
a line per run, so the chaos test sees that no job's tool ran twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    input_file, output_file, temp_dir = sys.argv[1:4]
    temp = Path(temp_dir)
    job = temp.parent.name
    inputs = json.loads(Path(input_file).read_text())
    seconds = float(Path(inputs["part"]["value"]).read_text())
    records = Path(sys.argv[4]) if len(sys.argv) > 4 else Path(__file__).parent  # the test's
    ledger = os.open(records / "ledger.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(ledger, f"{job}\n".encode())
    os.close(ledger)
    time.sleep(seconds)
    (temp / "receipt.txt").write_text(job)
    receipt = {"name": "receipt", "type": "file", "path": str(temp / "receipt.txt")}
    Path(output_file).write_text(json.dumps([receipt]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
