"""SQL round trips and files one `layerwise search C q --view -1` goes through (run it against any checkout).

    PYTHONPATH=src python bench/roundtrips.py --home /tmp/rt-home [--index examples/sample/docs]

Counts every statement SQLAlchemy sends (an event on every Engine) while the CLI
searches in this process, and, in a second run under strace, every file under the
home folder that the process opens. Statements are listed so that a full table
load shows itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def statements(home: str, collection: str, query: str) -> list[str]:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from layerwise.cli import app

    sent: list[str] = []
    event.listen(Engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: sent.append(" ".join(statement.split())))
    try:
        app(["search", collection, query, "--view", "-1", "--home", home, "--json"], standalone_mode=False)
    except SystemExit:
        pass
    return sent


def files(home: str, collection: str, query: str) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".trace") as trace:
        subprocess.run(["strace", "-f", "-e", "trace=open,openat", "-o", trace.name, sys.executable, "-m", "layerwise", "search",
                        collection, query, "--view", "-1", "--home", home, "--json"], check=True, capture_output=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
        opened = re.findall(r'open(?:at)?\(.*?"([^"]+)"', Path(trace.name).read_text())
    root = str(Path(home).resolve())
    return sorted({p for p in opened if p.startswith(root)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--collection", default="sample")
    parser.add_argument("--index", help="index this folder into the collection first")
    parser.add_argument("--query", default="how do I rotate the logs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.index:
        subprocess.run([sys.executable, "-m", "layerwise", "index", args.index, "-c", args.collection, "--home", args.home],
                       check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    sent = statements(args.home, args.collection, args.query)
    pragmas = [s for s in sent if s.upper().startswith("PRAGMA")]
    result = {"round_trips": len(sent), "pragmas": len(pragmas), "queries": [s[:160] for s in sent if s not in pragmas],
              "files": files(args.home, args.collection, args.query)}
    result["file_count"] = len(result["files"])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
